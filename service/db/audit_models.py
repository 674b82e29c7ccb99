"""The audit log: request transactions append records (the database numbers them, ``seq``); the sequencer
integrates them, in ``seq`` order, into a Merkle tree (``leaf_index``, the tree's state in ``audit_tree``);
checkpoints signed on the token anchor the tree."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

PENDING = text("leaf_index IS NULL")


class AuditRecord(SQLModel, table=True):
    __tablename__ = "audit_record"
    __table_args__ = (
        Index("ix_audit_record_pending", "seq", sqlite_where=PENDING, postgresql_where=PENDING),
        {"sqlite_autoincrement": True},  # a deleted record's number is never handed out again
    )

    seq: int | None = Field(default=None, primary_key=True)  # assigned by the database at insert
    at: datetime
    actor: str
    role: str
    action: str = Field(index=True)
    object: str
    rule_id: str | None = None
    decision: str | None = None
    details: str  # canonical JSON
    hash: str = Field(max_length=64)  # SHA-256 of the canonical fields (service.db.audit_log.fields_hash)
    prev_hash: str | None = Field(default=None, max_length=64)  # records of the hash chain before the tree only
    leaf_index: int | None = Field(default=None, unique=True)  # the record's place in the tree, once integrated
    integrated_at: datetime | None = None


class AuditTree(SQLModel, table=True):
    """One row: the tree the sequencer has built so far, its right edge (to append without reading the leaves)
    and which process built it last. Locked by the sequencer's integration only, never by a request."""

    __tablename__ = "audit_tree"

    id: int = Field(default=1, primary_key=True)
    size: int = 0
    root: str | None = Field(default=None, max_length=64)  # hex RFC 9162 head (None: not computed yet)
    frontier: str | None = None  # hex subtree hashes along the right edge, largest first, space separated
    sequencer: str | None = None  # host:pid of the process that integrated last
    updated_at: datetime | None = None


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement that the tree held ``records`` records, the last with hash ``head_hash``, at ``at``:
    signed on the token with the audit key, so a database writer can neither forge one nor rewind the log
    past one."""

    __tablename__ = "audit_checkpoint"

    number: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int
    head_hash: str = Field(max_length=64)
    records: int
    at: datetime
    prev: str = Field(max_length=64)  # SHA-256 of the previous checkpoint's signed statement
    key_sha256: str = Field(max_length=64)  # SHA-256 of the audit key's SubjectPublicKeyInfo
    signature: bytes
    tree_root: str | None = Field(default=None, max_length=64)  # RFC 9162 head over leaves 1..seq (version 2)
