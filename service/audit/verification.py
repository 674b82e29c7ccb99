"""Verify the audit log against its tree and its signed checkpoints: those stored in the database and a copy kept
in a file (by default ``KOSHIN_HOME/audit/checkpoints.jsonl``; an auditor passes an off-host copy).

The records are checked first (service.db.audit_log.verify: each in its place, each hash its content's). Then
the tree head the sequencer stored must be the head of those leaves. Then every stored checkpoint must be
numbered without gaps, link to its predecessor, name and verify with the audit key, and still match the log:
the record at its size with the signed hash, the tree of that size with the signed head, consistent (RFC 9162
2.1.4) with the previous checkpoint's. A rewound tail (records deleted, tree state rewound) leaves the log
shorter than a checkpoint; a log rewritten with recomputed hashes no longer has a checkpoint's head. Every line
of the file copy must verify the same way and be present, unchanged, in the database, so deleted checkpoint rows
show. Records integrated after the newest checkpoint are protected by the stored tree head only, which a
database writer can recompute; pending records by their own hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from service.audit import merkle
from service.audit.anchor import audit_anchor
from service.audit.checkpoint import Checkpoint, first_prev, key_sha256, record_leaves, signature_valid
from service.db import audit_log as audit
from service.db.audit_store import AuditStore
from service.errors import CheckpointMalformed

if TYPE_CHECKING:
    from service.runtime import Runtime


@dataclass(frozen=True)
class CopiedCheckpoint:
    """A checkpoint read from a file copy, with where it was read."""

    where: str  # "<file> line <n>"
    checkpoint: Checkpoint


def read_copy(path: Path) -> list[CopiedCheckpoint]:
    """Every checkpoint line of ``path``; a line that is not one raises CheckpointMalformed naming it."""
    copies = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            copies.append(CopiedCheckpoint(f"{path} line {number}", Checkpoint.from_line(line)))
        except CheckpointMalformed as exc:
            raise CheckpointMalformed(f"{path} line {number}: {exc}") from exc
    return copies


@dataclass(frozen=True)
class _Problem:
    message: str
    record: int | None = None


@dataclass(frozen=True)
class _Chain:
    """What the verified chain offers the checkpoints: its length, the hashes of the records they name, and the
    Merkle tree over every record."""

    records: int
    hashes: dict[int, str]
    leaves: list[bytes]
    roots: dict[int, str]  # tree size -> head, for every size a checkpoint names (one pass over the leaves)

    @classmethod
    def of(cls, records: int, hashes: dict[int, str], leaves: list[bytes]) -> _Chain:
        sizes, roots, frontier = set(hashes), {}, merkle.Frontier()
        for leaf in leaves:
            frontier.append(leaf)
            if frontier.size in sizes:
                roots[frontier.size] = frontier.root().hex()
        return cls(records, hashes, leaves, roots)

    def root(self, size: int) -> str | None:
        return self.roots.get(size)


def _against_tree(c: Checkpoint, chain: _Chain, name: str, previous: Checkpoint | None) -> _Problem | None:
    """A version-2 checkpoint's tree head is the tree's at its size, and consistent with the previous one's."""
    if c.root is None:
        return None
    if chain.root(c.seq) != c.root:
        return _Problem(f"the Merkle tree of records 1-{c.seq} is not the one {name} signed", c.seq)
    if previous is not None and previous.root is not None:
        proof = merkle.consistency_proof(previous.seq, chain.leaves[: c.seq])
        if not merkle.verify_consistency(previous.seq, c.seq, bytes.fromhex(previous.root), bytes.fromhex(c.root),
                                         proof):  # fmt: skip
            return _Problem(f"{name} is not consistent with checkpoint {previous.number}: the log forked", c.seq)
    return None


def _against_chain(c: Checkpoint, records: int, hashes: dict[int, str], name: str) -> _Problem | None:
    at = c.at.isoformat()
    if c.records != c.seq:
        return _Problem(f"{name} says {c.records} records end at record {c.seq}")
    if c.seq > records:
        return _Problem(
            f"the log ends at record {records} but {name} ({at}) signed {c.seq} records: "
            f"records {records + 1}-{c.seq} were deleted and the tree rewound",
            records + 1,
        )
    if hashes.get(c.seq) != c.head_hash:
        return _Problem(
            f"record {c.seq} is not the one {name} ({at}) signed: the log was rewritten at or before record {c.seq}",
            c.seq,
        )
    return None


