"""The interface every engine of the guard implements, and what it returns.

An engine judges one intent in one context and answers with the reason codes of every
rule that denies it (empty: no objection), optionally the largest quantity it can prove
admissible (the Z3 limits engine does), and a JSON-able proof that an auditor can read
and replay: Datalog derivation trees, CLIPS fired rules with their facts, the Prolog
validation trace, Z3's model or unsat core.

Reason codes are stable identifiers `L<layer>.<name>` (e.g. `L1.max_leverage`,
`L6.stale_data`, `L7.restricted_symbol`), or `GUARD.<name>` for the guard's own
fail-closed answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.errors import CryptoScalpError
from core.intent import Intent
from reasoning.context import DecisionContext

JSON = dict[str, Any]


class RuleFileError(CryptoScalpError):
    """A rule file was rejected, at `path:line:column`."""

    def __init__(self, path: Path, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message


class EngineTimeout(CryptoScalpError):
    """An engine did not answer within its time budget (the guard denies: `GUARD.timeout.<engine>`)."""


@dataclass(frozen=True, slots=True)
class EngineResult:
    engine: str  # "datalog", "clips", "prolog", "z3"
    denials: tuple[str, ...]  # reason codes; empty when the engine has no objection
    proof: JSON  # JSON-able; what the proof log stores for this engine
    max_qty: float | None = None  # largest admissible order quantity, when the engine computes one
    notes: tuple[str, ...] = field(default_factory=tuple)  # human-readable lines for `explain`


class Engine(Protocol):
    name: str

    def evaluate(self, intent: Intent, context: DecisionContext, quantity: float) -> EngineResult:
        """Judge `intent` for an order of `quantity` (base units, > 0) in `context`."""
        ...


class PendingResult(Protocol):
    def result(self, timeout_s: float) -> EngineResult:
        """Wait at most `timeout_s` for the answer; raises like `evaluate` (EngineTimeout when late)."""
        ...


@runtime_checkable
class ConcurrentEngine(Protocol):
    """An engine that can work while the caller does something else (the Z3 limits engine, isolated
    in its own process): the guard starts it first and collects its answer last."""

    name: str

    def submit(self, intent: Intent, context: DecisionContext, quantity: float) -> PendingResult: ...


def close_engines(engines: Iterable[object]) -> None:
    """Release what engines hold outside this process (an isolated Z3 child); engines without a
    `close` hold nothing."""
    for engine in engines:
        close = getattr(engine, "close", None)
        if callable(close):
            close()


def layer_of(reason: str) -> str:
    """`L3.daily_loss` → `L3`; `GUARD.timeout.z3` → `GUARD`."""
    return reason.split(".", 1)[0]
