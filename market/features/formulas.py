"""Feature definitions shared by the batch and the incremental paths.

Both paths compute the same per-bar terms (`bar_terms`) and finish with the same
formulas (`assemble`); they differ only in how window aggregates are obtained (rolling
pandas operations over history, or ring buffers updated bar by bar), which is what the
parity test checks. Arrays carry a leading bar axis; the live path passes one row.

Conventions, all from the symbol's own bars:

* r is the 1-bar log return ln(c/c_prev); volatilities are per bar (not annualised);
* Parkinson (1980), Garman–Klass (1980), Rogers–Satchell (1991) and Yang–Zhang (2000)
  estimators use per-bar means over the window; Yang–Zhang's k = 0.34 / (1.34 + (w+1)/(w-1));
* Amihud illiquidity is Σ|r| / Σ(close·volume) over the window (quote volume as the
  dollar volume proxy; a ratio of sums stays finite on zero-volume bars);
* Roll's spread is 2·sqrt(max(−cov(r_t, r_{t−1}), 0)); Corwin–Schultz (2012) is the
  two-bar estimator, negative estimates set to 0, averaged over the window;
* the close's rolling standard deviation (z-score, Bollinger width) is computed by each
  path from deviations (two-pass in batch, from the current close live), never from a sum
  of squared prices, which would cancel catastrophically on a quiet window;
* RSI is Wilder's (smoothing 1/w), EMAs use 2/(w+1); both start at the first value and
  are reported after w bars (MACD: after slow bars, its signal after slow + signal);
* a ratio with a zero denominator (a flat window, no volume) is NaN.
"""

from __future__ import annotations

import math

import numpy as np

from core.series import FloatArray, IntArray
from market.features.spec import PAIR_FAMILIES, WINDOW_FAMILIES, FeatureSpec

TERMS = (
    "r", "r2", "r3", "r4", "hl2", "gk", "rs", "on", "on2", "oc", "oc2", "tr", "trn",
    "v", "v2", "sv", "cv", "absr", "c", "rr", "rp", "cs", "adc", "up", "dn2", "up2", "hlr",
)  # fmt: skip
T = {name: index for index, name in enumerate(TERMS)}
# Summed afresh over each window by both paths, not kept as running sums: skewness and
# kurtosis of a quiet window are ratios of tiny central moments, and a running sum's
# rounding residue from large values that left the window would dominate them.
DIRECT_TERMS = ("r", "r2", "r3", "r4")
MAX_ROWS = ("high", "r", "volume")  # rolling maxima, in this order
MIN_ROWS = ("low", "r")  # rolling minima
_LN2 = math.log(2.0)
_CS_DENOMINATOR = 3.0 - 2.0 * math.sqrt(2.0)


