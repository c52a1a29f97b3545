"""Positions and the account, in one-way mode (one signed position per symbol)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MarginMode(StrEnum):
    CROSS = "cross"
    ISOLATED = "isolated"


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: float  # signed: > 0 long, < 0 short
    entry_price: float
    mark_price: float
    leverage: float
    margin_mode: MarginMode
    isolated_margin: float  # 0 for cross
    liquidation_price: float | None
    unrealized_pnl: float
    maintenance_margin: float

    @property
    def notional(self) -> float:
        return abs(self.quantity) * self.mark_price


@dataclass(frozen=True, slots=True)
class Balance:
    """USDT balances. `wallet` = deposits + realised P&L - fees - funding (+ insurance cover)."""

    asset: str
    wallet: float
    unrealized_pnl: float
    available: float

    @property
    def equity(self) -> float:
        return self.wallet + self.unrealized_pnl


@dataclass(frozen=True, slots=True)
class FundingPayment:
    ts: int  # settlement time
    symbol: str
    quantity: float  # signed position at settlement
    mark_price: float
    rate: float
    amount: float  # USDT paid by the account (negative: received) = quantity * mark_price * rate
