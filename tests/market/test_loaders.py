from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError, DataError, DataQualityError, UnknownSymbolError
from core.time import HOUR_MS, MINUTE_MS, parse_date_ms
from market.loaders import KLINE_COLUMNS, load_market_data, load_market_data_with_report
from market.quality import IssueKind, RepairPolicy

T0 = parse_date_ms("2025-06-01")
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def bars_table(count: int = 5, start_ms: int = T0, price: float = 100.0) -> pd.DataFrame:
    ts = start_ms + MINUTE_MS * np.arange(count, dtype=np.int64)
    close = price + np.arange(count, dtype=np.float64)
    return pd.DataFrame(
        {"ts": ts, "open": close - 0.5, "high": close + 1, "low": close - 1, "close": close, "volume": 2.0 + close}
    )


def freqtrade(table: pd.DataFrame, date_as: str = "datetime") -> pd.DataFrame:
    dates = pd.to_datetime(table["ts"], unit="ms", utc=True) if date_as == "datetime" else table["ts"]
    return table.drop(columns="ts").assign(date=dates)[["date", *table.columns.drop("ts")]]


def write_freqtrade_bars(directory: Path, stem: str = "BTC_USDT_USDT", table: pd.DataFrame | None = None) -> Path:
    path = directory / f"{stem}-1m-futures.feather"
    freqtrade(bars_table() if table is None else table).to_feather(path)
    return path


def eight_hourly(values: list[float], jitter_ms: list[int] | None = None) -> pd.DataFrame:
    ts = T0 + 8 * HOUR_MS * np.arange(len(values), dtype=np.int64) + np.array(jitter_ms or [0] * len(values))
    zeros = np.zeros(len(values))
    return pd.DataFrame({"ts": ts, "open": values, "high": zeros, "low": zeros, "close": zeros, "volume": zeros})


def kline_csv(table: pd.DataFrame, header: bool, time_unit: int = 1) -> str:
    rows = [",".join(KLINE_COLUMNS)] if header else []
    for row in table.itertuples(index=False):
        open_time = int(row.ts) * time_unit
        close_time = (int(row.ts) + MINUTE_MS - 1) * time_unit
        rows.append(
            f"{open_time},{row.open},{row.high},{row.low},{row.close},{row.volume},{close_time},"
            f"{row.volume * row.close},10,1.0,100.0,0"
        )
    return "\n".join(rows) + "\n"


def write_zip(path: Path, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.with_suffix(".csv").name, text)
    return path


def assert_bars_equal(loaded_bars: object, table: pd.DataFrame) -> None:
    for name in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(loaded_bars, name), table[name].to_numpy(), err_msg=name)


