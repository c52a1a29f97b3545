"""The backtest against an independent re-derivation, the future, itself, and its live twin.

The reference ledger below reads the feather files with pandas and recomputes the
baseline EMA 9/21 stop-and-reverse from the rules alone; it calls nothing of the
simulator, the loop or the strategy. With a balance of 1e7 margin never binds, so
every cross is traded and the two ledgers must agree to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.time import parse_date_ms
from market.instruments import instrument_for
from trader.backtest import BacktestConfig, run_backtest
from trader.baseline import IncrementalEma, ema
from trader.metrics import compute_metrics, trades_hash
from trader.result import BacktestResult
from trader.trades import build_trades

PAIRS = ("BTC", "ETH", "SOL")
START, END = "2025-06-01", "2025-06-15"
INITIAL_BALANCE = 1e7
NOTIONAL = 1_000.0
TAKER_FEE = 0.0005
FAST, SLOW = 9, 21
RELATIVE = 1e-9


@dataclass(frozen=True, slots=True)
class ReferenceFill:
    ts: int
    symbol: str
    side: int  # +1 buy, -1 sell
    quantity: float
    price: float


@dataclass(frozen=True, slots=True)
class ReferenceLedger:
    fills: list[ReferenceFill]
    fees: float
    realised: float
    funding: float  # paid by the account: > 0 costs money
    unrealised: float  # at the last close

    @property
    def final_equity(self) -> float:
        return INITIAL_BALANCE + self.realised - self.fees - self.funding + self.unrealised


def _epoch_ms(dates: pd.Series) -> np.ndarray:
    return np.asarray((dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1), dtype=np.int64)


def _recursive_ema(closes: np.ndarray, span: int) -> np.ndarray:
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(closes)
    value = closes[0]
    for n, price in enumerate(closes):
        value = alpha * price + (1.0 - alpha) * value
        out[n] = value
    return out


def _reference_symbol(data: Path, base: str, start_ms: int, end_ms: int) -> ReferenceLedger:
    """One symbol's ledger from the rules: cross at a close → one reversing order at the next open."""
    bars = pd.read_feather(data / f"{base}_USDT_USDT-1m-futures.feather")
    ts = _epoch_ms(bars["date"])
    keep = (ts >= start_ms) & (ts < end_ms)
    ts = ts[keep]
    opens, closes = bars["open"].to_numpy()[keep], bars["close"].to_numpy()[keep]
    assert np.all(np.diff(ts) == 60_000), f"{base}: the reference assumes gap-free bars"

    side = np.sign(_recursive_ema(closes, FAST) - _recursive_ema(closes, SLOW))
    side[: SLOW - 1] = 0.0  # warm-up: the slow EMA has seen fewer than 21 closes
    for n in range(1, side.size):  # EMAs exactly equal keep the previous side
        if side[n] == 0.0 and n >= SLOW - 1:
            side[n] = side[n - 1]
    crosses = [n for n in range(1, side.size) if side[n] != side[n - 1] and side[n] and side[n - 1]]

    step = instrument_for(base).step_size
    fills: list[ReferenceFill] = []
    fees = realised = 0.0
    position, entry = 0.0, 0.0
    for n in crosses:
        if n + 1 >= ts.size:
            break  # a cross on the last bar has no next open to trade at
        price, direction = float(opens[n + 1]), int(side[n])
        quantity = math.floor(NOTIONAL / float(closes[n]) / step) * step
        # one order closes the old position and opens the new one
        fills.append(ReferenceFill(int(ts[n + 1]), base, direction, abs(position) + quantity, price))
        realised += position * (price - entry)
        fees += TAKER_FEE * (abs(position) + quantity) * price
        position, entry = direction * quantity, price

    funding = _reference_funding(data, base, fills, ts, opens, start_ms)
    unrealised = position * (float(closes[-1]) - entry)
    return ReferenceLedger(fills, fees, realised, funding, unrealised)


def _reference_funding(
    data: Path, base: str, fills: list[ReferenceFill], ts: np.ndarray, opens: np.ndarray, start_ms: int
) -> float:
    """Σ position × mark × rate over settlements inside the bars; the position is the one
    held at the settlement instant, so a trade at that very minute's open comes after it."""
    rates = pd.read_feather(data / f"{base}_USDT_USDT-8h-funding_rate.feather")
    marks = pd.read_feather(data / f"{base}_USDT_USDT-8h-mark.feather")
    settle_ts = _epoch_ms(rates["date"].dt.round("min"))  # Binance stamps funding ~3 ms late
    mark_at = dict(zip(_epoch_ms(marks["date"]).tolist(), marks["open"].tolist(), strict=True))
    open_at = dict(zip(ts.tolist(), opens.tolist(), strict=True))
    total = 0.0
    for moment, rate in zip(settle_ts.tolist(), rates["open"].tolist(), strict=True):
        if not start_ms < moment <= ts[-1]:
            continue
        position = 0.0
        for fill in fills:
            if fill.ts >= moment:
                break
            position += fill.side * fill.quantity
        if position:
            total += position * mark_at.get(moment, open_at[moment]) * rate
    return total


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> ReferenceLedger:
    start_ms, end_ms = parse_date_ms(START), parse_date_ms(END)
    ledgers = [_reference_symbol(shared_data, base, start_ms, end_ms) for base in PAIRS]
    return ReferenceLedger(
        fills=sorted((f for ledger in ledgers for f in ledger.fills), key=lambda f: (f.ts, f.symbol)),
        fees=sum(ledger.fees for ledger in ledgers),
        realised=sum(ledger.realised for ledger in ledgers),
        funding=sum(ledger.funding for ledger in ledgers),
        unrealised=sum(ledger.unrealised for ledger in ledgers),
    )


