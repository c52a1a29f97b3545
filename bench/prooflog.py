"""Speed of the proof log (reasoning.prooflog); prints JSON.

- append throughput on SQLite with decision-sized records (~2.4 KB canonical JSON with nested per-engine
  proofs), through `append_many` in batches of 1,000, with synchronous=FULL and NORMAL, and one record per
  transaction (FULL) as the trading loop would append without batching;
- canonicalization per record, timed apart: the log's `canonical_json` (orjson after an exact-float pass), the
  `rfc8785` reference package as the baseline it replaced on the hot path, and the share of the FULL append
  time per record that canonicalization takes;
- the same appends on PostgreSQL 15 (a throwaway server started here, fsync on), when its binaries are
  installed;
- inclusion proof (build from the store + verify) p50/p99 for random records on a log of `--records` records
  (default 1,000,000, built with append_many in batches of 5,000 and synchronous=NORMAL, checkpoint every
  10,000; its build rate counts the time in append_many, not the making of the records);
- full verification time of that log.

Run: `python bench/prooflog.py [--records N] [--dir DIR]`. The 1M log takes a few GB of disk and minutes; the
append and canonicalization figures do not depend on N (a small N, e.g. 20000, is enough to see them).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rfc8785

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reasoning.prooflog.canonical import canonical_json
from reasoning.prooflog.keys import load_public_key, public_key_path
from reasoning.prooflog.log import CheckpointPolicy, ProofLog, default_key_path
from reasoning.prooflog.opening import open_log
from reasoning.prooflog.pg_server import TemporaryPostgres, find_server_binaries
from reasoning.prooflog.proofs import verify_inclusion
from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.prooflog.verify import verify

BATCH = 1_000


def decision_record(number: int, rng: random.Random) -> dict[str, Any]:
    """A decision as the guard will log it: intent, context/rule hashes, four engine proofs, sizing, orders."""
    return {
        "intent": {
            "id": f"intent-{number:012d}",
            "symbol": rng.choice(["BTCUSDT", "ETHUSDT", "SOLUSDT"]),
            "side": rng.choice(["buy", "sell"]),
            "qty": round(rng.uniform(0.001, 2.0), 6),
            "limit_price": round(rng.uniform(20_000, 70_000), 2),
            "leverage": rng.choice([2, 3, 5, 10]),
            "strategy": "mean_reversion",
            "model": {"id": "ensemble", "version": "2024.05.1", "confidence": round(rng.random(), 4)},
            "rationale": {f"feature_{i}": round(rng.gauss(0, 1), 6) for i in range(12)},
        },
        "context_hash": f"{rng.getrandbits(256):064x}",
        "ruleset_hash": f"{rng.getrandbits(256):064x}",
        "verdict": rng.choice(["admit", "deny", "reduce"]),
        "reasons": rng.sample(["L1.max_leverage", "L3.daily_loss", "L4.volatility", "L6.stale_data"], 2),
        "proofs": {
            "datalog": [
                {"fact": f"deny(intent, r{i})", "rule": f"policy.mg:{10 + i}",
                 "body": [{"fact": f"mark_price(BTCUSDT, {rng.uniform(2e4, 7e4):.2f})"}, {"fact": "regime(high_vol)"}]}
                for i in range(6)
            ],
            "clips": [f"expert.clp:rule-{i}" for i in range(8)],
            "prolog": {"strategy": "mean_reversion", "trace": [f"precondition_{i}(ok)" for i in range(8)]},
            "z3": {"result": "sat", "max_qty": round(rng.uniform(0, 2), 6), "unsat_core": ["L1.max_notional"],
                   "limits": {f"limit_{i}": round(rng.uniform(0, 1e5), 2) for i in range(10)}},
        },
        "sizing": {"method": "kelly", "inputs": {"edge": 0.012, "variance": 0.0004}, "qty": 0.5},
        "orders": [{"client_id": f"o-{number}", "type": "limit", "price": 65000.5, "qty": 0.5, "reduce_only": False}],
    }  # fmt: skip


def records(count: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    return [("decision", decision_record(n, rng)) for n in range(count)]


def append_rate(directory: Path, name: str, entries: list[tuple[str, dict[str, Any]]], synchronous: str,
                batch: int) -> float:  # fmt: skip
    with ProofLog.open(directory / f"{name}.db", synchronous=synchronous) as log:  # type: ignore[arg-type]
        started = time.perf_counter()
        for start in range(0, len(entries), batch):
            log.append_many(entries[start : start + batch])
        elapsed = time.perf_counter() - started
    return len(entries) / elapsed


def postgres_rates(directory: Path, entries: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Append rates on a throwaway PostgreSQL 15 server with fsync on (durable commits, as in production),
    or why there are none (no server binaries)."""
    binaries = find_server_binaries()
    if binaries is None:
        return {"skipped": "PostgreSQL server binaries not installed (make install installs postgresql-15)"}
    with TemporaryPostgres(binaries, durable=True) as server:
        key = directory / "postgres.key"
        rates: dict[str, Any] = {}
        for label, batch, count in (("append_many_1000", BATCH, len(entries)), ("single_append", 1, 1_000)):
            with open_log(server.create_database(), key_path=key) as log:
                started = time.perf_counter()
                for start in range(0, count, batch):
                    log.append_many(entries[start : start + batch])
                rates[label] = round(count / (time.perf_counter() - started))
        return {"server": str(binaries), "fsync": True, "append_records_per_s": rates}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def build_big_log(db: Path, count: int) -> float:
    """Seconds spent in append_many (making the records in between is not counted)."""
    policy = CheckpointPolicy(every_records=10_000)
    appending = 0.0
    with ProofLog.open(db, policy=policy, synchronous="NORMAL") as log:
        rng = random.Random(7)
        for start in range(0, count, 5_000):
            batch = [("decision", decision_record(n, rng)) for n in range(start, min(count, start + 5_000))]
            started = time.perf_counter()
            log.append_many(batch)
            appending += time.perf_counter() - started
    return appending


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    arguments = parser.parse_args()
    if arguments.dir is not None:
        arguments.dir.mkdir(parents=True, exist_ok=True)
        run(arguments.dir, arguments.records)
        return
    # the 1,000,000-record log takes about 4 GB: a scratch directory, removed afterwards
    with tempfile.TemporaryDirectory(prefix="prooflog-bench-") as scratch:
        run(Path(scratch), arguments.records)


