from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from core.series import BarSeries, FloatArray
from market.features import DEFAULT_SPEC, FeatureSpec, IncrementalFeatures, compute_features
from market.loaders import load_market_data

PARITY_BARS = 5_000
RELATIVE_TOLERANCE = 1e-9


def make_bars(close: FloatArray, spread: float = 0.005, volume: float = 10.0) -> BarSeries:
    """Bars opening at the previous close, high/low a fixed fraction around the close."""
    n = close.size
    open_ = np.concatenate([close[:1], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - spread)
    ts = np.arange(n, dtype=np.int64) * 60_000
    return BarSeries("TEST/USDT:USDT", 60_000, ts, open_, high, low, close, np.full(n, volume))


def random_walk(n: int, seed: int = 7) -> FloatArray:
    steps = np.random.default_rng(seed).normal(0.0, 0.001, n)
    return np.asarray(100.0 * np.exp(np.cumsum(steps)), dtype=np.float64)


def incremental_rows(bars: BarSeries, spec: FeatureSpec = DEFAULT_SPEC) -> FloatArray:
    features = IncrementalFeatures(spec)
    rows = [
        features.update(bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i], int(bars.ts[i]))
        for i in range(len(bars))
    ]
    return np.array(rows)


def column(names: list[str], matrix: FloatArray, name: str) -> FloatArray:
    values: FloatArray = matrix[:, names.index(name)]
    return values


def assert_parity(batch: FloatArray, live: FloatArray, names: list[str]) -> None:
    """Equal to 1e-9 relative, with an absolute floor of 1e-9 × the feature's median magnitude
    over the sample: features that cross zero (distances, imbalances, MACD) have no meaningful
    relative error at the crossing, where both paths differ only by rounding of the operands."""
    assert np.array_equal(np.isnan(batch), np.isnan(live)), "warm-up / gap NaN patterns differ"
    defined = np.isfinite(batch)
    magnitude = np.where(defined, np.abs(batch), 0.0)
    scale = np.array([np.median(col[ok]) if ok.any() else 0.0 for col, ok in zip(magnitude.T, defined.T, strict=True)])
    tolerance = RELATIVE_TOLERANCE * np.maximum(np.maximum(magnitude, np.abs(np.where(defined, live, 0.0))), scale)
    difference = np.abs(np.where(defined, batch - live, 0.0))
    excess = np.divide(difference, tolerance, out=np.zeros_like(difference), where=tolerance > 0.0)
    worst = int(np.argmax(excess.max(axis=0)))
    assert excess.max() <= 1.0, f"{names[worst]} differs by {excess.max():.3g}× the tolerance"


def test_at_least_a_thousand_features_with_unique_names() -> None:
    names = DEFAULT_SPEC.feature_names

    assert len(names) >= 1_000
    assert len(set(names)) == len(names)
    assert {"ret_log_15", "vol_parkinson_60", "rsi_20", "macd_12_26_9", "tod_sin"} <= set(names)


def test_batch_matrix_has_one_column_per_name() -> None:
    names, matrix = compute_features(make_bars(random_walk(300)))

    assert matrix.shape == (300, len(names))
    assert matrix.dtype == np.float64


def test_log_return_and_return_of_a_geometric_series() -> None:
    # close grows 1 % a bar: ln(c_t / c_{t-5}) = 5 ln 1.01, c_t / c_{t-5} - 1 = 1.01^5 - 1
    names, matrix = compute_features(make_bars(100.0 * 1.01 ** np.arange(50.0)))

    assert column(names, matrix, "ret_log_5")[20] == pytest.approx(5 * math.log(1.01), rel=1e-12)
    assert column(names, matrix, "ret_5")[20] == pytest.approx(1.01**5 - 1.0, rel=1e-12)
    assert column(names, matrix, "vol_cc_5")[20] == pytest.approx(0.0, abs=1e-12)  # constant returns


