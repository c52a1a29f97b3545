"""The installed `cryptoscalp` command, run as a user would: a fresh process in a scratch directory.

Every anticipated failure must end in one line on stderr that names the problem and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

BARS_FILE = "BTC_USDT_USDT-1m-futures.feather"
MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Completed:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def cryptoscalp(*args: str | Path, cwd: Path) -> Completed:
    script = shutil.which("cryptoscalp")
    command = [script] if script else [sys.executable, "-c", "from trader.cli import main; main()"]
    # wide and colourless, so tables and messages are not wrapped or escaped mid-word
    env = os.environ | {"COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    done = subprocess.run(
        [*command, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return Completed(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(run: Completed) -> str:
    assert run.exit_code != 0
    assert "Traceback" not in run.stderr
    assert len(run.stderr_lines) == 1, run.stderr
    return run.stderr_lines[0]


def only_run_dir(out: Path) -> Path:
    (run_dir,) = [path for path in out.iterdir() if path.is_dir()]
    return run_dir


def write_bars(
    directory: Path, count: int = 120, nan_row: int | None = None, missing_rows: tuple[int, ...] = ()
) -> Path:
    """`count` one-minute BTC bars from 2025-06-01 (a gentle zig-zag so EMAs cross), optionally
    with a NaN close at `nan_row` and the rows in `missing_rows` left out (a gap)."""
    directory.mkdir(parents=True, exist_ok=True)
    close = 100_000.0 + 50.0 * np.sin(np.arange(count) / 7.0)
    bars = pd.DataFrame(
        {
            "date": pd.Timestamp("2025-06-01", tz="UTC") + MINUTE * np.arange(count),
            "open": close - 5.0, "high": close + 10.0, "low": close - 10.0, "close": close, "volume": 1.0,
        }
    )  # fmt: skip
    if nan_row is not None:
        bars.loc[nan_row, "close"] = np.nan
    bars = bars.drop(index=list(missing_rows)).reset_index(drop=True)
    path = directory / BARS_FILE
    bars.to_feather(path)
    return path


@pytest.mark.slow
def test_synthetic_backtest_writes_metrics_report_tables_and_catalogue(tmp_path: Path) -> None:
    run = cryptoscalp("backtest", "--synthetic", "--days", "2", "--seed", "7", "--out", "tmp", cwd=tmp_path)

    assert run.exit_code == 0, run.stderr
    run_dir = only_run_dir(tmp_path / "tmp")
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["synthetic"] is True and record["seed"] == 7
    assert record["metrics"]["bars"] == 2 * 1440  # two days of one-minute bars
    assert "SYNTHETIC" in (run_dir / "report.html").read_text(encoding="utf-8")
    fills = pq.read_table(run_dir / "fills.parquet")
    assert fills.num_rows > 0
    assert pq.read_table(run_dir / "orders.parquet").num_rows >= fills.num_rows
    assert pq.read_table(run_dir / "trades.parquet").num_rows > 0
    with closing(sqlite3.connect(tmp_path / "tmp" / "runs.sqlite")) as catalogue:
        stored = catalogue.execute("SELECT run_id, trades_hash FROM runs").fetchall()
        stored_fills = catalogue.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    assert stored == [(record["run_id"], record["metrics"]["trades_hash"])]
    assert stored_fills == fills.num_rows


@pytest.mark.slow
def test_real_data_backtest_of_two_pairs_over_two_days(tmp_path: Path, shared_data: Path) -> None:
    run = cryptoscalp(
        "backtest", "--data", shared_data, "--pairs", "BTC", "ETH",
        "--start", "2025-06-01", "--end", "2025-06-03", "--out", "runs", cwd=tmp_path,
    )  # fmt: skip

    assert run.exit_code == 0, run.stderr
    record = json.loads((only_run_dir(tmp_path / "runs") / "metrics.json").read_text())
    assert record["synthetic"] is False
    assert record["symbols"] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert record["metrics"]["bars"] == 2 * 1440  # 2025-06-01 00:00 up to, not including, 06-03 00:00


def test_a_missing_data_directory_is_one_error_line_naming_it(tmp_path: Path) -> None:
    line = assert_one_line_error(cryptoscalp("backtest", "--data", tmp_path / "nowhere", cwd=tmp_path))

    assert "nowhere" in line


def test_a_corrupt_feather_file_is_one_error_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / BARS_FILE).write_bytes(b"\x00garbage, not an Arrow IPC file\xff" * 16)

    line = assert_one_line_error(cryptoscalp("backtest", "--data", "tmp", cwd=tmp_path))

    assert BARS_FILE in line


def test_an_unknown_pair_is_one_error_line_naming_it(tmp_path: Path) -> None:
    write_bars(tmp_path / "data")

    line = assert_one_line_error(cryptoscalp("backtest", "--data", "data", "--pairs", "NOPE", cwd=tmp_path))

    assert "NOPE" in line


def test_an_end_before_the_start_is_one_error_line_naming_both(tmp_path: Path) -> None:
    write_bars(tmp_path / "data")

    line = assert_one_line_error(
        cryptoscalp("backtest", "--data", "data", "--start", "2025-06-05", "--end", "2025-06-03", cwd=tmp_path)
    )

    assert "2025-06-05" in line and "2025-06-03" in line


@pytest.mark.parametrize(
    ("defect", "named_row"),
    [({"nan_row": 40}, "row 40"), ({"missing_rows": (60, 61, 62)}, "row 60")],  # the row after a gap is named
    ids=["nan", "gap"],
)
def test_bad_rows_are_refused_naming_the_file_and_row(
    tmp_path: Path, defect: dict[str, object], named_row: str
) -> None:
    write_bars(tmp_path / "data", **defect)  # type: ignore[arg-type]

    line = assert_one_line_error(cryptoscalp("backtest", "--data", "data", "--out", "runs", cwd=tmp_path))

    assert f"{BARS_FILE} {named_row}" in line
    assert "--on-gap" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["ffill", "skip"])
@pytest.mark.parametrize("defect", [{"nan_row": 40}, {"missing_rows": (60, 61, 62)}], ids=["nan", "gap"])
def test_bad_rows_are_accepted_with_an_on_gap_policy(tmp_path: Path, defect: dict[str, object], policy: str) -> None:
    write_bars(tmp_path / "data", **defect)  # type: ignore[arg-type]

    run = cryptoscalp("backtest", "--data", "data", "--on-gap", policy, "--out", "runs", cwd=tmp_path)

    assert run.exit_code == 0, run.stderr
    record = json.loads((only_run_dir(tmp_path / "runs") / "metrics.json").read_text())
    # 120 bars written; ffill restores every missing minute, skip drops the bad ones
    expected_bars = {("ffill", "nan"): 120, ("ffill", "gap"): 120, ("skip", "nan"): 119, ("skip", "gap"): 117}
    kind = "nan" if "nan_row" in defect else "gap"
    assert record["metrics"]["bars"] == expected_bars[(policy, kind)]
    assert record["config"]["repairs"]


def test_data_check_of_the_shared_data_lists_all_27_files_clean(tmp_path: Path, shared_data: Path) -> None:
    run = cryptoscalp("data", "check", shared_data, cwd=tmp_path)

    assert run.exit_code == 0, run.stderr
    assert "27 files, 0 issues" in run.stdout
    for kind in ("1m-futures", "8h-funding_rate", "8h-mark"):
        assert run.stdout.count(f"_USDT_USDT-{kind}.feather") == 9


def test_data_check_of_a_directory_with_a_bad_file_names_the_file_and_row(tmp_path: Path) -> None:
    write_bars(tmp_path / "data", nan_row=40)

    run = cryptoscalp("data", "check", "data", cwd=tmp_path)

    assert run.exit_code != 0
    assert "Traceback" not in run.stderr
    assert f"{BARS_FILE} row 40" in run.stdout
    assert "NaN in close" in run.stdout
