"""Features bar by bar, for live trading: one row per `update`, equal to the batch row.

Why hand-written state: pandas/numpy only compute over whole arrays, and the streaming
libraries available (e.g. TA-Lib's abstract API, river's rolling stats) cover a few of
these estimators, not all, and not with exact windowed parity. So the state is ours:

* a ring buffer of every per-bar term, stored twice (positions i and i + capacity) so
  the last w values are always one contiguous slice;
* running window sums, all windows of all terms updated together (one vector add of the
  new term and one subtraction of the term leaving each window), with Kahan compensation,
  and recomputed exactly from the buffer every `capacity` bars so rounding cannot drift;
* counts of NaN terms per window, so a gap makes exactly the windows containing it NaN;
* rolling maxima/minima of all windows at once from one `reduceat` over the longest
  window and a cumulative max from the shortest window outwards (O(max window), vectorised);
* the close's standard deviation per window from deviations to the current close,
  by the same `reduceat` (a sum of squared prices would cancel on quiet windows);
* EMAs (RSI, MACD, EMA distance) as O(1) recursions that restart after a NaN bar.
"""

from __future__ import annotations

import numpy as np

from core.series import FloatArray
from market.features.formulas import DIRECT_TERMS, TERMS, T, assemble, bar_terms, clean_bars
from market.features.spec import DEFAULT_SPEC, FeatureSpec


class _Emas:
    """Several EMAs side by side; each starts at its first value, restarts after a NaN."""

    def __init__(self, alphas: list[float], warm_ups: list[int]) -> None:
        self.alpha = np.asarray(alphas, dtype=np.float64)
        self.warm_up = np.asarray(warm_ups, dtype=np.int64)
        self.value = np.full(self.alpha.size, np.nan)
        self.count = np.zeros(self.alpha.size, dtype=np.int64)

    def update(self, x: FloatArray) -> FloatArray:
        finite = np.isfinite(x)
        with np.errstate(invalid="ignore"):
            stepped = self.value + self.alpha * (x - self.value)
        self.value = np.where(finite, np.where(self.count == 0, x, stepped), np.nan)
        self.count = np.where(finite, self.count + 1, 0)
        out: FloatArray = np.where(self.count >= self.warm_up, self.value, np.nan)
        return out


