"""Online regime filtering: the forward algorithm over a fitted `RegimeModel`.

hmmlearn's `predict` (Viterbi) and `predict_proba` (forward-backward) condition every
bar's state on the whole sequence, future bars included; used in a backtest they leak
the future. Here the recursion is written out as a filter: the probabilities at bar t
are P(state_t | observations_0..t), normalised every bar and kept in log space so long
calm stretches do not underflow.

A bar whose observation is missing (NaN: warm-up, gap) only advances the state
distribution through the transition matrix; its label is the most probable predicted
state. Probabilities are ordered as `MARKET_REGIMES`, labels are its members.
"""

from __future__ import annotations

import math

import numpy as np

from core.series import FloatArray, IntArray
from market.indicators import MARKET_REGIMES
from market.regime.model import RegimeModel

_LOG_2PI = math.log(2.0 * math.pi)


class RegimeFilter:
    """The regime of one symbol, updated bar by bar from its raw observations."""

    def __init__(self, model: RegimeModel) -> None:
        self.model = model
        self._log_transition = _log(model.transition)
        self._log_probabilities: FloatArray | None = None  # None until the first bar

    def update(self, observation: FloatArray) -> tuple[str, FloatArray]:
        """(label, probabilities over `MARKET_REGIMES`) after this bar's observation."""
        log_emission = emission_log_likelihoods(self.model, observation)[0]
        self._log_probabilities = _forward_step(self.model, self._log_transition, self._log_probabilities, log_emission)
        probabilities = np.exp(self._log_probabilities)
        return MARKET_REGIMES[int(np.argmax(probabilities))], probabilities


def filter_history(model: RegimeModel, observations: FloatArray) -> tuple[IntArray, FloatArray]:
    """(labels as indexes into `MARKET_REGIMES`, probabilities (bars, regimes)) of a fresh
    filter run over `observations`; equal to calling `RegimeFilter.update` bar by bar."""
    log_emissions = emission_log_likelihoods(model, observations)
    log_transition = _log(model.transition)
    log_probabilities = np.empty_like(log_emissions)
    previous: FloatArray | None = None
    for t in range(log_emissions.shape[0]):
        previous = _forward_step(model, log_transition, previous, log_emissions[t])
        log_probabilities[t] = previous
    probabilities = np.exp(log_probabilities)
    labels: IntArray = np.argmax(probabilities, axis=1).astype(np.int64)
    return labels, probabilities


def emission_log_likelihoods(model: RegimeModel, observations: FloatArray) -> FloatArray:
    """ln N(x_t | mean_s, diag variance_s) per bar and state, shape (bars, states); 0 for a
    bar with a missing observation (it carries no evidence)."""
    x = model.standardise(observations)
    deviations = x[:, None, :] - model.means[None, :, :]
    log_likelihoods: FloatArray = -0.5 * (
        (deviations**2 / model.variances[None]).sum(axis=2)
        + np.log(model.variances).sum(axis=1)[None]
        + x.shape[1] * _LOG_2PI
    )
    log_likelihoods[~np.isfinite(x).all(axis=1)] = 0.0
    return log_likelihoods


def _forward_step(
    model: RegimeModel, log_transition: FloatArray, previous: FloatArray | None, log_emission: FloatArray
) -> FloatArray:
    if previous is None:
        log_prior = _log(model.start_probabilities)
    else:
        log_prior = _logsumexp(previous[:, None] + log_transition, axis=0)
    unnormalised = log_prior + log_emission
    normalised: FloatArray = unnormalised - _logsumexp(unnormalised, axis=0)
    return normalised


def _logsumexp(values: FloatArray, axis: int) -> FloatArray:
    peak = np.max(values, axis=axis, keepdims=True)
    # a state no other state can reach has an all -inf column: its sum is exp(-inf) = 0
    peak = np.where(np.isfinite(peak), peak, 0.0)
    total: FloatArray = np.squeeze(peak, axis=axis) + np.log(np.sum(np.exp(values - peak), axis=axis))
    return total


def _log(probabilities: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        logs: FloatArray = np.log(probabilities)
    return logs
