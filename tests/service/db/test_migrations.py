"""The Alembic migrations build exactly the schema the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

from service.db.migrate import alembic_config, upgrade
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
