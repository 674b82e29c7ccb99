"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from service.db.migrate import HEAD, alembic_config, at_head, upgrade
from service.db.repository import make_engine


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)  # applies the migrations
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert context.get_current_revision() == head
    tables = set(inspect(engine).get_table_names())
    assert {"certificate", "resident", "card", "actor", "proofing_event", "audit_record"} <= tables
    engine.dispose()


def test_upgrade_is_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    upgrade(engine)
    upgrade(engine)  # a second start-up changes nothing
    with engine.connect() as connection:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert MigrationContext.configure(connection).get_current_revision() == head
    engine.dispose()


def test_head_is_the_newest_revision_and_a_database_at_head_skips_alembic(tmp_path: Path) -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD
    url = f"sqlite:///{tmp_path / 'koshin.db'}"
    empty = create_engine(url)
    assert not at_head(empty)  # no alembic_version table yet
    upgrade(empty)
    assert at_head(empty)
    empty.dispose()
    # A process opening a database at head loads no Alembic (the start-up cost of every `koshin` command).
    probe = "import sys; from service.db.repository import make_engine; make_engine(sys.argv[1]); " \
            "sys.exit('alembic' in sys.modules)"  # fmt: skip
    assert subprocess.run([sys.executable, "-c", probe, url], check=False).returncode == 0
