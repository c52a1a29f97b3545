"""The simulated USDT-M exchange, behaviour by behaviour, on hand-written one-minute bars.

Tests that check money run with zero maker and taker fees unless fees are their subject,
so every expected number is the arithmetic in its comment and nothing else.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.decision import ReasonCode
from core.errors import OrderRejected
from core.orders import Fill, Liquidity, OrderRequest, OrderStatus, Side
from core.positions import MarginMode
from core.time import MINUTE_MS
from market.instruments import instrument_for
from tests.execution.harness import (
    BTC,
    ETH,
    OHLC,
    START_MS,
    ExchangeHarness,
    flat,
    limit,
    make_harness,
    market,
    stop_market,
)

NO_FEES = {"maker_fee": 0.0, "taker_fee": 0.0}
ISOLATED_10X = {"default_leverage": 10.0, "default_margin_mode": MarginMode.ISOLATED}
CROSS_10X = {"default_leverage": 10.0, "default_margin_mode": MarginMode.CROSS}


def minute(row: int) -> int:
    """Open time of grid row `row`."""
    return START_MS + row * MINUTE_MS


def opened_at_first_open(symbol: str, side: Side, quantity: float, bars: list[OHLC], **options: Any) -> ExchangeHarness:
    """A harness whose first row fills a market order at its open, leaving the rest to run."""
    harness = make_harness({symbol: bars}, **options)
    harness.submit(market(symbol, side, quantity))
    harness.step()
    return harness


def liquidation_fills(harness: ExchangeHarness) -> list[Fill]:
    return [fill for fill in harness.exchange.fills if fill.is_liquidation]


# --------------------------------------------------------------------------- funding
def test_a_long_pays_funding_on_the_mark_price_at_settlement() -> None:
    # long 1 BTC, rate 0.0001, mark 50,100 at the settlement: pays 1 × 50,100 × 0.0001 = 5.01
    harness = make_harness(
        {BTC: [flat(50_000.0)] * 4},
        funding={BTC: [(minute(2), 0.0001)]},
        marks={BTC: [(minute(2), 50_100.0)]},
        **NO_FEES,
    )
    harness.submit(market(BTC, Side.BUY, 1.0))

    harness.run_all()

    assert harness.exchange.wallet == pytest.approx(10_000.0 - 5.01)
    assert harness.exchange.funding_paid == pytest.approx(5.01)
    [payment] = harness.exchange.funding_payments
    assert (payment.ts, payment.quantity, payment.mark_price, payment.rate) == (minute(2), 1.0, 50_100.0, 0.0001)


def test_a_short_receives_funding_when_the_rate_is_positive() -> None:
    # short 1 BTC: amount paid = −1 × 50,100 × 0.0001 = −5.01, i.e. 5.01 received
    harness = make_harness(
        {BTC: [flat(50_000.0)] * 4},
        funding={BTC: [(minute(2), 0.0001)]},
        marks={BTC: [(minute(2), 50_100.0)]},
        **NO_FEES,
    )
    harness.submit(market(BTC, Side.SELL, 1.0))

    harness.run_all()

    assert harness.exchange.wallet == pytest.approx(10_000.0 + 5.01)
    assert harness.exchange.funding_paid == pytest.approx(-5.01)


def test_funding_uses_the_bar_open_when_the_mark_file_has_no_row() -> None:
    # no mark at the settlement: the settlement bar's open 50,200 stands in → 1 × 50,200 × 0.0001 = 5.02
    harness = make_harness(
        {BTC: [flat(50_000.0), flat(50_000.0), (50_200.0, 50_300.0, 50_100.0, 50_250.0), flat(50_250.0)]},
        funding={BTC: [(minute(2), 0.0001)]},
        marks={BTC: [(minute(3), 99_999.0)]},
        **NO_FEES,
    )
    harness.submit(market(BTC, Side.BUY, 1.0))

    harness.run_all()

    assert harness.exchange.wallet == pytest.approx(10_000.0 - 5.02)
    assert harness.exchange.funding_payments[0].mark_price == 50_200.0


def test_no_funding_is_paid_while_flat() -> None:
    harness = make_harness({BTC: [flat(50_000.0)] * 4}, funding={BTC: [(minute(2), 0.0001)]}, **NO_FEES)

    harness.run_all()

    assert harness.exchange.wallet == 10_000.0
    assert harness.exchange.funding_payments == []


def test_funding_settles_on_the_first_bar_at_or_after_the_funding_time() -> None:
    # settlement at 00:01:30 falls inside the row-1 bar; the first bar opening at or after it is row 2 (00:02)
    settlement = minute(1) + 30_000
    harness = make_harness(
        {BTC: [flat(50_000.0)] * 4},
        funding={BTC: [(settlement, 0.0001)]},
        marks={BTC: [(settlement, 50_100.0)]},
        **NO_FEES,
    )
    harness.submit(market(BTC, Side.BUY, 1.0))
    harness.run_through(1)
    assert harness.exchange.funding_payments == []

    harness.step()

    [payment] = harness.exchange.funding_payments
    assert payment.ts == settlement
    assert payment.amount == pytest.approx(5.01)  # 1 × 50,100 × 0.0001


# ----------------------------------------------------------------- isolated liquidation
def test_isolated_position_reports_binance_liquidation_price() -> None:
    # long 1 BTC at 50,000, 10x isolated: margin 5,000; LP = (5,000 − 50,000) / (0.004 − 1) = 45,180.7229
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, [flat(50_000.0)] * 2, **ISOLATED_10X, **NO_FEES)

    [position] = harness.exchange.positions()

    assert position.isolated_margin == pytest.approx(5_000.0)
    assert position.liquidation_price == pytest.approx(45_180.722891566)


def test_liquidation_happens_inside_the_bar_before_close() -> None:
    # the bar closes at 49,000, well above LP 45,180.72, but its low 45,000 crossed LP on the way
    bars = [flat(50_000.0), (50_000.0, 50_000.0, 45_000.0, 49_000.0), flat(49_000.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **ISOLATED_10X, **NO_FEES)

    harness.step()

    [liquidation] = liquidation_fills(harness)
    assert liquidation.price == pytest.approx(45_180.722891566)
    assert liquidation.ts == minute(1)
    assert harness.position_qty(BTC) == 0.0


def test_clearance_fee_is_capped_at_the_margin_left() -> None:
    # At LP 45,180.72 the margin left is 5,000 + (45,180.72 − 50,000) = 180.72 (= 0.4 % maintenance);
    # the 1.25 % clearance fee would be 564.76, so it takes the 180.72 and the wallet loses exactly 5,000.
    bars = [flat(50_000.0), (50_000.0, 50_000.0, 45_000.0, 49_000.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **ISOLATED_10X, **NO_FEES)

    harness.step()

    [liquidation] = liquidation_fills(harness)
    assert liquidation.fee == pytest.approx(180.722891566)
    assert harness.exchange.wallet == pytest.approx(5_000.0)
    assert harness.exchange.insurance_fund_cover == pytest.approx(0.0, abs=1e-6)


def test_clearance_fee_is_charged_in_full_when_the_margin_left_covers_it() -> None:
    # with a 0.2 % clearance rate: fee = 0.002 × 45,180.7229 = 90.3614 < 180.72 margin left;
    # wallet = 10,000 + (45,180.7229 − 50,000) − 90.3614 = 5,090.3614
    cheap_clearance = dataclasses.replace(instrument_for(BTC), liquidation_fee_rate=0.002)
    bars = [flat(50_000.0), (50_000.0, 50_000.0, 45_000.0, 49_000.0)]
    harness = opened_at_first_open(
        BTC, Side.BUY, 1.0, bars, instruments={BTC: cheap_clearance}, **ISOLATED_10X, **NO_FEES
    )

    harness.step()

    [liquidation] = liquidation_fills(harness)
    assert liquidation.fee == pytest.approx(90.361445783)
    assert harness.exchange.wallet == pytest.approx(5_090.361445783)


def test_a_gap_through_the_liquidation_price_liquidates_at_the_open() -> None:
    bars = [flat(50_000.0), (44_000.0, 44_500.0, 43_800.0, 44_200.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **ISOLATED_10X, **NO_FEES)

    harness.step()

    [liquidation] = liquidation_fills(harness)
    assert liquidation.price == 44_000.0


def test_the_insurance_fund_covers_a_gap_loss_beyond_the_isolated_margin() -> None:
    # closing at the 44,000 open loses 6,000 against 5,000 of margin: no clearance fee is left to take,
    # the insurance fund covers 1,000 and the wallet loses exactly the 5,000 margin
    bars = [flat(50_000.0), (44_000.0, 44_500.0, 43_800.0, 44_200.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **ISOLATED_10X, **NO_FEES)

    harness.step()

    assert harness.exchange.insurance_fund_cover == pytest.approx(1_000.0)
    assert harness.exchange.wallet == pytest.approx(10_000.0 - 5_000.0)
    assert liquidation_fills(harness)[0].fee == 0.0


def test_an_isolated_short_is_liquidated_when_the_high_reaches_its_liquidation_price() -> None:
    # short 0.5 BTC at 50,000, 10x: LP = (2,500 + 25,000) / (0.5 × 1.004) = 54,780.8765; the high 55,000 crosses it
    bars = [flat(50_000.0), (50_000.0, 55_000.0, 49_900.0, 50_500.0)]
    harness = opened_at_first_open(BTC, Side.SELL, 0.5, bars, **ISOLATED_10X, **NO_FEES)

    harness.step()

    [liquidation] = liquidation_fills(harness)
    assert (liquidation.side, liquidation.price) == (Side.BUY, pytest.approx(54_780.876494024))


# -------------------------------------------------------------------- cross liquidation
def test_a_cross_position_is_liquidated_against_the_whole_wallet() -> None:
    # cross backing = the 10,000 wallet: LP = (10,000 − 50,000) / (0.004 − 1) = 40,160.6426;
    # loss 9,839.3574 + clearance capped at the 160.6426 left = the whole wallet
    bars = [flat(50_000.0), (50_000.0, 50_000.0, 40_000.0, 45_000.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **CROSS_10X, **NO_FEES)

    harness.step()

    [liquidation] = liquidation_fills(harness)
    assert liquidation.price == pytest.approx(40_160.642570281)
    assert harness.exchange.wallet == pytest.approx(0.0, abs=1e-6)


def _btc_and_eth_cross(btc_bars: list[OHLC], eth_bars: list[OHLC], **options: Any) -> ExchangeHarness:
    """Long 1 BTC at 50,000 and 10 ETH at 3,000, both cross 10x on 10,000 USDT, opened at row 0."""
    harness = make_harness({BTC: btc_bars, ETH: eth_bars}, **{**CROSS_10X, **NO_FEES, **options})
    harness.submit(market(BTC, Side.BUY, 1.0))
    harness.submit(market(ETH, Side.BUY, 10.0))
    harness.step()
    return harness


def test_one_symbols_loss_liquidates_every_cross_position() -> None:
    # ETH's backing = wallet + BTC's (uPnL 0 − maintenance 200) = 9,800:
    # LP = (9,800 − 10 × 3,000) / (10 × 0.004 − 10) = 2,028.1124; ETH's low 2,000 crosses it, BTC sits at 50,000
    harness = _btc_and_eth_cross([flat(50_000.0)] * 2, [flat(3_000.0), (3_000.0, 3_000.0, 2_000.0, 2_900.0)])

    harness.step()

    fills = {fill.symbol: fill for fill in liquidation_fills(harness)}
    assert fills[ETH].price == pytest.approx(2_028.112449799)
    assert fills[BTC].price == 50_000.0
    assert (harness.position_qty(BTC), harness.position_qty(ETH)) == (0.0, 0.0)


def test_a_cross_liquidation_leaves_the_cross_wallet_empty() -> None:
    # equity at ETH's LP: 10,000 + 10 × (2,028.1124 − 3,000) = 281.1245 = maintenance 200 + 81.1245,
    # all of it taken as clearance fee (capped), so the wallet ends at 0
    harness = _btc_and_eth_cross([flat(50_000.0)] * 2, [flat(3_000.0), (3_000.0, 3_000.0, 2_000.0, 2_900.0)])

    harness.step()

    assert harness.exchange.wallet == pytest.approx(0.0, abs=1e-6)
    assert harness.exchange.fees_paid == pytest.approx(281.124497992)


def _btc_liquidation_price(harness: ExchangeHarness) -> float | None:
    return next(p.liquidation_price for p in harness.exchange.positions() if p.symbol == BTC)


def test_a_cross_liquidation_price_follows_the_other_positions_mark() -> None:
    # ETH at 3,000: BTC's backing = 10,000 + ETH's (uPnL 0 − maintenance 0.004 × 30,000) = 9,880,
    #   LP = (9,880 − 50,000) / (0.004 − 1) = 40,281.1245;
    # ETH at 2,500: backing = 10,000 + 10 × (2,500 − 3,000) − 0.004 × 25,000 = 4,900,
    #   LP = (4,900 − 50,000) / (0.004 − 1) = 45,281.1245
    harness = _btc_and_eth_cross([flat(50_000.0)] * 3, [flat(3_000.0), flat(2_500.0), flat(2_500.0)])
    with_eth_at_3000 = _btc_liquidation_price(harness)

    harness.step()

    assert with_eth_at_3000 == pytest.approx(40_281.124497992)
    assert _btc_liquidation_price(harness) == pytest.approx(45_281.124497992)


def test_a_cross_position_is_liquidated_by_its_own_move_plus_another_symbols_earlier_loss() -> None:
    # after ETH fell to 2,500 a bar earlier, BTC's LP is 45,281.1245 (see above); BTC's low 44,000
    # crosses it although its close 49,000 does not — at 44,000 the account's equity would be −1,000
    harness = _btc_and_eth_cross(
        [flat(50_000.0), flat(50_000.0), (50_000.0, 50_000.0, 44_000.0, 49_000.0)],
        [flat(3_000.0), flat(2_500.0), flat(2_500.0)],
    )
    harness.step()

    harness.step()

    fills = {fill.symbol: fill for fill in liquidation_fills(harness)}
    assert fills[BTC].price == pytest.approx(45_281.124497992)
    assert fills[ETH].price == 2_500.0
    assert harness.exchange.wallet == pytest.approx(0.0, abs=1e-6)


def test_a_cross_liquidation_does_not_touch_isolated_margin() -> None:
    # ETH isolated 10 × 3,000 / 10 = 3,000 margin; BTC cross backing = 10,000 − 3,000 = 7,000:
    # LP = (7,000 − 50,000) / (0.004 − 1) = 43,172.6908; the wallet keeps ETH's 3,000 and ETH stays open
    harness = _btc_and_eth_cross(
        [flat(50_000.0), (50_000.0, 50_000.0, 43_000.0, 48_000.0)],
        [flat(3_000.0), flat(3_000.0)],
        margin_mode={ETH: MarginMode.ISOLATED},
    )

    harness.step()

    [liquidation] = liquidation_fills(harness)
    assert (liquidation.symbol, liquidation.price) == (BTC, pytest.approx(43_172.690763052))
    assert harness.position_qty(ETH) == 10.0
    assert harness.exchange.wallet == pytest.approx(3_000.0)


# ------------------------------------------------------------------------------- fees
def _partially_closed_long() -> ExchangeHarness:
    """Buy 2 BTC at the 50,000 open (taker), then sell 0.5 with a limit at 51,000 that the next bar trades through."""
    harness = make_harness(
        {BTC: [flat(50_000.0), flat(50_000.0), (50_000.0, 51_500.0, 49_900.0, 51_200.0)]}, default_leverage=20.0
    )
    harness.submit(market(BTC, Side.BUY, 2.0))
    harness.step()
    harness.submit(limit(BTC, Side.SELL, 0.5, 51_000.0))
    harness.run_all()
    return harness


def test_a_partial_close_pays_the_maker_fee_on_the_closed_part_only() -> None:
    # opening: 2 × 50,000 × 0.0005 = 50 (taker); closing: 0.5 × 51,000 × 0.0002 = 5.10 (maker)
    harness = _partially_closed_long()

    opening, closing = harness.exchange.fills

    assert (opening.fee, opening.liquidity) == (pytest.approx(50.0), Liquidity.TAKER)
    assert (closing.fee, closing.liquidity) == (pytest.approx(5.10), Liquidity.MAKER)
    assert harness.exchange.fees_paid == pytest.approx(55.10)


def test_a_partial_close_realises_pnl_on_the_closed_part_only() -> None:
    # 0.5 × (51,000 − 50,000) = 500; wallet = 10,000 − 50 + 500 − 5.10 = 10,444.90
    harness = _partially_closed_long()

    assert harness.exchange.fills[-1].realized_pnl == pytest.approx(500.0)
    assert harness.exchange.wallet == pytest.approx(10_444.90)


def test_a_partial_close_keeps_the_entry_price() -> None:
    harness = _partially_closed_long()

    assert harness.position_qty(BTC) == pytest.approx(1.5)
    assert harness.entry_price(BTC) == 50_000.0


# ------------------------------------------------------------------------ reduce-only
def test_a_reduce_only_order_larger_than_the_position_is_clipped_to_it() -> None:
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, [flat(50_000.0)] * 2, **NO_FEES)
    order = harness.submit(market(BTC, Side.SELL, 3.0, reduce_only=True))

    harness.step()

    assert harness.exchange.fills[-1].quantity == 1.0
    assert harness.order(order.order_id).status is OrderStatus.FILLED
    assert harness.position_qty(BTC) == 0.0


def test_a_reduce_only_order_without_a_position_is_rejected() -> None:
    harness = make_harness({BTC: [flat(50_000.0)] * 2})

    order = harness.submit(market(BTC, Side.SELL, 1.0, reduce_only=True))

    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == ReasonCode.REDUCE_ONLY_NOTHING_TO_REDUCE


def test_a_reduce_only_order_whose_position_closed_meanwhile_expires_unfilled() -> None:
    # the take-profit rests at 51,000; a market sell closes the long at the next open first
    bars = [flat(50_000.0), flat(50_000.0), (50_000.0, 51_500.0, 49_900.0, 51_200.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **NO_FEES)
    take_profit = harness.submit(limit(BTC, Side.SELL, 1.0, 51_000.0, reduce_only=True))
    harness.submit(market(BTC, Side.SELL, 1.0))

    harness.run_all()

    order = harness.order(take_profit.order_id)
    assert (order.status, order.reject_reason) == (OrderStatus.EXPIRED, ReasonCode.REDUCE_ONLY_NOTHING_TO_REDUCE)
    assert harness.position_qty(BTC) == 0.0


# -------------------------------------------------------------------------- post-only
def test_a_post_only_order_that_would_cross_at_activation_expires() -> None:
    # a buy at 50,100 against a 50,000 open would take liquidity
    harness = make_harness({BTC: [flat(50_000.0)] * 2})
    harness.step()
    order = harness.submit(limit(BTC, Side.BUY, 1.0, 50_100.0, post_only=True))

    harness.step()

    expired = harness.order(order.order_id)
    assert (expired.status, expired.reject_reason) == (OrderStatus.EXPIRED, ReasonCode.POST_ONLY_WOULD_CROSS)
    assert harness.exchange.fills == []


def test_a_post_only_order_that_does_not_cross_rests_and_fills_as_maker() -> None:
    # rests through a bar whose low 49,950 stays above it, fills when the next bar trades down through 49,900;
    # maker fee 1 × 49,900 × 0.0002 = 9.98
    bars = [flat(50_000.0), (50_000.0, 50_100.0, 49_950.0, 50_050.0), (50_000.0, 50_000.0, 49_800.0, 49_900.0)]
    harness = make_harness({BTC: bars}, **CROSS_10X)
    harness.step()
    order = harness.submit(limit(BTC, Side.BUY, 1.0, 49_900.0, post_only=True))
    harness.step()
    assert harness.order(order.order_id).status is OrderStatus.NEW

    harness.step()

    [fill] = harness.exchange.fills
    assert (fill.price, fill.liquidity, fill.fee) == (49_900.0, Liquidity.MAKER, pytest.approx(9.98))


# --------------------------------------------------------------------- limits and stops
def test_a_resting_limit_is_not_filled_by_a_touch() -> None:
    bars = [flat(50_000.0), (50_000.0, 50_100.0, 49_900.0, 50_050.0)]
    harness = make_harness({BTC: bars}, **CROSS_10X)
    harness.step()
    order = harness.submit(limit(BTC, Side.BUY, 1.0, 49_900.0))

    harness.step()

    assert harness.order(order.order_id).status is OrderStatus.NEW
    assert harness.exchange.fills == []


def test_a_resting_limit_fills_at_its_own_price_once_traded_through() -> None:
    bars = [flat(50_000.0), (50_000.0, 50_100.0, 49_899.9, 50_050.0)]
    harness = make_harness({BTC: bars}, **CROSS_10X)
    harness.step()
    harness.submit(limit(BTC, Side.BUY, 1.0, 49_900.0))

    harness.step()

    [fill] = harness.exchange.fills
    assert (fill.price, fill.liquidity) == (49_900.0, Liquidity.MAKER)


def test_a_limit_marketable_at_activation_fills_at_the_open_as_taker() -> None:
    harness = make_harness({BTC: [flat(50_000.0), (50_000.0, 50_600.0, 49_900.0, 50_500.0)]}, **CROSS_10X)
    harness.step()
    harness.submit(limit(BTC, Side.BUY, 1.0, 50_500.0))

    harness.step()

    [fill] = harness.exchange.fills
    assert (fill.price, fill.liquidity) == (50_000.0, Liquidity.TAKER)


def test_a_stop_market_triggers_at_its_stop_price_with_the_taker_fee() -> None:
    # the sell stop at 49,500 triggers on the way down to 49,000: fee 1 × 49,500 × 0.0005 = 24.75;
    # wallet = 10,000 − 25 (opening taker fee) − 500 (loss) − 24.75 = 9,450.25
    bars = [flat(50_000.0), flat(50_000.0), (50_000.0, 50_100.0, 49_000.0, 49_800.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **CROSS_10X)
    harness.submit(stop_market(BTC, Side.SELL, 1.0, 49_500.0, reduce_only=True))

    harness.run_all()

    stop_fill = harness.exchange.fills[-1]
    assert (stop_fill.price, stop_fill.liquidity, stop_fill.fee) == (49_500.0, Liquidity.TAKER, pytest.approx(24.75))
    assert harness.exchange.wallet == pytest.approx(9_450.25)


def test_a_stop_gapped_through_fills_at_the_open() -> None:
    bars = [flat(50_000.0), flat(50_000.0), flat(50_000.0), (49_000.0, 49_200.0, 48_800.0, 49_100.0)]
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, bars, **NO_FEES)
    harness.submit(stop_market(BTC, Side.SELL, 1.0, 49_500.0, reduce_only=True))

    harness.run_all()

    assert harness.exchange.fills[-1].price == 49_000.0


def _bracketed_long_through(bar: OHLC) -> ExchangeHarness:
    """Long 1 BTC at 50,000 with a take-profit limit at 50,500 and a stop-loss at 49,500, then `bar`."""
    harness = opened_at_first_open(BTC, Side.BUY, 1.0, [flat(50_000.0), flat(50_000.0), bar], **NO_FEES)
    harness.submit(limit(BTC, Side.SELL, 1.0, 50_500.0, reduce_only=True))
    harness.submit(stop_market(BTC, Side.SELL, 1.0, 49_500.0, reduce_only=True))
    harness.run_all()
    return harness


def test_a_bar_closing_at_or_above_its_open_visits_the_low_before_the_high() -> None:
    # open → low 49,400 → high 50,600 → close 50,100: the stop-loss fills first, realising −500
    harness = _bracketed_long_through((50_000.0, 50_600.0, 49_400.0, 50_100.0))

    assert [fill.price for fill in harness.exchange.fills[1:]] == [49_500.0]
    assert harness.exchange.realized_pnl == pytest.approx(-500.0)


def test_a_bar_closing_below_its_open_visits_the_high_before_the_low() -> None:
    # open → high 50,600 → low 49,400 → close 49,900: the take-profit fills first, realising +500
    harness = _bracketed_long_through((50_000.0, 50_600.0, 49_400.0, 49_900.0))

    assert [fill.price for fill in harness.exchange.fills[1:]] == [50_500.0]
    assert harness.exchange.realized_pnl == pytest.approx(500.0)


# ------------------------------------------------------------------ trading-rule checks
@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (limit(BTC, Side.BUY, 1.0, 50_000.05), ReasonCode.TICK_SIZE),  # BTC tick 0.1
        (stop_market(BTC, Side.BUY, 1.0, 50_000.05), ReasonCode.TICK_SIZE),
        (market(BTC, Side.BUY, 0.0015), ReasonCode.STEP_SIZE),  # BTC step 0.001
        (limit(BTC, Side.BUY, 0.001, 50_000.0), ReasonCode.MIN_NOTIONAL),  # 0.001 × 50,000 = 50 < 100
    ],
    ids=["limit-price-off-tick", "stop-price-off-tick", "quantity-off-step", "notional-below-minimum"],
)
def test_orders_breaking_a_trading_rule_are_rejected_with_its_reason(
    request_: OrderRequest, reason: ReasonCode
) -> None:
    harness = make_harness({BTC: [flat(50_000.0)] * 2})

    order = harness.submit(request_)

    assert (order.status, order.reject_reason) == (OrderStatus.REJECTED, reason)


def test_an_order_the_margin_cannot_back_is_rejected_when_it_would_fill() -> None:
    # 3 BTC × 50,000 / 10x = 15,000 initial margin against a 10,000 wallet
    harness = make_harness({BTC: [flat(50_000.0)] * 2}, **CROSS_10X)
    harness.step()
    order = harness.submit(market(BTC, Side.BUY, 3.0))

    harness.step()

    rejected = harness.order(order.order_id)
    assert (rejected.status, rejected.reject_reason) == (OrderStatus.REJECTED, ReasonCode.INSUFFICIENT_MARGIN)
    assert harness.position_qty(BTC) == 0.0
    assert harness.exchange.wallet == 10_000.0


def test_an_order_beyond_its_brackets_max_leverage_is_rejected() -> None:
    # at 125x, 2 BTC × 50,000 = 100,000 notional falls in the second bracket, capped at 100x
    # (initial margin 100,000 / 125 = 800 is affordable: leverage, not margin, refuses it)
    harness = make_harness({BTC: [flat(50_000.0)] * 2}, default_leverage=125.0)
    harness.step()
    order = harness.submit(market(BTC, Side.BUY, 2.0))

    harness.step()

    assert harness.order(order.order_id).reject_reason == ReasonCode.MAX_LEVERAGE


def test_leverage_above_the_instruments_maximum_cannot_be_set() -> None:
    harness = make_harness({BTC: [flat(50_000.0)] * 2})

    with pytest.raises(OrderRejected) as rejection:
        harness.exchange.set_leverage(BTC, 150.0)

    assert rejection.value.reason == ReasonCode.MAX_LEVERAGE


# ---------------------------------------------------------------------------- latency
def test_an_order_sent_at_a_bars_close_fills_at_the_next_bars_open() -> None:
    harness = make_harness(
        {BTC: [flat(50_000.0), (50_000.0, 50_400.0, 49_900.0, 50_300.0), flat(50_350.0)]}, **CROSS_10X
    )
    harness.run_through(1)
    harness.submit(market(BTC, Side.BUY, 1.0))

    harness.step()

    [fill] = harness.exchange.fills
    assert (fill.price, fill.ts) == (50_350.0, minute(2))  # row 2's open, not row 1's close 50,300


def test_latency_of_one_bar_fills_at_the_open_after_next() -> None:
    # sent at row 0's close 00:01:00, arrives 00:02:00 = row 2's open
    bars = [flat(50_000.0), flat(50_100.0), flat(50_200.0), flat(50_300.0)]
    harness = make_harness({BTC: bars}, latency_ms=60_000, **CROSS_10X)
    harness.step()
    harness.submit(market(BTC, Side.BUY, 1.0))

    harness.run_all()

    [fill] = harness.exchange.fills
    assert (fill.price, fill.ts) == (50_200.0, minute(2))


def test_latency_of_90_seconds_fills_at_the_first_open_after_arrival() -> None:
    # sent at row 0's close 00:01:00, arrives 00:02:30, inside row 2: row 2's open (00:02) came before it,
    # so the first price it can meet is row 3's open at 00:03
    bars = [flat(50_000.0), flat(50_100.0), flat(50_200.0), flat(50_300.0)]
    harness = make_harness({BTC: bars}, latency_ms=90_000, **CROSS_10X)
    harness.step()
    harness.submit(market(BTC, Side.BUY, 1.0))

    harness.run_all()

    [fill] = harness.exchange.fills
    assert (fill.price, fill.ts) == (50_300.0, minute(3))
