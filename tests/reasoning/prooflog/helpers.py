"""Shared set-up: a small signed SQLite log with decision-like records, and raw SQL tampering."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reasoning.prooflog.canonical import JsonObject
from reasoning.prooflog.keys import load_public_key, public_key_path
from reasoning.prooflog.log import CheckpointPolicy, ProofLog, default_key_path
from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.prooflog.verify import VerificationReport, verify

RECORDS = 40
EVERY = 8


def decision(number: int) -> JsonObject:
    return {
        "intent": {"id": f"intent-{number}", "symbol": "BTCUSDT", "side": "buy", "qty": 0.01 * (number + 1)},
        "verdict": "deny" if number % 3 == 0 else "admit",
        "reasons": ["L1.max_leverage"] if number % 3 == 0 else [],
    }


def build_log(directory: Path, records: int = RECORDS) -> Path:
    db = directory / "proof.db"
    clock = iter(range(1_700_000_000_000_000_000, 1_800_000_000_000_000_000, 1_000_000))
    with ProofLog.open(db, policy=CheckpointPolicy(every_records=EVERY), clock_ns=lambda: next(clock)) as log:
        for number in range(records):
            log.append("decision", decision(number))
    return db


def verify_file(db: Path) -> VerificationReport:
    store = SqliteStore(db, read_only=True)
    try:
        return verify(store, load_public_key(public_key_path(default_key_path(db))))
    finally:
        store.close()


def tamper(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Run SQL as an attacker with the file would: the append-only triggers dropped first."""
    connection = sqlite3.connect(db, isolation_level=None)
    names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for name in names:
        connection.execute(f"DROP TRIGGER {name}")
    for sql, parameters in statements:
        connection.execute(sql, parameters)
    connection.close()
