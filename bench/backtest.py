"""Throughput of the backtest against backtesting.py, same data and same strategy; prints JSON.

Both engines run the baseline EMA 9/21 cross, stop-and-reverse, about 1000 USDT per
position, taker commission 0.0005, filled at the open after the deciding close (ours
reverses with one order, as Binance's one-way mode does; backtesting.py closes and
opens: fees and P&L are the same). Ours
runs all symbols through one event-driven loop with funding, cross margin and
liquidation checks; backtesting.py is single-asset, so it gets one `Backtest` per
symbol, and models no funding, margin or liquidation.

backtesting.py takes `size` either as a fraction of equity (< 1) or as whole units, so
its prices are given per *step* of the instrument (price × step): one unit is then one
step, and `floor(1000 / (close × step))` units is exactly the quantity our sizer
orders. Fees and P&L are invariant under that rescaling.

Timings are best and median of REPEATS runs. `full_run` is `run_backtest` end to end
(reading and checking the files, hashing them, the loop, the result); `loop_only`
starts from the grid already in memory, as backtesting.py starts from its DataFrames.

Run: `python bench/backtest.py` (or `make bench`). Needs the `bench` extra.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from backtesting import Backtest, Strategy
from backtesting import __version__ as backtesting_version
from backtesting.lib import crossover

from core.instrument import Instrument
from core.series import BarSeries
from market.grid import MarketGrid, build_grid
from trader.backtest import BacktestConfig, build_loop, load_data, run_backtest
from trader.result import BacktestResult
from trader.trades import build_trades

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "binance-usdm"
REPEATS = 3
NOTIONAL = 1_000.0
TAKER_FEE = 0.0005
FAST, SLOW = 9, 21
INITIAL_BALANCE = 1e6  # margin never binds: every cross is traded, as in backtesting.py
BACKTESTING_PY_CASH = 1e9
TRADE_COUNT_TOLERANCE = 0.02  # "roughly": exact ties of the EMAs are broken differently


def timed(run: Callable[[], Any]) -> tuple[list[float], Any]:
    seconds, result = [], None
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return seconds, result


def throughput(seconds: list[float], bars: int) -> dict[str, float]:
    best, median = min(seconds), statistics.median(seconds)
    return {
        "best_seconds": round(best, 4),
        "median_seconds": round(median, 4),
        "bars_per_second": round(bars / best),
        "bars_per_second_median": round(bars / median),
    }


def config() -> tuple[BacktestConfig, dict[str, object]]:
    common = {
        "initial_balance": INITIAL_BALANCE,
        "notional": NOTIONAL,
        "taker_fee": TAKER_FEE,
        "fast": FAST,
        "slow": SLOW,
        # the accounting loop against backtesting.py: no reasoning guard, no protective stop
        "guard": False,
        "stop_atr": None,
    }
    if (REAL_DATA / "BTC_USDT_USDT-1m-futures.feather").exists():
        return BacktestConfig(data=REAL_DATA, **common), {"source": "real", "path": str(REAL_DATA)}
    note = f"real data not found at {REAL_DATA}: synthetic market (30 days, seed 7) used instead"
    return BacktestConfig(synthetic=True, days=30, seed=7, **common), {"source": "synthetic", "note": note}


def run_loop(grid: MarketGrid, instruments: dict[str, Instrument], cfg: BacktestConfig) -> int:
    """The loop of `run_backtest` alone, on a grid already built; returns the fill count."""
    loop = build_loop(cfg, grid, instruments)
    loop.run()
    loop.equity_curve()
    return len(loop.exchange.fills)


def ema_indicator(close: np.ndarray, span: int, warmup: int) -> np.ndarray:
    values = pd.Series(close).ewm(span=span, adjust=False).mean().to_numpy(copy=True)
    values[: warmup - 1] = np.nan  # backtesting.py starts trading once every indicator is defined
    return values


class EmaCrossReverse(Strategy):
    fast = FAST
    slow = SLOW
    notional = NOTIONAL  # prices are per step, so whole units are steps

    def init(self) -> None:
        self.ema_fast = self.I(ema_indicator, self.data.Close, self.fast, 1)
        self.ema_slow = self.I(ema_indicator, self.data.Close, self.slow, self.slow)

    def next(self) -> None:
        # the tolerance undoes the rounding of price × step: DOT at 3.2 is 0.32000000000000006
        # per step, which would buy 3124 steps where 1000 / 3.2 / 0.1 = 3125 exactly
        units = math.floor(self.notional / self.data.Close[-1] + 1e-9)
        if units < 1:
            return
        # exclusive_orders: a new order first closes the open position (stop-and-reverse)
        if crossover(self.ema_fast, self.ema_slow):
            self.buy(size=units)
        elif crossover(self.ema_slow, self.ema_fast):
            self.sell(size=units)


def per_step_frame(bars: BarSeries, step: float) -> pd.DataFrame:
    index = pd.to_datetime(bars.ts, unit="ms", utc=True).tz_localize(None)
    return pd.DataFrame(
        {
            "Open": bars.open * step,
            "High": bars.high * step,
            "Low": bars.low * step,
            "Close": bars.close * step,
            "Volume": bars.volume,
        },
        index=index,
    )


def run_backtesting_py(frames: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:
    stats = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for symbol, frame in frames.items():
            backtest = Backtest(
                frame,
                EmaCrossReverse,
                cash=BACKTESTING_PY_CASH,
                commission=TAKER_FEE,
                exclusive_orders=True,
                finalize_trades=True,
            )
            stats[symbol] = backtest.run()
    return stats


def trade_counts(ours: BacktestResult, theirs: dict[str, pd.Series]) -> dict[str, dict[str, int]]:
    our_trades = Counter(trade.symbol for trade in build_trades(ours.fills, ours.funding))
    return {
        symbol: {"cryptoscalp": our_trades[symbol], "backtesting_py": len(theirs[symbol]["_trades"])}
        for symbol in ours.symbols
    }


def pnl_closed_at_last_open(result: BacktestResult, bars: dict[str, BarSeries]) -> float:
    """Realised P&L less fees, with each open position closed at its last bar's open as taker."""
    total = 0.0
    for symbol in result.symbols:
        fills = [fill for fill in result.fills if fill.symbol == symbol]
        total += sum(fill.realized_pnl - fill.fee for fill in fills)
        quantity = float(result.position_qty[symbol][-1])
        if quantity:
            exit_price = float(bars[symbol].open[-1])
            entry_price = fills[-1].price  # stop-and-reverse: the last fill opened the position
            total += quantity * (exit_price - entry_price) - TAKER_FEE * abs(quantity) * exit_price
    return total


