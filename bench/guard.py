"""Latency of the reasoning guard's decisions, per engine and in total; throughput on 2 cores. Prints JSON.

Contexts are realistic and varied: the calm default of `rules test` with the regime,
position, account and intent changed at random (seeded), so the engines take their
admit, reduce and deny paths in about the proportions a trading day gives them. Each
process runs its own guard (the engines are per process: CLIPS environments per
thread, one Prolog worker per process); the 2-core figure runs two processes at once.

The guard runs as the trading loop runs it: the Z3 limits isolated in a child process
(`load_ruleset(isolate_limits=True)`), working on the other core while Datalog, CLIPS
and Prolog run. The same decisions with Z3 in process are the baseline, measured in
the same run. Latency is measured with the cyclic GC paused, as the trading loop runs
the guard, and with it running.

Run: `python bench/guard.py` (part of `make bench`).
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import platform
import random
import statistics
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import DecisionContext, MarketRegime, VolatilityRegime
from reasoning.guard import Guard, GuardConfig
from reasoning.rule_tests import default_context
from reasoning.rules import RuleSet, load_ruleset

DECISIONS = 3_000
WARMUP = 200
THROUGHPUT_SECONDS = 5.0
STRATEGIES = ("baseline.ema_cross", "mean_reversion", "momentum_breakout", "market_making")


def scenario(rng: random.Random, number: int) -> tuple[Intent, DecisionContext, float]:
    base = default_context()
    mark = base.market.mark_price * (1.0 + rng.uniform(-0.02, 0.02))
    position = rng.choice([0.0, 0.0, 0.01, -0.01, 0.05])
    market = replace(
        base.market,
        mark_price=mark,
        atr=mark * rng.uniform(0.0005, 0.003),
        volatility_regime=rng.choices(list(VolatilityRegime), weights=[1, 8, 2, 0.3])[0],
        regime=rng.choices(list(MarketRegime), weights=[4, 4, 1, 0.3])[0],
        spread_bps=rng.uniform(0.5, 6.0),
        breakout_confirmed=rng.random() < 0.3,
        price_change_pct=rng.gauss(0.0, 0.002),
    )
    account = replace(
        base.account,
        daily_pnl=rng.uniform(-350.0, 200.0),
        drawdown=rng.uniform(0.0, 0.12),
        consecutive_losses=rng.randint(0, 6),
        orders_last_second=rng.randint(0, 3),
    )
    context = replace(
        base,
        market=market,
        account=account,
        position=replace(base.position, quantity=position, entry_price=mark if position else 0.0),
    )
    side = rng.choice([Side.BUY, Side.SELL])
    limit = rng.random() < 0.4
    stop = mark - side.sign * market.atr * rng.uniform(0.3, 8.0)
    intent = Intent(
        ts=context.now_ts + number,
        symbol=market.symbol,
        side=side,
        strategy_id=rng.choice(STRATEGIES),
        notional=rng.uniform(100.0, 3_000.0),
        order_type=OrderType.LIMIT if limit else OrderType.MARKET,
        limit_price=round(mark * (1.0 - side.sign * 0.0002), 1) if limit else None,
        stop_loss=stop if rng.random() < 0.9 else None,
        reduce_only=bool(position) and rng.random() < 0.15 and position * side.sign < 0,
    )
    price = intent.limit_price or mark
    return intent, context, intent.requested_qty(price, position) if not intent.reduce_only else abs(position)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 4),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 4),
        "max_ms": round(ordered[-1], 4),
    }


def latency(gc_paused: bool, isolated: bool = True) -> dict[str, Any]:
    """Per-decision latency; with the cyclic GC paused as the trading loop runs the guard, or running."""
    ruleset = load_ruleset(isolate_limits=isolated)
    if gc_paused:
        gc.disable()
    try:
        return {"z3_isolated": isolated, **_latency(ruleset)}
    finally:
        gc.enable()
        ruleset.close()


def _latency(ruleset: RuleSet) -> dict[str, Any]:
    guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig())
    rng = random.Random(7)
    scenarios = [scenario(rng, n) for n in range(DECISIONS + WARMUP)]
    totals: list[float] = []
    per_engine: dict[str, list[float]] = {}
    verdicts: Counter[str] = Counter()
    for number, (intent, context, quantity) in enumerate(scenarios):
        started = time.perf_counter()
        decision = guard.decide(intent, context, quantity)
        elapsed = (time.perf_counter() - started) * 1000.0
        if number < WARMUP:
            continue
        totals.append(elapsed)
        verdicts[decision.verdict.value] += 1
        for name, ms in decision.proofs["guard"].get("timings_ms", {}).items():
            per_engine.setdefault(name, []).append(ms)
    return {
        "decisions": len(totals),
        "verdicts": dict(verdicts),
        "total": percentiles(totals),
        "per_engine": {name: percentiles(samples) for name, samples in sorted(per_engine.items())},
        "goal_total_p99_ms": 2.0,
    }


def _throughput_worker(seed: int, isolated: bool) -> int:
    ruleset = load_ruleset(isolate_limits=isolated)
    guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig())
    rng = random.Random(seed)
    scenarios = [scenario(rng, n) for n in range(500)]
    done = 0
    deadline = time.perf_counter() + THROUGHPUT_SECONDS
    while time.perf_counter() < deadline:
        intent, context, quantity = scenarios[done % len(scenarios)]
        guard.decide(replace(intent, ts=intent.ts + done), context, quantity)
        done += 1
    ruleset.close()
    return done


def _report_throughput(seed: int, isolated: bool, results: Any) -> None:
    results.put(_throughput_worker(seed, isolated))


def throughput(processes: int, isolated: bool) -> dict[str, Any]:
    """Decisions per second of `processes` guards at once (each isolated guard has its own Z3 child)."""
    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    # plain processes, not a Pool: a Pool's workers are daemons, which may not start the Z3 child
    workers = [context.Process(target=_report_throughput, args=(seed, isolated, results)) for seed in range(processes)]
    for worker in workers:
        worker.start()
    counts = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return {
        "processes": processes,
        "z3_isolated": isolated,
        "decisions_per_second": round(sum(counts) / THROUGHPUT_SECONDS),
    }


def main() -> None:
    started = time.perf_counter()
    report = {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "latency_gc_paused": latency(gc_paused=True),
        "latency_gc_running": latency(gc_paused=False),
        "baseline_z3_in_process_gc_paused": latency(gc_paused=True, isolated=False),
        "throughput_1_process": throughput(1, isolated=True),
        "throughput_2_processes": throughput(2, isolated=True),
        "throughput_2_processes_z3_in_process": throughput(2, isolated=False),
    }
    report["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
