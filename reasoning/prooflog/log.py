"""The proof log writer: appends records, keeps the Merkle tree, signs checkpoints, serves proofs.

One `ProofLog` per database file. Each `append_many` is one store transaction holding the records, the tree
nodes they complete and any checkpoint due, so a crash leaves the log exactly as of the last committed batch;
the in-memory frontier only advances after the commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reasoning.prooflog.canonical import JsonObject
from reasoning.prooflog.checkpoint import Checkpoint, sign_checkpoint
from reasoning.prooflog.errors import ProofRequestError
from reasoning.prooflog.frontier import Frontier
from reasoning.prooflog.keys import load_or_create_signing_key
from reasoning.prooflog.merkle import NodeKey, complete_subtrees, leaf_hash
from reasoning.prooflog.proofs import (
    ConsistencyProof,
    InclusionProof,
    build_consistency_proof,
    build_inclusion_proof,
    tree_root,
)
from reasoning.prooflog.records import EnvelopeWriter, RecordKind, StoredRecord, format_timestamp
from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.prooflog.store import ProofLogStore


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When to sign: every `every_records` records (None: never automatically) and when the log is closed."""

    every_records: int | None = 1000
    on_close: bool = True

    def __post_init__(self) -> None:
        if self.every_records is not None and self.every_records < 1:
            raise ValueError(f"checkpoint every_records must be ≥ 1 or None, got {self.every_records}")


def default_key_path(db_path: Path) -> Path:
    """Where `ProofLog.open` keeps the signing key when none is given: `<db>.key` (public half `<db>.key.pub`)."""
    return db_path.with_name(db_path.name + ".key")


class ProofLog:
    def __init__(
        self,
        store: ProofLogStore,
        signing_key: Ed25519PrivateKey,
        policy: CheckpointPolicy | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._store = store
        self._signing_key = signing_key
        self._policy = policy or CheckpointPolicy()
        self._clock_ns = clock_ns
        size = store.record_count()
        self._frontier = Frontier(size, store.node_hashes(complete_subtrees(0, size)))
        latest = store.latest_checkpoint()
        self._checkpointed_size = latest.tree_size if latest else 0

    @classmethod
    def open(
        cls,
        db_path: Path,
        key_path: Path | None = None,
        policy: CheckpointPolicy | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> ProofLog:
        """The SQLite log at `db_path` (created if absent), signing with the key at `key_path` (created if absent)."""
        key = load_or_create_signing_key(key_path or default_key_path(db_path))
        return cls(SqliteStore(db_path, synchronous=synchronous), key, policy, clock_ns)

    @property
    def size(self) -> int:
        return self._frontier.size

    @property
    def store(self) -> ProofLogStore:
        return self._store

    def root_hash(self) -> bytes:
        return self._frontier.root()

    def append(self, kind: RecordKind | str, record: JsonObject) -> int:
        """Append one record; returns its sequence number."""
        return self.append_many([(kind, record)]).start

    def append_many(self, entries: Iterable[tuple[RecordKind | str, JsonObject]]) -> range:
        """Append records in one transaction (all or none); returns their sequence numbers."""
        frontier = self._frontier.copy()
        first = frontier.size
        checkpointed = self._checkpointed_size
        every = self._policy.every_records
        created_at = format_timestamp(self._clock_ns())
        envelopes = EnvelopeWriter(created_at)
        records: list[StoredRecord] = []
        nodes: list[tuple[NodeKey, bytes]] = []
        checkpoints: list[Checkpoint] = []
        for kind, record in entries:
            seq = frontier.size
            kind_name, canonical = envelopes.envelope(seq, kind, record)
            leaf = leaf_hash(canonical)
            records.append(StoredRecord(seq, kind_name, created_at, canonical, leaf))
            nodes.extend(frontier.append(leaf))
            if every is not None and frontier.size - checkpointed >= every:
                checkpoints.append(self._sign(frontier))
                checkpointed = frontier.size
        if not records:
            return range(first, first)
        self._store.append(records, nodes, checkpoints, expected_count=first)
        self._frontier = frontier
        self._checkpointed_size = checkpointed
        return range(first, frontier.size)

    def checkpoint(self) -> Checkpoint:
        """Sign the current tree now (or return the latest checkpoint when nothing was appended since)."""
        latest = self._store.latest_checkpoint()
        if latest is not None and latest.tree_size == self.size:
            return latest
        signed = self._sign(self._frontier)
        self._store.append([], [], [signed], expected_count=self.size)
        self._checkpointed_size = signed.tree_size
        return signed

    def _sign(self, frontier: Frontier) -> Checkpoint:
        signed_at = format_timestamp(self._clock_ns())
        return sign_checkpoint(self._signing_key, frontier.size, frontier.root(), signed_at)

    def latest_checkpoint(self) -> Checkpoint | None:
        return self._store.latest_checkpoint()

    def tree_root(self, tree_size: int) -> bytes:
        self._check_size(tree_size)
        return tree_root(self._store, tree_size)

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """Audit path of record `seq` in the tree of `tree_size` records (default: the whole log)."""
        size = self.size if tree_size is None else tree_size
        self._check_size(size)
        return build_inclusion_proof(self._store, seq, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        size = self.size if new_size is None else new_size
        self._check_size(size)
        return build_consistency_proof(self._store, old_size, size)

    def _check_size(self, tree_size: int) -> None:
        if not 0 <= tree_size <= self.size:
            raise ProofRequestError(f"the log holds {self.size} records; no tree of {tree_size} records to prove")

    def close(self) -> None:
        """Sign the unsigned tail (if the policy says so) and release the store."""
        if self._policy.on_close and self.size > self._checkpointed_size:
            self.checkpoint()
        self._store.close()

    def __enter__(self) -> ProofLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
