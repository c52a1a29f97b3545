"""The baseline strategy: EMA 9/21 cross, stop-and-reverse, fixed notional, optional ATR stop.

Its job is to prove the loop end to end, not to make money. The EMA is the recursive
form y[n] = a*x[n] + (1-a)*y[n-1] with a = 2/(span+1), seeded with y[-1] = x[0]; the
batch path (scipy.signal.lfilter, used by backtests) and the incremental path
(`IncrementalEma`, used live) evaluate the same expression, so they agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from core.intent import Intent
from core.orders import Side
from core.series import FloatArray, IntArray
from market.grid import MarketGrid
from market.indicators import average_true_range
from trader.strategy import StrategyContext


def ema(values: FloatArray, span: int) -> FloatArray:
    """EMA of a gap-free series (see module docstring for the recursion and its seed)."""
    alpha = 2.0 / (span + 1.0)
    if values.size == 0:
        return values.copy()
    filtered, _ = lfilter([alpha], [1.0, -(1.0 - alpha)], values, zi=[(1.0 - alpha) * values[0]])
    return np.asarray(filtered, dtype=np.float64)


class IncrementalEma:
    """The same EMA one value at a time, for bar-by-bar (paper and live) trading."""

    __slots__ = ("_alpha", "_decay", "count", "value")

    def __init__(self, span: int) -> None:
        self._alpha = 2.0 / (span + 1.0)
        self._decay = 1.0 - self._alpha
        self.value = float("nan")
        self.count = 0

    def update(self, price: float) -> float:
        previous = price if self.count == 0 else self.value
        self.value = self._alpha * price + self._decay * previous
        self.count += 1
        return self.value


@dataclass
class EmaCross:
    """Long when EMA(fast) > EMA(slow), short when below; reverses on every cross."""

    fast: int = 9
    slow: int = 21
    notional: float = 1_000.0
    stop_atr: float | None = None  # protective stop this many ATR(14) from the deciding close; None: no stop
    strategy_id: str = "baseline.ema_cross"

    def __post_init__(self) -> None:
        self._symbols: tuple[str, ...] = ()
        self._signal: list[np.ndarray] = []
        self._wakeups: list[IntArray] = []
        self.fast_ema: list[FloatArray] = []
        self.slow_ema: list[FloatArray] = []
        self.atr: list[FloatArray] = []
        self._close: list[FloatArray] = []

    def prepare(self, grid: MarketGrid) -> None:
        self._symbols = grid.symbols
        self._signal, self._wakeups, self.fast_ema, self.slow_ema = [], [], [], []
        self.atr, self._close = [], []
        for i in range(len(grid.symbols)):
            rows = np.flatnonzero(grid.present[i])
            closes = grid.close[i, rows]
            fast, slow = ema(closes, self.fast), ema(closes, self.slow)
            signal = np.sign(fast - slow)
            signal[: self.slow - 1] = 0.0  # not warmed up: the slow EMA has seen fewer than `slow` bars
            signal = _carry_last_side(signal)  # EMAs exactly equal keep the previous side
            changed = np.flatnonzero((signal[1:] != signal[:-1]) & (signal[1:] != 0) & (signal[:-1] != 0)) + 1
            full_signal = np.zeros(grid.length)
            full_signal[rows] = signal
            self._signal.append(full_signal)
            self._wakeups.append(rows[changed].astype(np.int64))
            fast_full = np.full(grid.length, np.nan)
            slow_full = np.full(grid.length, np.nan)
            fast_full[rows], slow_full[rows] = fast, slow
            self.fast_ema.append(fast_full)
            self.slow_ema.append(slow_full)
            atr_full = np.full(grid.length, np.nan)
            atr_full[rows] = average_true_range(grid.high[i, rows], grid.low[i, rows], closes)
            self.atr.append(atr_full)
            self._close.append(grid.close[i])

    def wakeup_rows(self, symbol_index: int) -> IntArray | None:
        return self._wakeups[symbol_index]

    def on_bar(self, symbol_index: int, row: int, context: StrategyContext) -> list[Intent]:
        direction = self._signal[symbol_index][row]
        if direction == 0:
            return []
        symbol = self._symbols[symbol_index]
        side = Side.BUY if direction > 0 else Side.SELL
        position = context.position_qty(symbol)
        if position * side.sign > 0:
            return []  # already on the right side
        rationale: tuple[tuple[str, float], ...] = (
            ("ema_fast", float(self.fast_ema[symbol_index][row])),
            ("ema_slow", float(self.slow_ema[symbol_index][row])),
        )
        stop_loss = None
        if self.stop_atr is not None:
            atr = float(self.atr[symbol_index][row])
            stop_loss = float(self._close[symbol_index][row]) - side.sign * self.stop_atr * atr
            rationale += (("atr", atr),)
        # one order closes the opposite position and opens the new one
        intent = Intent(
            ts=context.decision_ts,
            symbol=symbol,
            side=side,
            strategy_id=self.strategy_id,
            notional=self.notional,
            reverse=True,
            stop_loss=stop_loss,
            rationale=rationale,
        )
        return [intent]


def _carry_last_side(signal: FloatArray) -> FloatArray:
    index = np.where(signal != 0, np.arange(signal.size), 0)
    np.maximum.accumulate(index, out=index)
    return signal[index]
