from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.series import FloatArray, IntArray
from core.time import HOUR_MS, MINUTE_MS
from market.features import (
    CROSS_WINDOWS,
    DEFAULT_SPEC,
    IncrementalCrossFeatures,
    IncrementalFundingFeatures,
    compute_cross_features,
    compute_funding_features,
    cross_feature_names,
    funding_feature_names,
)
from market.grid import build_grid
from market.loaders import load_market_data
from tests.market.test_features import assert_parity, column, random_walk

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
WINDOWS = (5, 10, 30)
PARITY_BARS = 5_000
FUNDING_PARITY_BARS = 20_000  # ~41 settlements: enough for the 21-settlement statistics


def incremental_cross(closes: dict[str, FloatArray], windows: tuple[int, ...] = WINDOWS) -> dict[str, FloatArray]:
    features = IncrementalCrossFeatures(list(closes), BTC, windows)
    n = next(iter(closes.values())).size
    rows = [features.update({s: float(c[i]) for s, c in closes.items()}, i * MINUTE_MS) for i in range(n)]
    return {symbol: np.array([row[symbol] for row in rows]) for symbol in closes}


def incremental_funding(ts: IntArray, settle_ts: IntArray, rate: FloatArray) -> FloatArray:
    features = IncrementalFundingFeatures()
    for moment, value in zip(settle_ts, rate, strict=True):
        features.add_settlement(int(moment), float(value))
    return np.array([features.update(int(t)) for t in ts])


def test_new_feature_names_are_unique_and_do_not_clash_with_the_existing_ones() -> None:
    names = funding_feature_names() + cross_feature_names()

    assert len(names) == len(set(names)) == 12 + 16
    assert not set(names) & set(DEFAULT_SPEC.feature_names)


def test_beta_and_correlation_of_a_series_against_itself_are_one() -> None:
    btc = random_walk(100)
    names, matrices = compute_cross_features({BTC: btc}, BTC, WINDOWS)

    assert column(names, matrices[BTC], "btc_beta_30")[99] == 1.0  # cov and var are the same sums
    assert column(names, matrices[BTC], "btc_corr_30")[99] == pytest.approx(1.0, abs=1e-15)
    assert column(names, matrices[BTC], "btc_rel_ret_30")[99] == 0.0


def test_beta_of_doubled_log_returns_is_two_with_correlation_one() -> None:
    # close = btc² / 100: every log return is twice BTC's, so cov = 2 var and corr = 1
    btc = random_walk(100)
    names, matrices = compute_cross_features({BTC: btc, ETH: btc**2 / 100.0}, BTC, WINDOWS)

    assert column(names, matrices[ETH], "btc_beta_10")[99] == pytest.approx(2.0, rel=1e-9)
    assert column(names, matrices[ETH], "btc_corr_10")[99] == pytest.approx(1.0, rel=1e-9)


def test_relative_return_is_the_difference_of_window_log_returns() -> None:
    # BTC flat, ETH up 1 % a bar: ln(1.01^5) - 0 over 5 bars
    btc = np.full(20, 100.0)
    eth = 10.0 * 1.01 ** np.arange(20.0)
    names, matrices = compute_cross_features({BTC: btc, ETH: eth}, BTC, WINDOWS)

    assert column(names, matrices[ETH], "btc_rel_ret_5")[19] == pytest.approx(5 * math.log(1.01), rel=1e-12)
    assert np.isnan(column(names, matrices[ETH], "btc_beta_5")[19])  # BTC's flat window has no variance


def test_dispersion_of_identical_series_is_zero() -> None:
    walk = random_walk(50)
    names, matrices = compute_cross_features({BTC: walk, ETH: walk.copy(), SOL: walk.copy()}, BTC, WINDOWS)

    assert column(names, matrices[SOL], "dispersion_10")[49] == pytest.approx(0.0, abs=1e-15)


def test_dispersion_is_the_sample_std_of_the_symbols_window_returns() -> None:
    # 5-bar log returns 0, 5 ln 1.01, 10 ln 1.01: mean 5 ln 1.01, sample std 5 ln 1.01
    steps = np.arange(20.0)
    closes = {BTC: np.full(20, 100.0), ETH: 1.01**steps, SOL: 1.01 ** (2.0 * steps)}
    names, matrices = compute_cross_features(closes, BTC, WINDOWS)

    for symbol in closes:
        assert column(names, matrices[symbol], "dispersion_5")[19] == pytest.approx(5 * math.log(1.01), rel=1e-12)


def test_cross_rows_do_not_change_when_later_bars_change() -> None:
    closes = {BTC: random_walk(300, seed=1), ETH: random_walk(300, seed=2)}
    changed = {symbol: values.copy() for symbol, values in closes.items()}
    changed[ETH][200:] *= 1.5
    _, original = compute_cross_features(closes, BTC, WINDOWS)
    _, perturbed = compute_cross_features(changed, BTC, WINDOWS)

    for symbol in closes:
        np.testing.assert_array_equal(original[symbol][:200], perturbed[symbol][:200])
    assert not np.allclose(original[ETH][200], perturbed[ETH][200], equal_nan=True)


def test_incremental_cross_rows_equal_batch_rows_with_a_gap() -> None:
    closes = {BTC: random_walk(400, seed=1), ETH: random_walk(400, seed=2), SOL: random_walk(400, seed=3)}
    closes[SOL][150] = np.nan
    names, batch = compute_cross_features(closes, BTC, WINDOWS)
    live = incremental_cross(closes)

    for symbol in closes:
        assert_parity(batch[symbol], live[symbol], names)
    assert np.isnan(column(names, batch[SOL], "btc_beta_5")[150:156]).all()  # returns 150, 151 need close 150
    assert np.isfinite(column(names, batch[SOL], "btc_beta_5")[156])


