"""The audit chain: every state change appends a record holding the SHA-256 of its predecessor."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"

    seq: int | None = Field(default=None, primary_key=True)
    at: datetime
    actor: str
    role: str
    action: str = Field(index=True)
    object: str
    rule_id: str | None = None
    decision: str | None = None
    details: str  # canonical JSON
    prev_hash: str = Field(max_length=64)
    hash: str = Field(unique=True, max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the hash and sequence of the newest record, locked while appending so the chain never forks."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)
