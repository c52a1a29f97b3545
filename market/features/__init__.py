"""Named features per symbol and bar, computed over history (`compute_features`) or bar by
bar (`IncrementalFeatures`) with the same values; see `formulas` for the definitions.

Funding (`funding`) and cross-asset (`cross`) features are separate families with their
own names, computed the same two ways; they do not change `FeatureSpec.feature_names`.

Gaps: a bar with a NaN field is a gap; every feature whose window contains it is NaN until
the window has passed it, EMA-based features restart after it; nothing raises.
"""

from market.features.batch import compute_features
from market.features.cross import (
    CROSS_WINDOWS,
    IncrementalCrossFeatures,
    compute_cross_features,
    cross_feature_names,
)
from market.features.funding import (
    FUNDING_WINDOWS,
    IncrementalFundingFeatures,
    compute_funding_features,
    funding_feature_names,
)
from market.features.incremental import IncrementalFeatures
from market.features.spec import DEFAULT_SPEC, FeatureSpec

__all__ = [
    "CROSS_WINDOWS",
    "DEFAULT_SPEC",
    "FUNDING_WINDOWS",
    "FeatureSpec",
    "IncrementalCrossFeatures",
    "IncrementalFeatures",
    "IncrementalFundingFeatures",
    "compute_cross_features",
    "compute_features",
    "compute_funding_features",
    "cross_feature_names",
    "funding_feature_names",
]
