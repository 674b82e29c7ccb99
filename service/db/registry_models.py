"""Registry tables: municipalities, residents, cards, actors and proofing events.

The resident record holds the four basic attributes (基本4情報); no PIN, password or key is ever a column.
Actor API tokens are stored as SHA-256 digests only.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel


class Municipality(SQLModel, table=True):
    __tablename__ = "municipality"

    code: str = Field(primary_key=True, max_length=16)
    name: str
    prefecture: str
    post_office_delegation: bool = False


class Resident(SQLModel, table=True):
    __tablename__ = "resident"

    id: int | None = Field(default=None, primary_key=True)
    resident_number: str = Field(unique=True, index=True, max_length=32)  # the registry's own id, not My Number
    name: str
    address: str
    municipality_code: str = Field(foreign_key="municipality.code", index=True)
    date_of_birth: date
    sex: str
    adult_ward: bool = False
    evacuee: bool = False
    created_at: datetime
    updated_at: datetime
    stay_limit: date | None = None  # a foreign resident's period of stay ends on this day (在留期間の満了日)


class Card(SQLModel, table=True):
    __tablename__ = "card"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True, max_length=32)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    issued_on: date
    expires_on: date
    status: str = Field(default="active", index=True)  # active | lost | revoked | expired | superseded
    delivery: str = "counter"  # counter | restricted_mail (本人限定受取郵便), from the policy's conditions
    created_at: datetime


class Actor(SQLModel, table=True):
    __tablename__ = "actor"

    id: int | None = Field(default=None, primary_key=True)
    name: str
    role: str = Field(index=True)
    municipality_code: str | None = Field(default=None, foreign_key="municipality.code")
    resident_id: int | None = Field(default=None, foreign_key="resident.id")  # a holder app: the one it acts for
    token_sha256: str = Field(unique=True, index=True, max_length=64)
    active: bool = True
    created_at: datetime


class AuthFailure(SQLModel, table=True):
    """One failed authentication (EST Basic, CMP MAC, bearer token), counted per subject for the lockout."""

    __tablename__ = "auth_failure"
    __table_args__ = (Index("ix_auth_failure_subject_at", "subject", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # est | cmp | bearer
    subject: str  # "event:<id>" or "source:<address>"
    source: str
    at: datetime


class ProofingEvent(SQLModel, table=True):
    """One identity verification by one actor: single-use, and valid only until ``expires_at``."""

    __tablename__ = "proofing_event"

    id: str = Field(primary_key=True, max_length=36)
    actor_id: int = Field(foreign_key="actor.id", index=True)
    resident_id: int = Field(foreign_key="resident.id", index=True)
    operation: str
    channel: str
    evidence: str  # JSON list
    regime: str
    rule_id: str
    assurance_level: str
    policy_oid: str
    conditions: str  # JSON list
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class EnrollmentNonce(SQLModel, table=True):
    """A server nonce a phone application must sign with the card's signature key: single-use, short-lived."""

    __tablename__ = "enrollment_nonce"

    nonce: str = Field(primary_key=True, max_length=64)  # hex
    actor_id: int = Field(foreign_key="actor.id")
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
