"""Per-decision latency of the CLIPS (rules/expert.clp) and Prolog (rules/strategies.pl) engines; prints JSON.

A realistic context: a trending, normal-volatility BTC market with a data-quality flag on the window
and an open long, judged for a mix of intents (all four strategies, market and limit orders, entries
and reductions), so rules both fire and stay silent. p50/p99 over DECISIONS decisions per engine, after
a warm-up, garbage collector paused as the trading loop runs it. The Prolog figure includes the hand-off
to and from its worker thread.

Run: `python bench/engines.py`.
"""

from __future__ import annotations

import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import DecisionContext, MarketRegime
from reasoning.engine import Engine
from reasoning.expert import ClipsEngine
from reasoning.strategy_rules import PrologEngine
from tests.reasoning.engines.factories import MARK, make_context, make_intent

DECISIONS = 5_000
WARM_UP = 500


def workload() -> list[tuple[Intent, DecisionContext, float]]:
    context = make_context(
        market={"regime": MarketRegime.TRENDING, "spread_bps": 2.5, "funding_rate": 0.0004},
        position={"quantity": 0.05, "entry_price": MARK - 150.0},
        model={"model_id": "gbm-v7"},
    )
    flagged = make_context(market={"data_quality_flags": ("ffill",)}, position={"quantity": 0.05})
    intents = [
        (make_intent("baseline.ema_cross", order_type=OrderType.MARKET, stop_loss=MARK - 240.0), context, 0.02),
        (make_intent("market_making", order_type=OrderType.LIMIT, side=Side.SELL), context, 0.01),
        (make_intent("mean_reversion", order_type=OrderType.LIMIT, confidence=0.71, model_id="gbm-v7"), context, 0.02),
        (make_intent("momentum_breakout", order_type=OrderType.MARKET), flagged, 0.02),
        (make_intent("baseline.ema_cross", side=Side.SELL, reduce_only=True), context, 0.05),
    ]
    return [intents[i % len(intents)] for i in range(DECISIONS)]


def latencies_us(engine: Engine, decisions: list[tuple[Intent, DecisionContext, float]]) -> list[float]:
    for intent, context, quantity in decisions[:WARM_UP]:
        engine.evaluate(intent, context, quantity)
    timings: list[float] = []
    gc.disable()
    try:
        for intent, context, quantity in decisions:
            started = time.perf_counter()
            engine.evaluate(intent, context, quantity)
            timings.append((time.perf_counter() - started) * 1e6)
    finally:
        gc.enable()
    return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50_us": round(statistics.median(ordered), 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1], 1),
        "max_us": round(ordered[-1], 1),
    }


def main() -> None:
    decisions = workload()
    report = {
        "decisions": DECISIONS,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "clips": summary(latencies_us(ClipsEngine(), decisions)),
        "prolog": summary(latencies_us(PrologEngine(), decisions)),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
