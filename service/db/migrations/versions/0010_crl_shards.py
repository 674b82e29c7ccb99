"""partitioned CRLs: each certificate's CRL shard, a change count that survives a release from hold, CRLs per
shard; a resident's stay limit

A certificate of an issuer with ``crl_shards: N`` (profiles/hierarchy.yaml) names CRL shard ``serial mod N`` in
its CRL distribution point, and ``certificate.crl_shard`` records it. Certificates issued before this revision
name the complete CRL (``/crl/<ca>.crl``), which keeps listing every revocation of its issuer; they get shard
0, the shard ``serial mod 1`` gives: the rule in force when they were issued. Shard 0 lists them too, which no
relying party needs and none is harmed by.

``certificate.status_changes`` counts the revocations and releases from hold of a certificate; a CRL records
the sum over its scope it covered (``crl.covers``), so a release (status back to issued), which a comparison
of counts cannot see, makes the CRL due again. Revoked rows start at 1. Existing CRLs cover nothing known
(``covers`` NULL): every scope is published once after the upgrade.

``crl.shard`` (NULL: the complete CRL) gives each shard its own CRL numbers: ``(issuer, shard, number)`` is
unique, and ``uq_crl_issuer_number`` becomes a unique index over the complete CRLs only.

``resident.stay_limit`` (nullable): the day a foreign resident's period of stay ends.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANGED = sa.text("status_changes > 0")
COMPLETE = sa.text("shard IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("certificate") as batch:
        batch.add_column(sa.Column("crl_shard", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("status_changes", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.execute("UPDATE certificate SET status_changes = 1 WHERE status = 'revoked'")
    op.create_index("ix_certificate_crl", "certificate", ["issuer", "crl_shard", "status", "status_changes"],
                    unique=False, sqlite_where=CHANGED, postgresql_where=CHANGED)  # fmt: skip

    with op.batch_alter_table("crl") as batch:
        batch.add_column(sa.Column("shard", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("covers", sa.Integer(), nullable=True))
        batch.drop_constraint("uq_crl_issuer_number", type_="unique")
        batch.create_unique_constraint("uq_crl_issuer_shard_number", ["issuer", "shard", "number"])
    op.create_index("uq_crl_issuer_number", "crl", ["issuer", "number"], unique=True,
                    sqlite_where=COMPLETE, postgresql_where=COMPLETE)  # fmt: skip

    with op.batch_alter_table("resident") as batch:
        batch.add_column(sa.Column("stay_limit", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("resident") as batch:
        batch.drop_column("stay_limit")
    op.drop_index("uq_crl_issuer_number", table_name="crl")
    op.execute("DELETE FROM crl WHERE shard IS NOT NULL")
    with op.batch_alter_table("crl") as batch:
        batch.drop_constraint("uq_crl_issuer_shard_number", type_="unique")
        batch.create_unique_constraint("uq_crl_issuer_number", ["issuer", "number"])
        batch.drop_column("covers")
        batch.drop_column("shard")
    op.drop_index("ix_certificate_crl", table_name="certificate")
    with op.batch_alter_table("certificate") as batch:
        batch.drop_column("status_changes")
        batch.drop_column("crl_shard")
