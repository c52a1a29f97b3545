from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from core.errors import ConfigError
from core.orders import Fill, Liquidity, Order, OrderRequest, OrderStatus, OrderType, Side
from core.time import MINUTE_MS
from trader.report import (
    MAX_POINTS_PER_LINE,
    SYNTHETIC_BANNER,
    downsample_minmax,
    print_summary,
    write_report,
)
from trader.result import BacktestResult, DataFile, FundingPayment

BTC = "BTC/USDT:USDT"


def small_result(run_id: str = "run-1", synthetic: bool = True) -> BacktestResult:
    buy = OrderRequest(BTC, Side.BUY, OrderType.MARKET, 1.0, intent_id="i1")
    sell = OrderRequest(BTC, Side.SELL, OrderType.LIMIT, 1.0, price=110.0, reduce_only=True)
    return BacktestResult(
        run_id=run_id,
        started_at="2025-06-01T00:00:00Z",
        config={"strategy": "momentum", "leverage": 3.0, "data_dir": Path("/data")},
        seed=None if not synthetic else 7,
        synthetic=synthetic,
        code_version="abc123",
        data_files=[] if synthetic else [DataFile("/data/BTC_USDT_USDT-1m-futures.feather", "ab" * 32)],
        symbols=[BTC],
        bar_ms=MINUTE_MS,
        initial_balance=1000.0,
        ts=np.arange(4, dtype=np.int64) * MINUTE_MS,
        equity=np.array([1000.0, 1001.0, 1009.9, 1009.9]),
        wallet=np.array([1000.0, 999.96, 1009.9, 1009.9]),
        position_qty={BTC: np.array([0.0, 1.0, 0.0, 0.0])},
        close={BTC: np.array([100.0, 101.0, 110.0, 110.0])},
        orders=[
            Order("o1", buy, OrderStatus.FILLED, MINUTE_MS, 1.0, 100.0, updated_ts=MINUTE_MS),
            Order("o2", sell, OrderStatus.FILLED, MINUTE_MS, 1.0, 110.0, updated_ts=2 * MINUTE_MS),
        ],
        fills=[
            Fill("o1", BTC, Side.BUY, 1.0, 100.0, 0.04, Liquidity.TAKER, MINUTE_MS, 0.0, intent_id="i1"),
            Fill("o2", BTC, Side.SELL, 1.0, 110.0, 0.022, Liquidity.MAKER, 2 * MINUTE_MS, 10.0),
        ],
        funding=[FundingPayment(MINUTE_MS, BTC, 1.0, 100.0, 0.0004, 0.04)],
    )


def table_count(database: Path, table: str) -> int:
    with closing(sqlite3.connect(database)) as connection:
        (count,) = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    return int(count)


def test_a_report_writes_every_artifact_into_the_run_directory(tmp_path: Path) -> None:
    artifacts = write_report(small_result(), tmp_path)

    assert artifacts.run_dir == tmp_path / "run-1"
    names = {p.name for p in artifacts.run_dir.iterdir()}
    assert {"metrics.json", "trades.parquet", "orders.parquet", "fills.parquet", "funding.parquet"} <= names
    assert "report.html" in names
    assert artifacts.database == tmp_path / "runs.sqlite"


def test_metrics_json_holds_the_metrics_and_every_input_of_the_run(tmp_path: Path) -> None:
    record = json.loads(write_report(small_result(synthetic=False), tmp_path).metrics_json.read_text())

    assert record["config"] == {"strategy": "momentum", "leverage": 3.0, "data_dir": "/data"}
    assert record["data_files"] == [{"path": "/data/BTC_USDT_USDT-1m-futures.feather", "sha256": "ab" * 32}]
    assert (record["seed"], record["synthetic"], record["code_version"]) == (None, False, "abc123")
    assert (record["started_at"], record["symbols"]) == ("2025-06-01T00:00:00Z", [BTC])
    assert record["metrics"]["net_pnl"] == pytest.approx(9.9)  # 1009.9 − 1000
    assert record["metrics"]["trades"] == 1


def test_a_config_value_json_cannot_hold_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    run = small_result()
    run.config["filters"] = {"windows": {1, 2}}

    with pytest.raises(ConfigError, match=r"config\.filters\.windows is a set"):
        write_report(run, tmp_path)
    assert not (tmp_path / "run-1").exists()


def test_a_run_id_that_is_not_a_plain_directory_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run_id"):
        write_report(small_result(run_id="../escape"), tmp_path)


def test_synthetic_runs_carry_the_synthetic_banner(tmp_path: Path) -> None:
    page = write_report(small_result(synthetic=True), tmp_path).report_html.read_text(encoding="utf-8")

    assert SYNTHETIC_BANNER in page


def test_real_data_runs_name_their_files_instead_of_the_banner(tmp_path: Path) -> None:
    page = write_report(small_result(synthetic=False), tmp_path).report_html.read_text(encoding="utf-8")

    assert "SYNTHETIC" not in page
    assert "/data/BTC_USDT_USDT-1m-futures.feather" in page


