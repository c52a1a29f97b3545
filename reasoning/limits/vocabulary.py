"""The vocabulary of `limits.toml`: every name an expression may use, its meaning, unit and source.

`qty` — the order quantity in base units — is the only unknown; Z3 solves for it. Every other name is
a per-decision constant computed once from (intent, context) by `decision_constants`, or a quantity
*derived* from `qty` and those constants by a definition written in the limits language itself
(`DERIVED`), so it compiles to Z3 exactly like a risk officer's expression and stays linear in `qty`
(piecewise, through `abs`).

Sign conventions: quantities are signed (> 0 long); `side` is +1 for a buy, -1 for a sell.

`qty` is the whole venue order, as the guard judges it. A stop-and-reverse order (`intent.reverse`)
is no different from any other order against the position: the part up to |position| closes it and
only the rest opens new risk, so `close_qty` (kept for rule files that name it) is 0 and
`order_qty = qty`.

Risk growth: an order grows risk when |position_after| > |position| or the position flips sign, and
never when it is `reduce_only`. For a fixed decision that is exactly `qty > growth_threshold`
(`growth_threshold` = |position| for an opposite-side order, else 0), which is how
`applies_to = "growth"` limits are switched on and off inside Z3.

Approximation (documented for auditors): the liquidation distance of the position after the order
depends on its average entry price, which is nonlinear in `qty`. `liquidation_distance_atr` is
computed as if the whole position were opened at `order_price` with `leverage` under isolated margin
and the maintenance-margin rate `MAINTENANCE_MARGIN_RATE`: exact for an order that opens a position
from flat, an estimate when adding to one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.intent import Intent
from reasoning.context import DecisionContext, MarketRegime, VolatilityRegime
from reasoning.limits.errors import LimitsContextError
from reasoning.limits.ir import BASE, DIMENSIONLESS, FLAG, MILLISECONDS, PRICE, USDT, Unit

# Binance USDT-M tier-1 maintenance-margin rate for the majors (0.4 %); the conservative end for alts.
MAINTENANCE_MARGIN_RATE = 0.004


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    unit: Unit
    meaning: str
    source: str  # how it is computed from (intent, context), for auditors


@dataclass(frozen=True, slots=True)
class Derived:
    name: str
    unit: Unit
    meaning: str
    definition: str  # an expression in the limits language over `qty`, constants and earlier derived names


QTY = Variable("qty", BASE, "order quantity to judge (the Z3 unknown)", "solved for; > 0")


def _flag(value: bool) -> float:
    return 1.0 if value else 0.0


_CONSTANT_LIST: tuple[Variable, ...] = (
    Variable("side", DIMENSIONLESS, "+1 buy, -1 sell", "intent.side.sign"),
    Variable("position", BASE, "current signed position", "context.position.quantity"),
    Variable(
        "close_qty",
        BASE,
        "part of the order that closes an opposite position (stop-and-reverse)",
        "always 0: qty is the whole order, the close of a reversal included",
    ),
    Variable("mark_price", PRICE, "mark price", "context.market.mark_price"),
    Variable(
        "order_price", PRICE, "price the order is expected to fill at", "intent.limit_price if set, else mark_price"
    ),
    Variable(
        "leverage",
        DIMENSIONLESS,
        "leverage of the position after the order",
        "intent.leverage if set, else context.position.leverage",
    ),
    Variable("reduce_only", FLAG, "1 for a reduce-only order", "intent.reduce_only"),
    Variable(
        "growth_threshold",
        BASE,
        "qty above which the order grows risk",
        "|position| for an opposite-side order, else 0",
    ),
    Variable("has_stop", FLAG, "1 if the intent carries a stop-loss", "intent.stop_loss is not None"),
    Variable(
        "stop_distance_atr",
        DIMENSIONLESS,
        "stop distance on the protective side, in ATRs (< 0: wrong side)",
        "side * (order_price - intent.stop_loss) / atr; 0 without a stop",
    ),
    Variable(
        "liquidation_distance_atr",
        DIMENSIONLESS,
        "distance from order price to liquidation, in ATRs",
        "order_price * (1 / leverage - MAINTENANCE_MARGIN_RATE) / atr (see module note)",
    ),
    Variable("equity", USDT, "account equity", "context.account.equity"),
    Variable("used_margin", USDT, "initial margin in use", "context.account.used_margin"),
    Variable("daily_pnl", USDT, "P&L since 00:00 UTC", "context.account.daily_pnl"),
    Variable("drawdown", DIMENSIONLESS, "drawdown from the equity peak (fraction)", "context.account.drawdown"),
    Variable("consecutive_losses", DIMENSIONLESS, "losing trades in a row", "context.account.consecutive_losses"),
    Variable("open_orders", DIMENSIONLESS, "open orders (count)", "context.account.open_orders"),
    Variable(
        "orders_last_second", DIMENSIONLESS, "orders sent in the last second", "context.account.orders_last_second"
    ),
    Variable(
        "order_to_trade_ratio",
        DIMENSIONLESS,
        "today's orders, this one included, per trade",
        "(orders_today + 1) / max(trades_today, 1)",
    ),
    Variable("gross_exposure", USDT, "Σ |notional| of all positions", "context.portfolio.gross_exposure"),
    Variable("net_exposure", USDT, "Σ signed notional of all positions", "context.portfolio.net_exposure"),
    Variable("open_positions", DIMENSIONLESS, "positions open (count)", "context.portfolio.open_positions"),
    Variable(
        "max_correlation",
        DIMENSIONLESS,
        "largest return correlation with another held symbol",
        "context.portfolio.max_correlation",
    ),
    Variable("atr", PRICE, "average true range (14 bars)", "context.market.atr"),
    Variable(
        "volatility",
        DIMENSIONLESS,
        "realised 1-bar volatility (standard deviation of log returns)",
        "context.market.volatility",
    ),
    Variable(
        "price_change", DIMENSIONLESS, "last bar's price change (fraction, signed)", "context.market.price_change_pct"
    ),
    Variable("spread_bps", DIMENSIONLESS, "bid-ask spread in basis points", "context.market.spread_bps"),
    *(
        Variable(
            f"volatility_regime_{level.value}",
            FLAG,
            f"1 in the {level.value} volatility regime",
            f"context.market.volatility_regime == {level.value}",
        )
        for level in VolatilityRegime
    ),
    *(
        Variable(
            f"regime_{regime.value}", FLAG, f"1 in a {regime.value} market", f"context.market.regime == {regime.value}"
        )
        for regime in MarketRegime
    ),
    Variable("data_age_ms", MILLISECONDS, "age of the newest bar", "context.now_ts - context.market.last_bar_ts"),
    Variable(
        "data_quality_issues",
        DIMENSIONLESS,
        "data-quality flags raised on the current window",
        "len(context.market.data_quality_flags)",
    ),
    Variable(
        "calibration_error",
        DIMENSIONLESS,
        "expected calibration error of the live model",
        "context.model.calibration_error",
    ),
    Variable(
        "drift_detected",
        FLAG,
        "1 when the model's input or output drift detector fired",
        "context.model.drift_detected",
    ),
    Variable("model_is_fallback", FLAG, "1 when the fallback model is serving", "context.model.is_fallback"),
    Variable("venue_healthy", FLAG, "1 when the venue circuit breaker is closed", "context.venue.healthy"),
    Variable(
        "venue_error_rate", DIMENSIONLESS, "failed / total venue requests, last minute", "context.venue.error_rate"
    ),
    Variable("venue_latency_ms", MILLISECONDS, "venue round trip p99, last minute", "context.venue.latency_ms"),
    Variable(
        "rate_limit_used", DIMENSIONLESS, "fraction of the venue's request weight used", "context.venue.rate_limit_used"
    ),
    Variable("price_deviation", DIMENSIONLESS, "|order_price - mark_price| / mark_price", "price collar input"),
)

CONSTANTS: dict[str, Variable] = {variable.name: variable for variable in _CONSTANT_LIST}

# In dependency order: a definition may use earlier ones.
_DERIVED_LIST: tuple[Derived, ...] = (
    Derived("order_qty", BASE, "quantity the venue order carries", "close_qty + qty"),
    Derived("position_after", BASE, "signed position after the order fills", "position + side * order_qty"),
    Derived("order_notional", USDT, "order value at the order price", "order_qty * order_price"),
    Derived("notional_after", USDT, "|position_after| at mark price", "abs(position_after) * mark_price"),
    Derived(
        "gross_exposure_after",
        USDT,
        "gross exposure after the order",
        "gross_exposure + (abs(position_after) - abs(position)) * mark_price",
    ),
    Derived("net_exposure_after", USDT, "net exposure after the order", "net_exposure + side * order_qty * mark_price"),
    Derived(
        "open_positions_after",
        DIMENSIONLESS,
        "open positions after the order",
        "open_positions - (1 if position != 0 else 0) + (1 if position_after != 0 else 0)",
    ),
    Derived(
        "margin_ratio_after",
        DIMENSIONLESS,
        "initial margin in use after the order / equity (margin of the change at order price and leverage)",
        "(used_margin + (abs(position_after) - abs(position)) * order_price / leverage) / equity",
    ),
)

DERIVED: dict[str, Derived] = {item.name: item for item in _DERIVED_LIST}

FUNCTIONS: frozenset[str] = frozenset({"abs", "min", "max"})


def decision_constants(intent: Intent, context: DecisionContext) -> dict[str, float]:
    """Every per-decision constant of the vocabulary; raises `LimitsContextError` on a missing or absurd fact."""
    market, account, position, portfolio = context.market, context.account, context.position, context.portfolio
    side = float(intent.side.sign)
    quantity = position.quantity
    opposite = quantity * side < 0
    mark_price = market.mark_price
    order_price = intent.limit_price if intent.limit_price is not None else mark_price
    leverage = intent.leverage if intent.leverage is not None else position.leverage
    _require_positive(
        ("market.mark_price", mark_price),
        ("order_price", order_price),
        ("market.atr", market.atr),
        ("account.equity", account.equity),
        ("leverage", leverage),
    )
    atr = market.atr
    has_stop = intent.stop_loss is not None
    stop_distance = side * (order_price - intent.stop_loss) / atr if intent.stop_loss is not None else 0.0
    values: dict[str, float] = {
        "side": side,
        "position": quantity,
        "close_qty": 0.0,
        "mark_price": mark_price,
        "order_price": order_price,
        "leverage": leverage,
        "reduce_only": _flag(intent.reduce_only),
        "growth_threshold": abs(quantity) if opposite else 0.0,
        "has_stop": _flag(has_stop),
        "stop_distance_atr": stop_distance,
        "liquidation_distance_atr": order_price * (1.0 / leverage - MAINTENANCE_MARGIN_RATE) / atr,
        "equity": account.equity,
        "used_margin": account.used_margin,
        "daily_pnl": account.daily_pnl,
        "drawdown": account.drawdown,
        "consecutive_losses": float(account.consecutive_losses),
        "open_orders": float(account.open_orders),
        "orders_last_second": float(account.orders_last_second),
        "order_to_trade_ratio": (account.orders_today + 1) / max(account.trades_today, 1),
        "gross_exposure": portfolio.gross_exposure,
        "net_exposure": portfolio.net_exposure,
        "open_positions": float(portfolio.open_positions),
        "max_correlation": portfolio.max_correlation,
        "atr": atr,
        "volatility": market.volatility,
        "price_change": market.price_change_pct,
        "spread_bps": market.spread_bps,
        "data_age_ms": float(context.data_age_ms),
        "data_quality_issues": float(len(market.data_quality_flags)),
        "calibration_error": context.model.calibration_error,
        "drift_detected": _flag(context.model.drift_detected),
        "model_is_fallback": _flag(context.model.is_fallback),
        "venue_healthy": _flag(context.venue.healthy),
        "venue_error_rate": context.venue.error_rate,
        "venue_latency_ms": context.venue.latency_ms,
        "rate_limit_used": context.venue.rate_limit_used,
        "price_deviation": abs(order_price - mark_price) / mark_price,
    }
    for level in VolatilityRegime:
        values[f"volatility_regime_{level.value}"] = _flag(market.volatility_regime is level)
    for regime in MarketRegime:
        values[f"regime_{regime.value}"] = _flag(market.regime is regime)
    for name, value in values.items():
        if not math.isfinite(value):
            raise LimitsContextError(f"limits vocabulary: {name} is {value} (a fact is missing or unbounded)")
    return values


def _require_positive(*facts: tuple[str, float]) -> None:
    for name, value in facts:
        if not value > 0:
            raise LimitsContextError(f"limits vocabulary: {name} must be > 0, got {value}")


def describe() -> list[dict[str, str]]:
    """The vocabulary as rows (name, kind, unit, meaning, source) for `rules check --explain` and auditors."""
    rows = [{"name": QTY.name, "kind": "variable", "unit": str(QTY.unit), "meaning": QTY.meaning, "source": QTY.source}]
    rows += [
        {"name": v.name, "kind": "constant", "unit": str(v.unit), "meaning": v.meaning, "source": v.source}
        for v in _CONSTANT_LIST
    ]
    rows += [
        {"name": d.name, "kind": "derived", "unit": str(d.unit), "meaning": d.meaning, "source": d.definition}
        for d in _DERIVED_LIST
    ]
    return rows
