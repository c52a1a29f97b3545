from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.orders import Fill, Liquidity, Side
from core.time import DAY_MS, HOUR_MS, MINUTE_MS
from trader.metrics import (
    bar_returns,
    compute_metrics,
    max_drawdown,
    periods_per_year,
    sharpe_ratio,
    sortino_ratio,
    trades_hash,
)
from trader.result import BacktestResult, FundingPayment
from trader.trades import Trade, TradeSide, build_trades

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def fill(ts: int, side: Side, quantity: float, price: float, fee: float = 0.0, realized_pnl: float = 0.0) -> Fill:
    return Fill(f"o{ts}", BTC, side, quantity, price, fee, Liquidity.TAKER, ts, realized_pnl)


def result(
    equity: list[float],
    positions: dict[str, list[float]] | None = None,
    fills: list[Fill] | None = None,
    funding: list[FundingPayment] | None = None,
    bar_ms: int = MINUTE_MS,
) -> BacktestResult:
    bars = len(equity)
    positions = positions or {BTC: [0.0] * bars}
    return BacktestResult(
        run_id="t",
        started_at="2025-01-01T00:00:00Z",
        config={},
        seed=1,
        synthetic=True,
        code_version="test",
        data_files=[],
        symbols=list(positions),
        bar_ms=bar_ms,
        initial_balance=equity[0],
        ts=np.arange(bars, dtype=np.int64) * bar_ms,
        equity=np.array(equity, dtype=np.float64),
        wallet=np.array(equity, dtype=np.float64),
        position_qty={s: np.array(q, dtype=np.float64) for s, q in positions.items()},
        close={s: np.full(bars, 100.0) for s in positions},
        fills=fills or [],
        funding=funding or [],
    )


def closed_trade(net_pnl: float, close_ts: int | None = 1) -> Trade:
    return Trade(BTC, TradeSide.LONG, 0, close_ts, 100.0, 101.0, 1.0, net_pnl, 0.0, 0.0, False, 2)


def test_one_minute_bars_annualise_with_525600_periods() -> None:
    assert periods_per_year(MINUTE_MS) == 525_600  # 365 × 24 × 60


def test_sharpe_is_mean_over_sample_std_of_bar_returns_times_root_periods() -> None:
    # Returns +10 %, −10 %, +10 %: mean 1/30, sample std √((2 × (1/15)² + (2/15)²) / 2) = 0.2/√3,
    # so 1/30 ÷ (0.2/√3) = √3/6 per bar; daily bars → × √365 = √1095 / 6 ≈ 5.51513.
    returns = bar_returns(np.array([100.0, 110.0, 99.0, 108.9]))

    assert returns == pytest.approx([0.1, -0.1, 0.1])
    assert sharpe_ratio(returns, periods_per_year(DAY_MS)) == pytest.approx(math.sqrt(1095) / 6)


def test_compute_metrics_annualises_with_the_bar_length_of_the_run() -> None:
    # Same curve on hourly bars: √3/6 per bar × √(365 × 24) = √(3 × 8760) / 6 ≈ 27.0185.
    metrics = compute_metrics(result([100.0, 110.0, 99.0, 108.9], bar_ms=HOUR_MS), [])

    assert metrics["periods_per_year"] == 8760
    assert metrics["sharpe"] == pytest.approx(math.sqrt(3 * 8760) / 6)


def test_sortino_divides_by_downside_deviation_over_all_bars() -> None:
    # Downside √((0² + 0.1² + 0²) / 3) = 0.1/√3; (1/30) ÷ (0.1/√3) = 1/√3 per bar; × √365 = √(365/3).
    returns = np.array([0.1, -0.1, 0.1])

    assert sortino_ratio(returns, 365.0) == pytest.approx(math.sqrt(365 / 3))


def test_flat_equity_has_no_sharpe_or_sortino() -> None:
    returns = bar_returns(np.array([100.0, 100.0, 100.0]))

    assert sharpe_ratio(returns, 365.0) is None
    assert sortino_ratio(returns, 365.0) is None


def test_max_drawdown_reports_fraction_depth_and_peak_to_trough_times() -> None:
    # Peaks 100, 120, 120, 130, 130, 130; falls 0, 0, 30/120 = 25 %, 0, 26/130 = 20 %, 20/130.
    drawdown = max_drawdown(
        np.array([0, 1, 2, 3, 4, 5], dtype=np.int64) * 1000,
        np.array([100.0, 120.0, 90.0, 130.0, 104.0, 110.0]),
    )

    assert drawdown.fraction == pytest.approx(0.25)
    assert drawdown.usdt == pytest.approx(30.0)
    assert (drawdown.start_ts, drawdown.end_ts) == (1000, 2000)


def test_max_drawdown_is_the_deepest_fraction_not_the_largest_usdt_fall() -> None:
    # 100 → 50 is −50 % (50 USDT); 1000 → 700 is −30 % (300 USDT): the first is the max drawdown.
    drawdown = max_drawdown(np.arange(4, dtype=np.int64), np.array([100.0, 50.0, 1000.0, 700.0]))

    assert (drawdown.fraction, drawdown.usdt, drawdown.start_ts, drawdown.end_ts) == (0.5, 50.0, 0, 1)


