"""A hand-driven simulated exchange over hand-written OHLC bars.

`ExchangeHarness.step()` runs one grid row the way `trader.loop` does (begin_row,
process_bar for every symbol, end_of_row); orders submitted between steps are sent at
the close of the last row run, so they meet the next bar's open first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.instrument import Instrument
from core.orders import Order, OrderRequest, OrderType, Side
from core.series import BarSeries, FundingSeries, MarketData, MarkSeries
from core.time import MINUTE_MS
from execution.simulator import SimulatedExchange, SimulatorConfig
from market.grid import MarketGrid, build_grid
from market.instruments import instrument_for

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
# 2024-01-01 00:00 UTC sits on a Binance funding boundary, so the default 8-hourly
# schedule settles nothing during a test of a few one-minute bars.
START_MS = 1_704_067_200_000

OHLC = tuple[float, float, float, float]


def flat(price: float) -> OHLC:
    """A bar that never leaves one price."""
    return (price, price, price, price)


def bar_series(symbol: str, rows: Sequence[OHLC], start_ms: int = START_MS, bar_ms: int = MINUTE_MS) -> BarSeries:
    prices = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    return BarSeries(
        symbol=symbol,
        timeframe_ms=bar_ms,
        ts=start_ms + bar_ms * np.arange(len(rows), dtype=np.int64),
        open=prices[:, 0].copy(),
        high=prices[:, 1].copy(),
        low=prices[:, 2].copy(),
        close=prices[:, 3].copy(),
        volume=np.ones(len(rows)),
        source="hand-written",
    )


def funding_series(symbol: str, settlements: Sequence[tuple[int, float]]) -> FundingSeries:
    """Funding settlements as (ts, rate) pairs."""
    return FundingSeries(
        symbol=symbol,
        ts=np.array([ts for ts, _ in settlements], dtype=np.int64),
        rate=np.array([rate for _, rate in settlements], dtype=np.float64),
    )


def mark_series(symbol: str, observations: Sequence[tuple[int, float]]) -> MarkSeries:
    """Mark prices as (ts, price) pairs."""
    return MarkSeries(
        symbol=symbol,
        ts=np.array([ts for ts, _ in observations], dtype=np.int64),
        price=np.array([price for _, price in observations], dtype=np.float64),
    )


def market(symbol: str, side: Side, quantity: float, *, reduce_only: bool = False) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.MARKET, quantity, reduce_only=reduce_only)


def limit(
    symbol: str, side: Side, quantity: float, price: float, *, reduce_only: bool = False, post_only: bool = False
) -> OrderRequest:
    return OrderRequest(
        symbol, side, OrderType.LIMIT, quantity, price=price, reduce_only=reduce_only, post_only=post_only
    )


def stop_market(
    symbol: str, side: Side, quantity: float, stop_price: float, *, reduce_only: bool = False
) -> OrderRequest:
    return OrderRequest(symbol, side, OrderType.STOP_MARKET, quantity, stop_price=stop_price, reduce_only=reduce_only)


@dataclass(slots=True)
class ExchangeHarness:
    exchange: SimulatedExchange
    grid: MarketGrid
    next_row: int = 0

    def step(self) -> None:
        """Run the next grid row for every symbol, as the trading loop does."""
        row = self.next_row
        self.exchange.begin_row(row)
        for i in range(len(self.grid.symbols)):
            self.exchange.process_bar(i, row)
        self.exchange.end_of_row(row)
        self.next_row += 1

    def run_through(self, last_row: int) -> None:
        while self.next_row <= last_row:
            self.step()

    def run_all(self) -> None:
        self.run_through(self.grid.length - 1)

    def submit(self, request: OrderRequest) -> Order:
        return self.exchange.submit(request)

    def order(self, order_id: str) -> Order:
        return self.exchange.orders[order_id].snapshot()

    def position_qty(self, symbol: str) -> float:
        return self.exchange.quantity[self.grid.symbols.index(symbol)]

    def entry_price(self, symbol: str) -> float:
        return self.exchange.entry_price[self.grid.symbols.index(symbol)]

    def isolated_margin(self, symbol: str) -> float:
        return self.exchange.isolated_margin[self.grid.symbols.index(symbol)]

    def bar_open_ts(self, row: int) -> int:
        return int(self.grid.ts[row])


def make_harness(
    bars: Mapping[str, Sequence[OHLC]],
    *,
    funding: Mapping[str, Sequence[tuple[int, float]]] | None = None,
    marks: Mapping[str, Sequence[tuple[int, float]]] | None = None,
    instruments: Mapping[str, Instrument] | None = None,
    exchange_class: type[SimulatedExchange] = SimulatedExchange,
    **config: Any,
) -> ExchangeHarness:
    """An exchange over `bars` (symbol → OHLC rows, one minute apart from START_MS).

    `config` goes to `SimulatorConfig`; instruments default to the known Binance rules.
    """
    data = MarketData(
        bars={symbol: bar_series(symbol, rows) for symbol, rows in bars.items()},
        funding={symbol: funding_series(symbol, rows) for symbol, rows in (funding or {}).items()},
        mark={symbol: mark_series(symbol, rows) for symbol, rows in (marks or {}).items()},
    )
    grid = build_grid(data)
    known = dict(instruments or {})
    for symbol in bars:
        known.setdefault(symbol, instrument_for(symbol))
    exchange = exchange_class(grid, known, SimulatorConfig(**config))
    return ExchangeHarness(exchange, grid)
