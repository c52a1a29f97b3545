"""Sizing: turn an admitted intent into an order quantity, never above the gate's `max_qty`.

The portfolio issue brings CVXPy / Riskfolio / PyPortfolioOpt sizers behind this same
interface; the foundation uses a fixed notional per trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from core.decision import Decision
from core.instrument import Instrument
from core.intent import Intent


class Sizer(Protocol):
    def size(
        self, intent: Intent, decision: Decision, price: float, instrument: Instrument, position_qty: float
    ) -> float:
        """Order quantity on the instrument's step, 0 <= quantity <= decision.max_qty.

        For a reversing intent the quantity includes the opposite position it closes."""
        ...


@dataclass(frozen=True, slots=True)
class FixedNotionalSizer:
    """New exposure = the intent's quantity, or its notional (else `notional`) at `price`,
    rounded down to step; a reversing intent adds the opposite position it closes."""

    notional: float = 1_000.0

    def size(
        self, intent: Intent, decision: Decision, price: float, instrument: Instrument, position_qty: float
    ) -> float:
        if intent.quantity is not None:
            wanted = intent.quantity
        else:
            wanted = (intent.notional if intent.notional is not None else self.notional) / price
        wanted = intent.reversed_qty(position_qty) + instrument.round_qty_down(wanted)
        if decision.max_qty is not None:
            wanted = min(wanted, decision.max_qty)
        return instrument.round_qty_down(wanted)
