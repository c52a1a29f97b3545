"""Latency of the auditors' API (api/) on a big proof log; prints JSON.

Builds a log of `--records` records (default 1,000,000) in a scratch directory it deletes afterwards: decision
records in the trading loop's format, copied from the real guard decisions of the example backtest in `runs/`
(intent, context, four engine proofs; ~6 KB of canonical JSON each) with fresh ids and times, plus a fill after
each admitted one; appended with `ProofLog.append_many` in batches of 1,000, synchronous=NORMAL, a checkpoint
every 10,000 records. Then it builds the API's decision index (timed: the one-off cost of pointing `cryptoscalp
serve` at an existing log), starts the app under uvicorn on 127.0.0.1, and times, over HTTP with a keep-alive
client, `--requests` sequential requests each of

- `GET /v1/decisions/{id}` (the full record with its proofs and fills) and
- `GET /v1/decisions/{id}/inclusion-proof` (Merkle audit path to the latest signed checkpoint),

for ids drawn at random over the whole log. Goal (issue): p99 < 20 ms on 1,000,000 records.

Run: `python bench/api.py [--records N] [--requests N] [--dir DIR]`. Iterate with `--records 20000`; the
1,000,000-record log takes ~7 GB of disk and several minutes to build and index.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from api.state import StateDb
from api.tokens import Role, TokenStore
from reasoning.engine import layer_of
from reasoning.prooflog.keys import load_or_create_signing_key
from reasoning.prooflog.log import CheckpointPolicy, ProofLog, default_key_path
from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.rules import RULES_DIR

EXAMPLE_RUN = Path(__file__).resolve().parents[1] / "runs" / "20261125T051947-d2e6a468" / "decisions.jsonl.gz"
TEMPLATES = 2_000
BATCH = 1_000
FIRST_DECISION_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def templates() -> list[dict[str, Any]]:
    """Real guard decisions of the example run, in the trading loop's `decision` record format."""
    found = []
    with gzip.open(EXAMPLE_RUN, "rt", encoding="utf-8") as lines:
        for line in lines:
            raw = json.loads(line)
            raw.pop("detail", None)
            intent = raw["intent"]
            raw |= {
                "run_id": "bench",
                "mode": "backtest",
                "symbol": intent["symbol"],
                "strategy_id": intent["strategy_id"],
                "model_id": intent["model_id"],
                "model_version": intent["model_version"],
                "layers": sorted({layer_of(reason) for reason in raw["reasons"]}),
                "sizing": None,
                "orders": [],
            }
            found.append(raw)
            if len(found) == TEMPLATES:
                return found
    return found


def entries(start: int, end: int, pool: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Decisions number start..end-1 (one minute apart), each admitted one followed by its fill."""
    batch: list[tuple[str, dict[str, Any]]] = []
    for number in range(start, end):
        template = pool[number % len(pool)]
        decision_id = f"{number:016x}"
        decided_at = FIRST_DECISION_MS + number * 60_000
        record = template | {
            "decision_id": decision_id,
            "decided_at_ms": decided_at,
            "intent": template["intent"] | {"intent_id": decision_id, "ts": decided_at},
        }
        batch.append(("decision", record))
        if record["verdict"] == "admit":
            fill = {
                "decision_id": decision_id,
                "client_order_id": f"co-{decision_id}",
                "symbol": record["symbol"],
                "side": record["intent"]["side"],
                "qty": record["requested_qty"],
                "price": record["context"]["market"]["mark_price"],
                "fee": 0.05,
                "liquidity": "taker",
                "filled_at_ms": decided_at + 60_000,
            }
            batch.append(("fill", fill))
    return batch


def build_log(db: Path, decisions: int) -> tuple[float, list[str]]:
    """Seconds spent appending, and the decision ids."""
    pool = templates()
    key = load_or_create_signing_key(default_key_path(db))
    store = SqliteStore(db, synchronous="NORMAL")
    appending = 0.0
    with ProofLog(store, key, CheckpointPolicy(every_records=10_000)) as log:
        for start in range(0, decisions, BATCH):
            batch = entries(start, min(decisions, start + BATCH), pool)
            started = time.perf_counter()
            log.append_many(batch)
            appending += time.perf_counter() - started
    return appending, [f"{number:016x}" for number in range(decisions)]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        listener.close()


def timed(client: httpx.Client, paths: list[str]) -> dict[str, float]:
    for path in paths[:50]:  # warm-up: first connections, page cache of the index's upper levels
        client.get(path).raise_for_status()
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1e3)
        response.raise_for_status()
    samples.sort()
    return {
        "requests": len(samples),
        "p50_ms": round(samples[len(samples) // 2], 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
        "max_ms": round(samples[-1], 3),
    }


def run(directory: Path, decisions: int, requests: int) -> dict[str, Any]:
    db = directory / "prooflog.sqlite3"
    build_seconds, ids = build_log(db, decisions)
    settings = ApiSettings(
        proof_log=str(db),
        state_db=directory / "api-state.sqlite3",
        rules_dir=RULES_DIR,
        kill_switch_file=directory / "halt.json",
    )
    state = StateDb(settings.state_db)
    token = TokenStore(state).create(Role.AUDITOR, "bench")[1]
    state.close()
    app = create_app(settings)
    started = time.perf_counter()
    log_records = app.state.services.index.catch_up()
    index_seconds = time.perf_counter() - started
    rng = random.Random(11)
    chosen = [rng.choice(ids) for _ in range(requests)]
    with serving(app) as url, httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
        detail = timed(client, [f"/v1/decisions/{decision_id}" for decision_id in chosen])
        inclusion = timed(client, [f"/v1/decisions/{decision_id}/inclusion-proof" for decision_id in chosen])
        sample = client.get(f"/v1/decisions/{chosen[0]}").json()
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "decisions": decisions,
        "log_records": log_records,
        "record_bytes_example": len(sample["canonical"]),
        "log_megabytes": round(sum(path.stat().st_size for path in directory.glob("prooflog.sqlite3*")) / 1e6),
        "build_seconds_append_many_1000_normal": round(build_seconds, 1),
        "index_build_seconds": round(index_seconds, 1),
        "get_decision": detail,
        "get_inclusion_proof": inclusion,
        "goal_p99_ms": 20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="Decisions in the log (fills come on top).")
    parser.add_argument("--requests", type=int, default=2_000, help="Timed requests per endpoint.")
    parser.add_argument("--dir", type=Path, default=None, help="Build here and keep it (default: a scratch dir).")
    arguments = parser.parse_args()
    if arguments.dir is not None:
        arguments.dir.mkdir(parents=True, exist_ok=True)
        print(json.dumps(run(arguments.dir, arguments.records, arguments.requests), indent=2))
        return
    scratch = Path(tempfile.mkdtemp(prefix="api-bench-"))
    try:
        print(json.dumps(run(scratch, arguments.records, arguments.requests), indent=2))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
