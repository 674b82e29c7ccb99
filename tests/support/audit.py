"""What a database writer who knows the audit hash rule can do to the log."""

from __future__ import annotations

from sqlmodel import Session, col, select

from service.audit.integration import extend
from service.db.audit_log import record_hash, verify
from service.db.audit_models import AuditRecord, AuditTree
from service.db.audit_store import TreeState


def record_at(db: Session, position: int) -> AuditRecord:
    """The record at ``position`` (1-based) of the tree."""
    return db.exec(select(AuditRecord).where(AuditRecord.leaf_index == position - 1)).one()


def restore_tree_head(db: Session) -> None:
    """Recompute the stored tree head and right edge from the leaves as they now are."""
    integrated = select(AuditRecord.hash).where(col(AuditRecord.leaf_index).is_not(None))
    hashes = list(db.exec(integrated.order_by(col(AuditRecord.leaf_index))))
    state = extend(TreeState(0, None, ()), None, hashes)
    tree = db.get(AuditTree, 1)
    assert tree is not None
    tree.size, tree.root, tree.frontier = state.size, state.root, " ".join(state.frontier or ())
    db.add(tree)


def rewrite_log_from(db: Session, position: int) -> None:
    """What a database writer who knows the hash rule can do: edit the record at ``position``, recompute its hash
    and the stored tree head. The records and the tree state alone then verify."""
    record = record_at(db, position)
    record.actor = "mallory"
    record.hash = record_hash(record)
    db.add(record)
    db.flush()
    restore_tree_head(db)
    db.commit()
    assert verify(db).intact