def _config(data: Path, **changes: object) -> BacktestConfig:
    values: dict[str, object] = {
        "data": data, "pairs": list(PAIRS), "start": START, "end": END,
        "initial_balance": INITIAL_BALANCE, "leverage": 5.0, "notional": NOTIONAL,
        "maker_fee": 0.0002, "taker_fee": TAKER_FEE, "latency_ms": 0, "guard": False, "stop_atr": None,
    }  # fmt: skip
    return BacktestConfig.model_validate(values | changes)


@pytest.fixture(scope="module")
def simulated(shared_data: Path) -> BacktestResult:
    return run_backtest(_config(shared_data))


def test_backtest_fills_are_the_crosses_traded_at_the_next_open(
    reference: ReferenceLedger, simulated: BacktestResult
) -> None:
    ours = sorted(
        ((f.ts, f.symbol.split("/")[0], f.side.sign, round(f.quantity, 9), f.price) for f in simulated.fills),
        key=lambda row: (row[0], row[1]),
    )
    expected = [(f.ts, f.symbol, f.side, round(f.quantity, 9), f.price) for f in reference.fills]
    assert len(ours) == len(expected)
    assert ours == expected


def test_backtest_fees_match_taker_rate_times_every_fills_notional(
    reference: ReferenceLedger, simulated: BacktestResult
) -> None:
    assert sum(f.fee for f in simulated.fills) == pytest.approx(reference.fees, rel=RELATIVE)


def test_backtest_realised_pnl_matches_every_closed_leg(reference: ReferenceLedger, simulated: BacktestResult) -> None:
    assert sum(f.realized_pnl for f in simulated.fills) == pytest.approx(reference.realised, rel=RELATIVE)


def test_backtest_funding_is_position_times_mark_file_price_times_rate(
    reference: ReferenceLedger, simulated: BacktestResult
) -> None:
    assert reference.funding != 0.0
    assert sum(p.amount for p in simulated.funding) == pytest.approx(reference.funding, rel=RELATIVE)


def test_backtest_final_equity_is_balance_plus_realised_minus_costs_plus_unrealised(
    reference: ReferenceLedger, simulated: BacktestResult
) -> None:
    assert simulated.final_equity == pytest.approx(reference.final_equity, rel=RELATIVE)
    # the net P&L is a small difference of large numbers: hold it to the same precision
    assert simulated.final_equity - INITIAL_BALANCE == pytest.approx(
        reference.final_equity - INITIAL_BALANCE, rel=RELATIVE
    )


@pytest.mark.slow
@pytest.mark.parametrize("guarded", [False, True], ids=["exchange-rules", "reasoning-guard"])
def test_a_run_cut_at_t_decides_and_fills_exactly_as_the_full_run_before_t(shared_data: Path, guarded: bool) -> None:
    # with the guard, every market fact it judges by (ATR, regimes, correlations) must be causal too
    cut = "2025-06-04T13:37:00+00:00"
    cut_ms = parse_date_ms(cut)
    guard = {"guard": True, "stop_atr": 3.0} if guarded else {}
    full = run_backtest(_config(shared_data, end="2025-06-08", **guard))
    truncated = run_backtest(_config(shared_data, end=cut, **guard))

    def decisions(result: BacktestResult, before_ms: int) -> list[tuple[str, str, tuple[str, ...]]]:
        # a decision at the close of the last bar before t is made at t
        return [(i.intent_id, str(d.verdict), d.reasons) for i, d in result.decisions if i.ts <= before_ms]

    def fills(result: BacktestResult) -> list[tuple[int, str, str, float, float, float]]:
        return [(f.ts, f.symbol, str(f.side), f.quantity, f.price, f.fee) for f in result.fills if f.ts < cut_ms]

    assert len(truncated.decisions) > 0 and len(truncated.fills) > 0
    assert decisions(truncated, cut_ms) == [(i.intent_id, str(d.verdict), d.reasons) for i, d in truncated.decisions]
    assert decisions(truncated, cut_ms) == decisions(full, cut_ms)
    assert fills(truncated) == fills(full)
    assert list(truncated.funding) == [p for p in full.funding if p.ts < cut_ms]


def test_the_same_seed_gives_the_same_trades_hash_and_another_seed_a_different_one() -> None:
    def hash_of(seed: int) -> str:
        result = run_backtest(BacktestConfig(synthetic=True, days=2, seed=seed))
        metrics = compute_metrics(result, build_trades(result.fills, result.funding))
        assert metrics["trades_hash"] == trades_hash(result.fills)
        return trades_hash(result.fills)

    first, again, other = hash_of(7), hash_of(7), hash_of(8)
    assert first == again
    assert other != first


@pytest.mark.parametrize("span", [FAST, SLOW])
def test_batch_ema_equals_the_incremental_ema_bit_for_bit_on_real_closes(shared_data: Path, span: int) -> None:
    closes = pd.read_feather(shared_data / "BTC_USDT_USDT-1m-futures.feather")["close"].to_numpy(dtype=np.float64)
    incremental = IncrementalEma(span)

    live = np.array([incremental.update(float(price)) for price in closes])

    assert np.array_equal(ema(closes, span), live)
