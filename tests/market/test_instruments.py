from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError, UnknownSymbolError
from market.instruments import (
    ALT_BRACKETS,
    KNOWN_SYMBOLS,
    continuous_brackets,
    generic_alt_instrument,
    instrument_for,
)


@pytest.mark.parametrize(
    ("pair", "tick", "step", "min_notional"),
    [
        ("BTC", 0.1, 0.001, 100),
        ("ETH", 0.01, 0.001, 20),
        ("BNB", 0.01, 0.01, 5),
        ("SOL", 0.01, 1, 5),
        ("ADA", 0.0001, 1, 5),
        ("DOGE", 0.00001, 1, 5),
        ("DOT", 0.001, 0.1, 5),
        ("LTC", 0.01, 0.001, 20),
        ("XRP", 0.0001, 0.1, 5),
    ],
)
def test_known_symbols_carry_binance_trading_rules(pair: str, tick: float, step: float, min_notional: float) -> None:
    instrument = instrument_for(pair)
    assert instrument.symbol == f"{pair}/USDT:USDT"
    assert (instrument.base, instrument.quote) == (pair, "USDT")
    assert (instrument.tick_size, instrument.step_size, instrument.min_notional) == (tick, step, min_notional)


def test_any_pair_spelling_finds_the_instrument() -> None:
    assert instrument_for("ethusdt") == instrument_for("ETH/USDT:USDT")


def test_btc_brackets_match_binance_published_caps_rates_and_maintenance_amounts() -> None:
    brackets = instrument_for("BTC").brackets
    assert [(b.notional_cap, b.maintenance_rate, b.max_leverage) for b in brackets[:3]] == [
        (50_000, 0.004, 125),
        (250_000, 0.005, 100),
        (3_000_000, 0.01, 50),
    ]
    # cum_1 = 0; cum_2 = 0 + 50_000 × (0.005 − 0.004) = 50; cum_3 = 50 + 250_000 × (0.01 − 0.005) = 1_300
    assert [b.maintenance_amount for b in brackets[:3]] == [0.0, 50.0, 1_300.0]
    assert math.isinf(brackets[-1].notional_cap)


def test_maintenance_margin_at_250k_btc_notional() -> None:
    # 250_000 falls in the second bracket: 250_000 × 0.005 − 50 = 1_200
    assert instrument_for("BTC").maintenance_margin(250_000) == pytest.approx(1_200.0)


@pytest.mark.parametrize("symbol", KNOWN_SYMBOLS)
def test_maintenance_margin_is_continuous_at_every_bracket_edge(symbol: str) -> None:
    brackets = instrument_for(symbol).brackets
    for below, above in itertools.pairwise(brackets):
        edge = below.notional_cap
        from_below = edge * below.maintenance_rate - below.maintenance_amount
        from_above = edge * above.maintenance_rate - above.maintenance_amount
        assert from_below == pytest.approx(from_above, rel=1e-12, abs=1e-6), (symbol, edge)


@pytest.mark.parametrize("symbol", KNOWN_SYMBOLS)
def test_opening_at_max_leverage_is_not_instantly_below_maintenance(symbol: str) -> None:
    for bracket in instrument_for(symbol).brackets:
        assert bracket.maintenance_rate < 1.0 / bracket.max_leverage


@given(st.sampled_from(KNOWN_SYMBOLS), st.floats(0, 1e9), st.floats(0, 1e9))
def test_maintenance_margin_never_falls_as_notional_grows(symbol: str, a: float, b: float) -> None:
    instrument = instrument_for(symbol)
    low, high = sorted((a, b))
    assert instrument.maintenance_margin(low) <= instrument.maintenance_margin(high) + 1e-6


def test_trading_rules_can_be_overridden() -> None:
    instrument = instrument_for("BTC", tick_size=0.5, step_size=0.01, min_notional=5, brackets=ALT_BRACKETS)
    assert (instrument.tick_size, instrument.step_size, instrument.min_notional) == (0.5, 0.01, 5)
    assert instrument.max_leverage == 50


def test_unknown_symbol_is_refused_pointing_at_generic_alt_instrument() -> None:
    with pytest.raises(UnknownSymbolError, match=r"PEPE/USDT:USDT.*generic_alt_instrument"):
        instrument_for("PEPE", tick_size=0.0001, step_size=1)


def test_generic_alt_instrument_uses_the_given_increments_and_alt_brackets() -> None:
    instrument = generic_alt_instrument("PEPEUSDT", 0.000001, 100)
    assert (instrument.symbol, instrument.tick_size, instrument.step_size) == ("PEPE/USDT:USDT", 0.000001, 100)
    assert instrument.min_notional == 5
    assert instrument.brackets == continuous_brackets(ALT_BRACKETS)


@pytest.mark.parametrize(
    ("rows", "complaint"),
    [
        ([], "at least one"),
        ([(10_000, 0.01, 50), (5_000, 0.02, 20), (math.inf, 0.5, 1)], "caps must increase"),
        ([(10_000, 0.02, 50), (math.inf, 0.01, 1)], "not below the previous"),
        ([(10_000, 0.01, 50), (20_000, 0.5, 1)], "must be infinite"),
        ([(math.inf, 0.01, 0.5)], "below 1"),
    ],
)
def test_inconsistent_bracket_tables_are_refused(rows: list[tuple[float, float, float]], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        continuous_brackets(rows)


def test_non_positive_tick_is_refused_naming_the_symbol() -> None:
    with pytest.raises(ConfigError, match=r"BTC/USDT:USDT: tick_size must be positive"):
        instrument_for("BTC", tick_size=0)
