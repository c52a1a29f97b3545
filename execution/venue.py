"""The `Venue` interface: what the trading loop may ask of any exchange.

The simulated exchange (backtest), paper trading and live ccxt adapters all implement
it, so the loop cannot tell them apart.
"""

from __future__ import annotations

from typing import Protocol

from core.orders import Order, OrderRequest
from core.positions import Balance, Position


class Venue(Protocol):
    def submit(self, request: OrderRequest) -> Order:
        """Accept or reject an order. A rejection is an `Order` with status REJECTED and a reason code."""
        ...

    def cancel(self, order_id: str) -> Order: ...

    def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    def positions(self) -> list[Position]: ...

    def balances(self) -> list[Balance]: ...