def bar_terms(
    o: FloatArray,
    h: FloatArray,
    low: FloatArray,
    c: FloatArray,
    v: FloatArray,
    c_prev: FloatArray,
    c_prev2: FloatArray,
    h_prev: FloatArray,
    l_prev: FloatArray,
) -> FloatArray:
    """Per-bar terms, shape (bars, len(TERMS)); NaN where the bar or its predecessor is NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(c / c_prev)
        r_prev = np.log(c_prev / c_prev2)
        hl = np.log(h / low)
        oc = np.log(c / o)
        on = np.log(o / c_prev)
        tr = np.maximum(h, c_prev) - np.minimum(low, c_prev)
        beta = hl**2 + np.log(h_prev / l_prev) ** 2
        gamma = np.log(np.maximum(h, h_prev) / np.minimum(low, l_prev)) ** 2
        alpha = (math.sqrt(2.0) - 1.0) * np.sqrt(beta) / _CS_DENOMINATOR - np.sqrt(gamma / _CS_DENOMINATOR)
        cs = np.maximum(2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha)), 0.0)
        columns = {
            "r": r,
            "r2": r**2,
            "r3": r**3,
            "r4": r**4,
            "hl2": hl**2,
            "gk": 0.5 * hl**2 - (2.0 * _LN2 - 1.0) * oc**2,
            "rs": np.log(h / c) * np.log(h / o) + np.log(low / c) * np.log(low / o),
            "on": on,
            "on2": on**2,
            "oc": oc,
            "oc2": oc**2,
            "tr": tr,
            "trn": tr / c,
            "v": v,
            "v2": v**2,
            "sv": np.sign(c - o) * v,
            "cv": c * v,
            "absr": np.abs(r),
            "c": c,
            "rr": r * r_prev,
            "rp": r_prev,
            "cs": np.where(np.isnan(alpha), np.nan, cs),
            "adc": np.abs(c - c_prev),
            "up": np.where(np.isnan(r), np.nan, (r > 0.0).astype(np.float64)),
            "dn2": np.minimum(r, 0.0) ** 2,
            "up2": np.maximum(r, 0.0) ** 2,
            "hlr": (h - low) / c,
        }
    return np.stack([columns[name] for name in TERMS], axis=1)


def assemble(
    spec: FeatureSpec,
    close: FloatArray,
    terms: FloatArray,
    sums: FloatArray,
    maxima: FloatArray,
    minima: FloatArray,
    close_lag: FloatArray,
    rsi_gain: FloatArray,
    rsi_loss: FloatArray,
    ema_close: FloatArray,
    close_std: FloatArray,
    macd_line: FloatArray,
    macd_signal: FloatArray,
    ts: IntArray,
) -> FloatArray:
    """All features, shape (bars, n_features), from window aggregates.

    terms: the bars' own `bar_terms`; sums: (bars, len(TERMS), windows), NaN unless the window is full and NaN-free;
    maxima/minima: (bars, len(MAX_ROWS|MIN_ROWS), windows); close_lag, rsi_*, ema_close:
    close_std
    (bars, windows); macd_*: (bars, macd sets), already relative to the close.
    """
    w = np.asarray(spec.windows, dtype=np.float64)
    c = close[:, None]
    term = {name: sums[:, index, :] for index, name in enumerate(TERMS)}
    mean = {name: s / w for name, s in term.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        var_r = np.maximum((term["r2"] - term["r"] ** 2 / w) / (w - 1.0), 0.0)
        vol_cc = np.sqrt(var_r)
        ret_log = np.log(c / close_lag)
        var_on = np.maximum((term["on2"] - term["on"] ** 2 / w) / (w - 1.0), 0.0)
        var_oc = np.maximum((term["oc2"] - term["oc"] ** 2 / w) / (w - 1.0), 0.0)
        k = 0.34 / (1.34 + (w + 1.0) / (w - 1.0))
        m2 = mean["r2"] - mean["r"] ** 2
        m3 = mean["r3"] - 3.0 * mean["r"] * mean["r2"] + 2.0 * mean["r"] ** 3
        m4 = mean["r4"] - 4.0 * mean["r"] * mean["r3"] + 6.0 * mean["r"] ** 2 * mean["r2"] - 3.0 * mean["r"] ** 4
        std_v = np.sqrt(np.maximum((term["v2"] - term["v"] ** 2 / w) / (w - 1.0), 0.0))
        max_high, max_r, max_v = maxima[:, 0, :], maxima[:, 1, :], maxima[:, 2, :]
        min_low, min_r = minima[:, 0, :], minima[:, 1, :]
        vol_park = np.sqrt(mean["hl2"] / (4.0 * _LN2))
        sma = mean["c"]
        blocks = {
            "ret": c / close_lag - 1.0,
            "ret_log": ret_log,
            "mom_tstat": ret_log / (vol_cc * np.sqrt(w)),
            "vol_cc": vol_cc,
            "vol_parkinson": vol_park,
            "vol_gk": np.sqrt(np.maximum(mean["gk"], 0.0)),
            "vol_rs": np.sqrt(np.maximum(mean["rs"], 0.0)),
            "vol_yz": np.sqrt(np.maximum(var_on + k * var_oc + (1.0 - k) * mean["rs"], 0.0)),
            "ret_skew": m3 / m2**1.5,
            "ret_kurt": m4 / m2**2 - 3.0,
            "vol_down": np.sqrt(np.maximum(mean["dn2"], 0.0)),
            "vol_up": np.sqrt(np.maximum(mean["up2"], 0.0)),
            "up_frac": mean["up"],
            "atr": mean["tr"],
            "natr": mean["trn"],
            "tr_rel": _current(terms, "tr") / mean["tr"],
            "hl_range": mean["hlr"],
            "absret_mean": mean["absr"],
            "efficiency": np.abs(c - close_lag) / term["adc"],
            "zscore": (c - sma) / close_std,
            "bb_width": 4.0 * close_std / sma,
            "sma_dist": c / sma - 1.0,
            "volume_mean": mean["v"],
            "volume_rel": _current(terms, "v") / mean["v"],
            "volume_z": (_current(terms, "v") - mean["v"]) / std_v,
            "volume_imb": term["sv"] / term["v"],
            "vwap_dist": c * term["v"] / term["cv"] - 1.0,
            "amihud": term["absr"] / term["cv"],
            "roll_spread": 2.0 * np.sqrt(np.maximum(-(term["rr"] - term["r"] * term["rp"] / w) / (w - 1.0), 0.0)),
            "cs_spread": mean["cs"],
            "max_dist": c / max_high - 1.0,
            "min_dist": c / min_low - 1.0,
            "range_pos": (c - min_low) / (max_high - min_low),
            "ret_max": max_r,
            "ret_min": min_r,
            "volume_max_rel": max_v / mean["v"],
            "rsi": 100.0 * rsi_gain / (rsi_gain + rsi_loss),
            "ema_dist": c / ema_close - 1.0,
        }
        short, long = _pair_indexes(spec)
        pairs = {
            "vol_term": vol_cc[:, short] / vol_cc[:, long],
            "park_term": vol_park[:, short] / vol_park[:, long],
            "sma_cross": sma[:, short] / sma[:, long] - 1.0,
            "volume_term": mean["v"][:, short] / mean["v"][:, long],
        }
    macd = np.stack([macd_line, macd_signal, macd_line - macd_signal], axis=2).reshape(close.shape[0], -1)
    parts = [*(blocks[f] for f in WINDOW_FAMILIES), *(pairs[f] for f in PAIR_FAMILIES), macd, calendar_features(ts)]
    return np.concatenate(parts, axis=1)


def _current(terms: FloatArray, name: str) -> FloatArray:
    column: FloatArray = terms[:, T[name]][:, None]
    return column


def _pair_indexes(spec: FeatureSpec) -> tuple[IntArray, IntArray]:
    position = {w: i for i, w in enumerate(spec.windows)}
    pairs = spec.window_pairs
    short = np.array([position[a] for a, _ in pairs], dtype=np.int64)
    long = np.array([position[b] for _, b in pairs], dtype=np.int64)
    return short, long


def calendar_features(ts: IntArray) -> FloatArray:
    """Minute of hour, time of day and day of week (Monday 00:00 UTC = 0) as sin/cos pairs."""
    minutes = (ts // 60_000).astype(np.float64)
    phases = [
        2.0 * np.pi * (minutes % 60.0) / 60.0,
        2.0 * np.pi * (minutes % 1440.0) / 1440.0,
        # 1970-01-01 was a Thursday: shift by three days so Monday is the start of the week
        2.0 * np.pi * ((minutes + 3.0 * 1440.0) % 10080.0) / 10080.0,
    ]
    return np.stack([f(p) for p in phases for f in (np.sin, np.cos)], axis=1)


def clean_bars(
    o: FloatArray, h: FloatArray, low: FloatArray, c: FloatArray, v: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Float copies where a bar with any NaN field is NaN in every field (a gap)."""
    fields = [np.array(a, dtype=np.float64) for a in (o, h, low, c, v)]
    gap = np.zeros(fields[0].shape, dtype=bool)
    for values in fields:
        gap |= np.isnan(values)
    for values in fields:
        values[gap] = np.nan
    return fields[0], fields[1], fields[2], fields[3], fields[4]