def test_unknown_benchmark_is_refused() -> None:
    with pytest.raises(ValueError, match="benchmark"):
        compute_cross_features({ETH: random_walk(10)}, BTC, WINDOWS)


def test_funding_settled_at_0800_is_known_from_the_0800_bar_on() -> None:
    ts = np.array([8 * HOUR_MS - MINUTE_MS, 8 * HOUR_MS, 8 * HOUR_MS + MINUTE_MS], dtype=np.int64)
    settle_ts = np.array([0, 8 * HOUR_MS], dtype=np.int64)
    names, matrix = compute_funding_features(ts, settle_ts, np.array([1e-4, 3e-4]))

    np.testing.assert_array_equal(column(names, matrix, "funding_rate"), [1e-4, 3e-4, 3e-4])
    # 07:59 is one minute before the 08:00 settlement; from 08:00 the next is 16:00
    np.testing.assert_array_equal(column(names, matrix, "funding_minutes_to_next"), [1.0, 480.0, 479.0])
    assert column(names, matrix, "funding_change")[1] == pytest.approx(2e-4, rel=1e-12)
    assert column(names, matrix, "funding_next_cos")[1] == pytest.approx(1.0)  # a full interval ahead


def test_funding_before_the_first_settlement_is_nan_but_the_clock_is_defined() -> None:
    names, matrix = compute_funding_features(
        np.array([0, MINUTE_MS], dtype=np.int64), np.array([HOUR_MS], dtype=np.int64), np.array([1e-4])
    )

    assert np.isnan(column(names, matrix, "funding_rate")).all()
    assert np.isfinite(column(names, matrix, "funding_next_sin")).all()


def test_funding_mean_z_score_and_carry_over_the_last_three_settlements() -> None:
    # rates 1, 2, 3 (×1e-4): mean 2e-4, sample std 1e-4, z = (3 - 2) / 1 = 1;
    # carry = 3e-4 × 3 settlements a day × 365 = 0.3285
    settle_ts = np.arange(3, dtype=np.int64) * 8 * HOUR_MS
    names, matrix = compute_funding_features(settle_ts, settle_ts, np.array([1e-4, 2e-4, 3e-4]))

    assert column(names, matrix, "funding_mean_3")[2] == pytest.approx(2e-4, rel=1e-12)
    assert column(names, matrix, "funding_z_3")[2] == pytest.approx(1.0, rel=1e-12)
    assert column(names, matrix, "funding_carry_annual")[2] == pytest.approx(0.3285, rel=1e-12)
    assert np.isnan(column(names, matrix, "funding_z_3")[1])  # only two settlements known
    assert np.isnan(column(names, matrix, "funding_z_9")[2])


def test_funding_z_score_of_identical_rates_is_nan() -> None:
    settle_ts = np.arange(4, dtype=np.int64) * 8 * HOUR_MS
    names, matrix = compute_funding_features(settle_ts, settle_ts, np.full(4, 1e-4))

    assert np.isnan(column(names, matrix, "funding_z_3")[3])  # zero std: no z-score


def test_incremental_funding_ignores_a_settlement_until_its_bar() -> None:
    features = IncrementalFundingFeatures()
    features.add_settlement(8 * HOUR_MS, 5e-4)

    assert np.isnan(features.update(8 * HOUR_MS - MINUTE_MS)[0])
    assert features.update(8 * HOUR_MS)[0] == 5e-4


def test_incremental_funding_refuses_settlements_out_of_order() -> None:
    features = IncrementalFundingFeatures()
    features.add_settlement(8 * HOUR_MS, 1e-4)

    with pytest.raises(ValueError, match="not after"):
        features.add_settlement(0, 1e-4)


def test_incremental_cross_equals_batch_on_real_bars(shared_data: Path) -> None:
    grid = build_grid(load_market_data(shared_data, [BTC, ETH, SOL]))
    closes = {symbol: grid.close[k, :PARITY_BARS].copy() for k, symbol in enumerate(grid.symbols)}

    names, batch = compute_cross_features(closes)
    live = incremental_cross(closes, CROSS_WINDOWS)
    for symbol in closes:
        assert_parity(batch[symbol], live[symbol], names)
        assert np.isfinite(batch[symbol][-1]).all()


@pytest.mark.parametrize("pair", [BTC, SOL])
def test_incremental_funding_equals_batch_on_real_data(shared_data: Path, pair: str) -> None:
    market = load_market_data(shared_data, [pair])
    ts = market.bars[pair].ts[:FUNDING_PARITY_BARS]
    funding = market.funding[pair]

    names, batch = compute_funding_features(ts, funding.ts, funding.rate)
    assert_parity(batch, incremental_funding(ts, funding.ts, funding.rate), names)
    assert np.isfinite(batch[-1]).all()


def test_funding_without_settlements_has_only_the_clock() -> None:
    ts = np.array([0, MINUTE_MS], dtype=np.int64)
    names, matrix = compute_funding_features(ts, np.array([], dtype=np.int64), np.array([]))

    assert np.isnan(column(names, matrix, "funding_carry_annual")).all()
    np.testing.assert_array_equal(column(names, matrix, "funding_minutes_to_next"), [480.0, 479.0])
