from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DataQualityError
from core.series import BarSeries
from core.time import MINUTE_MS, parse_date_ms
from market.loaders import check_path, load_market_data, load_market_data_with_report
from market.quality import (
    IssueKind,
    RepairPolicy,
    bar_frame,
    check_bars,
    check_observations,
    repair_bars,
    repair_observations,
)

T0 = parse_date_ms("2025-06-01")
FILE = "BTC_USDT_USDT-1m-futures.feather"
Row = tuple[float, float, float, float, float, float]  # minute, open, high, low, close, volume


def frame(*rows: Row) -> pd.DataFrame:
    """Bars from (minute after T0, open, high, low, close, volume) rows."""
    table = pd.DataFrame(rows, columns=["minute", "open", "high", "low", "close", "volume"])
    ts = T0 + (table.pop("minute") * MINUTE_MS).astype(np.int64)
    return table.assign(ts=ts)


def good(minute: float, price: float = 100.0) -> Row:
    return (minute, price, price + 1, price - 1, price, 10.0)


def write_feather(directory: Path, table: pd.DataFrame, name: str = FILE) -> Path:
    path = directory / name
    dates = pd.to_datetime(table["ts"], unit="ms", utc=True)
    table.drop(columns="ts").assign(date=dates)[["date", "open", "high", "low", "close", "volume"]].to_feather(path)
    return path


def kinds(issues: list) -> list[tuple[IssueKind, int | None]]:
    return [(issue.kind, issue.row) for issue in issues]


def test_clean_bars_have_no_issues() -> None:
    assert check_bars(frame(good(0), good(1), good(2)), FILE) == []


def test_nan_is_reported_with_its_row_and_column() -> None:
    issues = check_bars(frame(good(0), good(1), (2, 100, 101, 99, float("nan"), 1)), FILE)
    assert kinds(issues) == [(IssueKind.NAN, 2)]
    assert issues[0].detail == "NaN in close"


def test_zero_price_is_reported() -> None:
    issues = check_bars(frame(good(0), (1, 100, 101, 0.0, 100, 1)), FILE)
    assert kinds(issues) == [(IssueKind.NON_POSITIVE_PRICE, 1)]
    assert issues[0].detail == "zero or negative price: low 0.0"


def test_high_below_low_message_names_file_row_and_time() -> None:
    issues = check_bars(frame(good(0), good(1), good(2), (3, 100.5, 100.0, 101.0, 100.5, 1)), FILE)
    assert kinds(issues) == [(IssueKind.HIGH_BELOW_LOW, 3)]
    assert issues[0].message == f"{FILE} row 3 (2025-06-01T00:03:00Z): high 100.0 < low 101.0"
    assert issues[0].timestamp == "2025-06-01T00:03:00Z"


def test_open_or_close_outside_the_bar_range_is_reported() -> None:
    issues = check_bars(frame(good(0), (1, 105, 101, 99, 100, 1), (2, 100, 101, 99, 98, 1)), FILE)
    assert kinds(issues) == [(IssueKind.PRICE_OUTSIDE_RANGE, 1), (IssueKind.PRICE_OUTSIDE_RANGE, 2)]
    assert issues[0].detail == "open 105.0 outside [low 99.0, high 101.0]"
    assert issues[1].detail.startswith("close 98.0")


def test_negative_volume_is_reported() -> None:
    issues = check_bars(frame(good(0), (1, 100, 101, 99, 100, -2.0)), FILE)
    assert kinds(issues) == [(IssueKind.NEGATIVE_VOLUME, 1)]


def test_duplicate_timestamp_is_reported_on_the_later_row() -> None:
    issues = check_bars(frame(good(0), good(1), good(1), good(2)), FILE)
    assert kinds(issues) == [(IssueKind.DUPLICATE_TIMESTAMP, 2)]
    assert issues[0].detail == "duplicate timestamp (first seen at row 1)"


