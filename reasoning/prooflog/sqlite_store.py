"""The SQLite proof-log store: WAL journal, one transaction per batch, append-only triggers.

Durability: `synchronous=FULL` by default. In WAL mode a committed transaction survives a killed process under
either setting; FULL also fsyncs the WAL at every commit so it survives power loss, which matters for a record
of orders that have already left the process. `synchronous="NORMAL"` is offered for backtests and benchmarks:
after a power loss it may lose the last commits but never leaves a partial record (WAL commits are atomic).

Interior tree nodes are kept in `proof_tree_nodes` (about one per record) and leaf hashes in the records table,
so an inclusion proof on a 1,000,000-record log is ~40 primary-key lookups. The triggers reject UPDATE and
DELETE: they stop accidents, not an attacker with the file — the hashes and signatures do that.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from reasoning.prooflog.checkpoint import Checkpoint
from reasoning.prooflog.errors import StoreError
from reasoning.prooflog.merkle import NodeKey
from reasoning.prooflog.records import StoredRecord
from reasoning.prooflog.store import (
    CHECKPOINT_COLUMNS,
    NODE_COLUMNS,
    RECORD_COLUMNS,
    append_rows,
    check_expected_count,
)

SCHEMA_VERSION = "1"

# A decision record is ~2.5 KB: a 4 KB page holds one (40% of it unused), an 8 KB page three, so a new log is
# ~40% smaller and its appends write that much less to the WAL and the database.
PAGE_SIZE = 8192

# The same tables, with BYTEA for BLOB, serve PostgreSQL.
SCHEMA = """
CREATE TABLE IF NOT EXISTS proof_records (
    seq        INTEGER PRIMARY KEY,  -- 0-based leaf index
    kind       TEXT    NOT NULL,     -- 'decision' | 'rule_change' | 'kill_switch'
    created_at TEXT    NOT NULL,     -- UTC, e.g. 2024-05-01T12:00:00.123456Z
    canonical  BLOB    NOT NULL,     -- RFC 8785 bytes of {created_at, kind, record, seq}
    leaf_hash  BLOB    NOT NULL      -- SHA-256(0x00 || canonical)
);
CREATE INDEX IF NOT EXISTS proof_records_by_kind_time ON proof_records (kind, created_at);
CREATE TABLE IF NOT EXISTS proof_tree_nodes (
    level      INTEGER NOT NULL,     -- >= 1; the node covers leaves [node_index * 2^level, (node_index+1) * 2^level)
    node_index INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    PRIMARY KEY (level, node_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proof_checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root_hash  BLOB    NOT NULL,
    signed_at  TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    signature  BLOB    NOT NULL      -- Ed25519 over checkpoint.signed_bytes(tree_size, root_hash, signed_at)
);
CREATE TABLE IF NOT EXISTS proof_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_APPEND_ONLY_TABLES = ("proof_records", "proof_tree_nodes", "proof_checkpoints")


def _append_only_triggers() -> str:
    statements = []
    for table in _APPEND_ONLY_TABLES:
        for action in ("UPDATE", "DELETE"):
            statements.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the proof log is append-only'); END;"
            )
    return "\n".join(statements)


class SqliteStore:
    """`ProofLogStore` over one SQLite file; one writer per file (a second is detected, not serialized)."""

    def __init__(self, path: Path, *, read_only: bool = False, synchronous: Literal["FULL", "NORMAL"] = "FULL") -> None:
        self.path = path
        if read_only and not path.exists():
            raise StoreError(f"{path}: no proof log database there")
        try:
            if read_only:
                self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, isolation_level=None)
                self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect only on a new, empty file
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._db.executescript(SCHEMA + _append_only_triggers())
                self._db.execute(
                    "INSERT OR IGNORE INTO proof_meta (name, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
            self._check_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a usable proof log database ({exc})") from None

    def _check_schema(self) -> None:
        row = self._db.execute("SELECT value FROM proof_meta WHERE name = 'schema_version'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = "none" if row is None else row[0]
            raise StoreError(f"{self.path}: proof log schema version {found}, this code reads {SCHEMA_VERSION}")

    def record_count(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM proof_records").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def append(
        self,
        records: Sequence[StoredRecord],
        nodes: Sequence[tuple[NodeKey, bytes]],
        checkpoints: Sequence[Checkpoint],
        expected_count: int,
    ) -> None:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                check_expected_count(str(self.path), expected_count, self.record_count())
                record_rows, node_rows, checkpoint_rows = append_rows(records, nodes, checkpoints)
                db.executemany(f"INSERT INTO proof_records ({RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?)", record_rows)
                db.executemany(f"INSERT INTO proof_tree_nodes ({NODE_COLUMNS}) VALUES (?, ?, ?)", node_rows)
                db.executemany(
                    f"INSERT INTO proof_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?, ?, ?, ?, ?)", checkpoint_rows
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: append failed, nothing was written ({exc})") from None

    def records(self, start: int = 0) -> Iterator[StoredRecord]:
        cursor = self._db.execute(
            "SELECT seq, kind, created_at, canonical, leaf_hash FROM proof_records WHERE seq >= ? ORDER BY seq",
            (start,),
        )
        for seq, kind, created_at, canonical, leaf in cursor:
            yield StoredRecord(int(seq), kind, created_at, bytes(canonical), bytes(leaf))

    def record(self, seq: int) -> StoredRecord | None:
        row = self._db.execute(
            "SELECT seq, kind, created_at, canonical, leaf_hash FROM proof_records WHERE seq = ?", (seq,)
        ).fetchone()
        if row is None:
            return None
        return StoredRecord(int(row[0]), row[1], row[2], bytes(row[3]), bytes(row[4]))

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        hashes: list[bytes] = []
        for key in keys:
            if key.level == 0:
                row = self._db.execute(
                    "SELECT leaf_hash FROM proof_records WHERE seq = ?", (key.node_index,)
                ).fetchone()
            else:
                row = self._db.execute(
                    "SELECT hash FROM proof_tree_nodes WHERE level = ? AND node_index = ?", (key.level, key.node_index)
                ).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: tree node level {key.level} index {key.node_index} is missing")
            hashes.append(bytes(row[0]))
        return hashes

    def interior_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        cursor = self._db.execute(
            "SELECT node_index, hash FROM proof_tree_nodes WHERE level = ? ORDER BY node_index", (level,)
        )
        for index, digest in cursor:
            yield int(index), bytes(digest)

    def highest_node_level(self) -> int:
        row = self._db.execute("SELECT MAX(level) FROM proof_tree_nodes").fetchone()
        return 0 if row[0] is None else int(row[0])

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._db.execute(
            "SELECT tree_size, root_hash, signed_at, key_id, signature FROM proof_checkpoints ORDER BY tree_size"
        ).fetchall()
        return [Checkpoint(int(s), bytes(root), at, kid, bytes(sig)) for s, root, at, kid, sig in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        row = self._db.execute(
            "SELECT tree_size, root_hash, signed_at, key_id, signature FROM proof_checkpoints "
            "ORDER BY tree_size DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(int(row[0]), bytes(row[1]), row[2], row[3], bytes(row[4]))

    def close(self) -> None:
        self._db.close()
