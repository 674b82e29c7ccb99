"""crl numbers unique per issuer, entry counts, a seeded audit head

CRL numbers repeated when concurrent revocations each numbered a CRL in one session and stored it in another.
Duplicated (issuer, number) rows that an older installation holds are reduced to the last one stored (the
later signature of that number), then the pair is made unique. ``entries`` lets publication tell whether the
newest CRL lists every revocation. The audit head row is created here, so the first two writers of a new
database do not race to insert it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.add_column("crl", sa.Column("entries", sa.Integer(), nullable=True))
    op.execute(
        "DELETE FROM crl WHERE id NOT IN (SELECT max_id FROM (SELECT MAX(id) AS max_id FROM crl "
        "GROUP BY issuer, number) AS newest)"
    )
    with op.batch_alter_table("crl") as batch:
        batch.create_unique_constraint("uq_crl_issuer_number", ["issuer", "number"])
    op.execute(
        f"INSERT INTO audit_head (id, seq, hash) SELECT 1, 0, '{GENESIS}' "  # noqa: S608 - a constant
        "WHERE NOT EXISTS (SELECT 1 FROM audit_head)"
    )


def downgrade() -> None:
    with op.batch_alter_table("crl") as batch:
        batch.drop_constraint("uq_crl_issuer_number", type_="unique")
    op.drop_column("crl", "entries")