class IncrementalFeatures:
    def __init__(self, spec: FeatureSpec = DEFAULT_SPEC) -> None:
        self.spec = spec
        self.names = spec.feature_names
        self._windows = np.asarray(spec.windows, dtype=np.int64)
        self._capacity = spec.max_window + 1
        cap2, n_windows = 2 * self._capacity, len(spec.windows)
        n_terms = len(TERMS)
        self._terms = np.zeros((n_terms, cap2))
        self._term_nan = np.zeros((n_terms, cap2), dtype=np.int64)
        self._sums = np.zeros((n_terms, n_windows))
        self._compensation = np.zeros((n_terms, n_windows))
        self._nan_counts = np.zeros((n_terms, n_windows), dtype=np.int64)
        self._term_nonzero = np.zeros((n_terms, cap2), dtype=np.int64)
        self._nonzero_counts = np.zeros((n_terms, n_windows), dtype=np.int64)
        self._max_rows = np.full((3, cap2), np.nan)
        self._min_rows = np.full((2, cap2), np.nan)
        self._closes = np.full(cap2, np.nan)
        self._segment_starts = spec.max_window - self._windows[::-1]
        self._position = 0
        self._direct = np.array([T[name] for name in DIRECT_TERMS], dtype=np.int64)
        self._count = 0
        self._prev = np.full(4, np.nan)  # close, close before it, high, low of the previous bar
        w = [float(x) for x in spec.windows]
        self._rsi = _Emas([1.0 / x for x in w] * 2, list(spec.windows) * 2)
        self._ema_close = _Emas([2.0 / (x + 1.0) for x in w], list(spec.windows))
        fast_slow = [p for f, s, _ in spec.macd_sets for p in (f, s)]
        self._macd = _Emas([2.0 / (p + 1.0) for p in fast_slow], fast_slow)
        self._signal = _Emas([2.0 / (g + 1.0) for _, _, g in spec.macd_sets], [g for _, _, g in spec.macd_sets])

    def update(self, open: float, high: float, low: float, close: float, volume: float, ts: int) -> FloatArray:
        """The feature row of this bar (a NaN field makes the bar a gap; see the batch module)."""
        o, h, lo, c, v = clean_bars(*(np.full(1, x, dtype=np.float64) for x in (open, high, low, close, volume)))
        prev = self._prev
        terms = bar_terms(o, h, lo, c, v, prev[0:1], prev[1:2], prev[2:3], prev[3:4])
        self._prev = np.array([c[0], prev[0], h[0], lo[0]])
        self._push_terms(terms[0])
        last = self._position + self._capacity
        r = terms[0, 0]
        for buffer, values in ((self._max_rows, (h[0], r, v[0])), (self._min_rows, (lo[0], r))):
            buffer[:, self._position] = values
            buffer[:, last] = values
        self._closes[self._position] = self._closes[last] = c[0]
        self._count += 1
        self._position = (self._position + 1) % self._capacity
        if self._count % self._capacity == 0:
            self._recompute_sums(last)
        return self._row(c, terms, last, ts)

    def _push_terms(self, terms: FloatArray) -> None:
        missing = np.isnan(terms)
        values = np.where(missing, 0.0, terms)
        leaving = self._position + self._capacity - self._windows
        old_values = self._terms[:, leaving]
        nonzero = values != 0.0
        self._nan_counts += missing.astype(np.int64)[:, None] - self._term_nan[:, leaving]
        self._nonzero_counts += nonzero.astype(np.int64)[:, None] - self._term_nonzero[:, leaving]
        self._kahan_add(np.broadcast_to(values[:, None], self._sums.shape))
        self._kahan_add(-old_values)
        for column in (self._position, self._position + self._capacity):
            self._terms[:, column] = values
            self._term_nan[:, column] = missing
            self._term_nonzero[:, column] = nonzero

    def _kahan_add(self, values: FloatArray) -> None:
        adjusted = values - self._compensation
        total = self._sums + adjusted
        self._compensation = (total - self._sums) - adjusted
        self._sums = total

    def _recompute_sums(self, last: int) -> None:
        for k, w in enumerate(self.spec.windows):
            self._sums[:, k] = self._terms[:, last - w + 1 : last + 1].sum(axis=1)
        self._compensation[:] = 0.0

    def _direct_sums(self, start: int, last: int) -> FloatArray:
        """Sums of r, r², r³, r⁴ over each window, afresh (see `DIRECT_TERMS`); NaN on a gap."""
        returns = self._max_rows[1, start : last + 1]
        powers = np.stack([returns**k for k in range(1, len(DIRECT_TERMS) + 1)])
        sums: FloatArray = np.cumsum(np.add.reduceat(powers, self._segment_starts, axis=1)[:, ::-1], axis=1)
        return sums

    def _close_std(self, close: float, start: int, last: int) -> FloatArray:
        """Sample std of the close over each window, from deviations to the current close."""
        deviations = self._closes[start : last + 1] - close
        w = self._windows.astype(np.float64)
        s1 = np.cumsum(np.add.reduceat(deviations, self._segment_starts)[::-1])
        s2 = np.cumsum(np.add.reduceat(deviations**2, self._segment_starts)[::-1])
        with np.errstate(invalid="ignore"):
            std: FloatArray = np.sqrt(np.maximum((s2 - s1**2 / w) / (w - 1.0), 0.0))
        return std

    def _row(self, c: FloatArray, terms: FloatArray, last: int, ts: int) -> FloatArray:
        full = (self._nan_counts == 0) & (self._count >= self._windows)
        # a window of zeros sums to exactly 0 (as in pandas), not to a rounding residue
        sums = np.where(full, np.where(self._nonzero_counts == 0, 0.0, self._sums), np.nan)
        start = last - self.spec.max_window + 1
        maxima = np.maximum.accumulate(
            np.maximum.reduceat(self._max_rows[:, start : last + 1], self._segment_starts, axis=1)[:, ::-1], axis=1
        )
        minima = np.minimum.accumulate(
            np.minimum.reduceat(self._min_rows[:, start : last + 1], self._segment_starts, axis=1)[:, ::-1], axis=1
        )
        close_lag = self._closes[last - self._windows]
        close_std = self._close_std(c[0], start, last)
        sums[self._direct] = self._direct_sums(start, last)
        change = c[0] - self._prev[1]
        n = len(self.spec.windows)
        gain_loss = np.maximum(np.array([change, -change]), 0.0)
        rsi = self._rsi.update(np.repeat(gain_loss, n))
        ema_close = self._ema_close.update(np.full(n, c[0]))
        fast_slow = self._macd.update(np.full(2 * len(self.spec.macd_sets), c[0]))
        line = (fast_slow[0::2] - fast_slow[1::2]) / c[0]
        signal = self._signal.update(line)
        row: FloatArray = assemble(
            self.spec,
            c,
            terms,
            sums[None],
            maxima[None],
            minima[None],
            close_lag[None],
            rsi[None, :n],
            rsi[None, n:],
            ema_close[None],
            close_std[None],
            line[None],
            signal[None],
            np.array([ts], dtype=np.int64),
        )[0]
        return row
