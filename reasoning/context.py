"""What the guard knows when it judges an intent: market, account, position, portfolio,
model, venue and compliance facts at one instant.

The trading loop builds a `DecisionContext` per decision (from the simulated exchange in
backtests, from the venue adapters live); every engine of the guard reads the same one,
so their proofs refer to the same facts. `context_hash` identifies it in the proof log.

Units: prices and money in USDT, quantities in base units (signed: > 0 long), times in
epoch milliseconds, fractions as plain ratios (0.05 = 5 %), spreads in basis points.
NaN is never a valid fact: `missing_facts` names every field that is NaN or unset, and
the guard denies the intent (fail closed) when any fact it needs is missing.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class GuardState(StrEnum):
    ACTIVE = "active"  # everything the rules allow
    REDUCING = "reducing"  # only intents that reduce risk
    HALTED = "halted"  # kill switch: nothing, not even reductions (the kill switch flattens by itself)


class VolatilityRegime(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    EXTREME = "extreme"


class MarketRegime(StrEnum):
    TRENDING = "trending"
    RANGING = "ranging"
    VOLATILE = "volatile"
    ILLIQUID = "illiquid"


@dataclass(frozen=True, slots=True)
class MarketFacts:
    symbol: str
    mark_price: float
    last_bar_ts: int  # close time of the newest bar seen for the symbol
    atr: float  # average true range, price units (14 bars)
    volatility: float  # realised volatility of 1-bar log returns (standard deviation, not annualised)
    volatility_regime: VolatilityRegime
    regime: MarketRegime
    spread_bps: float  # quoted (or estimated) bid-ask spread
    spread_widening: bool  # spread well above its recent median
    breakout_confirmed: bool  # close beyond the recent range with volume confirmation
    price_change_pct: float  # change over the last bar, as a fraction (shock detector)
    funding_rate: float  # the next (or last) funding rate
    data_quality_flags: tuple[str, ...] = ()  # e.g. ("gap", "ffill") for the current window


@dataclass(frozen=True, slots=True)
class AccountFacts:
    equity: float  # wallet + unrealised P&L
    wallet_balance: float
    available_balance: float  # free for new initial margin
    used_margin: float  # initial margin of open positions and orders
    daily_pnl: float  # since 00:00 UTC, realised + unrealised change, after fees and funding
    drawdown: float  # from the equity peak, as a fraction >= 0
    consecutive_losses: int  # closed trades in a row with a net loss
    open_orders: int
    orders_last_second: int
    orders_today: int
    trades_today: int


@dataclass(frozen=True, slots=True)
class PositionFacts:
    quantity: float  # signed
    entry_price: float  # 0 when flat
    leverage: float
    liquidation_price: float | None  # None when flat or unreachable


@dataclass(frozen=True, slots=True)
class PortfolioFacts:
    gross_exposure: float  # Σ |notional| over all positions
    net_exposure: float  # Σ signed notional
    open_positions: int
    max_correlation: float  # largest correlation of this symbol's returns with another held symbol's (0 if none)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    model_id: str  # "" for rule-based strategies
    drift_detected: bool
    calibration_error: float  # expected calibration error of the live model, 0 for rule-based strategies
    is_fallback: bool  # the fallback model is serving


@dataclass(frozen=True, slots=True)
class VenueFacts:
    venue: str  # e.g. "simulated", "binanceusdm"
    healthy: bool  # circuit breaker closed
    error_rate: float  # failed requests / requests over the last minute
    latency_ms: float  # p99 round trip over the last minute
    rate_limit_used: float  # fraction of the venue's request weight used in the current window


@dataclass(frozen=True, slots=True)
class DecisionContext:
    now_ts: int
    guard_state: GuardState
    market: MarketFacts
    account: AccountFacts
    position: PositionFacts
    portfolio: PortfolioFacts
    model: ModelFacts
    venue: VenueFacts
    region: str = ""  # the account's jurisdiction, ISO 3166 alpha-2
    # the cached hash; init=False, so `dataclasses.replace` gives a changed copy a fresh cache
    _hash: list[str] = field(default_factory=list, init=False, compare=False, repr=False)

    @property
    def data_age_ms(self) -> int:
        return self.now_ts - self.market.last_bar_ts

    def as_dict(self) -> dict[str, object]:
        """Every fact as plain JSON values (groups as objects, enums as their values)."""
        record: dict[str, object] = {
            "now_ts": self.now_ts,
            "guard_state": self.guard_state.value,
            "region": self.region,
        }
        for group in (self.market, self.account, self.position, self.portfolio, self.model, self.venue):
            values = {name: getattr(group, name) for name in _FIELD_NAMES[type(group)]}
            record[_GROUP_NAMES[type(group)]] = {
                name: value.value if isinstance(value, StrEnum) else list(value) if isinstance(value, tuple) else value
                for name, value in values.items()
            }
        return record

    def context_hash(self) -> str:
        """SHA-256 of the canonical JSON of every fact (sorted keys, no whitespace)."""
        if not self._hash:
            canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), allow_nan=True)
            self._hash.append(hashlib.sha256(canonical.encode()).hexdigest())
        return self._hash[0]

    def missing_facts(self) -> list[str]:
        """Dotted names of the facts that are NaN (a context builder's way of saying "unknown")."""
        missing: list[str] = []
        for group in (self.market, self.account, self.position, self.portfolio, self.model, self.venue):
            prefix = _GROUP_NAMES[type(group)]
            for name in _FIELD_NAMES[type(group)]:
                value = getattr(group, name)
                if isinstance(value, float) and math.isnan(value):
                    missing.append(f"{prefix}.{name}")
        return missing


_GROUP_NAMES: dict[type, str] = {
    MarketFacts: "market",
    AccountFacts: "account",
    PositionFacts: "position",
    PortfolioFacts: "portfolio",
    ModelFacts: "model",
    VenueFacts: "venue",
}
_FIELD_NAMES: dict[type, tuple[str, ...]] = {cls: tuple(item.name for item in fields(cls)) for cls in _GROUP_NAMES}


def context_from_dict(record: Mapping[str, Any]) -> DecisionContext:
    """The inverse of `DecisionContext.as_dict` (a context read back from a run's decision log)."""
    market = dict(record["market"])
    market["volatility_regime"] = VolatilityRegime(market["volatility_regime"])
    market["regime"] = MarketRegime(market["regime"])
    market["data_quality_flags"] = tuple(market.get("data_quality_flags", ()))
    return DecisionContext(
        now_ts=int(record["now_ts"]),
        guard_state=GuardState(record["guard_state"]),
        market=MarketFacts(**market),
        account=AccountFacts(**record["account"]),
        position=PositionFacts(**record["position"]),
        portfolio=PortfolioFacts(**record["portfolio"]),
        model=ModelFacts(**record["model"]),
        venue=VenueFacts(**record["venue"]),
        region=str(record.get("region", "")),
    )
