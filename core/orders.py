"""Orders and fills as the venue sees them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 buy, -1 sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_MARKET = "stop_market"


class OrderStatus(StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a caller asks a venue to do. Prices and quantities in instrument units."""

    symbol: str
    side: Side
    order_type: OrderType
    quantity: float
    price: float | None = None  # limit price
    stop_price: float | None = None  # trigger for stop-market
    reduce_only: bool = False
    post_only: bool = False
    client_order_id: str = ""
    intent_id: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """An order's state as the venue knows it at one moment."""

    order_id: str
    request: OrderRequest
    status: OrderStatus
    created_ts: int
    filled_qty: float = 0.0
    average_price: float = 0.0
    reject_reason: str = ""
    updated_ts: int = 0


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: str
    symbol: str
    side: Side
    quantity: float
    price: float
    fee: float  # USDT paid (negative for a rebate)
    liquidity: Liquidity
    ts: int
    realized_pnl: float  # gross of fee, on the part that reduced a position
    is_liquidation: bool = False
    intent_id: str = ""
