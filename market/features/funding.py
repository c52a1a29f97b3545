"""Funding-rate features per bar, over history (`compute_funding_features`) or bar by bar
(`IncrementalFundingFeatures`) with the same values.

As-of semantics: a settlement stamped at 08:00 is known from the bar opening at 08:00 on
(Binance publishes the rate it settles at that instant), never on an earlier bar.
Rate statistics are taken over settlements, not bars: `funding_mean_k` / `funding_z_k`
use the last k settled rates (z-score with the sample std; NaN while fewer than k
settlements are known, and on a window of identical rates, whose std is 0).
Time to the next settlement assumes settlements on multiples of `interval_ms` since the
epoch (Binance: 00:00, 08:00, 16:00 UTC); the carry annualises the current rate at that
interval (rate × settlements per year, positive: longs pay shorts).
"""

from __future__ import annotations

from collections import deque

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from core.series import FloatArray, IntArray
from core.time import HOUR_MS

FUNDING_WINDOWS = (3, 9, 21)
FUNDING_INTERVAL_MS = 8 * HOUR_MS
_YEAR_MS = 365 * 24 * HOUR_MS
_MINUTE_MS = 60_000


def funding_feature_names(windows: tuple[int, ...] = FUNDING_WINDOWS) -> list[str]:
    names = ["funding_rate", "funding_change"]
    names += [f"funding_{stat}_{k}" for k in windows for stat in ("mean", "z")]
    return [*names, "funding_minutes_to_next", "funding_next_sin", "funding_next_cos", "funding_carry_annual"]


def settlement_features(history: FloatArray, windows: tuple[int, ...]) -> FloatArray:
    """Rate, change and the rolling mean / z-score per settlement, shape (rows, 2 + 2·windows).

    history: (rows, max(windows) + 1) settled rates, oldest first, the row's own settlement
    last; NaN where it had not happened yet.
    """
    rate = history[:, -1]
    columns = [rate, rate - history[:, -2]]
    for k in windows:
        window = history[:, -k:]
        mean = window.mean(axis=1)
        flat = window.max(axis=1) == window.min(axis=1)
        std = np.sqrt(((window - mean[:, None]) ** 2).sum(axis=1) / (k - 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(flat, np.nan, (rate - mean) / std)
        columns += [mean, z]
    return np.stack(columns, axis=1)


def clock_features(ts: IntArray, interval_ms: int) -> FloatArray:
    """Minutes to the next settlement and its phase as sin/cos, shape (bars, 3)."""
    remaining_ms = interval_ms - ts % interval_ms
    phase = 2.0 * np.pi * remaining_ms.astype(np.float64) / interval_ms
    return np.stack([remaining_ms / _MINUTE_MS, np.sin(phase), np.cos(phase)], axis=1)


def compute_funding_features(
    ts: IntArray,
    settle_ts: IntArray,
    rate: FloatArray,
    windows: tuple[int, ...] = FUNDING_WINDOWS,
    interval_ms: int = FUNDING_INTERVAL_MS,
) -> tuple[list[str], FloatArray]:
    """(names, matrix[n_bars, n_features]) for bars opening at `ts` and settlements
    (`settle_ts`, `rate`, increasing); a row uses settlements at or before its bar only."""
    _check_windows(windows)
    depth = max(windows) + 1
    padded = np.concatenate([np.full(depth, np.nan), rate.astype(np.float64)])  # one spare row: no settlements
    per_settlement = settlement_features(sliding_window_view(padded, depth), windows)[1:]
    known = np.searchsorted(settle_ts, ts, side="right") - 1  # last settlement at or before the bar
    rows = np.full((ts.size, per_settlement.shape[1]), np.nan)
    rows[known >= 0] = per_settlement[known[known >= 0]]
    carry = rows[:, :1] * (_YEAR_MS / interval_ms)
    matrix = np.concatenate([rows, clock_features(ts, interval_ms), carry], axis=1)
    return funding_feature_names(windows), matrix


class IncrementalFundingFeatures:
    """The live twin of `compute_funding_features`: `add_settlement` as rates are
    published (in time order), `update` once per bar; a settlement only counts from the
    first bar opening at or after its time."""

    def __init__(self, windows: tuple[int, ...] = FUNDING_WINDOWS, interval_ms: int = FUNDING_INTERVAL_MS) -> None:
        _check_windows(windows)
        self.windows = windows
        self.interval_ms = interval_ms
        self._history = np.full(max(windows) + 1, np.nan)
        self._pending: deque[tuple[int, float]] = deque()
        self._last_settle_ts: int | None = None
        self._current = np.full(2 + 2 * len(windows), np.nan)

    @property
    def feature_names(self) -> list[str]:
        return funding_feature_names(self.windows)

    def add_settlement(self, settle_ts: int, rate: float) -> None:
        latest = self._pending[-1][0] if self._pending else self._last_settle_ts
        if latest is not None and settle_ts <= latest:
            raise ValueError(f"funding settlement at {settle_ts} ms is not after the previous one at {latest} ms")
        self._pending.append((settle_ts, rate))

    def update(self, ts: int) -> FloatArray:
        """The funding feature row of the bar opening at `ts`."""
        while self._pending and self._pending[0][0] <= ts:
            settle_ts, rate = self._pending.popleft()
            self._history = np.append(self._history[1:], rate)
            self._last_settle_ts = settle_ts
            self._current = settlement_features(self._history[None], self.windows)[0]
        clock = clock_features(np.array([ts], dtype=np.int64), self.interval_ms)[0]
        carry = self._current[0] * (_YEAR_MS / self.interval_ms)
        return np.concatenate([self._current, clock, [carry]])


def _check_windows(windows: tuple[int, ...]) -> None:
    if not windows or min(windows) < 2:
        raise ValueError(f"funding windows need >= 2 settlements each for a z-score, got {windows}")
