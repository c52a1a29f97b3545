"""Data-quality rules for market data, and the two ways of repairing what breaks them.

A check never changes data: it returns `QualityIssue`s that name the file, the 0-based data
row (header lines not counted) and the bar time. Loading refuses data with issues unless
the caller picks a `RepairPolicy`; repairs are reported as one line each.

Frames handled here have one row per bar (or observation) with `ts` (epoch ms UTC) and the
value columns, plus `source` (file) and `row` (0-based row in that file) so that issues in
data concatenated from several files still point at the right file and row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.errors import DataError
from core.series import BarSeries, FloatArray, IntArray
from core.time import DAY_MS, HOUR_MS, MINUTE_MS, iso

PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = (*PRICE_COLUMNS, "volume")
_ROWS_SHOWN = 5

BoolArray = npt.NDArray[np.bool_]


class IssueKind(StrEnum):
    UNREADABLE = "unreadable"
    NAN = "nan"
    NON_POSITIVE_PRICE = "non_positive_price"
    HIGH_BELOW_LOW = "high_below_low"
    PRICE_OUTSIDE_RANGE = "price_outside_range"
    NEGATIVE_VOLUME = "negative_volume"
    DUPLICATE_TIMESTAMP = "duplicate_timestamp"
    OUT_OF_ORDER = "out_of_order"
    OFF_GRID = "off_grid"
    GAP = "gap"


class RepairPolicy(StrEnum):
    """What loading does with data that breaks a quality rule (CLI: `--on-gap skip|ffill`)."""

    SKIP = "skip"  # drop invalid rows and later duplicates, sort; gaps stay gaps (no bar there)
    FFILL = "ffill"  # SKIP, then fill each missing bar with a flat bar at the previous close, volume 0


@dataclass(frozen=True, slots=True)
class QualityIssue:
    kind: IssueKind
    file: str
    row: int | None  # 0-based data row in `file`; None when the issue is about the whole file
    ts: int | None  # epoch ms UTC of the row (for a gap: the first missing bar)
    detail: str

    @property
    def timestamp(self) -> str | None:
        return None if self.ts is None else iso(self.ts)

    @property
    def message(self) -> str:
        where = Path(self.file).name or "<data>"
        if self.row is not None:
            where += f" row {self.row}"
        if self.ts is not None:
            where += f" ({iso(self.ts)})"
        return f"{where}: {self.detail}"

    def __str__(self) -> str:
        return self.message


def timeframe_label(timeframe_ms: int) -> str:
    """60000 → `1m`, 28800000 → `8h`."""
    for unit_ms, unit in ((DAY_MS, "d"), (HOUR_MS, "h"), (MINUTE_MS, "m")):
        if timeframe_ms % unit_ms == 0:
            return f"{timeframe_ms // unit_ms}{unit}"
    return f"{timeframe_ms}ms"


def epoch_ms(column: pd.Series, where: str) -> IntArray:
    """A `date` column (datetime, naive meaning UTC; or integer epoch ms/µs/ns) → int64 ms."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        missing = np.flatnonzero(column.isna().to_numpy())
        if missing.size:
            raise DataError(f"{where}: row {int(missing[0])} has no timestamp")
        return np.asarray(column.dt.as_unit("ms").astype("int64").to_numpy(), dtype=np.int64)
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if bad.size:
        raise DataError(
            f"{where}: row {int(bad[0])} timestamp {column.iloc[int(bad[0])]!r} "
            "is not a datetime or integer epoch milliseconds"
        )
    millis = values.astype(np.int64)
    # Binance switched some public files to microseconds in 2025; accept µs and ns as well.
    largest = int(np.abs(millis).max()) if millis.size else 0
    if largest >= 10**17:
        millis //= 1_000_000
    elif largest >= 10**14:
        millis //= 1_000
    return millis


