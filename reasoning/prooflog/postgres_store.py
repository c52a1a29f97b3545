"""The PostgreSQL proof-log store: the SQLite schema on a server, for logs shared by several hosts or kept at scale.

Same tables and columns as `sqlite_store.py` (INTEGER → BIGINT where a count can outgrow 32 bits, BLOB → BYTEA),
same schema version in `proof_meta`, and triggers that reject UPDATE, DELETE and TRUNCATE on the three log tables
(like SQLite's, they stop accidents; the hashes and signatures stop an attacker). The schema is created on first
open when absent; a role that may only INSERT and SELECT can write to a schema a DBA created.

`append` is one transaction that first takes a transaction-scoped advisory lock keyed by this log's records
table, so a second writer waits, then finds the record count moved and fails with `StoreError`; nothing of its
batch is written. (An advisory lock, not LOCK TABLE: a self-conflicting table lock needs UPDATE or DELETE
privilege, and the role that writes the log should have neither.) A read-only store
(what the verifier opens) reads one REPEATABLE READ snapshot: the log as of its first query, even while a writer
appends. Long scans are paged by key, so neither mode holds a server-side cursor.

Secrets: the DSN's password never reaches a message. Stores are named by a DSN rebuilt from its parsed parts
without the password, driver messages are scrubbed of it, and libpq's DSN parse errors (which can quote the whole
DSN) are not repeated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, LiteralString

import psycopg
from psycopg.conninfo import conninfo_to_dict

from reasoning.prooflog.checkpoint import Checkpoint
from reasoning.prooflog.errors import StoreError
from reasoning.prooflog.merkle import NodeKey
from reasoning.prooflog.records import StoredRecord
from reasoning.prooflog.sqlite_store import SCHEMA_VERSION
from reasoning.prooflog.store import (
    CHECKPOINT_COLUMNS,
    NODE_COLUMNS,
    RECORD_COLUMNS,
    append_rows,
    check_expected_count,
)

# Rows per query when scanning records or a tree level: ~3 MB of decision records, few round trips.
PAGE_ROWS = 1000
# Used when the DSN does not set connect_timeout: an unreachable server is an error, not a hang.
CONNECT_TIMEOUT_S = 10
# Serialises concurrent first opens of an empty database (CREATE TABLE IF NOT EXISTS races otherwise).
_SCHEMA_LOCK = 0x70726F6F666C6F67  # "prooflog"
# First key of the writers' lock; the second is the OID of the records table, so each log (schema) has its own.
_APPEND_LOCK_CLASS = 0x70726F66  # "prof"

SCHEMA = """
CREATE TABLE IF NOT EXISTS proof_records (
    seq        BIGINT  PRIMARY KEY,
    kind       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    canonical  BYTEA   NOT NULL,
    leaf_hash  BYTEA   NOT NULL
);
CREATE INDEX IF NOT EXISTS proof_records_by_kind_time ON proof_records (kind, created_at);
CREATE TABLE IF NOT EXISTS proof_tree_nodes (
    level      INTEGER NOT NULL,
    node_index BIGINT  NOT NULL,
    hash       BYTEA   NOT NULL,
    PRIMARY KEY (level, node_index)
);
CREATE TABLE IF NOT EXISTS proof_checkpoints (
    tree_size  BIGINT  PRIMARY KEY,
    root_hash  BYTEA   NOT NULL,
    signed_at  TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    signature  BYTEA   NOT NULL
);
CREATE TABLE IF NOT EXISTS proof_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE OR REPLACE FUNCTION proof_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the proof log is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;
"""

_APPEND_ONLY_TABLES = ("proof_records", "proof_tree_nodes", "proof_checkpoints")


def _append_only_triggers() -> list[LiteralString]:
    statements: list[LiteralString] = []
    for table in _APPEND_ONLY_TABLES:
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION proof_log_append_only()"
        )
        # TRUNCATE fires no row triggers.
        statements.append(
            f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION proof_log_append_only()"
        )
    return statements


def redact_dsn(dsn: str) -> str:
    """A name for the database `dsn` points at, without its password: `postgresql://user@host:port/dbname`.

    Built from what libpq parses, so a password anywhere (user info, `?password=`, `password=` keyword) is left
    out; a DSN libpq cannot parse is not echoed at all."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "postgresql://(unparsable DSN)"
    user = f"{params['user']}@" if params.get("user") else ""
    host = str(params.get("host") or "")
    port = f":{params['port']}" if params.get("port") else ""
    dbname = str(params.get("dbname") or "")
    if host.startswith("/"):  # a Unix socket directory
        return f"postgresql://{user}{port}/{dbname}?host={host}"
    return f"postgresql://{user}{host}{port}/{dbname}"


