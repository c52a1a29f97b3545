"""The pre-trade gate interface and its first implementation: the exchange's own rules.

The reasoning layer (Datalog, CLIPS, Prolog, Z3) will implement the same `PreTradeGate`
interface; until then, intents are checked against what the venue itself would refuse,
so the loop never sends an order the exchange would bounce, and every denial carries a
stable reason code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from core.decision import Decision, ReasonCode, Verdict
from core.instrument import Instrument
from core.intent import Intent


@dataclass(frozen=True, slots=True)
class GateContext:
    """The account and market facts an intent is judged against."""

    mark_price: float
    position_qty: float
    available_balance: float  # margin free for new risk, after earlier intents of the same decision
    leverage: float
    taker_fee: float
    symbol_index: int = -1  # where the decision is made: the symbol's index on the grid and the row
    row: int = -1


class PreTradeGate(Protocol):
    def check(self, intent: Intent, context: GateContext) -> Decision:
        """Admit, reduce (to `max_qty`) or deny the intent."""
        ...

    def confirm(self, intent: Intent, context: GateContext, quantity: float, decision: Decision) -> tuple[str, ...]:
        """Re-check the sized order before it leaves: the reason codes that forbid it, or ()."""
        ...


@dataclass(frozen=True, slots=True)
class ExchangeRulesGate:
    instruments: dict[str, Instrument]

    def check(self, intent: Intent, context: GateContext) -> Decision:
        instrument = self.instruments.get(intent.symbol)
        if instrument is None:
            return _deny(intent, ReasonCode.UNKNOWN_SYMBOL, symbol=intent.symbol)
        price = intent.limit_price or context.mark_price
        if not price or math.isnan(price) or price <= 0:
            return _deny(intent, ReasonCode.NO_PRICE, symbol=intent.symbol)
        if intent.reduce_only:
            if context.position_qty * intent.side.sign >= 0:
                return _deny(intent, ReasonCode.REDUCE_ONLY_NOTHING_TO_REDUCE, position=context.position_qty)
            # reducing risk is never blocked by margin or size limits
            return Decision(intent.intent_id, Verdict.ADMIT, max_qty=abs(context.position_qty))
        leverage = intent.leverage or context.leverage
        if leverage > instrument.max_leverage:
            return _deny(intent, ReasonCode.MAX_LEVERAGE, leverage=leverage, max_leverage=instrument.max_leverage)
        closing_qty = intent.reversed_qty(context.position_qty)
        # closing the opposite position first frees its initial margin for the new one
        available = context.available_balance + closing_qty * price / context.leverage
        desired_qty = intent.quantity if intent.quantity is not None else (intent.notional or 0.0) / price
        if desired_qty * price < instrument.min_notional:
            detail: dict[str, float | str] = {"notional": desired_qty * price, "minimum": instrument.min_notional}
            return _close_only(intent, closing_qty, ReasonCode.MIN_NOTIONAL, detail)
        # initial margin plus the taker fee must fit in the available balance
        affordable_qty = available / (price * (1.0 / leverage + context.taker_fee))
        max_qty = instrument.round_qty_down(max(affordable_qty, 0.0))
        if max_qty * price < instrument.min_notional:
            detail = {"available": available, "max_qty": max_qty}
            return _close_only(intent, closing_qty, ReasonCode.INSUFFICIENT_MARGIN, detail)
        verdict = Verdict.ADMIT if desired_qty <= max_qty else Verdict.REDUCE
        return Decision(intent.intent_id, verdict, max_qty=closing_qty + max_qty)

    def confirm(self, intent: Intent, context: GateContext, quantity: float, decision: Decision) -> tuple[str, ...]:
        instrument = self.instruments[intent.symbol]
        if decision.max_qty is not None and quantity > decision.max_qty * (1.0 + 1e-9):
            return (ReasonCode.INVALID_ORDER.value,)
        if not instrument.is_on_step(quantity):
            return (ReasonCode.STEP_SIZE.value,)
        # positions carry float noise (0.4069999999999999): under half a step opens nothing
        opening_qty = quantity - intent.reversed_qty(context.position_qty)
        price = intent.limit_price or context.mark_price
        opens = opening_qty > instrument.step_size / 2
        if not intent.reduce_only and opens and opening_qty * price < instrument.min_notional:
            return (ReasonCode.MIN_NOTIONAL.value,)
        return ()


def _close_only(intent: Intent, closing_qty: float, reason: ReasonCode, detail: dict[str, float | str]) -> Decision:
    """The new position is refused; a reversing intent may still close the opposite one."""
    if closing_qty:
        return Decision(intent.intent_id, Verdict.REDUCE, (reason.value,), max_qty=closing_qty, detail=detail)
    return Decision(intent.intent_id, Verdict.DENY, (reason.value,), detail=detail)


def _deny(intent: Intent, reason: ReasonCode, **detail: float | str) -> Decision:
    return Decision(intent.intent_id, Verdict.DENY, reasons=(reason.value,), detail=dict(detail))