def bar_frame(bars: BarSeries | pd.DataFrame, source: str = "") -> pd.DataFrame:
    """Any bar input → the frame layout of this module (ts, OHLCV, source, row)."""
    if isinstance(bars, BarSeries):
        frame = pd.DataFrame({"ts": bars.ts, **{name: getattr(bars, name) for name in BAR_COLUMNS}})
        source = source or bars.source
    else:
        frame = bars.reset_index(drop=True)
        if "ts" not in frame.columns:
            if "date" not in frame.columns:
                raise DataError(f"{source or '<frame>'}: bars need a `ts` or `date` column")
            frame = frame.assign(ts=epoch_ms(frame["date"], source or "<frame>"))
        missing = [name for name in BAR_COLUMNS if name not in frame.columns]
        if missing:
            raise DataError(f"{source or '<frame>'}: missing column(s) {', '.join(missing)}")
    frame = _with_provenance(frame.assign(ts=frame["ts"].astype(np.int64)), source)
    return frame[["ts", *BAR_COLUMNS, "source", "row"]]


def check_bars(
    bars: BarSeries | pd.DataFrame, source: str = "", *, timeframe_ms: int | None = None
) -> list[QualityIssue]:
    """Every quality issue in OHLCV bars, ordered by file and row.

    For a frame, `timeframe_ms` gives the grid (default 1m); a BarSeries carries its own.
    """
    frame = bar_frame(bars, source)
    if timeframe_ms is None:
        timeframe_ms = bars.timeframe_ms if isinstance(bars, BarSeries) else MINUTE_MS
    prices = {name: frame[name].to_numpy(dtype=np.float64) for name in BAR_COLUMNS}
    issues: list[QualityIssue] = []
    issues += _nan_issues(frame, BAR_COLUMNS)
    issues += _non_positive_issues(frame, PRICE_COLUMNS)
    high, low = prices["high"], prices["low"]
    issues += _row_issues(
        frame,
        high < low,
        IssueKind.HIGH_BELOW_LOW,
        lambda i: f"high {float(high[i])} < low {float(low[i])}",
    )
    issues += _outside_range_issues(frame, "open", prices["open"], low, high)
    issues += _outside_range_issues(frame, "close", prices["close"], low, high)
    volume = prices["volume"]
    issues += _row_issues(frame, volume < 0, IssueKind.NEGATIVE_VOLUME, lambda i: f"negative volume {float(volume[i])}")
    issues += _timestamp_issues(frame, timeframe_ms)
    return sorted(issues, key=_issue_order)


def check_observations(frame: pd.DataFrame, column: str, *, positive: bool, source: str = "") -> list[QualityIssue]:
    """Issues in a funding (`rate`) or mark (`price`) frame with `ts`: NaN, non-positive
    values when `positive`, duplicate and out-of-order timestamps. No grid check: funding
    intervals differ between symbols and change over time."""
    frame = _with_provenance(frame, source)
    issues = _nan_issues(frame, (column,))
    if positive:
        issues += _non_positive_issues(frame, (column,))
    issues += _timestamp_issues(frame, None)
    return sorted(issues, key=_issue_order)


def repair_bars(frame: pd.DataFrame, policy: RepairPolicy, timeframe_ms: int) -> tuple[pd.DataFrame, list[str]]:
    """Apply `policy` to bars (any frame `bar_frame` accepts); returns the repaired frame
    (sorted, unique, on the grid) and one line per repair made."""
    frame = bar_frame(frame)
    prices = {name: frame[name].to_numpy(dtype=np.float64) for name in BAR_COLUMNS}
    high, low = prices["high"], prices["low"]
    ts = frame["ts"].to_numpy(dtype=np.int64)
    reasons = (
        ("NaN values", np.isnan(np.column_stack(list(prices.values()))).any(axis=1)),
        ("zero or negative prices", np.column_stack([prices[n] <= 0 for n in PRICE_COLUMNS]).any(axis=1)),
        ("high below low", high < low),
        (
            "open or close outside [low, high]",
            (prices["open"] > high) | (prices["open"] < low) | (prices["close"] > high) | (prices["close"] < low),
        ),
        ("negative volume", prices["volume"] < 0),
        (f"timestamps off the {timeframe_label(timeframe_ms)} grid", ts % timeframe_ms != 0),
    )
    repairs: list[str] = []
    dropped = np.zeros(len(frame), dtype=bool)
    for reason, mask in reasons:
        newly = mask & ~dropped
        repairs += _drop_lines(frame, newly, f"dropped {{count}} row(s) with {reason}")
        dropped |= newly
    kept = frame.loc[~dropped]
    duplicate = kept["ts"].duplicated(keep="first").to_numpy()
    repairs += _drop_lines(kept, duplicate, "dropped {count} row(s) with a duplicate timestamp, kept the first")
    kept = kept.loc[~duplicate]
    ts_kept = kept["ts"].to_numpy(dtype=np.int64)
    out_of_order = int(np.count_nonzero(np.diff(ts_kept) < 0))
    if out_of_order:
        repairs.append(f"sorted rows into time order ({out_of_order} row(s) were out of order)")
    kept = kept.sort_values("ts", kind="stable").reset_index(drop=True)
    if policy is RepairPolicy.FFILL:
        return _fill_gaps(kept, timeframe_ms, repairs)
    gaps, missing = _gap_counts(kept["ts"].to_numpy(dtype=np.int64), timeframe_ms)
    if gaps:
        repairs.append(f"left {gaps} gap(s) ({missing} missing {timeframe_label(timeframe_ms)} bars) unfilled")
    return kept, repairs