def _password(dsn: str) -> str | None:
    try:
        value = conninfo_to_dict(dsn).get("password")
    except psycopg.Error:
        return None
    return str(value) if value else None


class PostgresStore:
    """`ProofLogStore` over one PostgreSQL database (the DSN's schema search path); many writers are serialised."""

    def __init__(self, dsn: str, *, read_only: bool = False) -> None:
        self.name = redact_dsn(dsn)
        self._password = _password(dsn)
        self._db = self._connect(dsn, read_only)
        try:
            if not read_only and not self._has_schema():
                self._create_schema()
            if not self._has_schema():
                raise StoreError(f"{self.name}: no proof log database there (no proof_meta table)")
            self._check_schema()
        except psycopg.Error as exc:
            self._db.close()
            raise StoreError(f"{self.name}: not a usable proof log database ({self._describe(exc)})") from None
        except StoreError:
            self._db.close()
            raise

    def _connect(self, dsn: str, read_only: bool) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:
            raise StoreError(
                f"{self.name}: not a valid PostgreSQL DSN (libpq's message is withheld, it can quote the password); "
                f"expected postgresql://user:password@host:port/dbname"
            ) from None
        timeout = params.get("connect_timeout") or CONNECT_TIMEOUT_S
        try:
            connection = psycopg.connect(dsn, autocommit=not read_only, connect_timeout=timeout)
        except psycopg.Error as exc:
            raise StoreError(f"{self.name}: cannot connect ({self._describe(exc)})") from None
        if read_only:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
        return connection

    def _describe(self, exc: psycopg.Error) -> str:
        """The server's or driver's message on one line, with the password (should either quote it) masked."""
        text = " ".join((exc.diag.message_primary or str(exc)).split())
        return text.replace(self._password, "***") if self._password else text

    def _rows(self, query: LiteralString, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"{self.name}: read failed ({self._describe(exc)})") from None

    def _has_schema(self) -> bool:
        return bool(self._db.execute("SELECT to_regclass('proof_meta') IS NOT NULL").fetchone() == (True,))

    def _create_schema(self) -> None:
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                if self._has_schema():
                    return
                self._db.execute(SCHEMA)
                for statement in _append_only_triggers():
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO proof_meta (name, value) VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
                    (SCHEMA_VERSION,),
                )
        except psycopg.Error as exc:
            raise StoreError(
                f"{self.name}: cannot create the proof log tables ({self._describe(exc)}); create them once as a "
                f"role that may, then write as this one (it needs SELECT and INSERT only)"
            ) from None

    def _check_schema(self) -> None:
        row = self._db.execute("SELECT value FROM proof_meta WHERE name = 'schema_version'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = "none" if row is None else row[0]
            raise StoreError(f"{self.name}: proof log schema version {found}, this code reads {SCHEMA_VERSION}")

    def record_count(self) -> int:
        (highest,) = self._rows("SELECT MAX(seq) FROM proof_records")[0]
        return 0 if highest is None else int(highest) + 1

    def append(
        self,
        records: Sequence[StoredRecord],
        nodes: Sequence[tuple[NodeKey, bytes]],
        checkpoints: Sequence[Checkpoint],
        expected_count: int,
    ) -> None:
        db = self._db
        try:
            with db.transaction(), db.cursor() as cursor:
                # The next writer waits here until this one commits; readers never wait.
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, 'proof_records'::regclass::oid::integer)", (_APPEND_LOCK_CLASS,)
                )
                check_expected_count(self.name, expected_count, self.record_count())
                record_rows, node_rows, checkpoint_rows = append_rows(records, nodes, checkpoints)
                if record_rows:
                    cursor.executemany(
                        f"INSERT INTO proof_records ({RECORD_COLUMNS}) VALUES (%s, %s, %s, %s, %s)", record_rows
                    )
                if node_rows:
                    cursor.executemany(f"INSERT INTO proof_tree_nodes ({NODE_COLUMNS}) VALUES (%s, %s, %s)", node_rows)
                if checkpoint_rows:
                    cursor.executemany(
                        f"INSERT INTO proof_checkpoints ({CHECKPOINT_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                        checkpoint_rows,
                    )
        except psycopg.Error as exc:
            raise StoreError(f"{self.name}: append failed, nothing was written ({self._describe(exc)})") from None

    def records(self, start: int = 0) -> Iterator[StoredRecord]:
        next_seq = start
        while True:
            rows = self._rows(
                "SELECT seq, kind, created_at, canonical, leaf_hash FROM proof_records WHERE seq >= %s "
                "ORDER BY seq LIMIT %s",
                (next_seq, PAGE_ROWS),
            )
            for seq, kind, created_at, canonical, leaf in rows:
                yield StoredRecord(int(seq), kind, created_at, bytes(canonical), bytes(leaf))
            if len(rows) < PAGE_ROWS:
                return
            next_seq = int(rows[-1][0]) + 1

    def record(self, seq: int) -> StoredRecord | None:
        rows = self._rows(
            "SELECT seq, kind, created_at, canonical, leaf_hash FROM proof_records WHERE seq = %s", (seq,)
        )
        if not rows:
            return None
        found, kind, created_at, canonical, leaf = rows[0]
        return StoredRecord(int(found), kind, created_at, bytes(canonical), bytes(leaf))

    def node_hashes(self, keys: Sequence[NodeKey]) -> list[bytes]:
        if not keys:
            return []
        # One round trip for a whole audit path (~40 keys on a 1,000,000-record log) instead of one per key.
        rows = self._rows(
            "SELECT COALESCE(r.leaf_hash, n.hash) "
            "FROM unnest(%s::integer[], %s::bigint[]) WITH ORDINALITY AS k(level, node_index, position) "
            "LEFT JOIN proof_records r ON k.level = 0 AND r.seq = k.node_index "
            "LEFT JOIN proof_tree_nodes n ON k.level > 0 AND n.level = k.level AND n.node_index = k.node_index "
            "ORDER BY k.position",
            ([key.level for key in keys], [key.node_index for key in keys]),
        )
        hashes: list[bytes] = []
        for key, (digest,) in zip(keys, rows, strict=True):
            if digest is None:
                raise StoreError(f"{self.name}: tree node level {key.level} index {key.node_index} is missing")
            hashes.append(bytes(digest))
        return hashes

    def interior_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        next_index = 0
        while True:
            rows = self._rows(
                "SELECT node_index, hash FROM proof_tree_nodes WHERE level = %s AND node_index >= %s "
                "ORDER BY node_index LIMIT %s",
                (level, next_index, PAGE_ROWS),
            )
            for index, digest in rows:
                yield int(index), bytes(digest)
            if len(rows) < PAGE_ROWS:
                return
            next_index = int(rows[-1][0]) + 1

    def highest_node_level(self) -> int:
        (highest,) = self._rows("SELECT MAX(level) FROM proof_tree_nodes")[0]
        return 0 if highest is None else int(highest)

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._rows(
            "SELECT tree_size, root_hash, signed_at, key_id, signature FROM proof_checkpoints ORDER BY tree_size"
        )
        return [Checkpoint(int(s), bytes(root), at, kid, bytes(sig)) for s, root, at, kid, sig in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        rows = self._rows(
            "SELECT tree_size, root_hash, signed_at, key_id, signature FROM proof_checkpoints "
            "ORDER BY tree_size DESC LIMIT 1"
        )
        if not rows:
            return None
        size, root, signed_at, key, signature = rows[0]
        return Checkpoint(int(size), bytes(root), signed_at, key, bytes(signature))

    def close(self) -> None:
        self._db.close()
