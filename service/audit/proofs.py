"""``koshin audit prove SEQ``: an RFC 9162 inclusion proof of one audit record (by its number) against the newest
signed checkpoint that covers its leaf, self-contained for an off-host verifier: the record's hash (which its canonical
fields recompute, service/db/audit_log.fields_hash), the audit path, and the checkpoint line with its
signature (checked with the published audit key)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.audit import merkle
from service.audit.anchor import AuditAnchor
from service.audit.checkpoint import Checkpoint, record_leaves
from service.errors import NotAnchored


@dataclass(frozen=True)
class InclusionProof:
    record: int  # the record's number (``seq``, as the API and ``koshin audit`` list it)
    leaf_index: int  # its place in the tree
    record_hash: str
    checkpoint: Checkpoint
    path: list[bytes]

    def verifies(self) -> bool:
        assert self.checkpoint.root is not None  # noqa: S101 - prove() only picks version-2 checkpoints
        leaf = merkle.leaf_hash(bytes.fromhex(self.record_hash))
        return merkle.verify_inclusion(self.leaf_index, self.checkpoint.seq, leaf, self.path,
                                       bytes.fromhex(self.checkpoint.root))  # fmt: skip

    def document(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "leaf_index": self.leaf_index,
            "tree_size": self.checkpoint.seq,
            "record_hash": self.record_hash,
            "leaf_hash": merkle.leaf_hash(bytes.fromhex(self.record_hash)).hex(),
            "root": self.checkpoint.root,
            "path": [p.hex() for p in self.path],
            "checkpoint": self.checkpoint.line(),
        }


def prove(anchor: AuditAnchor, record: int) -> InclusionProof:
    place = anchor.store.record_place(record) if record >= 1 else None
    if place is None:
        raise NotAnchored(f"there is no audit record {record}")
    index, _ = place
    if index is None:
        raise NotAnchored(f"record {record} is not in the tree yet: the sequencer places it within a second of a "
                          "running service (or run `koshin audit checkpoint`)")  # fmt: skip
    covering = [c for c in anchor.stored() if c.root is not None and c.seq > index]
    if not covering:
        raise NotAnchored(f"no signed checkpoint with a tree head covers record {record} yet: run `koshin audit "
                          "checkpoint` (or wait for the scheduled one)")  # fmt: skip
    newest = covering[-1]
    hashes = anchor.store.record_hashes(newest.seq)
    leaves = record_leaves(hashes)
    if len(leaves) != newest.seq or merkle.root(leaves).hex() != newest.root:
        raise NotAnchored(f"the stored records do not make checkpoint {newest.number}'s tree: run `koshin audit "
                          "verify`")  # fmt: skip
    proof = InclusionProof(record, index, hashes[index], newest, merkle.inclusion_proof(index, leaves))
    if not proof.verifies():
        raise NotAnchored(f"the inclusion proof of record {record} does not verify")
    return proof
