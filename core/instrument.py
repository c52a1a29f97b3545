"""Instruments: a USDT-margined linear perpetual with the exchange's trading rules.

Maintenance-margin brackets follow Binance USDT-M's published leverage brackets
(GET /fapi/v1/leverageBracket): each bracket has a notional cap, a maintenance margin
rate and a maintenance amount ("cum") chosen so the maintenance margin is continuous
across bracket edges: mm = notional * rate - cum.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MarginBracket:
    notional_cap: float  # the bracket applies to position notional <= this cap
    maintenance_rate: float
    maintenance_amount: float  # Binance "cum"
    max_leverage: float


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str  # ccxt unified symbol, e.g. "BTC/USDT:USDT"
    base: str
    quote: str
    tick_size: float
    step_size: float
    min_notional: float
    brackets: tuple[MarginBracket, ...]
    liquidation_fee_rate: float = 0.0125  # Binance clearance fee for most USDT-M contracts

    @property
    def max_leverage(self) -> float:
        return self.brackets[0].max_leverage

    def bracket_for(self, notional: float) -> MarginBracket:
        for bracket in self.brackets:
            if notional <= bracket.notional_cap:
                return bracket
        return self.brackets[-1]

    def maintenance_margin(self, notional: float) -> float:
        bracket = self.bracket_for(notional)
        return notional * bracket.maintenance_rate - bracket.maintenance_amount

    def max_leverage_for(self, notional: float) -> float:
        return self.bracket_for(notional).max_leverage

    def is_on_tick(self, price: float) -> bool:
        return _is_multiple(price, self.tick_size)

    def is_on_step(self, quantity: float) -> bool:
        return _is_multiple(quantity, self.step_size)

    def round_qty_down(self, quantity: float) -> float:
        steps = math.floor(quantity / self.step_size + 1e-9)
        return _clean(steps * self.step_size, self.step_size)

    def round_price(self, price: float) -> float:
        return _clean(round(price / self.tick_size) * self.tick_size, self.tick_size)


@functools.cache  # a handful of distinct increments; formatting one costs more than the rounding itself
def _decimals(increment: float) -> int:
    text = f"{increment:.12f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _clean(value: float, increment: float) -> float:
    return round(value, _decimals(increment))


def _is_multiple(value: float, increment: float) -> bool:
    ratio = value / increment
    return abs(ratio - round(ratio)) < 1e-6


def brackets(*rows: tuple[float, float, float, float]) -> tuple[MarginBracket, ...]:
    """Build brackets from (notional_cap, maintenance_rate, maintenance_amount, max_leverage) rows."""
    return tuple(MarginBracket(*row) for row in rows)
