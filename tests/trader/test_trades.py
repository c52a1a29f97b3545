from __future__ import annotations

import pytest

from core.errors import VenueError
from core.orders import Fill, Liquidity, Side
from core.time import HOUR_MS
from trader.result import FundingPayment
from trader.trades import TradeSide, build_trades


def fill(
    ts: int,
    side: Side,
    quantity: float,
    price: float,
    fee: float = 0.0,
    realized_pnl: float = 0.0,
    symbol: str = "BTC/USDT:USDT",
    is_liquidation: bool = False,
) -> Fill:
    return Fill(
        order_id=f"o{ts}",
        symbol=symbol,
        side=side,
        quantity=quantity,
        price=price,
        fee=fee,
        liquidity=Liquidity.TAKER,
        ts=ts,
        realized_pnl=realized_pnl,
        is_liquidation=is_liquidation,
    )


def payment(ts: int, quantity: float, amount: float, symbol: str = "BTC/USDT:USDT") -> FundingPayment:
    return FundingPayment(ts=ts, symbol=symbol, quantity=quantity, mark_price=100.0, rate=0.0, amount=amount)


def test_a_long_round_trip_is_one_closed_trade_net_of_fees() -> None:
    trades = build_trades(
        [
            fill(1, Side.BUY, 2.0, 100.0, fee=0.10),
            fill(2, Side.SELL, 2.0, 110.0, fee=0.11, realized_pnl=20.0),
        ]
    )

    (trade,) = trades
    assert trade.side is TradeSide.LONG
    assert (trade.open_ts, trade.close_ts) == (1, 2)
    assert (trade.entry_price, trade.exit_price, trade.max_quantity) == (100.0, 110.0, 2.0)
    # gross (110 − 100) × 2 = 20; fees 0.10 + 0.11 = 0.21; net 20 − 0.21 = 19.79
    assert trade.gross_pnl == 20.0
    assert trade.fees == pytest.approx(0.21)
    assert trade.net_pnl == pytest.approx(19.79)
    assert not trade.liquidated


def test_scaling_in_averages_the_entry_and_partial_exits_average_the_exit() -> None:
    trades = build_trades(
        [
            fill(1, Side.BUY, 1.0, 100.0),
            fill(2, Side.BUY, 1.0, 110.0),
            fill(3, Side.SELL, 0.5, 120.0, realized_pnl=7.5),
            fill(4, Side.SELL, 1.5, 100.0, realized_pnl=-7.5),
        ]
    )

    (trade,) = trades
    # entry (1 × 100 + 1 × 110) / 2 = 105; exit (0.5 × 120 + 1.5 × 100) / 2 = 105
    assert trade.entry_price == pytest.approx(105.0)
    assert trade.exit_price == pytest.approx(105.0)
    assert trade.max_quantity == 2.0
    assert trade.gross_pnl == 0.0  # 7.5 − 7.5
    assert trade.fill_count == 4


def test_a_flip_closes_one_trade_and_opens_the_next_splitting_quantity_and_fee() -> None:
    trades = build_trades(
        [
            fill(1, Side.BUY, 1.0, 100.0, fee=0.04),
            fill(2, Side.SELL, 3.0, 90.0, fee=0.30, realized_pnl=-10.0),
            fill(3, Side.BUY, 2.0, 80.0, fee=0.16, realized_pnl=20.0),
        ]
    )

    long, short = trades
    # The flip sells 3: 1 closes the long (1/3 of the fee = 0.10), 2 open the short (0.20).
    assert (long.side, long.open_ts, long.close_ts) == (TradeSide.LONG, 1, 2)
    assert long.exit_price == 90.0
    assert long.gross_pnl == -10.0
    assert long.fees == pytest.approx(0.14)  # 0.04 + 0.10
    assert long.net_pnl == pytest.approx(-10.14)
    assert (short.side, short.open_ts, short.close_ts) == (TradeSide.SHORT, 2, 3)
    assert (short.entry_price, short.exit_price, short.max_quantity) == (90.0, 80.0, 2.0)
    assert short.gross_pnl == 20.0  # (90 − 80) × 2
    assert short.fees == pytest.approx(0.36)  # 0.20 + 0.16
    assert short.net_pnl == pytest.approx(19.64)