def test_parkinson_volatility_of_a_constant_range_series() -> None:
    # ln(high/low) = 0.02 every bar: sigma = sqrt(0.02² / (4 ln 2))
    close = np.full(100, 50.0)
    bars = make_bars(close)
    bars = BarSeries(
        bars.symbol, 60_000, bars.ts, close, close * math.exp(0.01), close * math.exp(-0.01), close, bars.volume
    )
    names, matrix = compute_features(bars)

    expected = 0.02 / math.sqrt(4.0 * math.log(2.0))
    assert column(names, matrix, "vol_parkinson_60")[99] == pytest.approx(expected, rel=1e-12)


def test_wilder_rsi_of_an_alternating_series() -> None:
    # changes +1, -1, +1, -1, +1 with smoothing 1/5, each average started at its first value:
    # gains 1, 0.8, 0.84, 0.672, 0.7376; losses 0, 0.2, 0.16, 0.328, 0.2624 -> RSI 73.76
    spec = FeatureSpec(windows=(5, 14))
    names, matrix = compute_features(make_bars(np.array([10.0, 11.0, 10.0, 11.0, 10.0, 11.0])), spec)

    rsi = column(names, matrix, "rsi_5")
    assert np.isnan(rsi[4])
    assert rsi[5] == pytest.approx(73.76, rel=1e-12)


def test_rsi_of_a_rising_series_is_100() -> None:
    spec = FeatureSpec(windows=(5, 14))
    names, matrix = compute_features(make_bars(np.arange(1.0, 40.0)), spec)

    assert column(names, matrix, "rsi_14")[-1] == pytest.approx(100.0)


def test_incremental_rows_equal_batch_rows_on_a_random_walk_with_a_gap() -> None:
    bars = make_bars(random_walk(800))
    bars.close[400] = np.nan
    spec = FeatureSpec(windows=(5, 10, 30, 60))

    names, batch = compute_features(bars, spec)
    assert_parity(batch, incremental_rows(bars, spec), names)


def test_a_nan_bar_makes_dependent_windows_nan_until_they_pass_it() -> None:
    bars = make_bars(random_walk(200))
    bars.close[100] = np.nan
    names, matrix = compute_features(bars)

    vol = column(names, matrix, "vol_cc_5")
    # returns at bars 100 and 101 need close 100: the 5-return window holds one of them until 105
    assert np.isfinite(vol[99])
    assert np.isnan(vol[100:106]).all()
    assert np.isfinite(vol[106])
    assert np.isnan(column(names, matrix, "ema_dist_5")[100:104]).all()  # restarts after the gap
    assert np.isfinite(column(names, matrix, "ema_dist_5")[105])
    assert np.isfinite(column(names, matrix, "tod_sin")).all()  # the clock never has a gap


def test_a_row_does_not_change_when_later_bars_change() -> None:
    close = random_walk(1_600)
    changed = close.copy()
    changed[1_501:] *= 1.5
    _, original = compute_features(make_bars(close))
    _, perturbed = compute_features(make_bars(changed))

    # bar 1501 opens at close 1500, unchanged; only its own close moved
    np.testing.assert_array_equal(original[:1_501], perturbed[:1_501])
    assert not np.allclose(original[1_501], perturbed[1_501], equal_nan=True)


def test_feature_spec_rejects_unsorted_windows() -> None:
    with pytest.raises(ValueError, match="increasing"):
        FeatureSpec(windows=(10, 5))


@pytest.mark.parametrize("pair", ["BTC/USDT:USDT", "SOL/USDT:USDT"])
def test_incremental_equals_batch_on_real_bars(shared_data: Path, pair: str) -> None:
    market = load_market_data(shared_data, [pair])
    bars = market.bars[pair]
    first = bars.between(None, int(bars.ts[PARITY_BARS]))

    names, batch = compute_features(first)
    assert_parity(batch, incremental_rows(first), names)
    assert np.isfinite(batch[-1]).sum() > 0.95 * len(names)  # past warm-up nearly all are defined