def test_an_equity_curve_that_only_rises_has_no_drawdown() -> None:
    drawdown = max_drawdown(np.arange(3, dtype=np.int64), np.array([100.0, 101.0, 102.0]))

    assert (drawdown.fraction, drawdown.usdt, drawdown.start_ts, drawdown.end_ts) == (0.0, 0.0, None, None)


def test_win_rate_profit_factor_and_average_use_closed_trades_net_pnl() -> None:
    trades = [closed_trade(30.0), closed_trade(-10.0), closed_trade(5.0), closed_trade(-5.0)]
    still_open = closed_trade(100.0, close_ts=None)

    metrics = compute_metrics(result([1000.0, 1000.0]), [*trades, still_open])

    assert metrics["trades"] == 4
    assert metrics["open_trades"] == 1
    assert metrics["win_rate"] == 0.5  # 2 winners of 4 closed
    assert metrics["profit_factor"] == pytest.approx(35 / 15)  # (30 + 5) / (10 + 5)
    assert metrics["avg_trade"] == 5.0  # (30 − 10 + 5 − 5) / 4


def test_profit_factor_without_a_losing_trade_is_none_with_a_note() -> None:
    metrics = compute_metrics(result([1000.0, 1000.0]), [closed_trade(3.0)])

    assert metrics["profit_factor"] is None
    notes = metrics["notes"]
    assert isinstance(notes, list)
    assert any("profit_factor" in note for note in notes)


def test_no_trades_leave_trade_statistics_undefined() -> None:
    metrics = compute_metrics(result([1000.0, 1000.0]), [])

    assert (metrics["trades"], metrics["win_rate"], metrics["profit_factor"], metrics["avg_trade"]) == (
        0,
        None,
        None,
        None,
    )


def test_totals_come_from_the_ledger() -> None:
    fills = [
        fill(1 * MINUTE_MS, Side.BUY, 1.0, 100.0, fee=0.04),
        fill(2 * MINUTE_MS, Side.SELL, 1.0, 110.0, fee=0.044, realized_pnl=10.0),
    ]
    funding = [FundingPayment(MINUTE_MS, BTC, 1.0, 100.0, 0.001, 0.1)]
    equity = [1000.0, 1000.0, 1009.816, 1009.816]  # 1000 + 10 − 0.084 fees − 0.1 funding

    metrics = compute_metrics(result(equity, fills=fills, funding=funding), build_trades(fills, funding))

    assert metrics["net_pnl"] == pytest.approx(9.816)
    assert metrics["gross_realised_pnl"] == 10.0
    assert metrics["fees"] == pytest.approx(0.084)
    assert metrics["funding"] == 0.1
    assert metrics["funding_unattributed"] == 0.0
    # traded notional 1 × 100 + 1 × 110 = 210 over mean equity (2000 + 2 × 1009.816) / 4 = 1004.908
    assert metrics["turnover"] == pytest.approx(210 / 1004.908)


def test_exposure_counts_bars_with_any_position_and_averages_gross_notional_over_equity() -> None:
    # Closes are 100. Bar 1: BTC 1 → 100 / 1000; bar 2: BTC 1 and ETH −2 → 300 / 1000; bar 3: ETH −2.
    positions = {BTC: [0.0, 1.0, 1.0, 0.0, 0.0], ETH: [0.0, 0.0, -2.0, -2.0, 0.0]}

    metrics = compute_metrics(result([1000.0] * 5, positions=positions), [])

    assert metrics["time_in_market"] == 0.6  # 3 of 5 bars
    assert metrics["avg_gross_exposure"] == pytest.approx(0.12)  # (0 + 0.1 + 0.3 + 0.2 + 0) / 5


def test_liquidations_and_insurance_cover_are_reported() -> None:
    liquidation = Fill("liq", BTC, Side.SELL, 1.0, 50.0, 0.6, Liquidity.TAKER, 60_000, -50.0, True)
    run = result([1000.0, 950.0], fills=[fill(0, Side.BUY, 1.0, 100.0), liquidation])
    run.insurance_fund_cover = 2.5

    metrics = compute_metrics(run, build_trades(run.fills))

    assert (metrics["liquidations"], metrics["insurance_fund_cover"]) == (1, 2.5)


def test_trades_hash_is_the_same_for_equal_fills_and_changes_with_one_ulp() -> None:
    fills = [fill(1, Side.BUY, 1.0, 100.0, fee=0.04), fill(2, Side.SELL, 1.0, 110.0, fee=0.044)]
    same = [fill(1, Side.BUY, 1.0, 100.0, fee=0.04), fill(2, Side.SELL, 1.0, 110.0, fee=0.044)]
    one_ulp_dearer = [fill(1, Side.BUY, 1.0, math.nextafter(100.0, 200.0), fee=0.04), same[1]]

    assert trades_hash(fills) == trades_hash(same)
    assert trades_hash(fills) != trades_hash(one_ulp_dearer)
    # no fills: the SHA-256 of the empty string
    assert trades_hash([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_metrics_serialise_to_strict_json() -> None:
    metrics = compute_metrics(result([1000.0, 1000.0, 1000.0]), [closed_trade(1.0)])

    json.dumps(metrics, allow_nan=False)
