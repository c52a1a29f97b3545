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
    def size(self, intent: Intent, decision: Decision, price: float, instrument: Instrument) -> float:
        """Quantity on the instrument's step, 0 <= quantity <= decision.max_qty."""
        ...


@dataclass(frozen=True, slots=True)
class FixedNotionalSizer:
    """Quantity = the intent's quantity, or its notional (else `notional`) at `price`, rounded down to step."""

    notional: float = 1_000.0

    def size(self, intent: Intent, decision: Decision, price: float, instrument: Instrument) -> float:
        if intent.quantity is not None:
            wanted = intent.quantity
        else:
            wanted = (intent.notional if intent.notional is not None else self.notional) / price
        if decision.max_qty is not None:
            wanted = min(wanted, decision.max_qty)
        return instrument.round_qty_down(wanted)
