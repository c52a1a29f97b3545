"""All symbols on one time grid: the shape the event-driven backtest scans.

Each symbol's bars are placed on the union of every symbol's bar times; a symbol with
no bar at a grid time has NaN prices there (`present` is False) — a gap stays a gap
unless the data was repaired with ffill before. `close_ffill` carries the last known
close forward for valuing open positions across such gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from core.errors import DataError
from core.series import FloatArray, IntArray, MarketData
from core.time import HOUR_MS

BoolArray = npt.NDArray[np.bool_]

BINANCE_FUNDING_INTERVAL_MS = 8 * HOUR_MS
# Binance's interest component when the premium is zero: 0.03% a day, 0.01% per 8 h.
DEFAULT_FUNDING_RATE = 0.0001


@dataclass(frozen=True, slots=True)
class FundingSchedule:
    """Settlements of one symbol mapped to grid rows (the first bar at or after each)."""

    ts: IntArray
    rate: FloatArray
    mark_price: FloatArray  # NaN where no mark is known: the bar's open is used then
    grid_index: IntArray
    source: str


@dataclass(frozen=True, slots=True)
class GridLists:
    """The grid's prices as Python lists: the simulator reads single values, and a list
    item costs a fraction of a numpy item read. Built once per grid and shared by runs."""

    open: list[list[float]]  # [symbol][row]
    high: list[list[float]]
    low: list[list[float]]
    close_by_row: list[list[float]]  # [row][symbol], forward-filled
    ts: list[int]
    lowest: list[float]  # per symbol, over the whole grid (0 when it has no bar)
    highest: list[float]


@dataclass(frozen=True, slots=True)
class MarketGrid:
    symbols: tuple[str, ...]
    ts: IntArray  # bar open times, shape (T,)
    bar_ms: int
    open: FloatArray  # shape (S, T), NaN where a symbol has no bar
    high: FloatArray
    low: FloatArray
    close: FloatArray
    close_ffill: FloatArray
    present: BoolArray
    funding: tuple[FundingSchedule, ...]
    volume: FloatArray  # base units; NaN where a symbol has no bar
    _lists: list[GridLists] = field(default_factory=list, compare=False, repr=False)

    @property
    def length(self) -> int:
        return int(self.ts.shape[0])

    def lists(self) -> GridLists:
        if not self._lists:
            self._lists.append(
                GridLists(
                    open=self.open.tolist(),
                    high=self.high.tolist(),
                    low=self.low.tolist(),
                    close_by_row=self.close_ffill.T.tolist(),
                    ts=self.ts.tolist(),
                    lowest=[float(np.nanmin(row)) if np.isfinite(row).any() else 0.0 for row in self.low],
                    highest=[float(np.nanmax(row)) if np.isfinite(row).any() else 0.0 for row in self.high],
                )
            )
        return self._lists[0]


def build_grid(market: MarketData) -> MarketGrid:
    if not market.bars:
        raise DataError("no market data: no symbol has any bar")
    symbols = tuple(market.bars)
    bar_ms = {series.timeframe_ms for series in market.bars.values()}
    if len(bar_ms) != 1:
        raise DataError(f"symbols have different timeframes {sorted(bar_ms)}: backtest one timeframe at a time")
    ts = np.unique(np.concatenate([series.ts for series in market.bars.values()]))
    if ts.size == 0:
        raise DataError("no bars in the requested period")
    shape = (len(symbols), ts.size)
    fields = {name: np.full(shape, np.nan) for name in ("open", "high", "low", "close", "volume")}
    present = np.zeros(shape, dtype=bool)
    for row, symbol in enumerate(symbols):
        series = market.bars[symbol]
        columns = np.searchsorted(ts, series.ts)
        present[row, columns] = True
        fields["open"][row, columns] = series.open
        fields["high"][row, columns] = series.high
        fields["low"][row, columns] = series.low
        fields["close"][row, columns] = series.close
        fields["volume"][row, columns] = series.volume
    return MarketGrid(
        symbols=symbols,
        ts=ts.astype(np.int64),
        bar_ms=bar_ms.pop(),
        open=fields["open"],
        high=fields["high"],
        low=fields["low"],
        close=fields["close"],
        close_ffill=_forward_fill(fields["close"]),
        present=present,
        funding=tuple(_funding_schedule(market, symbol, ts) for symbol in symbols),
        volume=fields["volume"],
    )


def _forward_fill(values: FloatArray) -> FloatArray:
    valid = ~np.isnan(values)
    index = np.where(valid, np.arange(values.shape[1]), 0)
    np.maximum.accumulate(index, axis=1, out=index)
    filled = np.take_along_axis(values, index, axis=1)
    return filled


def _funding_schedule(market: MarketData, symbol: str, grid_ts: IntArray) -> FundingSchedule:
    series = market.funding.get(symbol)
    if series is not None:
        settle_ts, rate, source = series.ts, series.rate, series.source or "funding file"
    else:
        first = (int(grid_ts[0]) // BINANCE_FUNDING_INTERVAL_MS + 1) * BINANCE_FUNDING_INTERVAL_MS
        settle_ts = np.arange(first, int(grid_ts[-1]) + 1, BINANCE_FUNDING_INTERVAL_MS, dtype=np.int64)
        rate = np.full(settle_ts.shape, DEFAULT_FUNDING_RATE)
        source = f"default {DEFAULT_FUNDING_RATE} per 8h (no funding file)"
    inside = (settle_ts > grid_ts[0]) & (settle_ts <= grid_ts[-1])
    settle_ts, rate = settle_ts[inside], rate[inside]
    mark = np.full(settle_ts.shape, np.nan)
    mark_series = market.mark.get(symbol)
    if mark_series is not None:
        for k, moment in enumerate(settle_ts):
            price = mark_series.price_at(int(moment))
            if price is not None:
                mark[k] = price
    return FundingSchedule(
        ts=settle_ts.astype(np.int64),
        rate=rate.astype(np.float64),
        mark_price=mark,
        grid_index=np.searchsorted(grid_ts, settle_ts, side="left").astype(np.int64),
        source=source,
    )
