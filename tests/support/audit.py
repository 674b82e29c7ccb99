"""What a database writer who knows the audit hash rule can do to the chain."""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.db.audit_chain import record_hash, verify
from service.db.audit_models import AuditHead, AuditRecord


def rewrite_chain_from(db: Session, seq: int) -> None:
    """What a database writer who knows the hash rule can do: edit record ``seq`` and recompute every hash
    from there, head included. The hash chain alone then verifies."""
    previous = db.get(AuditRecord, seq - 1)
    assert previous is not None
    prev = previous.hash
    for record in db.exec(select(AuditRecord).where(col(AuditRecord.seq) >= seq).order_by(col(AuditRecord.seq))):
        if record.seq == seq:
            record.actor = "mallory"
        record.prev_hash = prev
        record.hash = prev = record_hash(record)
        db.add(record)
        db.flush()
    head = db.get(AuditHead, 1)
    assert head is not None
    head.hash = prev
    db.add(head)
    db.commit()
    assert verify(db).intact
