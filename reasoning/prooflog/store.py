"""The storage interface of the proof log: what the writer, proofs and the verifier need, nothing more.

SQLite implements it (`sqlite_store.py`); a PostgreSQL store with the same three tables implements the same
methods. Rows are only ever inserted: records by sequence number, interior tree nodes by (level, index), and
checkpoints by tree size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from reasoning.prooflog.checkpoint import Checkpoint
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
