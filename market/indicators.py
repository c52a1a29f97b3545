"""Per-bar market facts the guard reasons over, computed for a whole grid at once.

Every value at row t uses bars up to and including t only (the decision is made at
t's close), so a backtest sees exactly what live trading would. Windows count a
symbol's own bars; rows where the symbol has no bar are NaN (and never decided on).

The regime labels are a transparent rule-based classifier until the fitted regime
model of `market/regime` replaces it:

* volatility regime: realised volatility (std of 1-bar log returns over 60 bars)
  against its trailing one-day median: < 0.5× low, < 1.5× normal, < 3× high, else
  extreme;
* market regime: `volatile` when the volatility regime is extreme, `illiquid` when
  the bar's volume is under 5 % of its trailing one-day median, `trending` when
  Kaufman's efficiency ratio over 30 bars is at least 0.4, else `ranging`;
* a confirmed breakout closes beyond the previous 20 bars' range on at least 1.5× their
  mean volume.

Spreads: one-minute bars carry no quotes, so the spread is estimated from highs and
lows (Corwin & Schultz 2012, "A Simple Way to Estimate Bid-Ask Spreads from Daily
High and Low Prices", two-bar estimator averaged over 30 bars, negative estimates
set to zero), floored at one tick; it "widens" when above twice its one-day median.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.series import FloatArray, IntArray
from market.grid import BoolArray, MarketGrid

ATR_BARS = 14
VOLATILITY_BARS = 60
REGIME_LOOKBACK_BARS = 1440
EFFICIENCY_BARS = 30
BREAKOUT_BARS = 20
SPREAD_BARS = 30

VOLATILITY_REGIMES = ("low", "normal", "high", "extreme")
MARKET_REGIMES = ("trending", "ranging", "volatile", "illiquid")


@dataclass(frozen=True, slots=True)
class MarketIndicators:
    """Arrays of shape (symbols, rows); regimes as indexes into the label tuples above."""

    atr: FloatArray
    volatility: FloatArray
    volatility_regime: IntArray
    regime: IntArray
    breakout: BoolArray
    price_change: FloatArray
    spread_bps: FloatArray
    spread_widening: BoolArray
    log_return: FloatArray  # for correlations between symbols


def compute_indicators(grid: MarketGrid, tick_sizes: list[float]) -> MarketIndicators:
    shape = (len(grid.symbols), grid.length)
    atr, volatility = np.full(shape, np.nan), np.full(shape, np.nan)
    volatility_regime, regime = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    breakout = np.zeros(shape, dtype=bool)
    price_change, spread_bps = np.full(shape, np.nan), np.full(shape, np.nan)
    spread_widening = np.zeros(shape, dtype=bool)
    log_return = np.full(shape, np.nan)
    for i in range(len(grid.symbols)):
        rows = np.flatnonzero(grid.present[i])
        if rows.size == 0:
            continue
        bars = pd.DataFrame(
            {
                "high": grid.high[i, rows],
                "low": grid.low[i, rows],
                "close": grid.close[i, rows],
                "volume": grid.volume[i, rows],
            }
        )
        facts = _symbol_indicators(bars, tick_sizes[i])
        atr[i, rows] = facts["atr"]
        volatility[i, rows] = facts["volatility"]
        volatility_regime[i, rows] = facts["volatility_regime"]
        regime[i, rows] = facts["regime"]
        breakout[i, rows] = facts["breakout"]
        price_change[i, rows] = facts["price_change"]
        spread_bps[i, rows] = facts["spread_bps"]
        spread_widening[i, rows] = facts["spread_widening"]
        log_return[i, rows] = facts["log_return"]
    return MarketIndicators(
        atr, volatility, volatility_regime, regime, breakout, price_change, spread_bps, spread_widening, log_return
    )


def _symbol_indicators(bars: pd.DataFrame, tick_size: float) -> dict[str, np.ndarray]:
    high, low, close, volume = bars["high"], bars["low"], bars["close"], bars["volume"]
    previous_close = close.shift(1)
    atr = pd.Series(average_true_range(high.to_numpy(), low.to_numpy(), close.to_numpy()))
    log_return = pd.Series(np.log(close / previous_close))
    volatility = log_return.rolling(VOLATILITY_BARS, min_periods=2).std()
    typical_volatility = volatility.rolling(REGIME_LOOKBACK_BARS, min_periods=VOLATILITY_BARS).median()
    ratio = (volatility / typical_volatility).fillna(1.0)
    volatility_regime = np.select([ratio < 0.5, ratio < 1.5, ratio < 3.0], [0, 1, 2], default=3)

    path = close.diff().abs().rolling(EFFICIENCY_BARS, min_periods=EFFICIENCY_BARS).sum()
    efficiency = ((close - close.shift(EFFICIENCY_BARS)).abs() / path).fillna(0.0)
    typical_volume = volume.rolling(REGIME_LOOKBACK_BARS, min_periods=VOLATILITY_BARS).median()
    illiquid = (volume < 0.05 * typical_volume).to_numpy()
    regime = np.where(efficiency.to_numpy() >= 0.4, 0, 1)
    regime = np.where(illiquid, 3, regime)
    regime = np.where(volatility_regime == 3, 2, regime)

    prior_high = high.rolling(BREAKOUT_BARS, min_periods=BREAKOUT_BARS).max().shift(1)
    prior_low = low.rolling(BREAKOUT_BARS, min_periods=BREAKOUT_BARS).min().shift(1)
    prior_volume = volume.rolling(BREAKOUT_BARS, min_periods=BREAKOUT_BARS).mean().shift(1)
    breakout = ((close > prior_high) | (close < prior_low)) & (volume >= 1.5 * prior_volume)

    spread = _corwin_schultz(high, low).rolling(SPREAD_BARS, min_periods=1).mean()
    spread_bps = np.maximum(spread.fillna(0.0).to_numpy() * 1e4, tick_size / close.to_numpy() * 1e4)
    typical_spread = pd.Series(spread_bps).rolling(REGIME_LOOKBACK_BARS, min_periods=VOLATILITY_BARS).median()
    widening = (pd.Series(spread_bps) > 2.0 * typical_spread).to_numpy()
    return {
        "atr": atr.to_numpy(),
        "volatility": volatility.fillna(0.0).to_numpy(),
        "volatility_regime": volatility_regime,
        "regime": regime,
        "breakout": breakout.to_numpy(),
        "price_change": (close / previous_close - 1.0).fillna(0.0).to_numpy(),
        "spread_bps": spread_bps,
        "spread_widening": widening,
        "log_return": log_return.fillna(0.0).to_numpy(),
    }


def average_true_range(high: FloatArray, low: FloatArray, close: FloatArray, bars: int = ATR_BARS) -> FloatArray:
    """Mean true range over the last `bars` bars (fewer at the start), of gap-free bar arrays."""
    previous_close = np.concatenate([close[:1], close[:-1]])
    true_range = np.maximum(high - low, np.maximum(np.abs(high - previous_close), np.abs(low - previous_close)))
    cumulative = np.concatenate([[0.0], np.cumsum(true_range)])
    counts = np.minimum(np.arange(1, true_range.size + 1), bars)
    ends = np.arange(1, true_range.size + 1)
    atr: FloatArray = (cumulative[ends] - cumulative[ends - counts]) / counts
    return atr


def _corwin_schultz(high: pd.Series, low: pd.Series) -> pd.Series:
    """Two-bar Corwin–Schultz spread (fraction of price), negative estimates set to 0."""
    beta = np.log(high / low) ** 2 + np.log(high.shift(1) / low.shift(1)) ** 2
    gamma = np.log(np.maximum(high, high.shift(1)) / np.minimum(low, low.shift(1))) ** 2
    denominator = 3.0 - 2.0 * np.sqrt(2.0)
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / denominator - np.sqrt(gamma / denominator)
    spread = pd.Series(2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha)), index=high.index)
    return spread.clip(lower=0.0)
