"""Integrating audit records into the Merkle tree: the tree's right edge carried from one batch to the next
(service.audit.merkle.Frontier), so a batch costs its own leaves, never the whole log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from service.audit.merkle import Frontier, leaf_hash
from service.db.audit_store import AuditStore, Integrated, TreeState
from service.observability.metrics import AUDIT_INTEGRATION_SECONDS

BATCH = 1000  # records per integration transaction (Trillian's sequencer batch)


def frontier_of(size: int, hashes: Sequence[str]) -> Frontier:
    """The right edge stored with the tree: one subtree per set bit of ``size``, largest first."""
    levels = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
    if len(levels) != len(hashes):
        raise ValueError(f"a tree of {size} leaves has {len(levels)} subtrees on its edge, not {len(hashes)}")
    return Frontier(size, [bytes.fromhex(h) for h in hashes], levels)


def extend(state: TreeState, existing: Sequence[str] | None, new: Sequence[str]) -> TreeState:
    """The tree after appending the records hashed ``new`` (``existing``: every leaf so far, when the stored
    state has no right edge yet, as after the migration from the hash chain)."""
    if existing is not None:
        frontier = Frontier.of([leaf_hash(bytes.fromhex(h)) for h in existing])
    else:
        frontier = frontier_of(state.size, state.frontier or ())
    frontier.extend([leaf_hash(bytes.fromhex(h)) for h in new])
    return TreeState(frontier.size, frontier.root().hex(), tuple(h.hex() for h in frontier.hashes),
                     new[-1] if new else state.last_hash)  # fmt: skip


def integrate_batch(store: AuditStore, batch: int = BATCH) -> Integrated | None:
    """Place one batch of pending records (None when none were pending); their delays go to the histogram."""
    done = store.integrate(batch, extend)
    if done is not None:
        now = datetime.now(UTC)
        for at in done.appended_at:
            moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            AUDIT_INTEGRATION_SECONDS.observe(max(0.0, (now - moment).total_seconds()))
    return done


def integrate_pending(store: AuditStore, batch: int = BATCH) -> int:
    """Place every record pending now, batch by batch; returns how many."""
    placed = 0
    while (done := integrate_batch(store, batch)) is not None:
        placed += len(done.appended_at)
        if len(done.appended_at) < batch:
            break
    return placed
