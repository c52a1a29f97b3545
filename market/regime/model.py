"""Fitting the four-state Gaussian HMM and naming its states.

The HMM (hmmlearn's `GaussianHMM`, diagonal covariances) is fitted on standardised
observations of a training window only; the standardisation (training means and
standard deviations) is part of the model, so later bars never influence it.

Hidden states are numbered arbitrarily by the fit (and differently with each seed), so
they are named by their fitted means, in this order, each rule choosing among the
states not yet named:

1. `volatile` — the highest mean `log_vol_60`;
2. `illiquid` — the lowest mean `log_volume_60`;
3. `trending` — the highest mean `efficiency_30`;
4. `ranging` — the one left.

The same market structure therefore gets the same names on every refit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hmmlearn.hmm import GaussianHMM

from core.errors import DataError
from core.series import FloatArray, IntArray
from market.grid import BoolArray
from market.indicators import MARKET_REGIMES
from market.regime.observations import OBSERVATION_NAMES

N_STATES = len(MARKET_REGIMES)
_INITIAL_SWITCH = 0.01  # probability per bar of leaving a regime, where EM starts
_EFFICIENCY = OBSERVATION_NAMES.index("efficiency_30")
_LOG_VOL = OBSERVATION_NAMES.index("log_vol_60")
_LOG_VOLUME = OBSERVATION_NAMES.index("log_volume_60")


@dataclass(frozen=True, slots=True)
class RegimeModel:
    """A fitted HMM whose state i is regime `MARKET_REGIMES[i]` (states reordered after fitting).

    Parameters live in the standardised observation space; `standardise` maps raw
    observations into it.
    """

    observation_mean: FloatArray  # (observations,), of the training window
    observation_std: FloatArray  # (observations,)
    start_probabilities: FloatArray  # (states,)
    transition: FloatArray  # (states, states), row = from
    means: FloatArray  # (states, observations)
    variances: FloatArray  # (states, observations), diagonal covariances

    def standardise(self, observations: FloatArray) -> FloatArray:
        standardised: FloatArray = (np.atleast_2d(observations) - self.observation_mean) / self.observation_std
        return standardised


def fit_regime_model(training: FloatArray, *, seed: int = 0, iterations: int = 100) -> RegimeModel:
    """Fit on the training window's observations (bars, len(OBSERVATION_NAMES)); NaN rows
    (warm-up, gaps) are left out and split the window into separate sequences."""
    finite: BoolArray = np.asarray(np.isfinite(training).all(axis=1), dtype=bool)
    if finite.sum() < 10 * N_STATES:
        raise DataError(
            f"fit_regime_model needs at least {10 * N_STATES} complete observation rows, got {int(finite.sum())}:"
            " give it a longer training window (the features need 60 bars of warm-up)"
        )
    mean = training[finite].mean(axis=0)
    std = training[finite].std(axis=0)
    std = np.where(std > 0.0, std, 1.0)
    standardised = (training[finite] - mean) / std
    hmm = GaussianHMM(
        n_components=N_STATES, covariance_type="diag", n_iter=iterations, random_state=seed, init_params="mc"
    )
    # Regimes persist, so EM starts from sticky transitions rather than hmmlearn's random
    # Dirichlet(1/4) rows, which often trap it in an optimum that merges two regimes.
    hmm.startprob_ = np.full(N_STATES, 1.0 / N_STATES)
    hmm.transmat_ = np.full((N_STATES, N_STATES), _INITIAL_SWITCH / (N_STATES - 1))
    np.fill_diagonal(hmm.transmat_, 1.0 - _INITIAL_SWITCH)
    hmm.fit(standardised, _stretch_lengths(finite))
    means = np.asarray(hmm.means_, dtype=np.float64)
    order = _state_order(means)
    variances = np.asarray(np.diagonal(hmm.covars_, axis1=1, axis2=2), dtype=np.float64)
    transition = np.asarray(hmm.transmat_, dtype=np.float64)
    return RegimeModel(
        observation_mean=mean,
        observation_std=std,
        start_probabilities=np.asarray(hmm.startprob_, dtype=np.float64)[order],
        transition=transition[np.ix_(order, order)],
        means=means[order],
        variances=variances[order],
    )


def _state_order(means: FloatArray) -> IntArray:
    """order[i] = the fitted state named `MARKET_REGIMES[i]`, by the rules in the module docstring."""
    left = list(range(means.shape[0]))
    volatile = max(left, key=lambda s: means[s, _LOG_VOL])
    left.remove(volatile)
    illiquid = min(left, key=lambda s: means[s, _LOG_VOLUME])
    left.remove(illiquid)
    trending = max(left, key=lambda s: means[s, _EFFICIENCY])
    left.remove(trending)
    named = {"trending": trending, "ranging": left[0], "volatile": volatile, "illiquid": illiquid}
    return np.array([named[regime] for regime in MARKET_REGIMES], dtype=np.int64)


def _stretch_lengths(finite: BoolArray) -> list[int]:
    """Lengths of the runs of True in `finite`, in order (hmmlearn's `lengths`)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
    return [int(stop - start) for start, stop in zip(edges[::2], edges[1::2], strict=True)]
