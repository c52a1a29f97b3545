"""Trading rules of Binance USDT-M perpetuals: tick, step, minimum notional, margin brackets.

The values are representative of Binance's published rules (exchangeInfo filters and
GET /fapi/v1/leverageBracket) for the nine symbols the project ships data for; Binance
revises brackets from time to time, so callers that need today's exact values pass their
own `tick_size`, `step_size`, `min_notional` or `brackets` to `instrument_for`.

Binance publishes each bracket's maintenance amount ("cum"); here it is derived from the
caps and rates, because that is what makes the maintenance margin continuous across
bracket edges: at the edge `cap` between brackets k-1 and k,
    cap * mmr_{k-1} - cum_{k-1} = cap * mmr_k - cum_k
    ⇒ cum_k = cum_{k-1} + cap_{k-1} * (mmr_k - mmr_{k-1}).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import ConfigError, UnknownSymbolError
from core.instrument import Instrument, MarginBracket
from market.symbols import QUOTE, base_asset, to_ccxt_symbol

INF = math.inf

# (notional_cap, maintenance_rate, max_leverage)
BracketRow = tuple[float, float, float]

BTC_BRACKETS: tuple[BracketRow, ...] = (
    (50_000, 0.004, 125),
    (250_000, 0.005, 100),
    (3_000_000, 0.01, 50),
    (15_000_000, 0.025, 20),
    (30_000_000, 0.05, 10),
    (80_000_000, 0.1, 5),
    (100_000_000, 0.125, 4),
    (200_000_000, 0.15, 3),
    (300_000_000, 0.25, 2),
    (INF, 0.5, 1),
)
ETH_BRACKETS: tuple[BracketRow, ...] = (
    (50_000, 0.004, 125),
    (250_000, 0.005, 100),
    (3_000_000, 0.01, 50),
    (15_000_000, 0.025, 20),
    (30_000_000, 0.05, 10),
    (60_000_000, 0.1, 5),
    (80_000_000, 0.125, 4),
    (120_000_000, 0.15, 3),
    (200_000_000, 0.25, 2),
    (INF, 0.5, 1),
)
LARGE_ALT_BRACKETS: tuple[BracketRow, ...] = (
    (10_000, 0.005, 75),
    (50_000, 0.01, 50),
    (250_000, 0.02, 25),
    (1_000_000, 0.05, 10),
    (5_000_000, 0.1, 5),
    (10_000_000, 0.125, 4),
    (20_000_000, 0.15, 3),
    (50_000_000, 0.25, 2),
    (INF, 0.5, 1),
)
ALT_BRACKETS: tuple[BracketRow, ...] = (
    (5_000, 0.01, 50),
    (25_000, 0.025, 20),
    (100_000, 0.05, 10),
    (250_000, 0.1, 5),
    (1_000_000, 0.125, 4),
    (INF, 0.5, 1),
)


@dataclass(frozen=True, slots=True)
class TradingRules:
    tick_size: float
    step_size: float
    min_notional: float
    brackets: tuple[BracketRow, ...]


KNOWN_RULES: dict[str, TradingRules] = {
    "BTC": TradingRules(0.1, 0.001, 100, BTC_BRACKETS),
    "ETH": TradingRules(0.01, 0.001, 20, ETH_BRACKETS),
    "BNB": TradingRules(0.01, 0.01, 5, LARGE_ALT_BRACKETS),
    "SOL": TradingRules(0.01, 1, 5, LARGE_ALT_BRACKETS),
    "XRP": TradingRules(0.0001, 0.1, 5, LARGE_ALT_BRACKETS),
    "DOGE": TradingRules(0.00001, 1, 5, LARGE_ALT_BRACKETS),
    "ADA": TradingRules(0.0001, 1, 5, ALT_BRACKETS),
    "DOT": TradingRules(0.001, 0.1, 5, ALT_BRACKETS),
    "LTC": TradingRules(0.01, 0.001, 20, ALT_BRACKETS),
}
KNOWN_SYMBOLS: tuple[str, ...] = tuple(to_ccxt_symbol(base) for base in sorted(KNOWN_RULES))


def continuous_brackets(rows: Sequence[BracketRow]) -> tuple[MarginBracket, ...]:
    """Brackets from (notional_cap, maintenance_rate, max_leverage) rows, with each
    maintenance amount chosen so the maintenance margin is continuous at every edge."""
    if not rows:
        raise ConfigError("margin brackets: at least one (notional_cap, rate, max_leverage) row is needed")
    result: list[MarginBracket] = []
    previous_cap, previous_rate, cum = 0.0, 0.0, 0.0
    for cap, rate, leverage in rows:
        if cap <= previous_cap:
            raise ConfigError(f"margin brackets: notional caps must increase, got {cap} after {previous_cap}")
        if not 0.0 < rate < 1.0 or rate < previous_rate:
            raise ConfigError(
                f"margin brackets: maintenance rate {rate} at cap {cap} must be in (0, 1) "
                f"and not below the previous bracket's {previous_rate}"
            )
        if leverage < 1.0:
            raise ConfigError(f"margin brackets: max leverage {leverage} at cap {cap} is below 1")
        # rounded: Binance publishes cum in cents, and float error would show in reports
        cum = round(cum + previous_cap * (rate - previous_rate), 8)
        result.append(MarginBracket(float(cap), float(rate), cum, float(leverage)))
        previous_cap, previous_rate = float(cap), float(rate)
    if not math.isinf(result[-1].notional_cap):
        raise ConfigError("margin brackets: the last bracket's notional cap must be infinite")
    return tuple(result)


def instrument_for(
    symbol: str,
    *,
    tick_size: float | None = None,
    step_size: float | None = None,
    min_notional: float | None = None,
    brackets: Sequence[BracketRow] | None = None,
) -> Instrument:
    """The instrument of one of the known symbols (see KNOWN_SYMBOLS); any rule may be
    overridden. Unknown symbols raise UnknownSymbolError: use `generic_alt_instrument`
    explicitly for a symbol whose rules the project does not know."""
    ccxt_symbol = to_ccxt_symbol(symbol)
    base = base_asset(ccxt_symbol)
    rules = KNOWN_RULES.get(base)
    if rules is None:
        raise UnknownSymbolError(
            f"no trading rules for {ccxt_symbol}: known symbols are {', '.join(KNOWN_SYMBOLS)}; "
            "data fetched with `cryptoscalp download` carries the exchange's rules in instruments.json; "
            "in code, build one with generic_alt_instrument(symbol, tick_size, step_size)"
        )
    return _instrument(
        ccxt_symbol,
        rules.tick_size if tick_size is None else tick_size,
        rules.step_size if step_size is None else step_size,
        rules.min_notional if min_notional is None else min_notional,
        rules.brackets if brackets is None else brackets,
    )


def generic_alt_instrument(symbol: str, tick_size: float, step_size: float, *, min_notional: float = 5.0) -> Instrument:
    """An instrument for a symbol without known rules: the given tick and step, Binance's
    usual 5 USDT minimum notional and the small-alt margin brackets."""
    return _instrument(to_ccxt_symbol(symbol), tick_size, step_size, min_notional, ALT_BRACKETS)


def _instrument(
    symbol: str, tick_size: float, step_size: float, min_notional: float, rows: Sequence[BracketRow]
) -> Instrument:
    for name, value in (("tick_size", tick_size), ("step_size", step_size)):
        if not value > 0.0:
            raise ConfigError(f"{symbol}: {name} must be positive, got {value}")
    if min_notional < 0.0:
        raise ConfigError(f"{symbol}: min_notional must not be negative, got {min_notional}")
    return Instrument(
        symbol=symbol,
        base=base_asset(symbol),
        quote=QUOTE,
        tick_size=float(tick_size),
        step_size=float(step_size),
        min_notional=float(min_notional),
        brackets=continuous_brackets(rows),
    )
