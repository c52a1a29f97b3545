from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.series import MarketData
from core.time import DAY_MS, HOUR_MS, MINUTE_MS, parse_date_ms
from market.instruments import KNOWN_SYMBOLS, instrument_for
from market.quality import check_bars
from market.synthetic import DEFAULT_START_MS, generate_market, synthetic_instrument

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
FIELDS = ("ts", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def month() -> MarketData:
    return generate_market(None, 30, seed=7)


def log_returns(close: np.ndarray) -> np.ndarray:
    return np.diff(np.log(close))


def test_default_market_is_the_nine_known_symbols_labelled_synthetic(month: MarketData) -> None:
    assert sorted(month.symbols) == sorted(KNOWN_SYMBOLS)
    assert month.synthetic and month.files == ()
    assert all(series.source == "synthetic" for series in month.bars.values())


def test_bars_cover_the_days_on_the_minute_grid_from_2025(month: MarketData) -> None:
    series = month.bars[BTC]
    assert parse_date_ms("2025-01-01") == DEFAULT_START_MS
    assert len(series) == 30 * 1440
    assert int(series.ts[0]) == DEFAULT_START_MS and np.all(np.diff(series.ts) == MINUTE_MS)


def test_same_seed_gives_identical_arrays(month: MarketData) -> None:
    again = generate_market(None, 30, seed=7)
    for symbol in month.symbols:
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(again.bars[symbol], name), getattr(month.bars[symbol], name))
        np.testing.assert_array_equal(again.funding[symbol].rate, month.funding[symbol].rate)
        np.testing.assert_array_equal(again.mark[symbol].price, month.mark[symbol].price)


def test_different_seeds_give_different_paths() -> None:
    first = generate_market([BTC], 2, seed=1).bars[BTC].close
    second = generate_market([BTC], 2, seed=2).bars[BTC].close
    assert not np.array_equal(first, second)


def test_a_symbols_path_does_not_depend_on_the_other_symbols_generated() -> None:
    alone = generate_market(["ETH"], 3, seed=11).bars[ETH]
    together = generate_market(["BTC", "SOL", "ETH"], 3, seed=11).bars[ETH]
    np.testing.assert_array_equal(alone.close, together.close)


def test_ohlc_is_consistent_and_passes_every_quality_check(month: MarketData) -> None:
    for series in month.bars.values():
        assert np.all(series.high >= np.maximum(series.open, series.close))
        assert np.all(series.low <= np.minimum(series.open, series.close))
        assert np.all(series.low > 0) and np.all(series.volume >= 0)
        np.testing.assert_array_equal(series.open[1:], series.close[:-1])
        assert check_bars(series) == []


def test_prices_sit_on_the_instrument_tick(month: MarketData) -> None:
    for symbol, series in month.bars.items():
        tick = instrument_for(symbol).tick_size
        for name in ("open", "high", "low", "close"):
            ratio = getattr(series, name) / tick
            assert np.allclose(ratio, np.round(ratio), atol=1e-6), (symbol, name)


def test_starting_prices_are_realistic_for_january_2025(month: MarketData) -> None:
    assert 80_000 < month.bars[BTC].open[0] < 110_000
    assert 2_500 < month.bars[ETH].open[0] < 4_500
    assert 0.1 < month.bars["DOGE/USDT:USDT"].open[0] < 1


def test_funding_settles_every_8h_at_00_08_16_utc_within_the_cap(month: MarketData) -> None:
    funding = month.funding[BTC]
    assert len(funding.ts) == 30 * 3
    np.testing.assert_array_equal(funding.ts, DEFAULT_START_MS + 8 * HOUR_MS * np.arange(90))
    assert set(((funding.ts % DAY_MS) // HOUR_MS).tolist()) == {0, 8, 16}
    assert np.all(np.abs(funding.rate) <= 0.003)
    assert 0.0 < float(np.mean(funding.rate)) < 0.0003  # mean-reverting around 0.01%
    assert np.unique(funding.rate).size > 10


def test_mark_is_observed_at_each_settlement_close_to_the_price(month: MarketData) -> None:
    for symbol in month.symbols:
        mark, bars = month.mark[symbol], month.bars[symbol]
        np.testing.assert_array_equal(mark.ts, month.funding[symbol].ts)
        price = bars.open[(mark.ts - bars.ts[0]) // MINUTE_MS]
        assert np.all(np.abs(mark.price / price - 1) < 0.01)


def test_btc_and_eth_returns_are_correlated_through_the_market_factor(month: MarketData) -> None:
    correlation = np.corrcoef(log_returns(month.bars[BTC].close), log_returns(month.bars[ETH].close))[0, 1]
    assert correlation > 0.3


def test_volatility_regimes_are_visible_in_rolling_volatility(month: MarketData) -> None:
    rolling = pd.Series(log_returns(month.bars[BTC].close)).rolling(60).std().dropna()
    assert rolling.quantile(0.95) > 2 * rolling.quantile(0.05)


def test_volume_rises_with_volatility(month: MarketData) -> None:
    series = month.bars[BTC]
    hourly_range = pd.Series(np.log(series.high / series.low)).groupby(np.arange(len(series)) // 60).mean()
    hourly_volume = pd.Series(series.volume).groupby(np.arange(len(series)) // 60).sum()
    assert hourly_range.corr(hourly_volume, method="spearman") > 0.5


def test_returns_have_fat_tails(month: MarketData) -> None:
    returns = log_returns(month.bars[BTC].close)
    standardised = (returns - returns.mean()) / returns.std()
    assert float(np.mean(standardised**4)) > 5  # a normal distribution has kurtosis 3


def test_unknown_symbols_get_a_generic_alt_instrument_and_its_tick() -> None:
    data = generate_market(["PEPE"], 1, seed=3)
    series = data.bars["PEPE/USDT:USDT"]
    instrument = synthetic_instrument("PEPE")
    assert instrument.symbol == "PEPE/USDT:USDT" and instrument.min_notional == 5
    ratio = series.close / instrument.tick_size
    assert np.allclose(ratio, np.round(ratio), atol=1e-6)
    assert 1e3 < series.close[0] / instrument.tick_size < 1e5  # about five significant digits


def test_other_timeframes_and_start_times_are_honoured() -> None:
    start = parse_date_ms("2025-03-01T04:00:00")
    data = generate_market(["BTC"], 2, seed=5, start_ms=start, timeframe_ms=5 * MINUTE_MS)
    series = data.bars[BTC]
    assert series.timeframe_ms == 5 * MINUTE_MS and len(series) == 2 * 288 and int(series.ts[0]) == start
    assert int(data.funding[BTC].ts[0]) == start + 4 * HOUR_MS  # the next settlement, 08:00 UTC


@pytest.mark.parametrize(
    ("days", "seed", "start_ms", "complaint"),
    [(0, 1, DEFAULT_START_MS, "days"), (1, -1, DEFAULT_START_MS, "seed"), (1, 1, DEFAULT_START_MS + 1, "grid")],
)
def test_invalid_arguments_are_config_errors(days: int, seed: int, start_ms: int, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        generate_market(None, days, seed, start_ms=start_ms)
