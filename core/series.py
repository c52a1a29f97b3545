"""Column-oriented market data: one contiguous numpy array per field.

The backtest scans these arrays directly (no per-bar Python objects), which is what makes
the event-driven simulator fast; `Bar` exists for the bar-by-bar paths (paper, live).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Bar:
    ts: int  # bar open time, epoch ms UTC
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class BarSeries:
    """OHLCV candles of one symbol, sorted by open time, one timeframe."""

    symbol: str
    timeframe_ms: int
    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    source: str = ""  # file the rows came from, or "synthetic"

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def bar(self, index: int) -> Bar:
        return Bar(
            int(self.ts[index]),
            float(self.open[index]),
            float(self.high[index]),
            float(self.low[index]),
            float(self.close[index]),
            float(self.volume[index]),
        )

    def between(self, start_ms: int | None, end_ms: int | None) -> BarSeries:
        """Bars with start <= ts < end (either bound optional)."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.ts, start_ms, side="left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.ts, end_ms, side="left"))
        return BarSeries(
            self.symbol,
            self.timeframe_ms,
            self.ts[lo:hi],
            self.open[lo:hi],
            self.high[lo:hi],
            self.low[lo:hi],
            self.close[lo:hi],
            self.volume[lo:hi],
            self.source,
        )


@dataclass(frozen=True, slots=True)
class FundingSeries:
    """Funding settlements of one symbol: time and rate (positive: longs pay shorts)."""

    symbol: str
    ts: IntArray
    rate: FloatArray
    source: str = ""


@dataclass(frozen=True, slots=True)
class MarkSeries:
    """Mark-price observations of one symbol (e.g. the open of 8h mark candles)."""

    symbol: str
    ts: IntArray
    price: FloatArray
    source: str = ""

    def price_at(self, ts: int) -> float | None:
        """The mark observed at exactly `ts`, or None when the series has no such row."""
        index = int(np.searchsorted(self.ts, ts, side="left"))
        if index < self.ts.shape[0] and int(self.ts[index]) == ts:
            return float(self.price[index])
        return None


@dataclass(frozen=True, slots=True)
class MarketData:
    """Everything a backtest reads: bars per symbol, plus funding and mark when known."""

    bars: dict[str, BarSeries]
    funding: dict[str, FundingSeries] = field(default_factory=dict)
    mark: dict[str, MarkSeries] = field(default_factory=dict)
    synthetic: bool = False
    files: tuple[str, ...] = ()  # every file read, for the run's provenance

    @property
    def symbols(self) -> list[str]:
        return list(self.bars)
