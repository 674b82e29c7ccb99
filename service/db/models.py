"""Tables. Certificates and CA material are public data; no private key or PIN is ever a column."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel


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


class CrlRecord(SQLModel, table=True):
    """A published CRL. ``(issuer, number)`` is unique: a number is allocated once, in the transaction that
    stores the CRL (service/publication/crl.py)."""

    __tablename__ = "crl"
    __table_args__ = (UniqueConstraint("issuer", "number", name="uq_crl_issuer_number"),)

    id: int | None = Field(default=None, primary_key=True)
    issuer: str = Field(index=True)
    number: int
    this_update: datetime
    next_update: datetime
    crl_der: bytes
    entries: int | None = None  # how many revoked certificates it lists (None: stored before koshin counted)
