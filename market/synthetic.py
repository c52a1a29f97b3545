"""Seeded synthetic USDT-M perpetual markets: the offline default when no real data is given.

The model, per bar (all vectorised; only the regime segments and funding settlements loop):

- a market-wide volatility regime (calm / normal / turbulent), a Markov chain whose
  states last a geometric number of bars, times an intraday seasonality that peaks
  around the US session;
- one-factor returns: BTC is the market factor; every other symbol has
  r = beta * r_BTC + idiosyncratic, with Student-t(4) innovations for fat tails and
  compound-Poisson jumps (market-wide and idiosyncratic) whose intensity rises with the regime;
- high and low drawn from the exact distribution of a Brownian bridge's extremes between
  open and close, so OHLC is consistent by construction; prices rounded to the tick;
- volume lognormal around a level that rises with volatility;
- funding every 8 hours at 00/08/16 UTC: a rate mean-reverting to 0.01% that follows the
  last 8 hours' price drift, clipped to ±0.3%; the mark at each settlement is the price
  plus a small basis.

Each symbol's random stream is seeded from (seed, symbol), so a symbol's path does not
depend on which other symbols are generated with it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError
from core.instrument import Instrument
from core.series import BarSeries, FloatArray, FundingSeries, IntArray, MarketData, MarkSeries
from core.time import DAY_MS, HOUR_MS, YEAR_MS, parse_date_ms
from market.instruments import KNOWN_RULES, KNOWN_SYMBOLS, generic_alt_instrument, instrument_for
from market.symbols import base_asset, to_ccxt_symbol

DEFAULT_START_MS = parse_date_ms("2025-01-01")
FUNDING_INTERVAL_MS = 8 * HOUR_MS
SOURCE = "synthetic"


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    start_price: float  # USDT, about the price on 2025-01-01
    annual_vol: float  # in the normal regime
    beta: float  # to BTC, the market factor
    daily_quote_volume: float  # USDT traded per day in the normal regime


PROFILES: dict[str, SymbolProfile] = {
    "BTC": SymbolProfile(94_000.0, 0.50, 1.0, 15e9),
    "ETH": SymbolProfile(3_350.0, 0.70, 1.05, 8e9),
    "BNB": SymbolProfile(700.0, 0.45, 0.7, 0.6e9),
    "SOL": SymbolProfile(190.0, 0.85, 1.3, 3e9),
    "XRP": SymbolProfile(2.1, 0.80, 1.1, 2e9),
    "DOGE": SymbolProfile(0.32, 0.95, 1.3, 2e9),
    "ADA": SymbolProfile(0.85, 0.85, 1.2, 0.8e9),
    "DOT": SymbolProfile(6.7, 0.85, 1.15, 0.3e9),
    "LTC": SymbolProfile(100.0, 0.75, 1.0, 0.5e9),
}
_GENERIC_ALT_VOL = 0.9
_GENERIC_ALT_BETA = 1.2
_GENERIC_ALT_QUOTE_VOLUME = 0.2e9

# Regimes: volatility multiplier and mean duration; leaving a regime picks the next with
# the row of _REGIME_NEXT (no self-transitions: durations already carry persistence).
_REGIME_VOL = np.array([0.6, 1.0, 2.2])
_REGIME_MEAN_MS = np.array([8 * HOUR_MS, 12 * HOUR_MS, 2 * HOUR_MS])
_REGIME_NEXT = np.array([[0.0, 0.9, 0.1], [0.6, 0.0, 0.4], [0.3, 0.7, 0.0]])
_SEASONAL_AMPLITUDE = 0.3  # intraday volatility swing, peak at 15:00 UTC
_T_DF = 4.0
_MARKET_JUMPS_PER_DAY = 2.0
_MARKET_JUMP_SIGMAS = 4.0  # jump size, in bar standard deviations
_IDIO_JUMPS_PER_DAY = 1.0
_IDIO_JUMP_SIGMAS = 5.0
_VOLUME_VOL_ELASTICITY = 1.3
_VOLUME_DISPERSION = 0.7
_FUNDING_MEAN = 0.0001
_FUNDING_PERSISTENCE = 0.7
_FUNDING_DRIFT_SENSITIVITY = 0.004  # rate per unit of 8h log return
_FUNDING_NOISE = 0.00002
_FUNDING_CAP = 0.003
_MARK_BASIS_SD = 0.0003


def generate_market(
    symbols: Sequence[str] | None,
    days: int,
    seed: int,
    *,
    start_ms: int = DEFAULT_START_MS,
    timeframe_ms: int = 60_000,
) -> MarketData:
    """`days` of bars for `symbols` (None: the nine known symbols), with funding and mark."""
    if days < 1:
        raise ConfigError(f"synthetic market: days must be at least 1, got {days}")
    if seed < 0:
        raise ConfigError(f"synthetic market: seed must not be negative, got {seed}")
    if timeframe_ms <= 0 or start_ms % timeframe_ms != 0:
        raise ConfigError(
            f"synthetic market: timeframe {timeframe_ms} ms must be positive and start {start_ms} on its grid"
        )
    chosen = list(dict.fromkeys(to_ccxt_symbol(s) for s in (KNOWN_SYMBOLS if symbols is None else symbols)))
    if not chosen:
        raise ConfigError("synthetic market: no symbols requested")
    bar_count = days * DAY_MS // timeframe_ms
    ts = start_ms + timeframe_ms * np.arange(bar_count, dtype=np.int64)
    market_rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    vol_scale = _regime_multiplier(market_rng, bar_count, timeframe_ms) * _seasonality(ts)
    bars_per_year = YEAR_MS / timeframe_ms
    btc = _profile("BTC/USDT:USDT")
    market_sd = btc.annual_vol / math.sqrt(bars_per_year) * vol_scale
    market_returns = market_sd * _fat_tailed(market_rng, bar_count) + _jumps(
        market_rng, vol_scale, market_sd, _MARKET_JUMPS_PER_DAY * timeframe_ms / DAY_MS, _MARKET_JUMP_SIGMAS
    )
    settlements = _settlement_times(start_ms, start_ms + bar_count * timeframe_ms)

    bars: dict[str, BarSeries] = {}
    funding: dict[str, FundingSeries] = {}
    mark: dict[str, MarkSeries] = {}
    for symbol in chosen:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 1 + zlib.crc32(symbol.encode())]))
        profile = _profile(symbol)
        instrument = synthetic_instrument(symbol)
        total_sd = profile.annual_vol / math.sqrt(bars_per_year) * vol_scale
        idio_sd = np.sqrt(np.maximum(total_sd**2 - (profile.beta * market_sd) ** 2, 0.0))
        returns = profile.beta * market_returns
        if symbol != "BTC/USDT:USDT":
            returns = returns + idio_sd * _fat_tailed(rng, bar_count)
            returns += _jumps(rng, vol_scale, total_sd, _IDIO_JUMPS_PER_DAY * timeframe_ms / DAY_MS, _IDIO_JUMP_SIGMAS)
        bars[symbol] = _bars(rng, symbol, instrument, profile, ts, timeframe_ms, returns, total_sd)
        rates = _funding_rates(rng, bars[symbol], settlements, timeframe_ms)
        funding[symbol] = FundingSeries(symbol, settlements.copy(), rates, SOURCE)
        mark[symbol] = MarkSeries(
            symbol, settlements.copy(), _marks(rng, bars[symbol], settlements, instrument), SOURCE
        )
    return MarketData(bars=bars, funding=funding, mark=mark, synthetic=True, files=())


def synthetic_instrument(symbol: str) -> Instrument:
    """The instrument the generator rounds to: the known rules, or for another symbol a
    generic alt whose tick and step suit its synthetic starting price."""
    ccxt_symbol = to_ccxt_symbol(symbol)
    if base_asset(ccxt_symbol) in KNOWN_RULES:
        return instrument_for(ccxt_symbol)
    price = _profile(ccxt_symbol).start_price
    magnitude = math.floor(math.log10(price))
    # about five significant digits of price, and a step worth roughly 0.1 to 1 USDT
    return generic_alt_instrument(ccxt_symbol, float(f"1e{magnitude - 4}"), float(f"1e{-magnitude - 1}"))


def _profile(symbol: str) -> SymbolProfile:
    base = base_asset(symbol)
    known = PROFILES.get(base)
    if known is not None:
        return known
    # a stable per-name starting price between about 0.03 and 300 USDT
    fraction = zlib.crc32(base.encode()) / 2**32
    price = float(f"{10.0 ** (-1.5 + 4.0 * fraction):.4g}")
    return SymbolProfile(price, _GENERIC_ALT_VOL, _GENERIC_ALT_BETA, _GENERIC_ALT_QUOTE_VOLUME)


def _regime_multiplier(rng: np.random.Generator, bar_count: int, timeframe_ms: int) -> FloatArray:
    states: list[int] = []
    lengths: list[int] = []
    state = 1
    covered = 0
    while covered < bar_count:
        exit_probability = min(1.0, timeframe_ms / float(_REGIME_MEAN_MS[state]))
        length = int(rng.geometric(exit_probability))
        states.append(state)
        lengths.append(length)
        covered += length
        state = int(rng.choice(3, p=_REGIME_NEXT[state]))
    return np.repeat(_REGIME_VOL[np.array(states)], np.array(lengths))[:bar_count]


def _seasonality(ts: IntArray) -> FloatArray:
    hour = (ts % DAY_MS) / HOUR_MS
    return 1.0 + _SEASONAL_AMPLITUDE * np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)


def _fat_tailed(rng: np.random.Generator, count: int) -> FloatArray:
    """Student-t innovations scaled to unit variance."""
    return rng.standard_t(_T_DF, count) / math.sqrt(_T_DF / (_T_DF - 2.0))


def _jumps(
    rng: np.random.Generator, vol_scale: FloatArray, bar_sd: FloatArray, rate_per_bar: float, sigmas: float
) -> FloatArray:
    """Compound Poisson: N jumps per bar (intensity rises with the regime), each N(0, sigmas·sd)."""
    counts = rng.poisson(rate_per_bar * vol_scale)
    return np.sqrt(counts) * rng.standard_normal(vol_scale.shape[0]) * sigmas * bar_sd


def _bars(
    rng: np.random.Generator,
    symbol: str,
    instrument: Instrument,
    profile: SymbolProfile,
    ts: IntArray,
    timeframe_ms: int,
    returns: FloatArray,
    bar_sd: FloatArray,
) -> BarSeries:
    count = ts.shape[0]
    log_close = math.log(profile.start_price) + np.cumsum(returns)
    log_open = np.concatenate(([math.log(profile.start_price)], log_close[:-1]))
    # Extremes of a Brownian bridge from 0 to x with variance s²: P(max >= m) =
    # exp(-2 m (m - x) / s²), so max = (x + sqrt(x² - 2 s² ln U)) / 2, and min likewise.
    spread_up = np.sqrt(returns**2 - 2.0 * bar_sd**2 * np.log(rng.uniform(size=count)))
    spread_down = np.sqrt(returns**2 - 2.0 * bar_sd**2 * np.log(rng.uniform(size=count)))
    tick = instrument.tick_size
    close = _round_to(np.exp(log_close), tick)
    open_ = np.concatenate(([_round_to(np.array([profile.start_price]), tick)[0]], close[:-1]))
    high = np.maximum(_round_to(np.exp(log_open + (returns + spread_up) / 2.0), tick), np.maximum(open_, close))
    low = np.minimum(_round_to(np.exp(log_open + (returns - spread_down) / 2.0), tick), np.minimum(open_, close))
    low = np.maximum(low, tick)
    normal_sd = profile.annual_vol * math.sqrt(timeframe_ms / YEAR_MS)
    base_volume = profile.daily_quote_volume * timeframe_ms / DAY_MS / profile.start_price
    activity = (bar_sd / normal_sd) ** _VOLUME_VOL_ELASTICITY * (0.5 + 0.5 * np.abs(returns) / bar_sd)
    noise = np.exp(_VOLUME_DISPERSION * rng.standard_normal(count) - _VOLUME_DISPERSION**2 / 2.0)
    volume = _round_to(base_volume * activity * noise, instrument.step_size)
    return BarSeries(symbol, timeframe_ms, ts.copy(), open_, high, low, close, volume, SOURCE)


def _settlement_times(start_ms: int, end_ms: int) -> IntArray:
    first = -(-start_ms // FUNDING_INTERVAL_MS) * FUNDING_INTERVAL_MS
    return np.arange(first, end_ms, FUNDING_INTERVAL_MS, dtype=np.int64)


def _bar_index(bars: BarSeries, settlements: IntArray) -> IntArray:
    """The bar that opens at (or contains) each settlement time."""
    return (settlements - int(bars.ts[0])) // bars.timeframe_ms


def _funding_rates(rng: np.random.Generator, bars: BarSeries, settlements: IntArray, timeframe_ms: int) -> FloatArray:
    at = _bar_index(bars, settlements)
    before = np.maximum(at - FUNDING_INTERVAL_MS // timeframe_ms, 0)
    drift = np.log(bars.open[at] / bars.open[before])
    shocks = _FUNDING_DRIFT_SENSITIVITY * drift + _FUNDING_NOISE * rng.standard_normal(settlements.shape[0])
    rates = np.empty(settlements.shape[0])
    previous = _FUNDING_MEAN
    for k, shock in enumerate(shocks):
        previous = _FUNDING_MEAN + _FUNDING_PERSISTENCE * (previous - _FUNDING_MEAN) + float(shock)
        previous = min(max(previous, -_FUNDING_CAP), _FUNDING_CAP)
        rates[k] = previous
    return np.round(rates, 8)


def _marks(rng: np.random.Generator, bars: BarSeries, settlements: IntArray, instrument: Instrument) -> FloatArray:
    price = bars.open[_bar_index(bars, settlements)]
    basis = 1.0 + _MARK_BASIS_SD * rng.standard_normal(settlements.shape[0])
    return _round_to(price * basis, instrument.tick_size)


def _round_to(values: FloatArray, increment: float) -> FloatArray:
    decimals = max(0, -math.floor(math.log10(increment) + 1e-9))
    return np.round(np.round(values / increment) * increment, decimals)
