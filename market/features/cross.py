"""Cross-asset features: each symbol against a benchmark (BTC) and the spread of all
symbols' returns, over history (`compute_cross_features`) or bar by bar
(`IncrementalCrossFeatures`) with the same values.

Input is one close series per symbol on a common time grid, e.g.
`dict(zip(grid.symbols, grid.close))` from a `MarketGrid` (NaN where a symbol has no bar).
Per window w, with r the 1-bar log return:

* `btc_beta_w` = cov(r_sym, r_btc) / var(r_btc) and `btc_corr_w` their correlation, sample
  moments over the last w returns; NaN on a flat window (zero variance);
* `btc_rel_ret_w` = ln(c_t / c_{t−w}) of the symbol minus that of the benchmark;
* `dispersion_w` = sample std, across the symbols with a defined value, of their
  ln(c_t / c_{t−w}); NaN with fewer than two; the same value in every symbol's matrix.

The benchmark's own rows are computed like any other's rather than special-cased, so a
model sees one consistent definition: its beta is exactly 1 (cov and var are the same sums),
its correlation 1 up to rounding (clipped to [−1, 1]), its relative return 0.
A window holding a gap (NaN close) is NaN until it has passed it, as in `batch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.series import FloatArray

BENCHMARK = "BTC/USDT:USDT"
CROSS_WINDOWS = (30, 60, 240, 1440)
CROSS_FAMILIES = ("btc_beta", "btc_corr", "btc_rel_ret", "dispersion")


def cross_feature_names(windows: tuple[int, ...] = CROSS_WINDOWS) -> list[str]:
    return [f"{family}_{w}" for family in CROSS_FAMILIES for w in windows]


def assemble_cross(
    windows: tuple[int, ...],
    sx: FloatArray,
    sxx: FloatArray,
    sxy: FloatArray,
    sy: FloatArray,
    syy: FloatArray,
    ret_symbol: FloatArray,
    ret_benchmark: FloatArray,
    dispersion: FloatArray,
) -> FloatArray:
    """One symbol's features, shape (bars, 4·windows), from window sums of its returns x and
    the benchmark's y (each (bars, windows)), both w-bar log returns and the dispersion."""
    w = np.asarray(windows, dtype=np.float64)
    cov = (sxy - sx * sy / w) / (w - 1.0)
    var_x = (sxx - sx**2 / w) / (w - 1.0)
    var_y = (syy - sy**2 / w) / (w - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(var_y > 0.0, cov / var_y, np.nan)
        corr = np.where((var_x > 0.0) & (var_y > 0.0), np.clip(cov / np.sqrt(var_x * var_y), -1.0, 1.0), np.nan)
    return np.concatenate([beta, corr, ret_symbol - ret_benchmark, dispersion], axis=1)


def cross_dispersion(returns: FloatArray) -> FloatArray:
    """Sample std over the last axis (symbols) of the defined values; NaN with fewer than two."""
    defined = np.isfinite(returns)
    count = defined.sum(axis=-1)
    values = np.where(defined, returns, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = values.sum(axis=-1) / count
        squares = np.where(defined, (returns - mean[..., None]) ** 2, 0.0).sum(axis=-1)
        std: FloatArray = np.where(count >= 2, np.sqrt(squares / (count - 1.0)), np.nan)
    return std


def compute_cross_features(
    closes: Mapping[str, FloatArray], benchmark: str = BENCHMARK, windows: tuple[int, ...] = CROSS_WINDOWS
) -> tuple[list[str], dict[str, FloatArray]]:
    """(names, {symbol: matrix[n_bars, n_features]}); a row uses bars up to its own only."""
    _check(list(closes), benchmark, windows)
    lengths = {values.shape[0] for values in closes.values()}
    if len(lengths) != 1:
        raise ValueError(f"close series must share one time grid, got lengths {sorted(lengths)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        log_close = {symbol: np.log(np.asarray(values, dtype=np.float64)) for symbol, values in closes.items()}
    returns = {symbol: _shift_difference(values, 1) for symbol, values in log_close.items()}
    long_returns = {s: np.stack([_shift_difference(v, w) for w in windows], axis=1) for s, v in log_close.items()}
    dispersion = cross_dispersion(np.stack(list(long_returns.values()), axis=2))
    y = returns[benchmark]
    sy, syy = _window_sums(y, windows), _window_sums(y * y, windows)
    matrices = {
        symbol: assemble_cross(
            windows,
            _window_sums(x, windows),
            _window_sums(x * x, windows),
            _window_sums(x * y, windows),
            sy,
            syy,
            long_returns[symbol],
            long_returns[benchmark],
            dispersion,
        )
        for symbol, x in returns.items()
    }
    return cross_feature_names(windows), matrices


class IncrementalCrossFeatures:
    """The live twin of `compute_cross_features`: `update` once per grid bar with every
    symbol's close (a symbol left out, or NaN, is a gap at that bar)."""

    def __init__(
        self, symbols: Sequence[str], benchmark: str = BENCHMARK, windows: tuple[int, ...] = CROSS_WINDOWS
    ) -> None:
        _check(list(symbols), benchmark, windows)
        self.symbols = tuple(symbols)
        self.windows = windows
        self._benchmark = self.symbols.index(benchmark)
        depth = max(windows)
        self._log_closes = np.full((len(symbols), depth + 1), np.nan)  # oldest first
        self._returns = np.full((len(symbols), depth), np.nan)
        self._segment_starts = depth - np.asarray(windows[::-1], dtype=np.int64)
        self._last_ts: int | None = None

    @property
    def feature_names(self) -> list[str]:
        return cross_feature_names(self.windows)

    def update(self, closes_by_symbol: Mapping[str, float], ts: int) -> dict[str, FloatArray]:
        """Every symbol's cross-feature row at the bar opening at `ts`."""
        unknown = set(closes_by_symbol) - set(self.symbols)
        if unknown:
            raise ValueError(f"closes for symbols not tracked here: {sorted(unknown)}; tracked: {list(self.symbols)}")
        if self._last_ts is not None and ts <= self._last_ts:
            raise ValueError(f"bar at {ts} ms is not after the previous bar at {self._last_ts} ms")
        self._last_ts = ts
        with np.errstate(divide="ignore", invalid="ignore"):
            log_close = np.log(np.array([closes_by_symbol.get(s, np.nan) for s in self.symbols], dtype=np.float64))
        self._log_closes[:, :-1] = self._log_closes[:, 1:]
        self._log_closes[:, -1] = log_close
        self._returns[:, :-1] = self._returns[:, 1:]
        self._returns[:, -1] = log_close - self._log_closes[:, -2]
        lags = self._log_closes[:, -1 - np.asarray(self.windows)]
        long_returns = log_close[:, None] - lags  # (symbols, windows)
        dispersion = cross_dispersion(long_returns.T)[None]
        x = self._returns
        y = x[self._benchmark]
        sx, sxx, sxy = self._sums(x), self._sums(x * x), self._sums(x * y)
        b = self._benchmark
        return {
            symbol: assemble_cross(
                self.windows,
                sx[k][None],
                sxx[k][None],
                sxy[k][None],
                sx[b][None],
                sxx[b][None],
                long_returns[k][None],
                long_returns[b][None],
                dispersion,
            )[0]
            for k, symbol in enumerate(self.symbols)
        }

    def _sums(self, values: FloatArray) -> FloatArray:
        """Sums over the last w values of each row for every window, shape (rows, windows)."""
        segments = np.add.reduceat(values, self._segment_starts, axis=1)[:, ::-1]
        sums: FloatArray = np.cumsum(segments, axis=1)
        return sums


def _check(symbols: list[str], benchmark: str, windows: tuple[int, ...]) -> None:
    if benchmark not in symbols:
        raise ValueError(f"benchmark {benchmark} is not among the symbols {symbols}")
    if list(windows) != sorted(set(windows)) or windows[0] < 3:
        raise ValueError(f"cross-feature windows must be increasing, distinct and >= 3 bars, got {windows}")


def _shift_difference(values: FloatArray, bars: int) -> FloatArray:
    """values[t] − values[t − bars], NaN for the first `bars` rows."""
    difference = np.full_like(values, np.nan)
    if bars < values.size:
        difference[bars:] = values[bars:] - values[: values.size - bars]
    return difference


def _window_sums(values: FloatArray, windows: tuple[int, ...]) -> FloatArray:
    """Sum of each full trailing window, afresh per window (no running residue), (bars, windows)."""
    sums = np.full((values.size, len(windows)), np.nan)
    for k, w in enumerate(windows):
        if values.size < w:
            continue
        view = sliding_window_view(values, w)
        rows = max(1, 2_000_000 // w)
        for start in range(0, view.shape[0], rows):
            sums[w - 1 + start : w - 1 + start + rows, k] = view[start : start + rows].sum(axis=1)
    return sums
