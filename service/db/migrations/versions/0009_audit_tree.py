"""the audit log becomes a Merkle tree: database-numbered records, no head row, the sequencer's tree state

Records were appended under a row lock on ``audit_head`` and hashed onto their predecessor, which serialised
every writer of every node. Now the database numbers records (``seq``, a sequence / AUTOINCREMENT), a record's
hash covers its own content only, and the sequencer gives each its place in the tree (``leaf_index``, unique)
and keeps the tree's state in ``audit_tree``. Existing records keep their hashes (``prev_hash`` is kept for
them, service.db.audit_log.fields_hash still covers it) and take their place in order: leaf ``seq - 1``, the
leaves the version-2 checkpoints already signed. The tree's head and right edge are computed by the first
sequencer that runs (``frontier`` NULL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 21:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "seq, at, actor, role, action, object, rule_id, decision, details, hash, prev_hash"


def upgrade() -> None:
    op.create_table(
        "audit_record_next",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("object", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rule_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("decision", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("details", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("leaf_index", sa.Integer(), nullable=True),
        sa.Column("integrated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("leaf_index"),
        sqlite_autoincrement=True,
    )
    op.execute(
        f"INSERT INTO audit_record_next ({_COLUMNS}, leaf_index, integrated_at) "  # noqa: S608 - constants
        f"SELECT {_COLUMNS}, seq - 1, at FROM audit_record"
    )
    with op.batch_alter_table("audit_record") as batch:
        batch.drop_index("ix_audit_record_action")
    op.drop_table("audit_record")
    op.rename_table("audit_record_next", "audit_record")
    op.create_index("ix_audit_record_action", "audit_record", ["action"], unique=False)
    pending = sa.text("leaf_index IS NULL")
    op.create_index("ix_audit_record_pending", "audit_record", ["seq"], unique=False,
                    sqlite_where=pending, postgresql_where=pending)  # fmt: skip
    if op.get_bind().dialect.name == "postgresql":  # the sequence starts after the records already numbered
        op.execute("SELECT setval(pg_get_serial_sequence('audit_record', 'seq'), "
                   "COALESCE((SELECT MAX(seq) FROM audit_record), 0) + 1, false)")  # fmt: skip

    op.create_table(
        "audit_tree",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("root", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("frontier", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("sequencer", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO audit_tree (id, size) SELECT 1, COALESCE((SELECT seq FROM audit_head WHERE id = 1), 0)")
    op.drop_table("audit_head")


def downgrade() -> None:
    raise NotImplementedError(
        "records appended to the tree are not hashed onto a predecessor: the hash chain of 0008 cannot be rebuilt"
    )