def test_a_position_still_open_at_the_end_is_a_trade_without_close() -> None:
    (trade,) = build_trades([fill(1, Side.SELL, 1.0, 100.0, fee=0.05)])

    assert trade.side is TradeSide.SHORT
    assert trade.close_ts is None
    assert trade.exit_price is None
    assert not trade.is_closed
    assert trade.net_pnl == -0.05


def test_float_noise_in_quantities_still_closes_the_trade() -> None:
    # 0.1 + 0.2 = 0.30000000000000004 in binary floating point; selling 0.3 must flatten it.
    trades = build_trades(
        [
            fill(1, Side.BUY, 0.1, 100.0),
            fill(2, Side.BUY, 0.2, 100.0),
            fill(3, Side.SELL, 0.3, 100.0),
            fill(4, Side.BUY, 0.1, 100.0),
        ]
    )

    assert [(t.open_ts, t.close_ts) for t in trades] == [(1, 3), (4, None)]


def test_symbols_are_tracked_independently() -> None:
    trades = build_trades(
        [
            fill(1, Side.BUY, 1.0, 100.0),
            fill(2, Side.SELL, 5.0, 10.0, symbol="ETH/USDT:USDT"),
            fill(3, Side.SELL, 1.0, 101.0, realized_pnl=1.0),
            fill(4, Side.BUY, 5.0, 9.0, symbol="ETH/USDT:USDT", realized_pnl=5.0),
        ]
    )

    assert [(t.symbol, t.side, t.open_ts, t.close_ts, t.gross_pnl) for t in trades] == [
        ("BTC/USDT:USDT", TradeSide.LONG, 1, 3, 1.0),
        ("ETH/USDT:USDT", TradeSide.SHORT, 2, 4, 5.0),
    ]


def test_funding_goes_to_the_trade_of_its_symbol_open_at_settlement() -> None:
    fills = [
        fill(0, Side.BUY, 1.0, 100.0),
        fill(0, Side.SELL, 2.0, 10.0, symbol="ETH/USDT:USDT"),
        fill(9 * HOUR_MS, Side.SELL, 1.0, 100.0),
        fill(10 * HOUR_MS, Side.BUY, 1.0, 100.0),
    ]
    funding = [
        payment(8 * HOUR_MS, 1.0, 0.5),
        payment(8 * HOUR_MS, -2.0, -0.3, symbol="ETH/USDT:USDT"),
        payment(16 * HOUR_MS, -2.0, -0.2, symbol="ETH/USDT:USDT"),
        payment(16 * HOUR_MS, 1.0, 0.4),
    ]

    first_btc, eth, second_btc = build_trades(fills, funding)

    assert first_btc.funding == 0.5
    assert first_btc.net_pnl == -0.5  # paid funding on a flat trade
    assert eth.funding == pytest.approx(-0.5)  # received 0.3 + 0.2 while short
    assert eth.net_pnl == pytest.approx(0.5)
    assert second_btc.funding == 0.4


def test_funding_at_the_millisecond_of_a_flip_goes_to_the_side_it_was_paid_on() -> None:
    fills = [fill(0, Side.BUY, 1.0, 100.0), fill(8 * HOUR_MS, Side.SELL, 3.0, 100.0)]
    settled_before_flip = payment(8 * HOUR_MS, 1.0, 0.1)

    long, short = build_trades(fills, [settled_before_flip])

    assert (long.funding, short.funding) == (0.1, 0.0)

    settled_after_flip = payment(8 * HOUR_MS, -2.0, -0.2)
    long, short = build_trades(fills, [settled_after_flip])

    assert (long.funding, short.funding) == (0.0, -0.2)


def test_a_liquidation_fill_marks_its_trade_liquidated() -> None:
    trades = build_trades(
        [
            fill(1, Side.BUY, 1.0, 100.0),
            fill(2, Side.SELL, 1.0, 60.0, realized_pnl=-40.0, is_liquidation=True),
            fill(3, Side.BUY, 1.0, 60.0),
        ]
    )

    assert [t.liquidated for t in trades] == [True, False]


def test_a_fill_without_quantity_is_rejected_naming_its_order() -> None:
    with pytest.raises(VenueError, match="o7"):
        build_trades([fill(7, Side.BUY, 0.0, 100.0)])
