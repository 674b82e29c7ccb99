"""The audit chain: every state change appends a record holding the SHA-256 of its predecessor; checkpoints
signed on the token anchor it."""

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


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement that the chain held ``records`` records ending in ``head_hash`` at ``at``: signed on
    the token with the audit key, so a database writer can neither forge one nor rewind the chain past one."""

    __tablename__ = "audit_checkpoint"

    number: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int
    head_hash: str = Field(max_length=64)
    records: int
    at: datetime
    prev: str = Field(max_length=64)  # SHA-256 of the previous checkpoint's signed statement
    key_sha256: str = Field(max_length=64)  # SHA-256 of the audit key's SubjectPublicKeyInfo
    signature: bytes
    tree_root: str | None = Field(default=None, max_length=64)  # RFC 9162 head over records 1..seq (version 2)
