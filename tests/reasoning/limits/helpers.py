"""Builders for limit-engine tests: a calm, healthy context and a plain intent, each overridable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
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

LIMITS_FILE = Path(__file__).resolve().parents[3] / "rules" / "limits.toml"
BTC = "BTC/USDT:USDT"
NOW = 1_700_000_000_000


def make_context(
    symbol: str = BTC,
    *,
    market: dict[str, Any] | None = None,
    account: dict[str, Any] | None = None,
    position: dict[str, Any] | None = None,
    portfolio: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    venue: dict[str, Any] | None = None,
    now_ts: int = NOW,
) -> DecisionContext:
    """BTC at 50,000 with ATR 100, 10,000 USDT equity, flat, nothing near any limit."""
    base_market = MarketFacts(
        symbol=symbol,
        mark_price=50_000.0,
        last_bar_ts=NOW - 1_000,
        atr=100.0,
        volatility=0.002,
        volatility_regime=VolatilityRegime.NORMAL,
        regime=MarketRegime.RANGING,
        spread_bps=1.0,
        spread_widening=False,
        breakout_confirmed=False,
        price_change_pct=0.001,
        funding_rate=0.0001,
    )
    base_account = AccountFacts(
        equity=10_000.0,
        wallet_balance=10_000.0,
        available_balance=10_000.0,
        used_margin=0.0,
        daily_pnl=0.0,
        drawdown=0.0,
        consecutive_losses=0,
        open_orders=0,
        orders_last_second=0,
        orders_today=10,
        trades_today=5,
    )
    base_position = PositionFacts(quantity=0.0, entry_price=0.0, leverage=10.0, liquidation_price=None)
    base_portfolio = PortfolioFacts(gross_exposure=0.0, net_exposure=0.0, open_positions=0, max_correlation=0.0)
    base_model = ModelFacts(model_id="m", drift_detected=False, calibration_error=0.02, is_fallback=False)
    base_venue = VenueFacts(venue="simulated", healthy=True, error_rate=0.0, latency_ms=20.0, rate_limit_used=0.1)
    return DecisionContext(
        now_ts=now_ts,
        guard_state=GuardState.ACTIVE,
        market=replace(base_market, **(market or {})),
        account=replace(base_account, **(account or {})),
        position=replace(base_position, **(position or {})),
        portfolio=replace(base_portfolio, **(portfolio or {})),
        model=replace(base_model, **(model or {})),
        venue=replace(base_venue, **(venue or {})),
    )


def make_intent(side: Side = Side.BUY, symbol: str = BTC, **fields: Any) -> Intent:
    """A market buy with a stop 2 ATR (200) below the 50,000 mark and 10x leverage."""
    defaults: dict[str, Any] = {"order_type": OrderType.MARKET, "leverage": 10.0}
    if "stop_loss" not in fields:
        defaults["stop_loss"] = 50_000.0 - side.sign * 200.0
    defaults.update(fields)
    return Intent(ts=NOW, symbol=symbol, side=side, strategy_id="test", **defaults)
