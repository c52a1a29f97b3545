from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from market.exchange_rules import SavedRules, save_rules
from trader.backtest import BacktestConfig, load_data


def test_a_backtest_of_downloaded_data_uses_the_saved_rules_of_a_symbol_outside_the_table(tmp_path: Path) -> None:
    minutes = 60
    dates = pd.date_range("2025-06-01", periods=minutes, freq="1min", tz="UTC")
    close = 20.0 + np.arange(minutes) * 0.001
    pd.DataFrame(
        {"date": dates, "open": close, "high": close + 0.01, "low": close - 0.01, "close": close, "volume": 1.0}
    ).to_feather(tmp_path / "AVAX_USDT_USDT-1m-futures.feather")
    save_rules(tmp_path, {"AVAX/USDT:USDT": SavedRules(0.001, 1.0, 5.0, "binanceusdm markets")})

    _, instruments, _ = load_data(BacktestConfig(data=tmp_path))

    assert instruments["AVAX/USDT:USDT"].tick_size == 0.001
    assert instruments["AVAX/USDT:USDT"].step_size == 1.0
