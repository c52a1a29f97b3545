"""The right edge of the tree: the roots of the complete subtrees of the first n leaves.

Appending a leaf merges equal-sized subtrees like a binary counter, so an append costs O(1) hashes amortized and
the tree head costs O(log n); every merge yields an interior node that the store keeps for later proofs. A
log reopened after a crash rebuilds this from the stored nodes named by `complete_subtrees(0, n)`.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasoning.prooflog.merkle import NodeKey, fold_subtree_roots, node_hash


class Frontier:
    __slots__ = ("_roots", "_size")

    def __init__(self, size: int = 0, roots: Sequence[bytes] = ()) -> None:
        if len(roots) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} complete subtrees, got {len(roots)}")
        self._size = size
        self._roots = list(roots)

    @property
    def size(self) -> int:
        return self._size

    def copy(self) -> Frontier:
        return Frontier(self._size, self._roots)

    def append(self, leaf: bytes) -> list[tuple[NodeKey, bytes]]:
        """Add a leaf hash; returns the interior nodes (level ≥ 1) this append completed, lowest first."""
        completed: list[tuple[NodeKey, bytes]] = []
        index = self._size
        merged = leaf
        level = 0
        while index & 1:
            merged = node_hash(self._roots.pop(), merged)
            index >>= 1
            level += 1
            completed.append((NodeKey(level, index), merged))
        self._roots.append(merged)
        self._size += 1
        return completed

    def root(self) -> bytes:
        return fold_subtree_roots(self._roots)
