"""Performance metrics of a finished run, from its equity curve, positions, fills and trades.

Ratios are annualised from the bar length with 365-day years (crypto never closes):
periods per year = YEAR_MS / bar_ms, so 1-minute bars give 525,600 periods.
Every value is finite or None, so the dict serialises to strict JSON.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError
from core.orders import Fill
from core.series import FloatArray, IntArray
from core.time import YEAR_MS
from trader.result import BacktestResult
from trader.trades import Trade

MetricValue = float | int | str | bool | list[str] | None
Metrics = dict[str, MetricValue]


@dataclass(frozen=True, slots=True)
class Drawdown:
    """The deepest peak-to-trough fall of the equity curve, measured as a fraction of the peak."""

    fraction: float
    usdt: float  # peak − trough of that same fall
    start_ts: int | None  # the peak
    end_ts: int | None  # the trough


def periods_per_year(bar_ms: int) -> float:
    if bar_ms <= 0:
        raise ConfigError(f"bar_ms must be a positive number of milliseconds, got {bar_ms}")
    return YEAR_MS / bar_ms


def bar_returns(equity: FloatArray) -> FloatArray:
    """Simple returns bar to bar. After equity reaches zero nothing is left to gain or lose,
    so those bars count as a zero return instead of a division by zero."""
    previous = equity[:-1]
    change = np.diff(equity)
    return np.divide(change, previous, out=np.zeros_like(change), where=previous > 0)


def sharpe_ratio(returns: FloatArray, periods: float) -> float | None:
    """Mean over sample standard deviation (ddof=1) of per-bar returns, times √periods."""
    if returns.size < 2:
        return None
    deviation = float(np.std(returns, ddof=1))
    if deviation == 0.0:
        return None
    return float(np.mean(returns)) / deviation * math.sqrt(periods)


def sortino_ratio(returns: FloatArray, periods: float) -> float | None:
    """Mean return over the downside deviation √(mean(min(r, 0)²)) taken over *all* bars."""
    if returns.size == 0:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside == 0.0:
        return None
    return float(np.mean(returns)) / downside * math.sqrt(periods)


def drawdown_curve(equity: FloatArray) -> FloatArray:
    """At each bar, the fall from the running peak as a fraction of that peak (0 at a new high)."""
    if equity.size == 0:
        return equity.copy()
    peaks = np.maximum.accumulate(equity)
    fall = peaks - equity
    return np.divide(fall, peaks, out=np.zeros_like(fall), where=peaks > 0)


def max_drawdown(ts: IntArray, equity: FloatArray) -> Drawdown:
    fraction = drawdown_curve(equity)
    if fraction.size == 0 or float(np.max(fraction)) <= 0.0:
        return Drawdown(0.0, 0.0, None, None)
    trough = int(np.argmax(fraction))
    peak_equity = float(np.max(equity[: trough + 1]))
    # The peak is the last bar before the trough where equity stood at the running maximum.
    peak = int(np.flatnonzero(equity[: trough + 1] == peak_equity)[-1])
    return Drawdown(float(fraction[trough]), peak_equity - float(equity[trough]), int(ts[peak]), int(ts[trough]))


def trades_hash(fills: Iterable[Fill]) -> str:
    """SHA-256 of every fill in order, one line per fill, floats written with repr.

    repr round-trips a float exactly, so two runs hash alike only if their fills agree bit for bit.
    """
    digest = hashlib.sha256()
    for fill in fills:
        line = "\t".join(
            (
                str(fill.ts),
                fill.symbol,
                str(fill.side),
                repr(float(fill.quantity)),
                repr(float(fill.price)),
                repr(float(fill.fee)),
                str(fill.liquidity),
                str(fill.is_liquidation),
            )
        )
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def compute_metrics(result: BacktestResult, trades: Sequence[Trade]) -> Metrics:
    """Account-level totals come from the ledger (fills, funding, equity); per-trade statistics
    (win rate, profit factor, average trade) from the closed trades' net P&L."""
    notes: list[str] = []
    closed = [trade.net_pnl for trade in trades if trade.is_closed]
    wins = sum(pnl for pnl in closed if pnl > 0)
    losses = -sum(pnl for pnl in closed if pnl < 0)
    profit_factor: float | None = None
    if losses > 0:
        profit_factor = wins / losses
    elif closed:
        notes.append("profit_factor is None: no closed trade lost money, so it is infinite or undefined")

    periods = periods_per_year(result.bar_ms)
    returns = bar_returns(result.equity)
    drawdown = max_drawdown(result.ts, result.equity)
    funding_total = sum(payment.amount for payment in result.funding)
    funding_in_trades = sum(trade.funding for trade in trades)
    liquidation_events = {(f.symbol, f.ts) for f in result.fills if f.is_liquidation}
    mean_equity = float(np.mean(result.equity)) if result.equity.size else result.initial_balance

    return {
        "initial_balance": result.initial_balance,
        "final_equity": result.final_equity,
        "net_pnl": result.final_equity - result.initial_balance,
        "gross_realised_pnl": sum(fill.realized_pnl for fill in result.fills),
        "fees": sum(fill.fee for fill in result.fills),
        "funding": funding_total,
        "funding_unattributed": funding_total - funding_in_trades,
        "trades": len(closed),
        "open_trades": len(trades) - len(closed),
        "win_rate": sum(1 for pnl in closed if pnl > 0) / len(closed) if closed else None,
        "profit_factor": profit_factor,
        "avg_trade": sum(closed) / len(closed) if closed else None,
        "bars": int(result.equity.size),
        "periods_per_year": periods,
        "sharpe": sharpe_ratio(returns, periods),
        "sortino": sortino_ratio(returns, periods),
        "max_drawdown": drawdown.fraction,
        "max_drawdown_usdt": drawdown.usdt,
        "max_drawdown_start_ts": drawdown.start_ts,
        "max_drawdown_end_ts": drawdown.end_ts,
        "time_in_market": _time_in_market(result),
        "avg_gross_exposure": _average_gross_exposure(result),
        "turnover": _traded_notional(result.fills) / mean_equity if mean_equity > 0 else None,
        "liquidations": len(liquidation_events),
        "insurance_fund_cover": result.insurance_fund_cover,
        "synthetic": result.synthetic,
        "trades_hash": trades_hash(result.fills),
        "notes": notes,
    }


def _time_in_market(result: BacktestResult) -> float:
    """Fraction of bars that closed with any position open."""
    if result.ts.size == 0:
        return 0.0
    in_market = np.zeros(result.ts.size, dtype=bool)
    for symbol in result.symbols:
        in_market |= result.position_qty[symbol] != 0.0
    return float(np.mean(in_market))


def _gross_notional(result: BacktestResult) -> FloatArray:
    """Σ |quantity| × close over symbols at each bar; a bar without a close (the symbol has no
    data there yet) cannot hold a position, so it adds nothing."""
    gross = np.zeros(result.ts.size, dtype=np.float64)
    for notional in result.exposure_notional().values():
        gross += np.nan_to_num(notional, nan=0.0)
    return gross


def _average_gross_exposure(result: BacktestResult) -> float:
    """Mean of gross notional / equity over the bars with positive equity."""
    solvent = result.equity > 0
    if not np.any(solvent):
        return 0.0
    return float(np.mean(_gross_notional(result)[solvent] / result.equity[solvent]))


def _traded_notional(fills: Iterable[Fill]) -> float:
    return sum(fill.quantity * fill.price for fill in fills)
