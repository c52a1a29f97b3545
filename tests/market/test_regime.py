from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM

from core.errors import DataError
from core.series import BarSeries, FloatArray, IntArray
from market.features import IncrementalFeatures
from market.indicators import MARKET_REGIMES
from market.loaders import load_market_data
from market.regime import (
    OBSERVATION_SPEC,
    RegimeFilter,
    RegimeModel,
    filter_history,
    fit_regime_model,
    observations_from_features,
    regime_observations,
)

SEGMENT_BARS = 1500
SETTLING_BARS = 90  # the 60-bar windows must fill with the new segment before it can show
# (regime, per-bar volatility, per-bar drift, mean volume) of each synthetic segment
SEGMENTS = {
    "ranging": (0.0005, 0.0, 100.0),
    "volatile": (0.003, 0.0, 300.0),
    "trending": (0.0005, 0.0004, 100.0),
    "illiquid": (0.0005, 0.0, 5.0),
}
TRAINING_ORDER = ("ranging", "volatile", "trending", "illiquid", "ranging", "trending", "volatile", "illiquid")
TEST_ORDER = ("trending", "ranging", "illiquid", "volatile")


def segmented_bars(seed: int, order: tuple[str, ...]) -> tuple[BarSeries, IntArray]:
    """One-minute bars whose regime switches every SEGMENT_BARS, and the true regime index per bar."""
    rng = np.random.default_rng(seed)
    returns, volumes, truth = [], [], []
    for regime in order:
        volatility, drift, volume = SEGMENTS[regime]
        returns.append(drift + volatility * rng.standard_normal(SEGMENT_BARS))
        volumes.append(volume * np.exp(0.3 * rng.standard_normal(SEGMENT_BARS)))
        truth.append(np.full(SEGMENT_BARS, MARKET_REGIMES.index(regime)))
    r = np.concatenate(returns)
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = 0.3 * np.abs(r).mean() * np.abs(rng.standard_normal(close.size))
    high, low = np.maximum(open_, close) * (1.0 + wick), np.minimum(open_, close) * (1.0 - wick)
    ts = np.arange(close.size, dtype=np.int64) * 60_000
    return BarSeries("TEST/USDT:USDT", 60_000, ts, open_, high, low, close, np.concatenate(volumes)), np.concatenate(
        truth
    )


@pytest.fixture(scope="module")
def model() -> RegimeModel:
    bars, _ = segmented_bars(1, TRAINING_ORDER)
    return fit_regime_model(regime_observations(bars))


def settled(bar_count: int) -> np.ndarray:
    keep = np.ones(bar_count, dtype=bool)
    for start in range(0, bar_count, SEGMENT_BARS):
        keep[start : start + SETTLING_BARS] = False
    return keep


def test_filter_recovers_known_segments_after_a_short_lag(model: RegimeModel) -> None:
    bars, truth = segmented_bars(2, TEST_ORDER)

    labels, _ = filter_history(model, regime_observations(bars))

    keep = settled(len(bars))
    assert (labels == truth)[keep].mean() > 0.95
    for start, regime in zip(range(0, len(bars), SEGMENT_BARS), TEST_ORDER, strict=True):
        segment = labels[start + SETTLING_BARS : start + SEGMENT_BARS]
        assert (segment == MARKET_REGIMES.index(regime)).mean() > 0.9, regime


def with_future_replaced(bars: BarSeries, other: BarSeries, cut: int) -> BarSeries:
    """`bars` up to and including bar cut, then `other`'s bars (same timestamps), rescaled to join."""
    scale = bars.close[cut] / other.close[cut]

    def join(mine: FloatArray, theirs: FloatArray, factor: float) -> FloatArray:
        return np.concatenate([mine[: cut + 1], theirs[cut + 1 :] * factor])

    return BarSeries(
        bars.symbol,
        bars.timeframe_ms,
        bars.ts,
        join(bars.open, other.open, scale),
        join(bars.high, other.high, scale),
        join(bars.low, other.low, scale),
        join(bars.close, other.close, scale),
        join(bars.volume, other.volume, 1.0),
    )


CUT = 2 * SEGMENT_BARS + 700  # inside the illiquid segment; the future becomes volatile instead


def test_labels_up_to_a_bar_do_not_change_when_later_bars_change(model: RegimeModel) -> None:
    bars, _ = segmented_bars(2, TEST_ORDER)
    changed = with_future_replaced(bars, segmented_bars(3, ("volatile",) * 4)[0], CUT)

    labels, probabilities = filter_history(model, regime_observations(bars))
    changed_labels, changed_probabilities = filter_history(model, regime_observations(changed))

    assert np.array_equal(labels[: CUT + 1], changed_labels[: CUT + 1])
    assert np.array_equal(probabilities[: CUT + 1], changed_probabilities[: CUT + 1])
    assert (changed_labels[CUT + SETTLING_BARS :] == MARKET_REGIMES.index("volatile")).mean() > 0.9


