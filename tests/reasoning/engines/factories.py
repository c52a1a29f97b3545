"""Hand-made decision contexts and intents for the engine tests: a calm, healthy default that no rule
objects to, changed one fact group at a time (`make_context(market={"regime": MarketRegime.ILLIQUID})`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import (
    AccountFacts,
    DecisionContext,
    GuardState,
    MarketFacts,
    MarketRegime,
    ModelFacts,
    PortfolioFacts,
    PositionFacts,
    VenueFacts,
    VolatilityRegime,
)

NOW = 1_717_200_000_000  # 2024-06-01 00:00 UTC
MARK = 60_000.0


def market_facts(**changes: Any) -> MarketFacts:
    calm = MarketFacts(
        symbol="BTC/USDT:USDT",
        mark_price=MARK,
        last_bar_ts=NOW - 1_000,
        atr=120.0,
        volatility=0.0008,
        volatility_regime=VolatilityRegime.NORMAL,
        regime=MarketRegime.TRENDING,
        spread_bps=1.5,
        spread_widening=False,
        breakout_confirmed=False,
        price_change_pct=0.001,
        funding_rate=0.0001,
    )
    return replace(calm, **changes)


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
    return DecisionContext(
        now_ts=NOW,
        guard_state=guard_state,
        market=market_facts(**(market or {})),
        account=replace(
            AccountFacts(
                equity=10_000.0,
                wallet_balance=10_000.0,
                available_balance=8_000.0,
                used_margin=2_000.0,
                daily_pnl=50.0,
                drawdown=0.01,
                consecutive_losses=0,
                open_orders=1,
                orders_last_second=0,
                orders_today=40,
                trades_today=12,
            ),
            **(account or {}),
        ),
        position=replace(
            PositionFacts(quantity=0.0, entry_price=0.0, leverage=3.0, liquidation_price=None), **(position or {})
        ),
        portfolio=replace(
            PortfolioFacts(gross_exposure=0.0, net_exposure=0.0, open_positions=0, max_correlation=0.0),
            **(portfolio or {}),
        ),
        model=replace(
            ModelFacts(model_id="", drift_detected=False, calibration_error=0.0, is_fallback=False), **(model or {})
        ),
        venue=replace(
            VenueFacts(venue="simulated", healthy=True, error_rate=0.0, latency_ms=40.0, rate_limit_used=0.1),
            **(venue or {}),
        ),
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
