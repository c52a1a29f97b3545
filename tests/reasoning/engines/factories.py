"""Hand-made decision contexts and intents for the engine tests: a calm, healthy default that no rule
objects to, changed one fact group at a time (`make_context(market={"regime": MarketRegime.ILLIQUID})`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import (
    DecisionContext,
    GuardState,
    MarketFacts,
)
from reasoning.rule_tests import default_context

NOW = 1_717_200_000_000  # 2024-06-01 00:00 UTC
MARK = 60_000.0


def market_facts(**changes: Any) -> MarketFacts:
    return replace(default_context().market, **({"last_bar_ts": NOW - 1_000} | changes))


def make_context(
    *,
    market: dict[str, Any] | None = None,
    account: dict[str, Any] | None = None,
    position: dict[str, Any] | None = None,
    portfolio: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    venue: dict[str, Any] | None = None,
    guard_state: GuardState = GuardState.ACTIVE,
) -> DecisionContext:
    """`rules test`'s calm default (a flat book here), changed one fact group at a time."""
    calm = default_context()
    flat_book = replace(calm.portfolio, gross_exposure=0.0, net_exposure=0.0, open_positions=0, max_correlation=0.0)
    return replace(
        calm,
        now_ts=NOW,
        guard_state=guard_state,
        market=market_facts(**(market or {})),
        account=replace(calm.account, **(account or {})),
        position=replace(calm.position, **(position or {})),
        portfolio=replace(flat_book, **(portfolio or {})),
        model=replace(calm.model, **(model or {})),
        venue=replace(calm.venue, **({"latency_ms": 40.0, "rate_limit_used": 0.1} | (venue or {}))),
    )


def make_intent(
    strategy_id: str = "baseline.ema_cross",
    side: Side = Side.BUY,
    order_type: OrderType = OrderType.LIMIT,
    **changes: Any,
) -> Intent:
    return Intent(
        ts=NOW,
        symbol="BTC/USDT:USDT",
        side=side,
        strategy_id=strategy_id,
        quantity=0.01,
        order_type=order_type,
        limit_price=MARK,
        **changes,
    )