def repair_observations(frame: pd.DataFrame, column: str, *, positive: bool) -> tuple[pd.DataFrame, list[str]]:
    """Drop NaN (and, when `positive`, non-positive) rows and later duplicates; sort."""
    frame = _with_provenance(frame, "")
    value = frame[column].to_numpy(dtype=np.float64)
    invalid = np.isnan(value) | ((value <= 0) if positive else np.zeros(len(value), dtype=bool))
    repairs = _drop_lines(frame, invalid, f"dropped {{count}} row(s) with a NaN or invalid {column}")
    kept = frame.loc[~invalid]
    duplicate = kept["ts"].duplicated(keep="first").to_numpy()
    repairs += _drop_lines(kept, duplicate, "dropped {count} row(s) with a duplicate timestamp, kept the first")
    kept = kept.loc[~duplicate].sort_values("ts", kind="stable").reset_index(drop=True)
    return kept, repairs


def _with_provenance(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    if "source" not in frame.columns:
        frame = frame.assign(source=source)
    if "row" not in frame.columns:
        frame = frame.assign(row=np.arange(len(frame), dtype=np.int64))
    return frame


def _issue_order(issue: QualityIssue) -> tuple[str, int, int]:
    return (issue.file, -1 if issue.row is None else issue.row, list(IssueKind).index(issue.kind))


def _row_issues(
    frame: pd.DataFrame, mask: BoolArray, kind: IssueKind, detail: Callable[[int], str]
) -> list[QualityIssue]:
    indices = np.flatnonzero(mask)
    if not indices.size:
        return []
    sources = frame["source"].to_numpy()
    rows = frame["row"].to_numpy(dtype=np.int64)
    ts = frame["ts"].to_numpy(dtype=np.int64)
    return [QualityIssue(kind, str(sources[i]), int(rows[i]), int(ts[i]), detail(int(i))) for i in indices]


def _outside_range_issues(
    frame: pd.DataFrame, name: str, value: FloatArray, low: FloatArray, high: FloatArray
) -> list[QualityIssue]:
    outside = (high >= low) & ((value > high) | (value < low))
    return _row_issues(
        frame,
        outside,
        IssueKind.PRICE_OUTSIDE_RANGE,
        lambda i: f"{name} {float(value[i])} outside [low {float(low[i])}, high {float(high[i])}]",
    )


def _nan_issues(frame: pd.DataFrame, columns: Iterable[str]) -> list[QualityIssue]:
    names = list(columns)
    is_nan = np.column_stack([np.isnan(frame[name].to_numpy(dtype=np.float64)) for name in names])
    return _row_issues(
        frame,
        np.any(is_nan, axis=1),
        IssueKind.NAN,
        lambda i: "NaN in " + ", ".join(name for name, bad in zip(names, is_nan[i], strict=True) if bad),
    )


def _non_positive_issues(frame: pd.DataFrame, columns: Iterable[str]) -> list[QualityIssue]:
    names = list(columns)
    values = np.column_stack([frame[name].to_numpy(dtype=np.float64) for name in names])
    bad = values <= 0
    return _row_issues(
        frame,
        np.any(bad, axis=1),
        IssueKind.NON_POSITIVE_PRICE,
        lambda i: (
            "zero or negative price: "
            + ", ".join(f"{name} {float(values[i, j])}" for j, name in enumerate(names) if bad[i, j])
        ),
    )


def _timestamp_issues(frame: pd.DataFrame, timeframe_ms: int | None) -> list[QualityIssue]:
    ts = frame["ts"].to_numpy(dtype=np.int64)
    rows = frame["row"].to_numpy(dtype=np.int64)
    issues: list[QualityIssue] = []
    first_rows = frame.groupby("ts", sort=False)["row"].transform("first").to_numpy(dtype=np.int64)
    duplicate = frame["ts"].duplicated(keep="first").to_numpy()
    issues += _row_issues(
        frame,
        duplicate,
        IssueKind.DUPLICATE_TIMESTAMP,
        lambda i: f"duplicate timestamp (first seen at row {first_rows[i]})",
    )
    earlier = np.zeros(len(ts), dtype=bool)
    earlier[1:] = ts[1:] < ts[:-1]
    issues += _row_issues(
        frame,
        earlier,
        IssueKind.OUT_OF_ORDER,
        lambda i: f"timestamp earlier than the previous row's {iso(int(ts[i - 1]))}",
    )
    if timeframe_ms is None:
        return issues
    label = timeframe_label(timeframe_ms)
    off_grid = ts % timeframe_ms != 0
    issues += _row_issues(frame, off_grid, IssueKind.OFF_GRID, lambda i: f"timestamp not on the {label} grid")
    on_grid = np.flatnonzero(~off_grid)
    unique_ts, first_index = np.unique(ts[on_grid], return_index=True)
    steps = np.diff(unique_ts)
    sources = frame["source"].to_numpy()
    for j in np.flatnonzero(steps > timeframe_ms):
        after = int(on_grid[first_index[j + 1]])
        first_missing = int(unique_ts[j]) + timeframe_ms
        last_missing = int(unique_ts[j + 1]) - timeframe_ms
        count = int(steps[j]) // timeframe_ms - 1
        issues.append(
            QualityIssue(
                IssueKind.GAP,
                str(sources[after]),
                int(rows[after]),
                first_missing,
                f"gap before this row: {count} missing {label} bar(s) from {iso(first_missing)} to {iso(last_missing)}",
            )
        )
    return issues


def _gap_counts(ts: IntArray, timeframe_ms: int) -> tuple[int, int]:
    steps = np.diff(ts)
    gaps = steps > timeframe_ms
    return int(np.count_nonzero(gaps)), int((steps[gaps] // timeframe_ms - 1).sum())


def _fill_gaps(frame: pd.DataFrame, timeframe_ms: int, repairs: list[str]) -> tuple[pd.DataFrame, list[str]]:
    ts = frame["ts"].to_numpy(dtype=np.int64)
    gaps, missing = _gap_counts(ts, timeframe_ms)
    if not gaps:
        return frame, repairs
    grid = np.arange(ts[0], ts[-1] + timeframe_ms, timeframe_ms, dtype=np.int64)
    filled = frame.set_index("ts").reindex(grid)
    absent = filled["close"].isna().to_numpy()
    previous_close = filled["close"].ffill()
    for name in PRICE_COLUMNS:
        filled[name] = filled[name].where(~absent, previous_close)
    filled["volume"] = filled["volume"].where(~absent, 0.0)
    filled["source"] = filled["source"].where(~absent, "")
    filled["row"] = filled["row"].where(~absent, -1).astype(np.int64)
    first_missing = int(grid[np.flatnonzero(absent)[0]])
    repairs.append(
        f"filled {missing} missing {timeframe_label(timeframe_ms)} bar(s) in {gaps} gap(s) with flat bars "
        f"at the previous close and volume 0 (first {iso(first_missing)})"
    )
    return filled.rename_axis("ts").reset_index(), repairs


def _drop_lines(frame: pd.DataFrame, mask: BoolArray, template: str) -> list[str]:
    """One repair line per file for the rows in `mask`, e.g. `X.feather: dropped 2 row(s) …`."""
    indices = np.flatnonzero(mask)
    if not indices.size:
        return []
    affected = frame.iloc[indices]
    lines = []
    for source, group in affected.groupby("source", sort=True):
        rows = [str(row) for row in group["row"].to_numpy()[:_ROWS_SHOWN]]
        more = ", …" if len(group) > _ROWS_SHOWN else ""
        name = Path(str(source)).name or "<data>"
        lines.append(f"{name}: {template.format(count=len(group))} (rows {', '.join(rows)}{more})")
    return lines
