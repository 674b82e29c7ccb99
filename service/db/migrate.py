"""Apply the Alembic migrations to an engine (at start-up) and make new revisions (developers).

Every process that opens the database calls ``upgrade``. When the schema is already at ``HEAD`` (one indexed
read of ``alembic_version``) nothing more happens: Alembic, its migration scripts and their import time (about
a third of a second, in every ``koshin`` command) are only loaded when there is something to migrate.
``HEAD`` is the newest revision in migrations/versions/ (tests/service/db/test_migrations.py keeps it so).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0010"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def at_head(engine: Engine) -> bool:
    """The schema is at ``HEAD`` (False for an empty database, whose ``alembic_version`` does not exist)."""
    try:
        with engine.connect() as connection:
            versions = [str(v) for v in connection.execute(text("SELECT version_num FROM alembic_version")).scalars()]
    except DatabaseError:
        return False
    return versions == [HEAD]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` inside one transaction (nothing to do, and no Alembic, at ``HEAD``)."""
    if revision == "head" and at_head(engine):
        return
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision against ``engine`` (at head): ``python -m service.db.migrate "msg"``."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    import sys
    import tempfile

    from sqlalchemy import create_engine

    with tempfile.TemporaryDirectory() as scratch:
        scratch_engine = create_engine(f"sqlite:///{scratch}/schema.db")
        upgrade(scratch_engine)
        revision(scratch_engine, sys.argv[1] if len(sys.argv) > 1 else "schema change")
