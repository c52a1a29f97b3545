"""Verdicts of the pre-trade gate, with stable reason codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    ADMIT = "admit"
    REDUCE = "reduce"
    DENY = "deny"


class ReasonCode(StrEnum):
    """Stable identifiers; the exchange's own rules use the `EX.` layer."""

    MIN_NOTIONAL = "EX.min_notional"
    STEP_SIZE = "EX.step_size"
    TICK_SIZE = "EX.tick_size"
    INSUFFICIENT_MARGIN = "EX.insufficient_margin"
    MAX_LEVERAGE = "EX.max_leverage"
    REDUCE_ONLY_NOTHING_TO_REDUCE = "EX.reduce_only_nothing_to_reduce"
    POST_ONLY_WOULD_CROSS = "EX.post_only_would_cross"
    UNKNOWN_SYMBOL = "EX.unknown_symbol"
    NO_PRICE = "EX.no_price"
    INVALID_ORDER = "EX.invalid_order"


@dataclass(frozen=True, slots=True)
class Decision:
    """A gate's verdict on one intent. The reasoning guard fills the audit fields: the quantity
    it judged, one JSON-able proof per engine, and the hashes of the context and rule set."""

    intent_id: str
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    max_qty: float | None = None
    detail: dict[str, float | str] = field(default_factory=dict)
    requested_qty: float | None = None
    proofs: dict[str, Any] = field(default_factory=dict)  # engine name → proof
    context_hash: str = ""
    ruleset_hash: str = ""

    @property
    def admitted(self) -> bool:
        return self.verdict is not Verdict.DENY