def test_freqtrade_feather_bars_funding_and_mark_round_trip(tmp_path: Path) -> None:
    table = bars_table()
    bars_path = write_freqtrade_bars(tmp_path, table=table)
    freqtrade(eight_hourly([1e-4, -2e-4])).to_feather(tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather")
    freqtrade(eight_hourly([100.5, 101.5])).to_feather(tmp_path / "BTC_USDT_USDT-8h-mark.feather")
    data = load_market_data(tmp_path)
    assert data.symbols == [BTC] and not data.synthetic
    series = data.bars[BTC]
    assert series.timeframe_ms == MINUTE_MS and series.source == str(bars_path)
    assert_bars_equal(series, table)
    assert series.ts.dtype == np.int64 and series.close.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(data.funding[BTC].rate, [1e-4, -2e-4])
    np.testing.assert_array_equal(data.mark[BTC].ts, [T0, T0 + 8 * HOUR_MS])
    assert data.mark[BTC].price_at(T0 + 8 * HOUR_MS) == 101.5
    assert data.files == tuple(
        str(tmp_path / name)
        for name in (
            "BTC_USDT_USDT-1m-futures.feather",
            "BTC_USDT_USDT-8h-funding_rate.feather",
            "BTC_USDT_USDT-8h-mark.feather",
        )
    )


def test_funding_times_are_snapped_to_the_settlement_minute(tmp_path: Path) -> None:
    # Binance stamps funding a few ms late (16:00:00.013); the settlement is 16:00:00.
    write_freqtrade_bars(tmp_path)
    freqtrade(eight_hourly([1e-4, 1e-4], jitter_ms=[3, 13])).to_feather(
        tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather"
    )
    data = load_market_data(tmp_path)
    np.testing.assert_array_equal(data.funding[BTC].ts, [T0, T0 + 8 * HOUR_MS])


def test_funding_and_mark_files_are_optional(tmp_path: Path) -> None:
    write_freqtrade_bars(tmp_path)
    data = load_market_data(tmp_path)
    assert data.funding == {} and data.mark == {}


@pytest.mark.parametrize("date_as", ["datetime", "epoch_ms"])
def test_parquet_bars_round_trip_with_datetime_or_integer_dates(tmp_path: Path, date_as: str) -> None:
    table = bars_table()
    freqtrade(table, date_as).to_parquet(tmp_path / "ETH_USDT_USDT-1m-futures.parquet")
    data = load_market_data(tmp_path)
    assert_bars_equal(data.bars[ETH], table)


@pytest.mark.parametrize("header", [True, False])
def test_binance_kline_csv_round_trips_with_or_without_header(tmp_path: Path, header: bool) -> None:
    table = bars_table()
    (tmp_path / "BTCUSDT-1m-2025-06.csv").write_text(kline_csv(table, header))
    assert_bars_equal(load_market_data(tmp_path).bars[BTC], table)


def test_binance_kline_zip_round_trips(tmp_path: Path) -> None:
    table = bars_table()
    write_zip(tmp_path / "BTCUSDT-1m-2025-06.zip", kline_csv(table, header=True))
    assert_bars_equal(load_market_data(tmp_path).bars[BTC], table)


def test_binance_microsecond_timestamps_are_read_as_milliseconds(tmp_path: Path) -> None:
    table = bars_table()
    (tmp_path / "BTCUSDT-1m-2025-06.csv").write_text(kline_csv(table, header=True, time_unit=1000))
    np.testing.assert_array_equal(load_market_data(tmp_path).bars[BTC].ts, table["ts"])


def test_binance_monthly_files_in_nested_folders_are_concatenated_with_funding(tmp_path: Path) -> None:
    klines = tmp_path / "futures" / "um" / "monthly" / "klines" / "BTCUSDT" / "1m"
    klines.mkdir(parents=True)
    may = bars_table(3, start_ms=T0 - 3 * MINUTE_MS)
    june = bars_table(4, start_ms=T0)
    write_zip(klines / "BTCUSDT-1m-2025-06.zip", kline_csv(june, header=True))
    write_zip(klines / "BTCUSDT-1m-2025-05.zip", kline_csv(may, header=False))
    funding_dir = tmp_path / "futures" / "um" / "monthly" / "fundingRate" / "BTCUSDT"
    funding_dir.mkdir(parents=True)
    funding_csv = f"calc_time,funding_interval_hours,last_funding_rate\n{T0 + 5},8,0.00010000\n"
    write_zip(funding_dir / "BTCUSDT-fundingRate-2025-06.zip", funding_csv)
    data = load_market_data(tmp_path)
    assert_bars_equal(data.bars[BTC], pd.concat([may, june], ignore_index=True))
    np.testing.assert_array_equal(data.funding[BTC].ts, [T0])
    np.testing.assert_array_equal(data.funding[BTC].rate, [0.0001])
    assert len(data.files) == 3


def test_an_issue_in_concatenated_files_names_the_file_and_its_own_row(tmp_path: Path) -> None:
    (tmp_path / "BTCUSDT-1m-2025-05.csv").write_text(kline_csv(bars_table(3, start_ms=T0 - 3 * MINUTE_MS), False))
    lines = kline_csv(bars_table(4, start_ms=T0), header=True).splitlines()
    fields = lines[3].split(",")  # data row 2, after the header line
    fields[4] = "oops"  # close
    lines[3] = ",".join(fields)
    (tmp_path / "BTCUSDT-1m-2025-06.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataQualityError, match=r"BTCUSDT-1m-2025-06\.csv row 2 \(2025-06-01T00:02:00Z\): NaN in close"):
        load_market_data(tmp_path)


def test_a_csv_beside_its_zip_is_read_once(tmp_path: Path) -> None:
    text = kline_csv(bars_table(), header=True)
    write_zip(tmp_path / "BTCUSDT-1m-2025-06.zip", text)
    (tmp_path / "BTCUSDT-1m-2025-06.csv").write_text(text)
    data = load_market_data(tmp_path)
    assert data.files == (str(tmp_path / "BTCUSDT-1m-2025-06.csv"),)


def test_feather_is_preferred_when_a_symbol_has_several_formats(tmp_path: Path) -> None:
    path = write_freqtrade_bars(tmp_path)
    freqtrade(bars_table(price=5.0)).to_parquet(tmp_path / "BTC_USDT_USDT-1m-futures.parquet")
    assert load_market_data(tmp_path).files == (str(path),)


def test_only_the_requested_pairs_are_loaded_whatever_their_spelling(tmp_path: Path) -> None:
    write_freqtrade_bars(tmp_path, "BTC_USDT_USDT")
    write_freqtrade_bars(tmp_path, "ETH_USDT_USDT")
    write_freqtrade_bars(tmp_path, "SOL_USDT_USDT")
    data = load_market_data(tmp_path, ["ethusdt", "BTC", "BTC_USDT_USDT"])
    assert data.symbols == [ETH, BTC]


def test_data_outside_the_window_is_trimmed_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    write_freqtrade_bars(tmp_path, table=bars_table(10))
    data = load_market_data(tmp_path, start_ms=T0 + 2 * MINUTE_MS, end_ms=T0 + 5 * MINUTE_MS)
    np.testing.assert_array_equal(data.bars[BTC].ts, T0 + MINUTE_MS * np.array([2, 3, 4]))


@pytest.mark.parametrize("end_offset", [-MINUTE_MS, 0])
def test_end_not_after_start_is_a_config_error(tmp_path: Path, end_offset: int) -> None:
    write_freqtrade_bars(tmp_path)
    with pytest.raises(ConfigError, match="is not after start"):
        load_market_data(tmp_path, start_ms=T0, end_ms=T0 + end_offset)


def test_a_window_without_bars_is_refused_naming_the_symbol(tmp_path: Path) -> None:
    write_freqtrade_bars(tmp_path)
    with pytest.raises(DataError, match=r"BTC/USDT:USDT: no 1m bars from 2026-01-01T00:00:00Z"):
        load_market_data(tmp_path, start_ms=parse_date_ms("2026-01-01"))


def test_missing_pair_names_the_pair_the_directory_and_the_available_pairs(tmp_path: Path) -> None:
    write_freqtrade_bars(tmp_path, "BTC_USDT_USDT")
    write_freqtrade_bars(tmp_path, "ETH_USDT_USDT")
    with pytest.raises(UnknownSymbolError) as missing:
        load_market_data(tmp_path, ["BTC", "DOGE"])
    message = str(missing.value)
    assert "'DOGE' (DOGE/USDT:USDT)" in message and str(tmp_path) in message
    assert message.endswith("available: BTC/USDT:USDT, ETH/USDT:USDT")


def test_missing_timeframe_says_which_timeframes_exist(tmp_path: Path) -> None:
    write_freqtrade_bars(tmp_path)
    with pytest.raises(DataError, match=r"no 5m bar files in .*; bar timeframes present: 1m"):
        load_market_data(tmp_path, timeframe="5m")


def test_corrupt_feather_is_a_one_line_data_error_naming_the_file(tmp_path: Path) -> None:
    write_freqtrade_bars(tmp_path, "BTC_USDT_USDT")
    corrupt = tmp_path / "ETH_USDT_USDT-1m-futures.feather"
    corrupt.write_bytes(b"\x00garbage\nmore garbage")
    with pytest.raises(DataError) as unreadable:
        load_market_data(tmp_path)
    message = str(unreadable.value)
    assert message.startswith(f"{corrupt}: cannot read as feather: ")
    assert "\n" not in message


def test_corrupt_zip_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "BTCUSDT-1m-2025-06.zip"
    corrupt.write_bytes(b"PK not really")
    with pytest.raises(DataError, match=rf"^{corrupt}: cannot read: "):
        load_market_data(tmp_path)


def test_csv_with_the_wrong_columns_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "BTCUSDT-1m-2025-06.csv").write_text("1,2,3\n")
    with pytest.raises(DataError, match=r"BTCUSDT-1m-2025-06\.csv: expected 12 columns \(open_time, "):
        load_market_data(tmp_path)


def test_feather_without_a_close_column_is_a_data_error(tmp_path: Path) -> None:
    freqtrade(bars_table().drop(columns="close")).to_feather(tmp_path / "BTC_USDT_USDT-1m-futures.feather")
    with pytest.raises(DataError, match="missing column"):
        load_market_data(tmp_path)


def test_a_single_bars_file_can_be_loaded(tmp_path: Path) -> None:
    path = write_freqtrade_bars(tmp_path)
    write_freqtrade_bars(tmp_path, "ETH_USDT_USDT")
    assert load_market_data(path).symbols == [BTC]


def test_a_single_funding_file_is_not_bars(tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT_USDT-8h-funding_rate.feather"
    freqtrade(eight_hourly([1e-4])).to_feather(path)
    with pytest.raises(DataError, match="holds funding data, not bars"):
        load_market_data(path)


def test_a_single_file_of_another_timeframe_is_a_config_error(tmp_path: Path) -> None:
    path = write_freqtrade_bars(tmp_path)
    with pytest.raises(ConfigError, match="holds 1m bars but timeframe 5m was requested"):
        load_market_data(path, timeframe="5m")


def test_a_directory_without_data_files_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError, match="no market data files in"):
        load_market_data(tmp_path)


def test_a_path_that_does_not_exist_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_market_data(tmp_path / "nowhere")


def test_a_bad_timeframe_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown timeframe"):
        load_market_data(tmp_path, timeframe="1x")


def test_real_binance_samples_load_nine_symbols_with_funding_and_mark(shared_data: Path) -> None:
    result = load_market_data_with_report(shared_data)
    data = result.data
    assert sorted(data.symbols) == sorted(
        f"{base}/USDT:USDT" for base in ("ADA", "BNB", "BTC", "DOGE", "DOT", "ETH", "LTC", "SOL", "XRP")
    )
    assert set(data.funding) == set(data.bars) == set(data.mark)
    assert len(data.files) == 27 and all(Path(file).is_absolute() for file in data.files)
    assert result.issues == () and result.repairs == ()
    btc = data.bars[BTC]
    assert 43_000 < len(btc) <= 43_200 and np.all(np.diff(btc.ts) == MINUTE_MS)
    funding = data.funding[BTC]
    assert np.all(funding.ts % (8 * HOUR_MS) == 0)
    assert np.all(np.abs(funding.rate) < 0.003)
    assert all(data.mark[BTC].price_at(int(ts)) is not None for ts in funding.ts)


def test_real_binance_samples_can_be_windowed(shared_data: Path) -> None:
    start, end = parse_date_ms("2025-06-01"), parse_date_ms("2025-06-02")
    data = load_market_data(shared_data, ["BTC", "ETH"], start_ms=start, end_ms=end)
    assert data.symbols == [BTC, ETH]
    assert len(data.bars[BTC]) == 1440 and int(data.bars[BTC].ts[0]) == start
    np.testing.assert_array_equal(data.funding[ETH].ts, start + 8 * HOUR_MS * np.arange(3))


def test_unparseable_timestamp_is_a_data_error_naming_the_row(tmp_path: Path) -> None:
    text = kline_csv(bars_table(), header=True).replace(str(T0 + 2 * MINUTE_MS) + ",", "soon,", 1)
    (tmp_path / "BTCUSDT-1m-2025-06.csv").write_text(text)
    with pytest.raises(DataError, match=r"BTCUSDT-1m-2025-06\.csv: row 2 timestamp 'soon'"):
        load_market_data(tmp_path)


def test_issue_kinds_found_before_repair_are_reported(tmp_path: Path) -> None:
    table = bars_table()
    table.loc[3, "volume"] = -1.0
    write_freqtrade_bars(tmp_path, table=table)
    result = load_market_data_with_report(tmp_path, repair=RepairPolicy.FFILL)
    assert [issue.kind for issue in result.issues] == [IssueKind.NEGATIVE_VOLUME]
    assert len(result.data.bars[BTC]) == 5  # the dropped minute is filled back flat
    assert result.data.bars[BTC].volume[3] == 0.0
