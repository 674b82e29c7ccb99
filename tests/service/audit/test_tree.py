"""The audit log as a Merkle tree: version-2 checkpoints sign the RFC 9162 tree head of the records they cover,
``koshin audit prove`` gives an inclusion proof an off-host verifier checks with the published key alone, and
``koshin audit verify`` checks every checkpoint's tree head and the consistency proof between consecutive ones."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hsm.signing import default_scheme
from service.audit import merkle
from service.audit.anchor import AuditAnchor, audit_anchor
from service.audit.checkpoint import Checkpoint, record_leaves, signature_valid
from service.audit.note import open_note
from service.audit.proofs import prove
from service.audit.verification import verify_installation
from service.db.audit_log import fields_hash
from service.errors import CheckpointMalformed, NotAnchored
from service.runtime import Runtime
from tests.conftest import SoftHsm
from tests.support.api_world import make_runtime


@pytest.fixture(scope="module")
def rt(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    home = tmp_path_factory.mktemp("tree")
    runtime = make_runtime(softhsm, home, f"sqlite:///{home / 'koshin.db'}", "tree-")
    try:
        yield runtime
    finally:
        runtime.close()


def _grow(rt: Runtime, count: int) -> None:
    for _ in range(count):  # each actor added is one audit record
        rt.repo.add_actor(f"clerk-{rt.repo.audit_position().records}", "auditor", None)


def test_an_inclusion_proof_verifies_off_host_from_the_record_the_path_and_the_signed_line(rt: Runtime) -> None:
    _grow(rt, 5)
    anchor = audit_anchor(rt)
    checkpoint = anchor.checkpoint()
    assert checkpoint.root is not None and checkpoint.seq >= 5
    spki = anchor.public_key_der()
    records = {r.seq: r for r in rt.repo.audit_records(0, 10_000)}
    for number in (1, checkpoint.seq // 2, checkpoint.seq):
        document = json.loads(json.dumps(prove(anchor, number).document()))  # what `koshin audit prove` prints
        # The verifier's side: the record's fields give its hash, the line verifies with the audit key, the path
        # leads from the leaf to the signed head.
        fields = records[number].model_dump()
        fields["details"] = records[number].details
        assert fields_hash(fields) == document["record_hash"]
        line = Checkpoint.from_line(document["checkpoint"])
        assert signature_valid(spki, line) and line.root == document["root"]
        leaf = merkle.leaf_hash(bytes.fromhex(document["record_hash"]))
        path = [bytes.fromhex(p) for p in document["path"]]
        assert merkle.verify_inclusion(document["leaf_index"], document["tree_size"], leaf, path,
                                       bytes.fromhex(document["root"]))  # fmt: skip
        other = merkle.leaf_hash(bytes.fromhex(records[number % checkpoint.seq + 1].hash))
        assert not merkle.verify_inclusion(document["leaf_index"], document["tree_size"], other, path,
                                           bytes.fromhex(document["root"]))  # fmt: skip


def test_records_no_checkpoint_covers_have_no_proof(rt: Runtime) -> None:
    anchor = audit_anchor(rt)
    anchor.checkpoint()
    _grow(rt, 1)
    newest = max(r.seq or 0 for r in rt.repo.audit_records(0, 1_000_000))  # appended, not yet in the tree
    for number in (0, newest, newest + 1):
        with pytest.raises(NotAnchored):
            prove(anchor, number)


def test_consecutive_checkpoints_are_consistent_and_verify(rt: Runtime) -> None:
    anchor = audit_anchor(rt)
    first = anchor.checkpoint()
    _grow(rt, 7)
    second = anchor.checkpoint()
    assert first.root is not None and second.root is not None and second.seq == first.seq + 7
    leaves = record_leaves(rt.repo.record_hashes(second.seq))
    proof = merkle.consistency_proof(first.seq, leaves)
    assert merkle.verify_consistency(first.seq, second.seq, bytes.fromhex(first.root), bytes.fromhex(second.root),
                                     proof)  # fmt: skip
    report = verify_installation(rt)
    assert report.intact, report.problem
    assert report.anchored == second.seq


def _sign(anchor: AuditAnchor, unsigned: Checkpoint) -> Checkpoint:
    scheme = default_scheme(anchor.session.algorithm_of(anchor.label))
    return replace(unsigned, signature=anchor.session.sign(anchor.label, unsigned.statement(), scheme))


def test_a_signed_checkpoint_with_another_tree_head_is_caught(rt: Runtime, tmp_path: Path) -> None:
    """The head hash matches, the signature is the audit key's, only the tree head is not the records' tree: what
    a signer that skipped records would produce. The file copy carries it off-host."""
    anchor = audit_anchor(rt)
    honest = anchor.checkpoint()
    wrong_root = merkle.root(record_leaves(rt.repo.record_hashes(honest.seq - 1))).hex()
    forged = _sign(anchor, replace(honest, number=honest.number + 1, prev=honest.digest(), root=wrong_root))
    copy = tmp_path / "forged.jsonl"
    copy.write_text(honest.line() + "\n" + forged.line() + "\n", encoding="utf-8")
    report = verify_installation(rt, copy)
    assert not report.intact
    assert report.problem is not None and "Merkle tree" in report.problem, report.problem


def test_each_checkpoint_is_also_a_c2sp_signed_note(rt: Runtime) -> None:
    anchor = audit_anchor(rt)
    made = anchor.checkpoint()
    spki = anchor.public_key_der()
    note = anchor.note_file.read_text(encoding="utf-8")
    text, _, signature_line = note.partition("\n\n")
    assert text.split("\n") == [anchor.origin, str(made.seq), base64.b64encode(bytes.fromhex(made.root or "")).decode()]
    assert signature_line.startswith(f"\u2014 {anchor.origin} ")
    raw = base64.b64decode(signature_line.split(" ")[2])
    assert raw[:4] == hashlib.sha256(spki).digest()[:4]  # signature type 0x02 (ECDSA): the SPKI's SHA-256
    head = open_note(note, anchor.origin, spki)
    assert (head.size, head.root.hex()) == (made.seq, made.root)
    with pytest.raises(CheckpointMalformed, match="does not verify"):
        open_note(note.replace(f"\n{made.seq}\n", f"\n{made.seq + 1}\n", 1), anchor.origin, spki)
    with pytest.raises(CheckpointMalformed, match="no signature"):
        open_note(note, "someone.else/log", spki)
