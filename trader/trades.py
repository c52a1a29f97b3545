"""Round-trip trades rebuilt from the fill ledger.

A trade opens when a symbol's position leaves zero and closes when it returns to zero.
A fill that flips the position (long → short or back) closes one trade and opens the
next; its quantity and fee are split in proportion to the two parts, and its realised
P&L goes wholly to the closing part, because only the reducing part realises anything.
Funding payments are attributed to the trade that held the position at settlement.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from core.errors import VenueError
from core.orders import Fill
from trader.result import FundingPayment

# Positions built from step-rounded quantities still carry float noise (0.1 + 0.2 - 0.3 ≠ 0);
# a remainder this small relative to the quantities involved is zero.
_RELATIVE_QTY_TOLERANCE = 1e-9


class TradeSide(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        return 1 if self is TradeSide.LONG else -1


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip of one symbol. Money in USDT; `funding` > 0 means the trade paid it."""

    symbol: str
    side: TradeSide
    open_ts: int
    close_ts: int | None  # None: still open when the fills end
    entry_price: float  # average over the quantity that opened or added to the position
    exit_price: float | None  # average over the quantity that reduced it; None if none did
    max_quantity: float  # largest absolute position reached
    gross_pnl: float  # realised, before fees and funding
    fees: float
    funding: float
    liquidated: bool  # a liquidation fill reduced or closed it
    fill_count: int  # fills touching the trade (a flipping fill counts in both trades)

    @property
    def net_pnl(self) -> float:
        return self.gross_pnl - self.fees - self.funding

    @property
    def is_closed(self) -> bool:
        return self.close_ts is not None


@dataclass(slots=True)
class _TradeInProgress:
    symbol: str
    side: TradeSide
    open_ts: int
    close_ts: int | None = None
    entry_qty: float = 0.0
    entry_notional: float = 0.0
    exit_qty: float = 0.0
    exit_notional: float = 0.0
    max_quantity: float = 0.0
    gross_pnl: float = 0.0
    fees: float = 0.0
    funding: float = 0.0
    liquidated: bool = False
    fill_count: int = 0

    def add_entry(self, quantity: float, price: float, fee: float, position_after: float) -> None:
        self.entry_qty += quantity
        self.entry_notional += quantity * price
        self.fees += fee
        self.max_quantity = max(self.max_quantity, abs(position_after))
        self.fill_count += 1

    def add_exit(self, quantity: float, fill: Fill, fee: float) -> None:
        self.exit_qty += quantity
        self.exit_notional += quantity * fill.price
        self.fees += fee
        self.gross_pnl += fill.realized_pnl
        self.liquidated = self.liquidated or fill.is_liquidation
        self.fill_count += 1

    def freeze(self) -> Trade:
        return Trade(
            symbol=self.symbol,
            side=self.side,
            open_ts=self.open_ts,
            close_ts=self.close_ts,
            entry_price=self.entry_notional / self.entry_qty,
            exit_price=self.exit_notional / self.exit_qty if self.exit_qty > 0 else None,
            max_quantity=self.max_quantity,
            gross_pnl=self.gross_pnl,
            fees=self.fees,
            funding=self.funding,
            liquidated=self.liquidated,
            fill_count=self.fill_count,
        )


def build_trades(fills: Iterable[Fill], funding: Iterable[FundingPayment] = ()) -> list[Trade]:
    """Round trips of every symbol, in the order they opened.

    `fills` should be chronological; fills with equal timestamps keep their given order.
    """
    trades: list[_TradeInProgress] = []
    open_trade: dict[str, _TradeInProgress] = {}
    position: dict[str, float] = {}
    for fill in sorted(fills, key=lambda f: f.ts):
        if not fill.quantity > 0:
            raise VenueError(
                f"fill of order {fill.order_id!r} ({fill.symbol} at ts {fill.ts}) has quantity "
                f"{fill.quantity}; a fill's quantity must be positive, its side gives the direction"
            )
        current = position.get(fill.symbol, 0.0)
        trade = open_trade.get(fill.symbol)
        if trade is None or trade.side.sign == fill.side.sign:
            if trade is None:
                trade = _open(fill.symbol, fill.side.sign, fill.ts, trades, open_trade)
            current += fill.side.sign * fill.quantity
            trade.add_entry(fill.quantity, fill.price, fill.fee, current)
            position[fill.symbol] = current
            continue
        closing_qty = min(fill.quantity, abs(current))
        remainder = fill.quantity - closing_qty
        tolerance = _RELATIVE_QTY_TOLERANCE * max(fill.quantity, abs(current))
        closes = abs(current) - closing_qty <= tolerance
        flips = remainder > tolerance
        closing_fee = fill.fee * closing_qty / fill.quantity if flips else fill.fee
        trade.add_exit(closing_qty, fill, closing_fee)
        if not closes:
            position[fill.symbol] = current + fill.side.sign * fill.quantity
            continue
        trade.close_ts = fill.ts
        del open_trade[fill.symbol]
        position[fill.symbol] = 0.0
        if flips:
            reopened = _open(fill.symbol, fill.side.sign, fill.ts, trades, open_trade)
            position[fill.symbol] = fill.side.sign * remainder
            reopened.add_entry(remainder, fill.price, fill.fee - closing_fee, position[fill.symbol])
    _attribute_funding(trades, funding)
    return [trade.freeze() for trade in trades]


def _open(
    symbol: str,
    sign: int,
    ts: int,
    trades: list[_TradeInProgress],
    open_trade: dict[str, _TradeInProgress],
) -> _TradeInProgress:
    trade = _TradeInProgress(symbol, TradeSide.LONG if sign > 0 else TradeSide.SHORT, ts)
    trades.append(trade)
    open_trade[symbol] = trade
    return trade


def _attribute_funding(trades: list[_TradeInProgress], funding: Iterable[FundingPayment]) -> None:
    """Give each payment to the trade of its symbol and side that was open at settlement.

    A settlement at the very millisecond of a close or flip is ambiguous by time alone; the
    payment's signed quantity tells which side was held, and among equals the earlier trade
    wins. Payments no trade held (inconsistent inputs) stay unattributed; metrics report them.
    """
    by_symbol: dict[str, list[_TradeInProgress]] = {}
    for trade in trades:
        by_symbol.setdefault(trade.symbol, []).append(trade)
    open_times = {symbol: [t.open_ts for t in group] for symbol, group in by_symbol.items()}
    for payment in funding:
        group = by_symbol.get(payment.symbol, [])
        holder: _TradeInProgress | None = None
        # Trades of one symbol never overlap, so only the last few opened by `ts` can hold it.
        index = bisect.bisect_right(open_times.get(payment.symbol, []), payment.ts) - 1
        while index >= 0:
            candidate = group[index]
            if candidate.close_ts is not None and candidate.close_ts < payment.ts:
                break
            if candidate.side.sign * payment.quantity > 0:
                holder = candidate
            index -= 1
        if holder is not None:
            holder.funding += payment.amount