def test_the_html_inlines_plotly_once_and_loads_nothing_from_the_network(tmp_path: Path) -> None:
    page = write_report(small_result(), tmp_path).report_html.read_text(encoding="utf-8")

    assert "<script src" not in page
    # guard verdicts, reason codes, equity, drawdown, P&L per symbol, positions
    assert page.count("Plotly.newPlot(") == 6
    # plotly.min.js starts with its licence banner; it must appear exactly once
    assert page.count("plotly.js v") == 1


def test_parquet_tables_round_trip_through_pandas(tmp_path: Path) -> None:
    artifacts = write_report(small_result(), tmp_path)

    fills = pd.read_parquet(artifacts.fills_parquet)
    assert fills[["ts", "side", "quantity", "price", "fee", "liquidity"]].to_dict("records") == [
        {"ts": 60_000, "side": "buy", "quantity": 1.0, "price": 100.0, "fee": 0.04, "liquidity": "taker"},
        {"ts": 120_000, "side": "sell", "quantity": 1.0, "price": 110.0, "fee": 0.022, "liquidity": "maker"},
    ]
    trades = pd.read_parquet(artifacts.trades_parquet)
    # gross 10, fees 0.04 + 0.022, funding 0.04 → net 10 − 0.062 − 0.04 = 9.898
    assert trades["net_pnl"].tolist() == pytest.approx([9.898])
    orders = pd.read_parquet(artifacts.orders_parquet)
    assert orders["order_type"].tolist() == ["market", "limit"]
    assert pd.read_parquet(artifacts.funding_parquet)["amount"].tolist() == [0.04]


def test_empty_tables_keep_their_columns(tmp_path: Path) -> None:
    run = small_result()
    run.orders, run.fills, run.funding = [], [], []

    artifacts = write_report(run, tmp_path)

    fills = pd.read_parquet(artifacts.fills_parquet)
    assert len(fills) == 0
    assert {"ts", "symbol", "side", "quantity", "price", "fee", "is_liquidation"} <= set(fills.columns)
    assert "net_pnl" in pd.read_parquet(artifacts.trades_parquet).columns
    assert "amount" in pd.read_parquet(artifacts.funding_parquet).columns


def test_the_sqlite_catalogue_holds_the_run_its_orders_and_fills(tmp_path: Path) -> None:
    artifacts = write_report(small_result(), tmp_path)

    with closing(sqlite3.connect(artifacts.database)) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        run_id, trades_hash, synthetic = connection.execute(
            "SELECT run_id, trades_hash, synthetic FROM runs"
        ).fetchone()
    assert mode == "wal"
    assert (run_id, trades_hash, synthetic) == ("run-1", artifacts.metrics["trades_hash"], 1)
    assert (table_count(artifacts.database, "orders"), table_count(artifacts.database, "fills")) == (2, 2)


def test_writing_the_same_run_again_replaces_its_rows(tmp_path: Path) -> None:
    write_report(small_result(), tmp_path)
    write_report(small_result(run_id="run-2"), tmp_path)
    artifacts = write_report(small_result(), tmp_path)

    counts = [table_count(artifacts.database, table) for table in ("runs", "orders", "fills")]
    assert counts == [2, 4, 4]  # two runs with 2 orders and 2 fills each, no duplicates


def test_long_lines_are_thinned_keeping_ends_and_extremes() -> None:
    ts = np.arange(43_200, dtype=np.int64)
    values = np.sin(ts / 500.0)
    values[12_345] = 9.0

    thin_ts, thin_values = downsample_minmax(ts, values, MAX_POINTS_PER_LINE)

    assert thin_ts.size <= MAX_POINTS_PER_LINE
    assert (thin_ts[0], thin_ts[-1]) == (0, 43_199)
    assert 12_345 in thin_ts
    assert thin_values.min() == values.min()
    assert bool(np.all(np.diff(thin_ts) > 0))


def test_a_month_of_minute_bars_for_nine_symbols_stays_under_ten_megabytes(tmp_path: Path) -> None:
    bars, symbols = 43_200, [f"S{i}/USDT:USDT" for i in range(9)]
    rng = np.random.default_rng(7)
    run = small_result()
    run.symbols = symbols
    run.ts = np.arange(bars, dtype=np.int64) * MINUTE_MS
    run.equity = 1000.0 + np.cumsum(rng.normal(0.0, 1.0, bars))
    run.wallet = run.equity.copy()
    run.position_qty = {s: np.round(rng.normal(0.0, 1.0, bars), 3) for s in symbols}
    run.close = {s: 100.0 + np.cumsum(rng.normal(0.0, 0.1, bars)) for s in symbols}
    run.orders, run.fills, run.funding = [], [], []

    artifacts = write_report(run, tmp_path)

    assert artifacts.report_html.stat().st_size < 10_000_000


def test_the_terminal_summary_shows_the_headline_numbers_and_the_synthetic_flag(tmp_path: Path) -> None:
    artifacts = write_report(small_result(), tmp_path)
    console = Console(record=True, width=120)

    print_summary(artifacts.metrics, console, artifacts.run_dir)

    text = console.export_text()
    assert "SYNTHETIC" in text
    assert "9.90 USDT" in text  # net P&L 1009.9 − 1000
    assert str(artifacts.metrics["trades_hash"])[:16] in text
    assert "run-1" in text