def main() -> None:
    bench_started = time.perf_counter()
    cfg, data_note = config()
    market, instruments, _ = load_data(cfg)
    grid = build_grid(market)
    rows, symbols = grid.length, len(grid.symbols)
    bars = int(grid.present.sum())

    full_seconds, result = timed(lambda: run_backtest(cfg))
    loop_seconds, loop_fills = timed(lambda: run_loop(grid, instruments, cfg))
    assert loop_fills == len(result.fills), "loop-only run must do what run_backtest does"

    frames = {s: per_step_frame(market.bars[s], instruments[s].step_size) for s in grid.symbols}
    theirs_seconds, stats = timed(lambda: run_backtesting_py(frames))

    counts = trade_counts(result, stats)
    agree = all(
        abs(c["cryptoscalp"] - c["backtesting_py"]) <= TRADE_COUNT_TOLERANCE * max(c["backtesting_py"], 1)
        for c in counts.values()
    )
    funding = sum(payment.amount for payment in result.funding)
    ours_pnl = pnl_closed_at_last_open(result, market.bars)
    theirs_pnl = sum(s["Equity Final [$]"] - BACKTESTING_PY_CASH for s in stats.values())
    ours_full, ours_loop = throughput(full_seconds, bars), throughput(loop_seconds, bars)
    theirs = throughput(theirs_seconds, bars)
    report = {
        "data": data_note,
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "repeats": REPEATS,
        "rows": rows,
        "symbols": symbols,
        "bars": bars,
        "cryptoscalp": {
            "fills": len(result.fills),
            "funding_payments": len(result.funding),
            "full_run": ours_full,
            "loop_only": ours_loop,
        },
        "backtesting_py": {
            "version": backtesting_version,
            "backtests": len(stats),
            "trades": sum(len(s["_trades"]) for s in stats.values()),
            "models": "no funding, margin or liquidation; one Backtest per symbol",
            **theirs,
        },
        "ratio_ours_over_backtesting_py": {
            "full_run": round(ours_full["bars_per_second"] / theirs["bars_per_second"], 2),
            "loop_only": round(ours_loop["bars_per_second"] / theirs["bars_per_second"], 2),
        },
        "trades_per_symbol": counts,
        "trades_agree_within_2pct": agree,
        "pnl_before_funding_usdt": {
            # both valued as backtesting.py's finalize_trades does: open positions closed at
            # the last bar's open, paying the taker fee; ours also paid the funding below
            "cryptoscalp": round(ours_pnl, 6),
            "backtesting_py": round(theirs_pnl, 6),
            "difference": float(f"{ours_pnl - theirs_pnl:.3g}"),
            "cryptoscalp_funding_paid": round(funding, 4),
        },
        "bench_seconds": round(time.perf_counter() - bench_started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