def canonicalization_us(canonicalize: Callable[[Any], bytes], entries: list[tuple[str, dict[str, Any]]]) -> float:
    started = time.perf_counter()
    for _, record in entries:
        canonicalize(record)
    return (time.perf_counter() - started) / len(entries) * 1e6


def run(directory: Path, record_count: int) -> None:
    sample = records(20_000, seed=1)
    sizes = [len(canonical_json(record)) for _, record in sample[:1000]]
    canonical_us = canonicalization_us(canonical_json, sample)
    reference_us = canonicalization_us(rfc8785.dumps, sample[:2_000])  # ~200 µs each: a tenth of the sample
    full_rate = append_rate(directory, "full", sample, "FULL", BATCH)
    normal_rate = append_rate(directory, "normal", sample, "NORMAL", BATCH)

    result: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "record_bytes_mean": round(statistics.mean(sizes)),
        "canonical_json_us_per_record": round(canonical_us, 1),
        "rfc8785_reference_us_per_record": round(reference_us, 1),
        "canonical_json_speed_up_over_reference": round(reference_us / canonical_us, 1),
        "canonical_json_equals_reference": all(
            canonical_json(record) == rfc8785.dumps(record) for _, record in sample[:2_000]
        ),
        "canonical_json_share_of_append_full": round(canonical_us * full_rate / 1e6, 2),
        "append_records_per_s": {
            "append_many_1000_synchronous_full": round(full_rate),
            "append_many_1000_synchronous_normal": round(normal_rate),
            "single_append_synchronous_full": round(append_rate(directory, "single", sample[:1000], "FULL", 1)),
        },
        "postgresql": postgres_rates(directory, sample),
    }

    db = directory / "big.db"
    build_seconds = build_big_log(db, record_count)
    store = SqliteStore(db, read_only=True)
    public_key = load_public_key(public_key_path(default_key_path(db)))
    checkpoint = store.latest_checkpoint()
    assert checkpoint is not None
    log = ProofLog(store, signing_key=_unused_key(), policy=CheckpointPolicy(every_records=None, on_close=False))
    rng = random.Random(3)
    timings = []
    for _ in range(5_000):
        seq = rng.randrange(checkpoint.tree_size)
        started = time.perf_counter()
        proof = log.inclusion_proof(seq, checkpoint.tree_size)
        ok = verify_inclusion(seq, checkpoint.tree_size, proof.leaf_hash, proof.audit_path, checkpoint.root_hash)
        timings.append((time.perf_counter() - started) * 1e3)
        assert ok
    started = time.perf_counter()
    report = verify(store, public_key)
    verify_seconds = time.perf_counter() - started
    store.close()
    result["big_log"] = {
        "records": record_count,
        "build_seconds_append_many_5000_normal": round(build_seconds, 1),
        "build_records_per_s": round(record_count / build_seconds),
        "db_megabytes": round(db.stat().st_size / 1e6),
        "inclusion_proof_build_and_verify_ms": {
            "p50": round(statistics.median(timings), 3),
            "p99": round(percentile(timings, 0.99), 3),
        },
        "verify_seconds": round(verify_seconds, 1),
        "verify_ok": report.ok,
    }
    print(json.dumps(result, indent=2))


def _unused_key() -> Any:
    # proofs need no signing; a throwaway key keeps the read-only log from touching the real one
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.generate()


if __name__ == "__main__":
    main()
