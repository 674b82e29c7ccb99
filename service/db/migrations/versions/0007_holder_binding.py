"""holder-bound actors, failed authentications

A holder app acts for one resident: ``actor.resident_id`` binds it (NULL for every other role). Failed
authentications (EST Basic, CMP MAC, bearer tokens) are counted per subject (a proofing event, a source
address) in ``auth_failure`` so every worker sees the same count and a lockout holds across them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("actor", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resident_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_actor_resident", "resident", ["resident_id"], ["id"])
    op.create_table(
        "auth_failure",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_auth_failure_subject_at", "auth_failure", ["subject", "at"])


def downgrade() -> None:
    op.drop_index("ix_auth_failure_subject_at", table_name="auth_failure")
    op.drop_table("auth_failure")
    with op.batch_alter_table("actor", schema=None) as batch_op:
        batch_op.drop_constraint("fk_actor_resident", type_="foreignkey")
        batch_op.drop_column("resident_id")
