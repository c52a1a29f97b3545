"""The storage interface of the proof log: what the writer, proofs and the verifier need, nothing more.

SQLite implements it (`sqlite_store.py`); a PostgreSQL store with the same three tables implements the same
methods. Rows are only ever inserted: records by sequence number, interior tree nodes by (level, index), and
checkpoints by tree size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from reasoning.prooflog.checkpoint import Checkpoint
from reasoning.prooflog.errors import StoreError
from reasoning.prooflog.merkle import NodeKey
from reasoning.prooflog.records import StoredRecord


class ProofLogStore(Protocol):
    def record_count(self) -> int:
        """Number of records (= the next sequence number)."""
        ...

    def append(
        self,
        records: Sequence[StoredRecord],
        nodes: Sequence[tuple[NodeKey, bytes]],
        checkpoints: Sequence[Checkpoint],
        expected_count: int,
    ) -> None:
        """Insert all of it in one transaction, or nothing; `StoreError` if the log no longer holds
        `expected_count` records (another writer appended)."""
        ...

    def records(self, start: int = 0) -> Iterator[StoredRecord]:
        """Stored records with seq ≥ start, in sequence order, as stored (the verifier trusts none of it)."""
        ...

    def record(self, seq: int) -> StoredRecord | None: ...

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        """Hashes of complete subtrees in the order asked; level 0 is a record's leaf hash."""
        ...

    def interior_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        """(index, hash) of the stored nodes of one level ≥ 1, by index."""
        ...

    def highest_node_level(self) -> int:
        """The highest level with a stored interior node, 0 when there is none."""
        ...

    def checkpoints(self) -> list[Checkpoint]:
        """All checkpoints by tree size."""
        ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def close(self) -> None: ...


# What every store inserts on `append`, in its tables' column order (both stores share the schema).
RECORD_COLUMNS = "seq, kind, created_at, canonical, leaf_hash"
NODE_COLUMNS = "level, node_index, hash"
CHECKPOINT_COLUMNS = "tree_size, root_hash, signed_at, key_id, signature"


def append_rows(
    records: Sequence[StoredRecord], nodes: Sequence[tuple[NodeKey, bytes]], checkpoints: Sequence[Checkpoint]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of records, tree nodes and checkpoints, as `RECORD_COLUMNS`, `NODE_COLUMNS`, `CHECKPOINT_COLUMNS`."""
    return (
        [(r.seq, r.kind, r.created_at, r.canonical, r.leaf_hash) for r in records],
        [(key.level, key.node_index, digest) for key, digest in nodes],
        [(c.tree_size, c.root_hash, c.signed_at, c.key_id, c.signature) for c in checkpoints],
    )


def check_expected_count(name: str, expected: int, found: int) -> None:
    """Inside an append's transaction: refuse when another writer appended since this one read the log."""
    if found != expected:
        raise StoreError(
            f"{name}: another writer appended to the proof log (expected {expected} records, found {found}); "
            "reopen the log"
        )
