"""Random intents and contexts for the property tests, tuned so every limit is sometimes the one that binds.

Each fact is pushed past its limit with a small probability, so in a batch of a few thousand cases every
limit appears alone as the reason (which the mutation check needs) and most cases are admitted or reduced.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import DecisionContext, MarketRegime, VolatilityRegime
from reasoning.limits.prover import LimitsEngine
from reasoning.limits.reference import ReferenceEvaluator
from tests.reasoning.limits.helpers import NOW, make_context

SYMBOLS = {"BTC/USDT:USDT": 50_000.0, "ETH/USDT:USDT": 3_000.0, "SOL/USDT:USDT": 150.0, "DOGE/USDT:USDT": 0.1}


@dataclass(frozen=True, slots=True)
class Case:
    intent: Intent
    context: DecisionContext
    qty: float


def random_case(rng: random.Random) -> Case:
    def rare(p: float = 0.04) -> bool:
        return rng.random() < p

    symbol = rng.choice(list(SYMBOLS))
    mark = SYMBOLS[symbol] * rng.uniform(0.9, 1.1)
    equity = rng.uniform(5_000, 20_000)
    position_notional = rng.uniform(0, 40_000) * (4 if symbol.startswith(("BTC", "ETH")) else 1)
    position = rng.choice([0.0, 1.0, -1.0]) * position_notional / mark
    gross = abs(position) * mark + (rng.uniform(40_000, 80_000) if rare(0.1) else rng.uniform(0, 30_000))
    net = rng.uniform(-1, 1) * gross
    atr = mark * (rng.uniform(0.006, 0.015) if rare(0.15) else rng.uniform(0.0005, 0.006))
    side = rng.choice([Side.BUY, Side.SELL])
    limit_price = mark * (1 + rng.uniform(-0.024, 0.024)) if rare(0.2) else None
    order_price = limit_price if limit_price is not None else mark
    stop_distance = rng.uniform(-1, 8) if rare(0.15) else rng.uniform(0.6, 5.5)
    intent = Intent(
        ts=NOW,
        symbol=symbol,
        side=side,
        strategy_id="property",
        order_type=OrderType.LIMIT if limit_price is not None else OrderType.MARKET,
        limit_price=limit_price,
        leverage=rng.uniform(21, 40) if rare() else rng.choice([3.0, 5.0, 10.0, 15.0, 20.0]) if rare(0.3) else 2.0,
        stop_loss=None if rare(0.05) else order_price - side.sign * stop_distance * atr,
        reduce_only=rare(0.1),
        reverse=rare(0.1),
    )
    context = make_context(
        symbol,
        market={
            "mark_price": mark,
            "atr": atr,
            "last_bar_ts": NOW - (rng.randint(91_000, 300_000) if rare() else rng.randint(0, 60_000)),
            "volatility": rng.uniform(0.0101, 0.02) if rare() else rng.uniform(0.0005, 0.009),
            "volatility_regime": rng.choices(list(VolatilityRegime), weights=[35, 40, 17, 8])[0],
            "regime": rng.choice(list(MarketRegime)),
            "price_change_pct": rng.choice([-1, 1]) * (rng.uniform(0.031, 0.06) if rare() else rng.uniform(0, 0.02)),
            "data_quality_flags": ("gap",) if rare() else (),
        },
        account={
            "equity": equity,
            "used_margin": equity * rng.uniform(0, 0.55),
            "daily_pnl": -rng.uniform(301, 600) if rare() else rng.uniform(-250, 200),
            "drawdown": rng.uniform(0.101, 0.2) if rare() else rng.uniform(0, 0.09),
            "consecutive_losses": rng.randint(5, 8) if rare() else rng.randint(0, 4),
            "open_orders": rng.randint(20, 25) if rare() else rng.randint(0, 15),
            "orders_last_second": rng.randint(5, 7) if rare() else rng.randint(0, 3),
            "orders_today": rng.randint(600, 900) if rare() else rng.randint(0, 300),
            "trades_today": rng.randint(10, 12),
        },
        position={"quantity": position, "leverage": rng.choice([5.0, 10.0]), "entry_price": mark},
        portfolio={
            "gross_exposure": gross,
            "net_exposure": net,
            "open_positions": rng.randint(5, 6) if rare(0.1) else rng.randint(0, 4),
            "max_correlation": rng.uniform(0.86, 1) if rare() else rng.uniform(0, 0.8),
        },
        model={
            "drift_detected": rare(),
            "calibration_error": rng.uniform(0.081, 0.2) if rare() else rng.uniform(0, 0.07),
            "is_fallback": rare(),
        },
        venue={
            "healthy": not rare(0.02),
            "error_rate": rng.uniform(0.21, 0.5) if rare() else rng.uniform(0, 0.1),
            "rate_limit_used": rng.uniform(0.91, 1) if rare() else rng.uniform(0, 0.8),
        },
    )
    scale = 30_000 / mark
    qty = scale * rng.choice([rng.uniform(0.001, 0.3), rng.uniform(0.3, 2.0), rng.uniform(0.001, 0.05)])
    return Case(intent, context, qty)


def counterexample(engine: LimitsEngine, reference: ReferenceEvaluator, case: Case) -> str | None:
    """Why the engine's answer for `case` contradicts the reference evaluator, or None when it agrees."""
    result = engine.evaluate(case.intent, case.context, case.qty)
    if result.denials:
        tiny = case.qty * 1e-6
        for probe in (case.qty, tiny):
            broken = set(reference.violations(case.intent, case.context, probe))
            if not broken & set(result.denials):
                return f"denied {result.denials} but at qty {probe} the reference finds only {sorted(broken)}"
        return None
    max_qty = result.max_qty
    if max_qty is None or not max_qty > 0:
        return f"no denial but max_qty {max_qty}"
    broken_at_max = reference.violations(case.intent, case.context, max_qty)
    if broken_at_max:
        return f"max_qty {max_qty} breaks {broken_at_max}"
    if max_qty >= case.qty and reference.violations(case.intent, case.context, case.qty):
        return f"admitted qty {case.qty} breaks {reference.violations(case.intent, case.context, case.qty)}"
    above = max_qty * (1 + 1e-6) + 1e-12
    if not reference.violations(case.intent, case.context, above):
        return f"max_qty {max_qty} is not the largest: {above} is admissible too"
    return None
