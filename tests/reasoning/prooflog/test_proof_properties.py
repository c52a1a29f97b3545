"""Invariants of proofs over random trees, checked against a literal transcription of RFC 6962 §2.1."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reasoning.prooflog.merkle import leaf_hash, node_hash, split_point
from reasoning.prooflog.proofs import (
    build_consistency_proof,
    build_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from tests.reasoning.prooflog.test_merkle_vectors import MemoryTree


def rfc_mth(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(rfc_mth(leaves[:k]), rfc_mth(leaves[k:]))


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = split_point(len(leaves))
    if m < k:
        return [*rfc_path(m, leaves[:k]), rfc_mth(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), rfc_mth(leaves[:k])]


def rfc_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [rfc_mth(leaves)]
    k = split_point(n)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], complete), rfc_mth(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), rfc_mth(leaves[:k])]


def leaves_of(size: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, 300))
    return size, draw(st.integers(0, size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, 300))
    return draw(st.integers(1, new)), new


@settings(max_examples=150, deadline=None)
@given(size_and_index())
def test_every_inclusion_proof_is_the_rfc_path_and_verifies(case: tuple[int, int]) -> None:
    size, index = case
    leaves = leaves_of(size)
    tree = MemoryTree(leaves)

    proof = build_inclusion_proof(tree, index, size)

    assert list(proof.audit_path) == rfc_path(index, leaves)
    assert tree.root == rfc_mth(leaves)
    assert verify_inclusion(index, size, leaves[index], proof.audit_path, tree.root)


@settings(max_examples=150, deadline=None)
@given(two_sizes())
def test_every_consistency_proof_is_the_rfc_proof_and_verifies(case: tuple[int, int]) -> None:
    old, new = case
    leaves = leaves_of(new)
    tree = MemoryTree(leaves)

    proof = build_consistency_proof(tree, old, new)

    assert list(proof.path) == ([] if old == new else rfc_subproof(old, leaves, True))
    assert verify_consistency(old, new, rfc_mth(leaves[:old]), tree.root, proof.path)


@settings(max_examples=150, deadline=None)
@given(size_and_index(), st.data())
def test_an_inclusion_proof_with_one_flipped_bit_fails(case: tuple[int, int], data: st.DataObject) -> None:
    size, index = case
    leaves = leaves_of(size)
    tree = MemoryTree(leaves)
    path = list(build_inclusion_proof(tree, index, size).audit_path)
    if not path:
        assert not verify_inclusion(index, size, leaf_hash(b"other"), path, tree.root)
        return
    node = data.draw(st.integers(0, len(path) - 1))
    bit = data.draw(st.integers(0, 255))
    flipped = bytearray(path[node])
    flipped[bit // 8] ^= 1 << (bit % 8)
    path[node] = bytes(flipped)

    assert not verify_inclusion(index, size, leaves[index], path, tree.root)


@settings(max_examples=150, deadline=None)
@given(two_sizes(), st.data())
def test_a_consistency_proof_with_one_flipped_bit_fails(case: tuple[int, int], data: st.DataObject) -> None:
    old, new = case
    leaves = leaves_of(new)
    tree = MemoryTree(leaves)
    path = list(build_consistency_proof(tree, old, new).path)
    old_root = rfc_mth(leaves[:old])
    if not path:
        assert not verify_consistency(old, new, old_root, leaf_hash(b"other"), path)
        return
    node = data.draw(st.integers(0, len(path) - 1))
    bit = data.draw(st.integers(0, 255))
    flipped = bytearray(path[node])
    flipped[bit // 8] ^= 1 << (bit % 8)
    path[node] = bytes(flipped)

    assert not verify_consistency(old, new, old_root, tree.root, path)