def test_out_of_order_timestamp_is_reported_where_time_goes_backwards() -> None:
    issues = check_bars(frame(good(0), good(2), good(1), good(3)), FILE)
    assert kinds(issues) == [(IssueKind.OUT_OF_ORDER, 2)]


def test_gap_reports_first_missing_bar_and_count() -> None:
    # bars at minutes 0, 1, 5: minutes 2, 3, 4 are missing, found before row 2
    issues = check_bars(frame(good(0), good(1), good(5)), FILE)
    assert kinds(issues) == [(IssueKind.GAP, 2)]
    assert issues[0].ts == T0 + 2 * MINUTE_MS
    assert "3 missing 1m bar(s) from 2025-06-01T00:02:00Z to 2025-06-01T00:04:00Z" in issues[0].detail


def test_timestamp_off_the_grid_is_reported() -> None:
    issues = check_bars(frame(good(0), good(1), good(1.5), good(2)), FILE)
    assert kinds(issues) == [(IssueKind.OFF_GRID, 2)]


def test_gaps_are_measured_on_the_timeframe_of_the_series() -> None:
    table = frame(good(0), good(5), good(10), good(20))
    prices = {name: table[name].to_numpy(dtype=np.float64) for name in ("open", "high", "low", "close", "volume")}
    series = BarSeries("BTC/USDT:USDT", 5 * MINUTE_MS, table["ts"].to_numpy(), **prices, source=FILE)
    issues = check_bars(series)
    assert kinds(issues) == [(IssueKind.GAP, 3)]
    assert issues[0].file == FILE
    assert "1 missing 5m bar(s)" in issues[0].detail


def test_issues_are_ordered_by_row() -> None:
    issues = check_bars(frame(good(0), (1, 100, 101, 99, 100, -1), good(1), (3, float("nan"), 1, 1, 1, 1)), FILE)
    assert [issue.row for issue in issues] == sorted(issue.row or 0 for issue in issues)


def test_frames_with_a_datetime_date_column_are_accepted() -> None:
    table = frame(good(0), good(2))
    dated = table.drop(columns="ts").assign(date=pd.to_datetime(table["ts"], unit="ms", utc=True))
    assert kinds(check_bars(dated, FILE)) == [(IssueKind.GAP, 1)]


def test_skip_drops_invalid_rows_and_later_duplicates_sorts_and_leaves_gaps() -> None:
    table = bar_frame(
        frame(good(0, 100), good(2, 102), good(1, 101), good(1, 999), (3, float("nan"), 1, 1, 1, 1), good(6, 106)),
        FILE,
    )
    repaired, repairs = repair_bars(table, RepairPolicy.SKIP, MINUTE_MS)
    assert list((repaired["ts"] - T0) // MINUTE_MS) == [0, 1, 2, 6]
    assert list(repaired["close"]) == [100, 101, 102, 106]  # the first of the two minute-1 rows is kept
    assert repairs == [
        f"{FILE}: dropped 1 row(s) with NaN values (rows 4)",
        f"{FILE}: dropped 1 row(s) with a duplicate timestamp, kept the first (rows 3)",
        "sorted rows into time order (1 row(s) were out of order)",
        "left 1 gap(s) (3 missing 1m bars) unfilled",
    ]


def test_ffill_fills_each_missing_bar_flat_at_the_previous_close_with_zero_volume() -> None:
    table = bar_frame(frame(good(0, 100), (1, 100, 103, 99, 102, 5), good(4, 104)), FILE)
    repaired, repairs = repair_bars(table, RepairPolicy.FFILL, MINUTE_MS)
    assert list((repaired["ts"] - T0) // MINUTE_MS) == [0, 1, 2, 3, 4]
    filled = repaired.iloc[2:4]
    for name in ("open", "high", "low", "close"):
        assert list(filled[name]) == [102, 102]
    assert list(filled["volume"]) == [0, 0]
    assert repairs[-1].startswith("filled 2 missing 1m bar(s) in 1 gap(s)")
    assert check_bars(repaired, timeframe_ms=MINUTE_MS) == []


def test_repairing_funding_drops_nan_rates_and_duplicates() -> None:
    table = pd.DataFrame({"ts": [T0, T0 + 1, T0, T0 + 2], "rate": [1e-4, float("nan"), 2e-4, 3e-4]})
    table = table.assign(source="f.feather", row=np.arange(4))
    assert kinds(check_observations(table, "rate", positive=False)) == [
        (IssueKind.NAN, 1),
        (IssueKind.DUPLICATE_TIMESTAMP, 2),
        (IssueKind.OUT_OF_ORDER, 2),
    ]
    repaired, repairs = repair_observations(table, "rate", positive=False)
    assert list(repaired["rate"]) == [1e-4, 3e-4]
    assert len(repairs) == 2


corrupt_values = st.one_of(st.floats(-10, 200, allow_nan=False), st.just(float("nan")), st.just(0.0), st.just(-1.0))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), corrupt_values, corrupt_values, corrupt_values, corrupt_values, corrupt_values),
        max_size=30,
    )
)
def test_after_skip_only_gaps_remain_and_after_ffill_nothing(rows: list[Row]) -> None:
    table = bar_frame(frame(*rows), FILE)
    skipped, _ = repair_bars(table, RepairPolicy.SKIP, MINUTE_MS)
    assert {issue.kind for issue in check_bars(skipped)} <= {IssueKind.GAP}
    filled, _ = repair_bars(table, RepairPolicy.FFILL, MINUTE_MS)
    assert check_bars(filled) == []


