"""Which features exist: the windows, the MACD sets and the ordered list of names.

A name is `family_window` (`vol_parkinson_60`), `family_short_long` for term-structure
ratios between two windows (`vol_term_15_240`), `macd_fast_slow_signal` for MACD, or a
bare name for calendar features (`tod_sin`). The order of `feature_names` is the column
order of `compute_features` and of every `IncrementalFeatures.update` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

DEFAULT_WINDOWS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440)
DEFAULT_MACD_SETS = ((12, 26, 9), (5, 35, 5), (8, 17, 9), (19, 39, 9))

# One value per window; see `formulas.window_features` for each definition.
WINDOW_FAMILIES = (
    "ret",
    "ret_log",
    "mom_tstat",
    "vol_cc",
    "vol_parkinson",
    "vol_gk",
    "vol_rs",
    "vol_yz",
    "ret_skew",
    "ret_kurt",
    "vol_down",
    "vol_up",
    "up_frac",
    "atr",
    "natr",
    "tr_rel",
    "hl_range",
    "absret_mean",
    "efficiency",
    "zscore",
    "bb_width",
    "sma_dist",
    "volume_mean",
    "volume_rel",
    "volume_z",
    "volume_imb",
    "vwap_dist",
    "amihud",
    "roll_spread",
    "cs_spread",
    "max_dist",
    "min_dist",
    "range_pos",
    "ret_max",
    "ret_min",
    "volume_max_rel",
    "rsi",
    "ema_dist",
)
# One value per pair of windows (short, long): a ratio between the two.
PAIR_FAMILIES = ("vol_term", "park_term", "sma_cross", "volume_term")
MACD_PARTS = ("macd", "macd_signal", "macd_hist")
CALENDAR_FEATURES = ("moh_sin", "moh_cos", "tod_sin", "tod_cos", "dow_sin", "dow_cos")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    windows: tuple[int, ...] = DEFAULT_WINDOWS
    macd_sets: tuple[tuple[int, int, int], ...] = DEFAULT_MACD_SETS

    def __post_init__(self) -> None:
        if list(self.windows) != sorted(set(self.windows)) or self.windows[0] < 5:
            raise ValueError(f"feature windows must be increasing, distinct and >= 5 bars, got {self.windows}")
        for fast, slow, signal in self.macd_sets:
            if not 1 < fast < slow or signal < 2:
                raise ValueError(f"MACD set ({fast}, {slow}, {signal}) needs 1 < fast < slow and signal >= 2")

    @property
    def max_window(self) -> int:
        return self.windows[-1]

    @property
    def window_pairs(self) -> list[tuple[int, int]]:
        return list(combinations(self.windows, 2))

    @property
    def feature_names(self) -> list[str]:
        names = [f"{family}_{w}" for family in WINDOW_FAMILIES for w in self.windows]
        names += [f"{family}_{a}_{b}" for family in PAIR_FAMILIES for a, b in self.window_pairs]
        names += [f"{part}_{f}_{s}_{g}" for f, s, g in self.macd_sets for part in MACD_PARTS]
        return names + list(CALENDAR_FEATURES)


DEFAULT_SPEC = FeatureSpec()
