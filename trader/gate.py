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


class PreTradeGate(Protocol):
    def check(self, intent: Intent, context: GateContext) -> Decision: ...


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
        closing_qty = reversed_qty(intent, context.position_qty)
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


def reversed_qty(intent: Intent, position_qty: float) -> float:
    """What a reversing intent closes before it opens: the opposite position, else nothing."""
    return abs(position_qty) if intent.reverse and position_qty * intent.side.sign < 0 else 0.0


def _close_only(intent: Intent, closing_qty: float, reason: ReasonCode, detail: dict[str, float | str]) -> Decision:
    """The new position is refused; a reversing intent may still close the opposite one."""
    if closing_qty:
        return Decision(intent.intent_id, Verdict.REDUCE, (reason.value,), max_qty=closing_qty, detail=detail)
    return Decision(intent.intent_id, Verdict.DENY, (reason.value,), detail=detail)


def _deny(intent: Intent, reason: ReasonCode, **detail: float | str) -> Decision:
    return Decision(intent.intent_id, Verdict.DENY, reasons=(reason.value,), detail=dict(detail))