def test_loading_refuses_bad_data_naming_the_first_issue_and_the_repair_options(tmp_path: Path) -> None:
    write_feather(tmp_path, frame(good(0), good(1), (2, 100, 99, 101, 100, 1), good(3), good(7)))
    with pytest.raises(DataQualityError) as refusal:
        load_market_data(tmp_path)
    message = str(refusal.value)
    assert f"{FILE} row 2 (2025-06-01T00:02:00Z): high 99.0 < low 101.0" in message
    assert "and 1 other issue(s)" in message
    assert "--on-gap skip" in message and "--on-gap ffill" in message
    assert "\n" not in message


def test_loading_with_a_repair_policy_reports_each_repair(tmp_path: Path) -> None:
    write_feather(tmp_path, frame(good(0), good(1), (2, 100, 99, 101, 100, 1), good(3)))
    result = load_market_data_with_report(tmp_path, repair=RepairPolicy.SKIP)
    assert result.repairs == (
        f"BTC/USDT:USDT: {FILE}: dropped 1 row(s) with high below low (rows 2)",
        "BTC/USDT:USDT: left 1 gap(s) (1 missing 1m bars) unfilled",
    )
    assert [issue.kind for issue in result.issues] == [IssueKind.HIGH_BELOW_LOW]
    assert len(result.data.bars["BTC/USDT:USDT"]) == 3


def test_check_path_reports_every_recognised_file_including_unreadable_ones(tmp_path: Path) -> None:
    clean = write_feather(tmp_path, frame(good(0), good(1)), "ETH_USDT_USDT-1m-futures.feather")
    gappy = write_feather(tmp_path, frame(good(0), good(3)))
    broken = tmp_path / "SOL_USDT_USDT-1m-futures.feather"
    broken.write_bytes(b"not an arrow file")
    (tmp_path / "notes.txt").write_text("ignored")
    results = check_path(tmp_path)
    assert set(results) == {str(clean), str(gappy), str(broken)}
    assert results[str(clean)] == []
    assert kinds(results[str(gappy)]) == [(IssueKind.GAP, 1)]
    [unreadable] = results[str(broken)]
    assert unreadable.kind is IssueKind.UNREADABLE
    assert unreadable.message.startswith("SOL_USDT_USDT-1m-futures.feather: cannot read as feather")


def test_real_sample_files_have_no_quality_issues(shared_data: Path) -> None:
    # The samples start and end at slightly different minutes per symbol, but have no gap inside.
    results = check_path(shared_data)
    assert len(results) == 27
    assert {file: issues for file, issues in results.items() if issues} == {}
