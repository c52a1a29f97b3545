"""Inclusion and consistency proofs: built from stored subtree hashes, checked as RFC 9162 prescribes.

Building follows the recursive definitions of RFC 6962 §2.1.1 (PATH) and §2.1.2 (SUBPROOF), unrolled into the
list of leaf ranges whose hashes make the proof; every range is tiled by complete subtrees, so a proof is one
batch of key lookups (≈ 2·log2 n hashes) however large the log. Checking is the RFC 9162 §2.1.3.2 and §2.1.4.2
algorithms, which need only the proof, the sizes and the roots — what an auditor holds without the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reasoning.prooflog.errors import ProofRequestError
from reasoning.prooflog.merkle import HASH_SIZE, NodeKey, complete_subtrees, fold_subtree_roots, node_hash, split_point


class NodeSource(Protocol):
    """Anything that can return the hashes of complete subtrees (level 0 = leaf hashes), in the order asked."""

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """The audit path of leaf `leaf_index` in the tree of the first `tree_size` records, leaf-side first."""

    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    audit_path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that the tree of `old_size` records is a prefix of the tree of `new_size` records."""

    old_size: int
    new_size: int
    path: tuple[bytes, ...]


def inclusion_ranges(leaf_index: int, tree_size: int) -> list[tuple[int, int]]:
    """Leaf ranges [start, end) whose tree hashes form PATH(m, D[n]), leaf-side first."""
    if not 0 <= leaf_index < tree_size:
        raise ProofRequestError(f"record {leaf_index} is not in a tree of {tree_size} records")
    ranges: list[tuple[int, int]] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = split_point(end - start)
        if leaf_index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose tree hashes form PROOF(m, D[n]) of RFC 6962 §2.1.2; empty when m is 0 or n."""
    if not 0 <= old_size <= new_size:
        raise ProofRequestError(f"no consistency proof from {old_size} records to {new_size} records")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    start, end, old_in_range, old_is_whole_subtree = 0, new_size, old_size, True
    while old_in_range != end - start:
        k = split_point(end - start)
        if old_in_range <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            old_in_range -= k
            old_is_whole_subtree = False
    if not old_is_whole_subtree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def range_hashes(source: NodeSource, ranges: Sequence[tuple[int, int]]) -> tuple[bytes, ...]:
    """MTH of each range, fetching every needed subtree hash in one batch."""
    tilings = [complete_subtrees(start, end) for start, end in ranges]
    keys = [key for tiling in tilings for key in tiling]
    fetched = source.node_hashes(keys)
    hashes: list[bytes] = []
    position = 0
    for tiling in tilings:
        hashes.append(fold_subtree_roots(fetched[position : position + len(tiling)]))
        position += len(tiling)
    return tuple(hashes)


def tree_root(source: NodeSource, tree_size: int) -> bytes:
    """MTH of the first `tree_size` leaves."""
    return fold_subtree_roots(source.node_hashes(complete_subtrees(0, tree_size)))


def build_inclusion_proof(source: NodeSource, leaf_index: int, tree_size: int) -> InclusionProof:
    path = range_hashes(source, inclusion_ranges(leaf_index, tree_size))
    (leaf,) = source.node_hashes([NodeKey(0, leaf_index)])
    return InclusionProof(leaf_index, tree_size, leaf, path)


def build_consistency_proof(source: NodeSource, old_size: int, new_size: int) -> ConsistencyProof:
    return ConsistencyProof(old_size, new_size, range_hashes(source, consistency_ranges(old_size, new_size)))


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, audit_path: Sequence[bytes]
) -> bytes | None:
    """The root the path leads to (RFC 9162 §2.1.3.2), or None when the path cannot fit the index and size."""
    if not 0 <= leaf_index < tree_size or len(leaf_hash) != HASH_SIZE:
        return None
    fn, sn, running = leaf_index, tree_size - 1, leaf_hash
    for sibling in audit_path:
        if sn == 0 or len(sibling) != HASH_SIZE:
            return None
        if fn & 1 or fn == sn:
            running = node_hash(sibling, running)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            running = node_hash(running, sibling)
        fn >>= 1
        sn >>= 1
    return running if sn == 0 else None


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, audit_path: Sequence[bytes], root: bytes
) -> bool:
    return root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, audit_path) == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, with the trivial cases: equal sizes need equal roots, an empty old tree needs no proof."""
    if not 0 <= old_size <= new_size or any(len(node) != HASH_SIZE for node in path):
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        return not path
    if not path:
        return False
    nodes = list(path)
    if old_size & (old_size - 1) == 0:
        nodes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    old_running = new_running = nodes[0]
    for node in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_running = node_hash(node, old_running)
            new_running = node_hash(node, new_running)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            new_running = node_hash(new_running, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and old_running == old_root and new_running == new_root
