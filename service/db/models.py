"""Tables. Certificates and CA material are public data; no private key or PIN is ever a column."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# Rows whose revocation status ever changed (revoked, or revoked and released). Only they are in the CRL index,
# so issuance (new rows, status_changes 0) does not pay for it; queries name the condition literally so both
# SQLite and PostgreSQL can prove the partial index applies.
STATUS_CHANGED = text("status_changes > 0")
COMPLETE_CRL = text("shard IS NULL")


class CaRecord(SQLModel, table=True):
    """A certificate of the CA hierarchy (root, issuing CA or OCSP signer) and the URI of its token key."""

    __tablename__ = "ca_record"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    role: str
    key_label: str
    key_uri: str
    serial_hex: str
    certificate_der: bytes
    not_after: datetime
    created_at: datetime


class CertificateRecord(SQLModel, table=True):
    """A holder certificate: the intent is written before the token signs, the DER after."""

    __tablename__ = "certificate"
    __table_args__ = (
        Index("ix_certificate_crl", "issuer", "crl_shard", "status", "status_changes",
              sqlite_where=STATUS_CHANGED, postgresql_where=STATUS_CHANGED),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True)
    serial_hex: str = Field(unique=True, index=True)
    issuer: str = Field(index=True)
    profile: str
    subject: str
    key_algorithm: str
    assurance_level: str
    status: str = Field(index=True)  # pending | issued | failed | revoked
    not_before: datetime
    not_after: datetime
    validity_rule: str
    linted: bool
    resident_id: int | None = Field(default=None, foreign_key="resident.id", index=True)
    card_id: int | None = Field(default=None, foreign_key="card.id", index=True)
    device_id: str | None = None
    proofing_event_id: str | None = Field(default=None, foreign_key="proofing_event.id")
    replaces_serial: str | None = None
    key_origin: str = "unknown"  # device | station | unknown: where the holder key pair was generated
    certificate_der: bytes | None = None
    failure: str | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    created_at: datetime
    # The CRL shard its CRL distribution point names (serial mod the issuer's crl_shards, chosen when the intent
    # is prepared; 0 for an unpartitioned issuer and for certificates issued before 0010).
    crl_shard: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    # One more on every revocation and every release from hold (service/db/crl_store.py): the sum over a shard
    # only grows, so a CRL that recorded the sum it covered can tell whether anything changed since.
    status_changes: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})


class CrlRecord(SQLModel, table=True):
    """A published CRL: the complete CRL of an issuer (``shard`` NULL) or one shard of a partitioned issuer (RFC
    5280 section 5.2.5). Each scope numbers its CRLs on its own: ``(issuer, shard, number)`` is unique, and
    ``(issuer, number)`` among the complete CRLs; a number is allocated once, in the transaction that stores the
    CRL (service/publication/crl.py)."""

    __tablename__ = "crl"
    __table_args__ = (
        UniqueConstraint("issuer", "shard", "number", name="uq_crl_issuer_shard_number"),
        Index("uq_crl_issuer_number", "issuer", "number", unique=True,
              sqlite_where=COMPLETE_CRL, postgresql_where=COMPLETE_CRL),
    )  # fmt: skip

    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(index=True)
    number: int
    this_update: datetime
    next_update: datetime
    crl_der: bytes
    entries: int | None = None  # how many revoked certificates it lists (None: stored before koshin counted)
    shard: int | None = None  # None: the complete CRL
    covers: int | None = None  # the scope's sum of certificate.status_changes it lists (None: before 0010)
