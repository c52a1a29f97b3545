"""The per-bar observations the regime model sees, taken from `market.features`.

Three, one per question the labels answer, each transformed to be roughly Gaussian:

* `efficiency_30` — Kaufman's efficiency ratio over 30 bars (|net move| / path), in
  [0, 1]: high when the price trends;
* `log_vol_60` — ln of the realised volatility of 1-bar log returns over 60 bars: how
  volatile;
* `log_volume_60` — ln of the mean volume over 60 bars: how liquid. It is in the
  symbol's own base units, so a model is fitted per symbol.

Rows are NaN during the features' warm-up and around gaps; the filter then only
predicts (see `RegimeFilter.update`). Live, feed `IncrementalFeatures(OBSERVATION_SPEC)`
rows through `observations_from_features`; they equal the batch rows.
"""

from __future__ import annotations

import numpy as np

from core.series import BarSeries, FloatArray
from market.features import FeatureSpec, compute_features

OBSERVATION_SPEC = FeatureSpec(windows=(15, 30, 60))
OBSERVATION_NAMES = ("efficiency_30", "log_vol_60", "log_volume_60")
_SOURCE_FEATURES = ("efficiency_30", "vol_cc_60", "volume_mean_60")


def regime_observations(bars: BarSeries) -> FloatArray:
    """Observations of every bar, shape (bars, len(OBSERVATION_NAMES)); row t uses bars <= t."""
    names, matrix = compute_features(bars, OBSERVATION_SPEC)
    return observations_from_features(names, matrix)


def observations_from_features(names: list[str], features: FloatArray) -> FloatArray:
    """Observations from feature rows (bars, len(names)) computed with `OBSERVATION_SPEC`."""
    rows = np.atleast_2d(features)
    columns = [rows[:, names.index(name)] for name in _SOURCE_FEATURES]
    with np.errstate(divide="ignore", invalid="ignore"):
        # a flat or volume-less window gives ln 0 = -inf: no information, treated as missing
        observations = np.stack([columns[0], np.log(columns[1]), np.log(columns[2])], axis=1)
    observations[~np.isfinite(observations)] = np.nan
    return observations
