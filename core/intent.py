"""A trade intent: what a strategy or model *proposes*. It never trades by itself."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

from core.orders import OrderType, Side


@dataclass(frozen=True, slots=True)
class Intent:
    ts: int  # decision time (close of the bar it was decided on), epoch ms
    symbol: str
    side: Side
    strategy_id: str
    quantity: float | None = None  # desired quantity, or
    notional: float | None = None  # desired notional in USDT (sizing turns it into quantity)
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    leverage: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    reduce_only: bool = False
    # stop-and-reverse: the same order first closes an opposite position, so one order
    # flips it (as in Binance's one-way mode); quantity / notional size the new position
    reverse: bool = False
    model_id: str = ""
    model_version: str = ""
    confidence: float | None = None
    rationale: tuple[tuple[str, float], ...] = field(default_factory=tuple)
    intent_id: str = field(init=False, default="")

    def reversed_qty(self, position_qty: float) -> float:
        """What a reversing intent closes before it opens: the opposite position, else nothing."""
        return abs(position_qty) if self.reverse and position_qty * self.side.sign < 0 else 0.0

    def requested_qty(self, price: float, position_qty: float) -> float:
        """The order quantity asked for at `price`, the close of a reversal included (0 without a price)."""
        if not price or math.isnan(price):
            return 0.0
        wanted = self.quantity if self.quantity is not None else (self.notional or 0.0) / price
        return wanted + self.reversed_qty(position_qty)

    def __post_init__(self) -> None:
        object.__setattr__(self, "intent_id", self._content_hash())

    def _content_hash(self) -> str:
        """Stable id: a hash of the content, so the same proposal always has the same id."""
        payload = repr(
            (
                self.ts,
                self.symbol,
                self.side.value,
                self.strategy_id,
                self.quantity,
                self.notional,
                self.order_type.value,
                self.limit_price,
                self.leverage,
                self.stop_loss,
                self.take_profit,
                self.reduce_only,
                self.reverse,
                self.model_id,
                self.model_version,
                self.confidence,
                self.rationale,
            )
        )
        return hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()
