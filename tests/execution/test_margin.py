"""Margin arithmetic: Binance's liquidation-price formula, brackets, initial margin."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from execution.margin import initial_margin, liquidation_price, unrealized_pnl
from market.instruments import instrument_for

BTC_INSTRUMENT = instrument_for("BTC")


def test_initial_margin_is_notional_over_leverage() -> None:
    # 1.5 BTC × 50,000 / 10 = 7,500; the sign of the position does not matter
    assert initial_margin(-1.5, 50_000.0, 10.0) == pytest.approx(7_500.0)


def test_unrealized_pnl_of_a_short_gains_when_the_mark_falls() -> None:
    # −2 × (49,000 − 50,000) = +2,000
    assert unrealized_pnl(-2.0, 50_000.0, 49_000.0) == pytest.approx(2_000.0)


def test_isolated_long_liquidation_price_matches_binance_formula() -> None:
    # Long 1 BTC at 50,000, 10x isolated: margin 5,000; first bracket mmr 0.4 %, cum 0.
    # LP = (WB + cum − s·Q·EP) / (Q·MMR − s·Q) = (5,000 + 0 − 50,000) / (0.004 − 1) = 45,180.722891…
    price = liquidation_price(BTC_INSTRUMENT, 1.0, 50_000.0, 5_000.0)

    assert price == pytest.approx(45_180.722891566, rel=1e-12)


def test_isolated_short_liquidation_price_matches_binance_formula() -> None:
    # Short 0.5 BTC at 50,000, 10x isolated: margin 2,500.
    # LP = (2,500 + 0 + 0.5 × 50,000) / (0.5 × 0.004 + 0.5) = 27,500 / 0.502 = 54,780.876494…
    # (notional 0.5 × 54,780.88 = 27,390 lies in the first bracket, ≤ 50,000)
    price = liquidation_price(BTC_INSTRUMENT, -0.5, 50_000.0, 2_500.0)

    assert price == pytest.approx(54_780.876494024, rel=1e-12)


def test_liquidation_price_comes_from_the_bracket_its_own_notional_falls_in() -> None:
    # Short 1 BTC at 50,000 with 5,000 margin. The first bracket (mmr 0.4 %, cum 0) gives
    # 55,000 / 1.004 = 54,780.88, a notional above its 50,000 cap, so it does not apply;
    # the second (mmr 0.5 %, cum 50) gives (5,000 + 50 + 50,000) / 1.005 = 54,776.119403…,
    # whose notional 54,776 is inside (50,000, 250,000].
    price = liquidation_price(BTC_INSTRUMENT, -1.0, 50_000.0, 5_000.0)

    assert price == pytest.approx(54_776.119402985, rel=1e-12)


def test_liquidation_price_exactly_on_a_bracket_cap_is_found() -> None:
    # Long 0.585 BTC at 94,000 with 5,190 margin:
    # LP = (5,190 − 0.585 × 94,000) / (0.585 × 0.004 − 0.585) = −49,800 / −0.58266 = 85,470.085470…
    # Its notional 0.585 × 85,470.09 = 50,000 is the first bracket's cap; float rounding puts
    # the first bracket's answer a hair above the cap and the second's a hair below it.
    price = liquidation_price(BTC_INSTRUMENT, 0.585, 94_000.0, 5_190.0)

    assert price == pytest.approx(85_470.085470085, rel=1e-12)


def test_a_1x_long_has_no_liquidation_price() -> None:
    # Margin 50,000 = the whole notional: equity Q·P stays above Q·P·mmr for every P > 0.
    assert liquidation_price(BTC_INSTRUMENT, 1.0, 50_000.0, 50_000.0) is None


def test_a_1x_short_still_has_a_liquidation_price() -> None:
    # Second bracket: (50,000 + 50 + 50,000) / 1.005 = 99,552.238806… (notional inside (50k, 250k])
    price = liquidation_price(BTC_INSTRUMENT, -1.0, 50_000.0, 50_000.0)

    assert price == pytest.approx(99_552.238805970, rel=1e-12)


def test_no_position_has_no_liquidation_price() -> None:
    assert liquidation_price(BTC_INSTRUMENT, 0.0, 50_000.0, 5_000.0) is None


@settings(max_examples=300, deadline=None)
@given(
    pair=st.sampled_from(["BTC", "ETH", "BNB", "ADA"]),
    size=st.floats(0.001, 500.0),
    is_long=st.booleans(),
    entry_price=st.floats(0.01, 200_000.0),
    leverage=st.floats(1.0, 125.0),
)
def test_equity_equals_maintenance_margin_at_the_liquidation_price(
    pair: str, size: float, is_long: bool, entry_price: float, leverage: float
) -> None:
    instrument = instrument_for(pair)
    quantity = size if is_long else -size
    margin = size * entry_price / leverage

    price = liquidation_price(instrument, quantity, entry_price, margin)

    if price is not None:
        equity = margin + quantity * (price - entry_price)
        maintenance = instrument.maintenance_margin(size * price)
        assert equity == pytest.approx(maintenance, rel=1e-9, abs=1e-9 * size * entry_price)


@settings(max_examples=200, deadline=None)
@given(
    size=st.floats(0.001, 500.0),
    entry_price=st.floats(1.0, 200_000.0),
    leverage=st.floats(1.01, 125.0),
)
def test_a_long_within_its_brackets_leverage_has_a_liquidation_price_below_entry(
    size: float, entry_price: float, leverage: float
) -> None:
    # every bracket's max leverage leaves the initial margin above the maintenance margin,
    # so equity at entry exceeds maintenance and the liquidation price lies below entry
    assume(leverage <= BTC_INSTRUMENT.max_leverage_for(size * entry_price))

    price = liquidation_price(BTC_INSTRUMENT, size, entry_price, size * entry_price / leverage)

    assert price is not None
    assert 0.0 < price < entry_price
