"""Named features per symbol and bar, computed over history (`compute_features`) or bar by
bar (`IncrementalFeatures`) with the same values; see `formulas` for the definitions.

Gaps: a bar with a NaN field is a gap; every feature whose window contains it is NaN until
the window has passed it, EMA-based features restart after it; nothing raises.
"""

from market.features.batch import compute_features
from market.features.incremental import IncrementalFeatures
from market.features.spec import DEFAULT_SPEC, FeatureSpec

__all__ = ["DEFAULT_SPEC", "FeatureSpec", "IncrementalFeatures", "compute_features"]
