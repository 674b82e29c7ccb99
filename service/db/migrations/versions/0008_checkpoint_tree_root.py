"""audit checkpoints carry the Merkle tree head of the records they cover

``audit_checkpoint.tree_root``: the RFC 9162 tree head (hex) over the leaf hashes of records 1..seq, signed with
the rest of the checkpoint (version 2). NULL for the version-1 checkpoints signed before it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tree_root", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.drop_column("tree_root")
