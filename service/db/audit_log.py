"""Append to and verify the audit log's records.

A request transaction appends its records with one INSERT: the database numbers them (``seq``), nothing is
locked and nothing is read first, so writers on every worker and node proceed side by side. Each record carries
the SHA-256 of its canonical fields (``fields_hash``). The sequencer (service/audit/sequencer.py) later gives
each record its place in the Merkle tree (``leaf_index``) and checkpoints signed on the token anchor the tree.

``verify`` checks what the records alone can show: every integrated record present at its place, every hash
recomputed from its content, the tree state's size against the records. The tree head and the checkpoints are
checked by service/audit/verification.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from service.db.audit_models import AuditRecord, AuditTree

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
    """SHA-256 of a record's canonical JSON (sorted keys, no spaces, UTF-8): ``at`` (aware UTC ISO 8601),
    ``actor``, ``role``, ``action``, ``object``, ``rule_id``, ``decision`` and ``details`` (itself canonical
    JSON text). Records written under the hash chain (before the tree, ``prev_hash`` set) also cover ``seq``
    and ``prev_hash``, as they were hashed then."""
    canonical: dict[str, Any] = {
        "at": _utc(fields["at"]).isoformat(),
        "actor": fields["actor"],
        "role": fields["role"],
        "action": fields["action"],
        "object": fields["object"],
        "rule_id": fields["rule_id"],
        "decision": fields["decision"],
        "details": fields["details"],
    }
    if fields.get("prev_hash") is not None:
        canonical |= {"seq": fields["seq"], "prev_hash": fields["prev_hash"]}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_INSERT_RECORDS = insert(AuditRecord.__table__)  # type: ignore[attr-defined]


def append_all(session: Session, entries: Sequence[AuditEntry], at: datetime | None = None) -> int:
    """Add the records in the caller's transaction: one INSERT, no lock, no read. Returns how many."""
    if not entries:
        return 0
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    rows = []
    for entry in entries:
        values: dict[str, Any] = {
            "at": moment,
            "actor": entry.actor,
            "role": entry.role,
            "action": entry.action,
            "object": entry.object,
            "rule_id": entry.rule_id,
            "decision": entry.decision,
            "details": json.dumps(entry.details, sort_keys=True, ensure_ascii=False, default=str),
        }
        values["hash"] = fields_hash(values)
        rows.append(values)
    session.connection().execute(_INSERT_RECORDS, rows)
    return len(rows)


def append(session: Session, entry: AuditEntry, at: datetime | None = None) -> int:
    """Add one record in the caller's transaction (see ``append_all``)."""
    return append_all(session, [entry], at)


@dataclass(frozen=True)
class LogReport:
    """The verdict on the log. ``records`` were integrated into the tree (its size, as verified); ``pending``
    await the sequencer. ``problem`` names the first thing that does not hold; ``first_broken`` is the position
    in the log (1-based leaf) it concerns, or a pending record's ``seq``, or None when the problem is a
    checkpoint's or the tree head's own. ``checkpoints`` were verified with the audit key and cover the log up
    to position ``anchored``. ``tree_root`` is the head the sequencer stored (checked by the caller)."""

    records: int
    first_broken: int | None
    problem: str | None
    checkpoints: int = 0
    anchored: int = 0
    pending: int = 0
    tree_root: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(
    session: Session, wanted: Collection[int] = (), found: dict[int, str] | None = None,
    every: list[str] | None = None,
) -> LogReport:  # fmt: skip
    """Read the integrated records in tree order and the pending ones in ``seq`` order; report the first that is
    missing from its place or whose hash does not match its content. The hashes at the positions in ``wanted``
    go to ``found`` (for the checkpoints), every integrated record's hash, in order, to ``every`` (the leaves)."""
    want, count = set(wanted), 0
    integrated = select(AuditRecord).where(col(AuditRecord.leaf_index).is_not(None))
    for record in session.exec(integrated.order_by(col(AuditRecord.leaf_index))):
        position = count + 1
        if record.leaf_index != count:
            found_at = (record.leaf_index or 0) + 1
            return LogReport(count, position, f"record {position} is missing (the next in the tree is {found_at})")
        if record_hash(record) != record.hash:
            return LogReport(count, position, f"record {position} was altered (its hash does not match its content)")
        if found is not None and position in want:
            found[position] = record.hash
        if every is not None:
            every.append(record.hash)
        count = position
    tree = session.get(AuditTree, 1)
    if tree is not None and tree.size != count:
        return LogReport(count, count + 1, f"the tree says {tree.size} records; {count} remain")
    pending = 0
    for record in session.exec(select(AuditRecord).where(col(AuditRecord.leaf_index).is_(None))
                               .order_by(col(AuditRecord.seq))):  # fmt: skip
        pending += 1
        if record_hash(record) != record.hash:
            seq = record.seq
            return LogReport(count, seq, f"record {seq} (not yet in the tree) was altered (its hash does not match "
                                         "its content)", pending=pending)  # fmt: skip
    return LogReport(count, None, None, pending=pending, tree_root=tree.root if tree is not None else None)