def _signed(c: Checkpoint, spki_der: bytes, name: str) -> _Problem | None:
    if c.key_sha256 != key_sha256(spki_der):
        return _Problem(f"{name} names another signing key (SHA-256 {c.key_sha256[:16]}...), not the audit key")
    if not signature_valid(spki_der, c):
        return _Problem(f"{name}: the signature does not verify with the audit key (forged or altered)")
    return None


def _stored(series: Sequence[Checkpoint], spki_der: bytes, chain: _Chain) -> _Problem | None:
    previous: Checkpoint | None = None
    for expected, c in enumerate(series, 1):
        name = f"checkpoint {c.number}"
        if c.number != expected:
            return _Problem(f"checkpoint {expected} is missing from the database (the next is {c.number})")
        found = _signed(c, spki_der, name)
        if found:
            return found
        if c.prev != (previous.digest() if previous else first_prev()):
            return _Problem(f"{name} does not link to checkpoint {expected - 1}")
        if previous is not None and c.seq < previous.seq:
            return _Problem(f"{name} signed fewer records than checkpoint {previous.number}")
        found = _against_chain(c, chain.records, chain.hashes, name) or _against_tree(c, chain, name, previous)
        if found:
            return found
        previous = c
    return None


def _copied(
    copies: Iterable[CopiedCheckpoint], stored: dict[int, Checkpoint], spki_der: bytes, chain: _Chain
) -> _Problem | None:
    for copy in copies:
        c, name = copy.checkpoint, f"checkpoint {copy.checkpoint.number} ({copy.where})"
        found = (_signed(c, spki_der, name) or _against_chain(c, chain.records, chain.hashes, name)
                 or _against_tree(c, chain, name, None))  # fmt: skip
        if found:
            return found
        if c.number not in stored:
            return _Problem(f"{name} is missing from the database: checkpoint rows were deleted")
        if stored[c.number] != c:
            return _Problem(f"{name} differs from the database's checkpoint {c.number}: it was replaced")
    return None


def verify_anchored(
    store: AuditStore, series: Sequence[Checkpoint], copies: Sequence[CopiedCheckpoint], spki_der: bytes | None
) -> audit.LogReport:
    """The chain, the stored ``series`` and the file ``copies`` checked together; ``spki_der`` is the pinned
    audit public key (None: there is none, which is only fine while there are no checkpoints)."""
    wanted = {c.seq for c in series} | {c.checkpoint.seq for c in copies}
    hashes: dict[int, str] = {}
    every: list[str] = []
    chain = store.verify_log(wanted, hashes, every)
    if not chain.intact:
        return chain
    leaves = record_leaves(every)
    if chain.tree_root is not None and merkle.root(leaves).hex() != chain.tree_root:
        return replace(chain, problem=f"the stored tree head is not the head of records 1-{chain.records}: the log "
                                      "was rewritten with recomputed hashes")  # fmt: skip
    if not (series or copies):
        return chain
    if spki_der is None:
        count = len(series) or len(copies)
        return replace(chain, problem=f"the audit key is missing: {count} checkpoints cannot be verified")
    tree = _Chain.of(chain.records, hashes, leaves)
    found = _stored(series, spki_der, tree) or _copied(copies, {c.number: c for c in series}, spki_der, tree)
    if found:
        return replace(chain, first_broken=found.record, problem=found.message)
    return replace(chain, checkpoints=len(series), anchored=max((c.seq for c in series), default=0))


def verify_installation(rt: Runtime, copy: Path | None = None, pinned_der: bytes | None = None) -> audit.LogReport:
    """What ``koshin audit verify`` and GET /v1/audit/verify report: the chain, the stored checkpoints and a file
    copy (``copy``, else the installation's own file when it exists), with the pinned key (``pinned_der``, else
    the token's audit public key)."""
    anchor = audit_anchor(rt)
    path = copy or anchor.file
    spki_der = pinned_der or (anchor.public_key_der() if rt.session.has_key(anchor.label) else None)
    try:
        copies = read_copy(path) if copy is not None or path.exists() else []
    except CheckpointMalformed as exc:  # a damaged copy is a finding, not a crash
        report = verify_anchored(anchor.store, anchor.stored(), [], spki_der)
        return replace(report, problem=str(exc), checkpoints=0, anchored=0) if report.intact else report
    return verify_anchored(anchor.store, anchor.stored(), copies, spki_der)
