"""The decision index: a derived, rebuildable table of the log's decisions and fills, for queries by field.

The proof log is the evidence; scanning a million records per query is not an option, so the API keeps, in its
own state database, one row per `decision` record (id, time, symbol, strategy, model, verdict, reasons, layers)
and per `fill` record, plus the counters `/metrics` reports. `catch_up` reads the records appended since the last
indexed sequence number (kept with the leaf hash of that record) and is called before every query. If the log no
longer holds that record with that hash (a different or rewritten log), the index is dropped and rebuilt: it is
a cache of the log, never a second source of truth. Every response still serves the record from the log itself.

A record that does not have the shape of a decision or fill (another writer's format) is skipped, not indexed;
it stays in the log, and in its proofs.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from api.log_access import LogAccess
from api.state import StateDb
from reasoning.engine import layer_of
from reasoning.prooflog.errors import StoreError
from reasoning.prooflog.merkle import NodeKey
from reasoning.prooflog.records import RecordKind, StoredRecord

INDEX_BATCH = 5_000
# Upper bounds (ms) of the guard latency histogram buckets; observations above the last go to +Inf.
LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0)

SCHEMA = """
CREATE TABLE IF NOT EXISTS decision_index (
    seq           INTEGER PRIMARY KEY,   -- the record's sequence number in the proof log
    decision_id   TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,      -- when the log appended it
    decided_at_ms INTEGER NOT NULL,
    symbol        TEXT    NOT NULL,
    strategy_id   TEXT    NOT NULL,
    model_id      TEXT    NOT NULL,
    model_version TEXT    NOT NULL,
    verdict       TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    run_id        TEXT,
    reasons       TEXT    NOT NULL,      -- JSON list
    layers        TEXT    NOT NULL       -- JSON list
);
CREATE INDEX IF NOT EXISTS decision_index_by_id ON decision_index (decision_id, seq);
CREATE INDEX IF NOT EXISTS decision_index_by_time ON decision_index (decided_at_ms, seq);
CREATE INDEX IF NOT EXISTS decision_index_by_symbol ON decision_index (symbol, seq);
CREATE INDEX IF NOT EXISTS decision_index_by_strategy ON decision_index (strategy_id, seq);
CREATE INDEX IF NOT EXISTS decision_index_by_model ON decision_index (model_id, seq);
CREATE INDEX IF NOT EXISTS decision_index_by_verdict ON decision_index (verdict, seq);
CREATE TABLE IF NOT EXISTS decision_reason_index (
    reason TEXT    NOT NULL,
    layer  TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (reason, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS decision_reason_index_by_layer ON decision_reason_index (layer, seq);
CREATE TABLE IF NOT EXISTS fill_index (
    seq             INTEGER PRIMARY KEY,
    decision_id     TEXT    NOT NULL,
    client_order_id TEXT    NOT NULL,
    side            TEXT    NOT NULL,
    qty             REAL    NOT NULL,
    price           REAL    NOT NULL,
    fee             REAL,
    liquidity       TEXT,
    filled_at_ms    INTEGER
);
CREATE INDEX IF NOT EXISTS fill_index_by_decision ON fill_index (decision_id, seq);
CREATE TABLE IF NOT EXISTS decision_counts (
    dimension TEXT    NOT NULL,          -- 'verdict' or 'reason'
    value     TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (dimension, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS guard_latency_buckets (
    engine TEXT    NOT NULL,
    bucket INTEGER NOT NULL,             -- index into LATENCY_BUCKETS_MS; len(...) is +Inf
    count  INTEGER NOT NULL,
    PRIMARY KEY (engine, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS guard_latency_totals (
    engine TEXT PRIMARY KEY,
    count  INTEGER NOT NULL,
    sum_ms REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS index_position (
    name  TEXT PRIMARY KEY,              -- 'next_seq', 'last_leaf_hash'
    value TEXT NOT NULL
);
"""
_DERIVED_TABLES = (
    "decision_index",
    "decision_reason_index",
    "fill_index",
    "decision_counts",
    "guard_latency_buckets",
    "guard_latency_totals",
    "index_position",
)
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """Conditions a listed decision meets; None is no condition. Times are epoch ms, `until_ms` exclusive."""

    since_ms: int | None = None
    until_ms: int | None = None
    symbol: str | None = None
    strategy_id: str | None = None
    model_id: str | None = None
    verdict: str | None = None
    reason: str | None = None
    layer: str | None = None
    mode: str | None = None
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class IndexedDecision:
    seq: int
    decision_id: str
    created_at: str
    decided_at_ms: int
    symbol: str
    strategy_id: str
    model_id: str
    model_version: str
    verdict: str
    mode: str
    run_id: str | None
    reasons: tuple[str, ...]
    layers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IndexedFill:
    seq: int
    decision_id: str
    client_order_id: str
    side: str
    qty: float
    price: float
    fee: float | None
    liquidity: str | None
    filled_at_ms: int | None


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    engine: str
    bucket_counts: tuple[int, ...]  # per bucket of LATENCY_BUCKETS_MS, then +Inf; not cumulative
    count: int
    sum_ms: float


_DECISION_COLUMNS = (
    "seq, decision_id, created_at, decided_at_ms, symbol, strategy_id, model_id, model_version, verdict, mode, "
    "run_id, reasons, layers"
)


class DecisionIndex:
    def __init__(self, state: StateDb, log: LogAccess) -> None:
        self._state = state
        self._log = log
        self._lock = threading.Lock()
        state.execute_script(SCHEMA)

    def catch_up(self) -> int:
        """Index the records appended since the last call; returns how many records the index now covers."""
        with self._lock:
            store = self._log.store()
            size = store.record_count()
            next_seq = self._next_seq_if_still_valid(size)
            batch: list[StoredRecord] = []
            if next_seq < size:
                for stored in store.records(next_seq):
                    if stored.seq >= size:
                        break
                    batch.append(stored)
                    if len(batch) >= INDEX_BATCH:
                        self._index(batch)
                        batch = []
            if batch:
                self._index(batch)
            return size

    def _next_seq_if_still_valid(self, size: int) -> int:
        db = self._state.connection()
        position = dict(db.execute("SELECT name, value FROM index_position").fetchall())
        next_seq = int(position.get("next_seq", "0"))
        if next_seq == 0:
            return 0
        if next_seq <= size:
            try:
                (leaf,) = self._log.store().node_hashes([NodeKey(0, next_seq - 1)])
            except StoreError:
                leaf = b""
            if leaf.hex() == position.get("last_leaf_hash"):
                return next_seq
        _log.warning(
            "decision index does not match the proof log (record %d changed or gone); rebuilding", next_seq - 1
        )
        with self._state.transaction() as writer:
            for table in _DERIVED_TABLES:
                writer.execute(f"DELETE FROM {table}")
        return 0

    def _index(self, batch: Sequence[StoredRecord]) -> None:
        decisions: list[tuple[Any, ...]] = []
        reasons: list[tuple[str, str, int]] = []
        fills: list[tuple[Any, ...]] = []
        counts: Counter[tuple[str, str]] = Counter()
        latency: dict[str, list[float]] = {}
        for stored in batch:
            if stored.kind == RecordKind.DECISION.value:
                row = _decision_row(stored)
                if row is None:
                    continue
                decisions.append(row.values)
                counts["verdict", row.verdict] += 1
                for reason in row.reasons:
                    reasons.append((reason, layer_of(reason), stored.seq))
                    counts["reason", reason] += 1
                for engine, elapsed_ms in row.timings_ms:
                    latency.setdefault(engine, []).append(elapsed_ms)
            elif stored.kind == RecordKind.FILL.value:
                fill = _fill_row(stored)
                if fill is not None:
                    fills.append(fill)
        last = batch[-1]
        with self._state.transaction() as db:
            db.executemany(
                f"INSERT OR REPLACE INTO decision_index ({_DECISION_COLUMNS}) VALUES ({', '.join('?' * 13)})", decisions
            )
            db.executemany(
                "INSERT OR REPLACE INTO decision_reason_index (reason, layer, seq) VALUES (?, ?, ?)", reasons
            )
            db.executemany(
                "INSERT OR REPLACE INTO fill_index (seq, decision_id, client_order_id, side, qty, price, fee, "
                "liquidity, filled_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                fills,
            )
            db.executemany(
                "INSERT INTO decision_counts (dimension, value, count) VALUES (?, ?, ?) "
                "ON CONFLICT (dimension, value) DO UPDATE SET count = count + excluded.count",
                [(dimension, value, count) for (dimension, value), count in counts.items()],
            )
            _add_latencies(db, latency)
            db.executemany(
                "INSERT OR REPLACE INTO index_position (name, value) VALUES (?, ?)",
                [("next_seq", str(last.seq + 1)), ("last_leaf_hash", last.leaf_hash.hex())],
            )

    def page(
        self, conditions: DecisionFilter, after_seq: int | None, limit: int, descending: bool
    ) -> list[IndexedDecision]:
        """Up to `limit` decisions meeting `conditions`, in log order (or reversed), after `after_seq`."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("symbol", conditions.symbol),
            ("strategy_id", conditions.strategy_id),
            ("model_id", conditions.model_id),
            ("verdict", conditions.verdict),
            ("mode", conditions.mode),
            ("run_id", conditions.run_id),
        ):
            if value is not None:
                clauses.append(f"d.{column} = ?")
                params.append(value)
        if conditions.since_ms is not None:
            clauses.append("d.decided_at_ms >= ?")
            params.append(conditions.since_ms)
        if conditions.until_ms is not None:
            clauses.append("d.decided_at_ms < ?")
            params.append(conditions.until_ms)
        if conditions.reason is not None:
            clauses.append("EXISTS (SELECT 1 FROM decision_reason_index r WHERE r.reason = ? AND r.seq = d.seq)")
            params.append(conditions.reason)
        if conditions.layer is not None:
            clauses.append("EXISTS (SELECT 1 FROM decision_reason_index r WHERE r.layer = ? AND r.seq = d.seq)")
            params.append(conditions.layer)
        if after_seq is not None:
            clauses.append("d.seq < ?" if descending else "d.seq > ?")
            params.append(after_seq)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "DESC" if descending else "ASC"
        rows = self._state.connection().execute(
            f"SELECT {_DECISION_COLUMNS} FROM decision_index d {where} ORDER BY d.seq {order} LIMIT ?",
            [*params, limit],
        )
        return [_indexed_decision(row) for row in rows]

    def find(self, decision_id: str) -> list[IndexedDecision]:
        """Every decision record with this id, oldest first (an id appears once unless a run was logged twice)."""
        rows = self._state.connection().execute(
            f"SELECT {_DECISION_COLUMNS} FROM decision_index WHERE decision_id = ? ORDER BY seq", (decision_id,)
        )
        return [_indexed_decision(row) for row in rows]

    def fills(self, decision_id: str) -> list[IndexedFill]:
        rows = self._state.connection().execute(
            "SELECT seq, decision_id, client_order_id, side, qty, price, fee, liquidity, filled_at_ms FROM fill_index "
            "WHERE decision_id = ? ORDER BY seq",
            (decision_id,),
        )
        return [IndexedFill(*row) for row in rows]

    def counts(self, dimension: str) -> dict[str, int]:
        rows = self._state.connection().execute(
            "SELECT value, count FROM decision_counts WHERE dimension = ? ORDER BY value", (dimension,)
        )
        return {str(value): int(count) for value, count in rows}

    def latency_histograms(self) -> list[LatencyHistogram]:
        db = self._state.connection()
        buckets: dict[str, list[int]] = {}
        for engine, bucket, count in db.execute("SELECT engine, bucket, count FROM guard_latency_buckets"):
            buckets.setdefault(engine, [0] * (len(LATENCY_BUCKETS_MS) + 1))[int(bucket)] = int(count)
        totals = db.execute("SELECT engine, count, sum_ms FROM guard_latency_totals ORDER BY engine").fetchall()
        return [
            LatencyHistogram(engine, tuple(buckets.get(engine, [0] * (len(LATENCY_BUCKETS_MS) + 1))), int(n), float(s))
            for engine, n, s in totals
        ]


@dataclass(frozen=True, slots=True)
class _DecisionRow:
    values: tuple[Any, ...]
    verdict: str
    reasons: tuple[str, ...]
    timings_ms: tuple[tuple[str, float], ...]


def _decision_row(stored: StoredRecord) -> _DecisionRow | None:
    record = _record_of(stored)
    if record is None:
        return None
    decision_id = record.get("decision_id")
    verdict = record.get("verdict")
    reasons = record.get("reasons")
    if not isinstance(decision_id, str) or not isinstance(verdict, str) or not _strings(reasons):
        _log.warning("record %d: not a decision record (no decision_id, verdict or reasons); not indexed", stored.seq)
        return None
    reason_codes = tuple(reasons)
    layers = record.get("layers")
    layer_names = tuple(layers) if _strings(layers) else tuple(sorted({layer_of(r) for r in reason_codes}))
    decided_at = record.get("decided_at_ms")
    values = (
        stored.seq,
        decision_id,
        stored.created_at,
        decided_at if isinstance(decided_at, int) else 0,
        _text(record.get("symbol")),
        _text(record.get("strategy_id")),
        _text(record.get("model_id")),
        _text(record.get("model_version")),
        verdict,
        _text(record.get("mode")),
        record.get("run_id") if isinstance(record.get("run_id"), str) else None,
        json.dumps(list(reason_codes)),
        json.dumps(list(layer_names)),
    )
    return _DecisionRow(values, verdict, reason_codes, _timings(record))


def _fill_row(stored: StoredRecord) -> tuple[Any, ...] | None:
    record = _record_of(stored)
    if record is None:
        return None
    decision_id, qty, price = record.get("decision_id"), record.get("qty"), record.get("price")
    if not isinstance(decision_id, str) or not _number(qty) or not _number(price):
        _log.warning("record %d: not a fill record (no decision_id, qty or price); not indexed", stored.seq)
        return None
    fee = record.get("fee")
    filled_at = record.get("filled_at_ms")
    liquidity = record.get("liquidity")
    return (
        stored.seq,
        decision_id,
        _text(record.get("client_order_id")),
        _text(record.get("side")),
        float(qty),
        float(price),
        float(fee) if _number(fee) else None,
        liquidity if isinstance(liquidity, str) else None,
        filled_at if isinstance(filled_at, int) else None,
    )


def _record_of(stored: StoredRecord) -> dict[str, Any] | None:
    try:
        envelope = json.loads(stored.canonical)
    except (ValueError, UnicodeDecodeError):
        _log.warning("record %d: stored bytes are not JSON; not indexed", stored.seq)
        return None
    record = envelope.get("record") if isinstance(envelope, dict) else None
    return record if isinstance(record, dict) else None


def _timings(record: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    proofs = record.get("proofs")
    guard = proofs.get("guard") if isinstance(proofs, dict) else None
    timings = guard.get("timings_ms") if isinstance(guard, dict) else None
    if not isinstance(timings, dict):
        return ()
    return tuple((str(engine), float(ms)) for engine, ms in timings.items() if _number(ms) and ms >= 0)


def _add_latencies(db: sqlite3.Connection, latency: dict[str, list[float]]) -> None:
    for engine, observations in latency.items():
        buckets = Counter(bisect_left(LATENCY_BUCKETS_MS, ms) for ms in observations)
        db.executemany(
            "INSERT INTO guard_latency_buckets (engine, bucket, count) VALUES (?, ?, ?) "
            "ON CONFLICT (engine, bucket) DO UPDATE SET count = count + excluded.count",
            [(engine, bucket, count) for bucket, count in buckets.items()],
        )
        db.execute(
            "INSERT INTO guard_latency_totals (engine, count, sum_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (engine) DO UPDATE SET count = count + excluded.count, sum_ms = sum_ms + excluded.sum_ms",
            (engine, len(observations), sum(observations)),
        )


def _indexed_decision(row: Sequence[Any]) -> IndexedDecision:
    return IndexedDecision(
        seq=row[0],
        decision_id=row[1],
        created_at=row[2],
        decided_at_ms=row[3],
        symbol=row[4],
        strategy_id=row[5],
        model_id=row[6],
        model_version=row[7],
        verdict=row[8],
        mode=row[9],
        run_id=row[10],
        reasons=tuple(json.loads(row[11])),
        layers=tuple(json.loads(row[12])),
    )


def _strings(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
