"""service/audit/merkle.py against the RFC 6962 reference vectors (the Certificate Transparency test data), every
proof of every small tree, and random larger ones (hypothesis): a proof verifies, and a changed leaf, head,
size or proof node does not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The leaves and tree heads of the CT reference tests (certificate-transparency-go, merkletree tests).
DATA = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
HEADS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {  # (leaf index, tree size) -> audit path
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
LEAVES = [leaf_hash(bytes.fromhex(d)) for d in DATA]


def _flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def test_heads_match_the_reference_vectors() -> None:
    assert root([]) == EMPTY_ROOT
    for size in range(len(LEAVES) + 1):
        assert root(LEAVES[:size]).hex() == HEADS[size]
        assert Frontier.of(LEAVES[:size]).root().hex() == HEADS[size]


def test_inclusion_paths_match_the_reference_vectors() -> None:
    for (index, size), path in INCLUSION.items():
        assert [p.hex() for p in inclusion_proof(index, LEAVES[:size])] == path
        assert verify_inclusion(index, size, LEAVES[index], [bytes.fromhex(p) for p in path], bytes.fromhex(HEADS[8]))


def _check_tree(leaves: list[bytes]) -> None:
    n, head = len(leaves), root(leaves)
    for index in range(n):
        proof = inclusion_proof(index, leaves)
        assert verify_inclusion(index, n, leaves[index], proof, head)
        assert not verify_inclusion(index, n, _flip(leaves[index]), proof, head)
        assert not verify_inclusion(index, n, leaves[index], proof, _flip(head))
        if proof:
            assert not verify_inclusion(index, n, leaves[index], [_flip(proof[0]), *proof[1:]], head)
    for old in range(n + 1):
        old_head = root(leaves[:old])
        proof = consistency_proof(old, leaves)
        assert verify_consistency(old, n, old_head, head, proof), (old, n)
        if 0 < old < n:
            assert not verify_consistency(old, n, _flip(old_head), head, proof)
            assert not verify_consistency(old, n, old_head, _flip(head), proof)
            assert not verify_consistency(old, n, old_head, head, [*proof[:-1], _flip(proof[-1])])


def test_every_proof_of_every_tree_up_to_40_leaves() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
    for size in range(1, 41):
        _check_tree(leaves[:size])


def test_a_rewritten_history_is_inconsistent() -> None:
    """A log that changed an old record cannot prove its new head consistent with a checkpoint of the old."""
    leaves = [leaf_hash(bytes([i])) for i in range(13)]
    old_head = root(leaves[:7])
    forged = [*leaves[:3], leaf_hash(b"edited"), *leaves[4:]]
    assert not verify_consistency(7, 13, old_head, root(forged), consistency_proof(7, forged))
    truncated = leaves[:5]
    assert not verify_consistency(7, 5, old_head, root(truncated), [])


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=1, max_value=300), data=st.data())
def test_random_trees(size: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big") + b"r") for i in range(size)]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    head = root(leaves)
    assert verify_inclusion(index, size, leaves[index], inclusion_proof(index, leaves), head)
    old = data.draw(st.integers(min_value=0, max_value=size))
    assert verify_consistency(old, size, root(leaves[:old]), head, consistency_proof(old, leaves))
    frontier = Frontier.of(leaves[:old])
    frontier.extend(leaves[old:])
    assert frontier.root() == head and frontier.size == size
