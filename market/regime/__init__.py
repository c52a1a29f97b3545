"""An online market regime label per symbol from a fitted Gaussian HMM.

`regime_observations` turns bars into per-bar observations (from `market.features`),
`fit_regime_model` fits a four-state HMM on a training window and names its states after
`MARKET_REGIMES`, and `RegimeFilter` labels each new bar by forward filtering: the label
at bar t uses bars up to t only, in backtests as live.
"""

from market.regime.filter import RegimeFilter, filter_history
from market.regime.model import RegimeModel, fit_regime_model
from market.regime.observations import (
    OBSERVATION_NAMES,
    OBSERVATION_SPEC,
    observations_from_features,
    regime_observations,
)

__all__ = [
    "OBSERVATION_NAMES",
    "OBSERVATION_SPEC",
    "RegimeFilter",
    "RegimeModel",
    "filter_history",
    "fit_regime_model",
    "observations_from_features",
    "regime_observations",
]
