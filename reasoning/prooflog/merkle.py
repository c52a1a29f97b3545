"""The RFC 6962 / RFC 9162 Merkle tree hash: leaf and node hashes, subtree addressing, the tree head.

Hand-written because it is a few lines of arithmetic over `hashlib`, and because the log needs it over stored
subtree hashes (a 1,000,000-record tree is never rebuilt to answer a proof), which no maintained Python package
offers. Terms follow RFC 9162 §2.1: MTH(D[n]) of n leaves splits at k, the largest power of two below n.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()


class NodeKey(NamedTuple):
    """A complete subtree: `level` 0 is one leaf; it covers leaves [node_index·2^level, (node_index+1)·2^level)."""

    level: int
    node_index: int

    @property
    def first_leaf(self) -> int:
        return self.node_index << self.level

    @property
    def end_leaf(self) -> int:
        return (self.node_index + 1) << self.level


def leaf_hash(record: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + record).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """k of RFC 9162 §2.1.1: the largest power of two smaller than `size` (size ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def complete_subtrees(start: int, end: int) -> list[NodeKey]:
    """The complete subtrees, largest first, that tile leaves [start, end) as RFC 6962 splits them.

    For the ranges the RFC recursion produces, `start` is a multiple of a power of two ≥ end − start, so the
    tiling is the binary expansion of end − start.
    """
    keys: list[NodeKey] = []
    while start < end:
        alignment = (start & -start).bit_length() - 1 if start else 64
        level = min(alignment, (end - start).bit_length() - 1)
        keys.append(NodeKey(level, start >> level))
        start += 1 << level
    return keys


def fold_subtree_roots(roots: Sequence[bytes]) -> bytes:
    """MTH of a range from the roots of its complete subtrees, largest first (right-edge nodes fold right)."""
    if not roots:
        return EMPTY_TREE_ROOT
    folded = roots[-1]
    for root in reversed(roots[:-1]):
        folded = node_hash(root, folded)
    return folded
