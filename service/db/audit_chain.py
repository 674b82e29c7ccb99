"""Append to and verify the audit chain. Each record's hash covers its fields and its predecessor's hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from service.db.audit_models import AuditHead, AuditRecord

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What happened, by whom, under which policy rule."""

    actor: str
    role: str
    action: str
    object: str
    rule_id: str | None = None
    decision: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


SYSTEM = ("system", "system")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def record_hash(record: AuditRecord) -> str:
    return fields_hash(record.model_dump())


def fields_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON: every field but its own hash, ``at`` as aware UTC ISO 8601."""
    canonical = json.dumps(
        {
            "seq": fields["seq"],
            "at": _utc(fields["at"]).isoformat(),
            "actor": fields["actor"],
            "role": fields["role"],
            "action": fields["action"],
            "object": fields["object"],
            "rule_id": fields["rule_id"],
            "decision": fields["decision"],
            "details": fields["details"],
            "prev_hash": fields["prev_hash"],
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_RECORDS = AuditRecord.__table__  # type: ignore[attr-defined]
_LOCKED_HEAD = core_select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_RECORDS = insert(_RECORDS)
_MOVE_HEAD = update(_HEAD).where(_HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))


def append_all(session: Session, entries: Sequence[AuditEntry], at: datetime | None = None) -> int:
    """Add the next records in the caller's transaction, in order; returns the new head's sequence number. The
    head row is read with a row lock (PostgreSQL) once for all of them and stays locked until the transaction
    ends, so call this last, just before the commit (service.db.unit does). Core statements: no ORM objects on
    the path every write takes."""
    if not entries:
        return 0
    connection = session.connection()
    head = connection.execute(_LOCKED_HEAD).first()
    seq, previous = (int(head[0]), str(head[1])) if head is not None else (0, GENESIS)
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    rows = []
    for entry in entries:
        seq += 1
        values: dict[str, Any] = {
            "seq": seq,
            "at": moment,
            "actor": entry.actor,
            "role": entry.role,
            "action": entry.action,
            "object": entry.object,
            "rule_id": entry.rule_id,
            "decision": entry.decision,
            "details": json.dumps(entry.details, sort_keys=True, ensure_ascii=False, default=str),
            "prev_hash": previous,
        }
        values["hash"] = previous = fields_hash(values)
        rows.append(values)
    connection.execute(_INSERT_RECORDS, rows)
    if head is None:
        connection.execute(insert(_HEAD).values(id=1, seq=seq, hash=previous))
    else:
        connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": previous})
    return seq


def append(session: Session, entry: AuditEntry, at: datetime | None = None) -> int:
    """Add one record in the caller's transaction (see ``append_all``)."""
    return append_all(session, [entry], at)


@dataclass(frozen=True)
class ChainReport:
    """The verdict on the chain. ``problem`` names the first thing that does not hold; ``first_broken`` is the
    record it concerns (None when the problem is a checkpoint's own). ``checkpoints`` were verified with the
    audit key and cover the chain up to record ``anchored``."""

    records: int
    first_broken: int | None
    problem: str | None
    checkpoints: int = 0
    anchored: int = 0

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(
    session: Session, wanted: Collection[int] = (), found: dict[int, str] | None = None,
    every: list[str] | None = None,
) -> ChainReport:  # fmt: skip
    """Recompute every hash in order; report the first record whose link or content does not hold. The hashes
    of the records numbered in ``wanted`` are put in ``found`` on the way (for the checkpoints), and every
    verified record's hash, in order, in ``every`` (the leaves of the Merkle tree)."""
    previous, expected_seq, count = GENESIS, 1, 0
    want = set(wanted)
    for record in session.exec(select(AuditRecord).order_by(AuditRecord.seq)):  # type: ignore[arg-type]
        count += 1
        seq = record.seq or 0
        if seq != expected_seq:
            return ChainReport(count, expected_seq, f"record {expected_seq} is missing (found {seq})")
        if record.prev_hash != previous:
            return ChainReport(count, seq, f"record {seq} does not link to record {seq - 1}")
        if record_hash(record) != record.hash:
            return ChainReport(count, seq, f"record {seq} was altered (its hash does not match its content)")
        if found is not None and seq in want:
            found[seq] = record.hash
        if every is not None:
            every.append(record.hash)
        previous, expected_seq = record.hash, expected_seq + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != previous):
        return ChainReport(count, count + 1, f"the chain head says {head.seq} records; {count} remain")
    return ChainReport(count, None, None)
