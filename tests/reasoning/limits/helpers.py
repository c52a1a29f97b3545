"""Builders for limit-engine tests: a calm, healthy context and a plain intent, each overridable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import (
    DecisionContext,
    MarketRegime,
    PortfolioFacts,
)
from reasoning.rule_tests import default_context

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
    calm = default_context()  # `rules test`'s calm default, with this file's numbers
    base_market = replace(
        calm.market,
        symbol=symbol,
        mark_price=50_000.0,
        last_bar_ts=NOW - 1_000,
        atr=100.0,
        volatility=0.002,
        regime=MarketRegime.RANGING,
        spread_bps=1.0,
    )
    base_account = replace(
        calm.account,
        available_balance=10_000.0,
        used_margin=0.0,
        daily_pnl=0.0,
        drawdown=0.0,
        open_orders=0,
        orders_today=10,
        trades_today=5,
    )
    flat_book = PortfolioFacts(gross_exposure=0.0, net_exposure=0.0, open_positions=0, max_correlation=0.0)
    return replace(
        calm,
        now_ts=now_ts,
        region="",
        market=replace(base_market, **(market or {})),
        account=replace(base_account, **(account or {})),
        position=replace(calm.position, **({"leverage": 10.0} | (position or {}))),
        portfolio=replace(flat_book, **(portfolio or {})),
        model=replace(calm.model, **({"model_id": "m", "calibration_error": 0.02} | (model or {}))),
        venue=replace(calm.venue, **({"rate_limit_used": 0.1} | (venue or {}))),
    )


def make_intent(side: Side = Side.BUY, symbol: str = BTC, **fields: Any) -> Intent:
    """A market buy with a stop 2 ATR (200) below the 50,000 mark and 10x leverage."""
    defaults: dict[str, Any] = {"order_type": OrderType.MARKET, "leverage": 10.0}
    if "stop_loss" not in fields:
        defaults["stop_loss"] = 50_000.0 - side.sign * 200.0
    defaults.update(fields)
    return Intent(ts=NOW, symbol=symbol, side=side, strategy_id="test", **defaults)
