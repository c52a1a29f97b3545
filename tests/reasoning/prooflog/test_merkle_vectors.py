"""RFC 6962 Merkle tree hashes and proofs against the certificate-transparency reference vectors.

Vectors from transparency-dev/merkle `proof/verify_test.go` (the Go reference implementation that grew out of
google/certificate-transparency): the 8 leaves, the roots of the trees of 1..8 leaves, and the inclusion and
consistency proofs listed there. Their leaf indexes are 1-based (`{leaf, size}`), ours 0-based.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from reasoning.prooflog.frontier import Frontier
from reasoning.prooflog.merkle import EMPTY_TREE_ROOT, NodeKey, leaf_hash
from reasoning.prooflog.proofs import (
    build_consistency_proof,
    build_inclusion_proof,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (1-based leaf, tree size, audit path)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
CONSISTENCY = [  # (old size, new size, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


class MemoryTree:
    """Every complete subtree of a list of leaf hashes, built with the production frontier."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        frontier = Frontier()
        self.nodes: dict[NodeKey, bytes] = {}
        for index, leaf in enumerate(leaf_hashes):
            self.nodes[NodeKey(0, index)] = leaf
            self.nodes.update(frontier.append(leaf))
        self.root = frontier.root()

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        return [self.nodes[key] for key in keys]


def vector_tree(size: int) -> MemoryTree:
    return MemoryTree([leaf_hash(leaf) for leaf in LEAVES[:size]])


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert EMPTY_TREE_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Frontier().root() == EMPTY_TREE_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_tree_head_of_the_first_n_vector_leaves_matches_the_reference_root(size: int) -> None:
    tree = vector_tree(size)

    assert tree.root.hex() == ROOTS[size - 1]
    assert tree_root(tree, size).hex() == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_proof_matches_and_verifies_against_the_reference(leaf: int, size: int, path: list[str]) -> None:
    tree = vector_tree(size)

    proof = build_inclusion_proof(tree, leaf - 1, size)

    assert [node.hex() for node in proof.audit_path] == path
    assert verify_inclusion(leaf - 1, size, proof.leaf_hash, proof.audit_path, bytes.fromhex(ROOTS[size - 1]))


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proof_matches_and_verifies_against_the_reference(old: int, new: int, path: list[str]) -> None:
    tree = vector_tree(new)

    proof = build_consistency_proof(tree, old, new)

    assert [node.hex() for node in proof.path] == path
    assert verify_consistency(old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]), proof.path)


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_proof_fails_for_a_wrong_index_size_leaf_or_extra_node(leaf: int, size: int, path: list[str]) -> None:
    root = bytes.fromhex(ROOTS[size - 1])
    good_leaf = leaf_hash(LEAVES[leaf - 1])
    nodes = [bytes.fromhex(node) for node in path]

    assert not verify_inclusion(leaf, size, good_leaf, nodes, root)  # next index
    assert not verify_inclusion(leaf - 1, size * 2, good_leaf, nodes, root)
    assert not verify_inclusion(leaf - 1, size, leaf_hash(b"forged"), nodes, root)
    assert not verify_inclusion(leaf - 1, size, good_leaf, [*nodes, root], root)
    assert not verify_inclusion(leaf - 1, size, good_leaf, nodes[:-1], root)


def test_consistency_trivial_cases_follow_rfc9162() -> None:
    root = bytes.fromhex(ROOTS[0])
    other = bytes.fromhex(ROOTS[1])

    assert verify_consistency(0, 5, root, other, [])
    assert verify_consistency(3, 3, root, root, [])
    assert not verify_consistency(3, 3, root, other, [])
    assert not verify_consistency(2, 1, root, other, [])
    assert not verify_consistency(1, 2, root, other, [])