def as_hmmlearn(model: RegimeModel) -> GaussianHMM:
    hmm = GaussianHMM(n_components=len(MARKET_REGIMES), covariance_type="diag")
    hmm.n_features = model.means.shape[1]
    hmm.startprob_, hmm.transmat_ = model.start_probabilities, model.transition
    hmm.means_, hmm.covars_ = model.means, model.variances
    return hmm


def raw_observation(model: RegimeModel, regime: str) -> FloatArray:
    """The observation at the centre of a regime's state, in raw (not standardised) units."""
    mean: FloatArray = model.means[MARKET_REGIMES.index(regime)] * model.observation_std + model.observation_mean
    return mean


def test_hmmlearn_smoothing_changes_past_probabilities_when_later_bars_change(model: RegimeModel) -> None:
    # the reason RegimeFilter does its own forward pass: predict_proba (and predict) look ahead.
    # 20 bars halfway between ranging and trending, then 20 clearly one or the other.
    ranging, trending = raw_observation(model, "ranging"), raw_observation(model, "trending")
    ambiguous = np.tile((ranging + trending) / 2.0, (20, 1))
    then_ranging = np.vstack([ambiguous, np.tile(ranging, (20, 1))])
    then_trending = np.vstack([ambiguous, np.tile(trending, (20, 1))])
    hmm = as_hmmlearn(model)

    smoothed = hmm.predict_proba(model.standardise(then_ranging))
    changed_smoothed = hmm.predict_proba(model.standardise(then_trending))
    _, filtered = filter_history(model, then_ranging)
    _, changed_filtered = filter_history(model, then_trending)

    assert np.abs(smoothed[:20] - changed_smoothed[:20]).max() > 0.05  # measured 0.076, on the last ambiguous bar
    assert np.array_equal(filtered[:20], changed_filtered[:20])


def test_filter_history_equals_bar_by_bar_updates(model: RegimeModel) -> None:
    bars, _ = segmented_bars(4, TEST_ORDER)
    observations = regime_observations(bars)
    live = RegimeFilter(model)

    labels, probabilities = filter_history(model, observations)
    updates = [live.update(observation) for observation in observations]

    assert [MARKET_REGIMES[label] for label in labels] == [label for label, _ in updates]
    assert np.array_equal(probabilities, np.stack([p for _, p in updates]))
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_live_features_give_the_same_regimes_as_history(model: RegimeModel) -> None:
    bars, _ = segmented_bars(5, TEST_ORDER)
    features = IncrementalFeatures(OBSERVATION_SPEC)
    names = OBSERVATION_SPEC.feature_names
    live = RegimeFilter(model)

    live_labels = []
    for i in range(len(bars)):
        bar = bars.bar(i)
        row = features.update(bar.open, bar.high, bar.low, bar.close, bar.volume, bar.ts)
        live_labels.append(MARKET_REGIMES.index(live.update(observations_from_features(names, row))[0]))
    labels, _ = filter_history(model, regime_observations(bars))

    assert np.array_equal(np.array(live_labels), labels)


def test_a_missing_observation_only_advances_through_the_transitions(model: RegimeModel) -> None:
    bars, _ = segmented_bars(2, TEST_ORDER)
    live = RegimeFilter(model)
    for observation in regime_observations(bars)[:500]:
        _, before = live.update(observation)

    _, after = live.update(np.full(3, np.nan))

    # P(s_t) = Σ_r P(s_{t-1} = r) · A[r, s], no evidence to weigh it by
    assert np.allclose(after, before @ model.transition, rtol=1e-12, atol=1e-15)


def test_state_names_are_the_same_after_refits_with_different_seeds() -> None:
    training, _ = segmented_bars(1, TRAINING_ORDER)
    observations = regime_observations(training)
    bars, _ = segmented_bars(2, TEST_ORDER)
    test_observations = regime_observations(bars)

    runs = [filter_history(fit_regime_model(observations, seed=seed), test_observations)[0] for seed in (0, 1, 2)]

    for labels in runs[1:]:
        assert (labels == runs[0]).mean() > 0.99


def test_fit_rejects_a_window_shorter_than_the_warm_up() -> None:
    bars, _ = segmented_bars(1, ("ranging",))
    with pytest.raises(DataError, match="longer training window"):
        fit_regime_model(regime_observations(bars)[:70])


TRAINING_DAYS = 10


def test_real_bars_get_plausible_regime_frequencies(shared_data: Path) -> None:
    pair = "BTC/USDT:USDT"
    bars = load_market_data(shared_data, [pair]).bars[pair]
    observations = regime_observations(bars)
    training = TRAINING_DAYS * 1440

    fitted = fit_regime_model(observations[:training])
    started = time.perf_counter()
    labels, _ = filter_history(fitted, observations[training:])
    per_bar = (time.perf_counter() - started) / (len(bars) - training)

    frequencies = np.bincount(labels, minlength=len(MARKET_REGIMES)) / labels.size
    assert frequencies.max() < 0.95
    assert (frequencies > 0.02).sum() >= 3
    assert per_bar < 1e-3
