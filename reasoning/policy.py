"""The Datalog knowledge base as an engine of the guard (`rules/policy.mg`).

Facts the policy can use (names as Mangle names, symbols as strings):

account-wide, the base (materialised once and reused for every intent until one of
them changes):
    guard_state(State)                       /active, /reducing, /halted
    account_region(Region)                   e.g. /sg ("" → /unknown)
    venue(Venue, Health)                     e.g. /simulated, /healthy | /unhealthy
    model_drift(Model)                       the model's drift detector fired
    fallback_model(Model)                    the fallback model is serving

per intent, added and retracted around each decision (the intent and its symbol):
    position(Symbol, Qty)                    the symbol's open position, signed float
    regime(Symbol, Regime)                   /trending /ranging /volatile /illiquid
    volatility_regime(Symbol, Level)         /low /normal /high /extreme
    data_flag(Symbol, Flag)                  a data-quality flag on the symbol's window
    intent(I, Symbol, Side, Strategy)        I is the intent id as a string, Side /buy | /sell
    order_type(I, Type)                      /market /limit /stop_market
    intent_model(I, Model)                   when a model proposed it
    requested_leverage(I, Leverage)          the leverage the intent asks for (else the account's)
    reducing(I)                              the order only reduces risk
    has_stop(I)                              a stop-loss is attached

The policy derives `deny(I, Reason)` with `Reason` a reason-code string such as
"L7.restricted_symbol", and `admit(I)`. The proof is the derivation tree of every
`deny` fact, or of `admit` when there is none.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from core.intent import Intent
from reasoning.context import DecisionContext
from reasoning.datalog.analysis import analyse
from reasoning.datalog.ast import Atom, Constant
from reasoning.datalog.evaluation import Engine
from reasoning.datalog.incremental import Materialized
from reasoning.datalog.parser import parse_program
from reasoning.datalog.provenance import explain
from reasoning.engine import EngineResult
from reasoning.guard import is_risk_reducing

FactRows = dict[str, list[tuple[Constant, ...]]]

# every predicate the guard asserts (see the module docstring)
CONTEXT_PREDICATES = frozenset(
    {
        "guard_state", "account_region", "venue", "model_drift", "fallback_model", "intent", "order_type",
        "intent_model", "requested_leverage", "reducing", "has_stop", "position", "regime", "volatility_regime",
        "data_flag",
    }
)  # fmt: skip


def name(value: str) -> Constant:
    """A Mangle name: lower case, spaces and dots as underscores, with the leading slash."""
    cleaned = value.strip().lower().replace(" ", "_") or "unknown"
    return Constant("name", "/" + cleaned)


def string(value: str) -> Constant:
    return Constant("string", value)


def number(value: float) -> Constant:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number: facts must be finite")
    return Constant("float", float(value))


class PolicyEngine:
    name = "datalog"

    def __init__(self, path: Path) -> None:
        source = path.read_text(encoding="utf-8")
        self.path = path
        self.ruleset_hash = hashlib.sha256(source.encode()).hexdigest()
        self.engine = Engine(analyse(parse_program(source, str(path))))
        self._base_key: tuple[object, ...] | None = None
        self._base: Materialized | None = None

    def evaluate(self, intent: Intent, context: DecisionContext, quantity: float) -> EngineResult:
        base = self._materialised(context)
        intent_id = string(intent.intent_id)
        with base.overlay(intent_facts(intent, context, quantity), source=f"<intent {intent.intent_id}>") as model:
            denials = sorted(
                {str(args[1].value) for args in model.facts("deny") if args[0] == intent_id and len(args) == 2}
            )
            if denials:
                trees = [explain(model, "deny", (intent_id, string(reason))) for reason in denials]
                proof = {"file": str(self.path), "ruleset_hash": self.ruleset_hash, "derivations": trees}
            else:
                admitted = model.contains("admit", (intent_id,))
                tree = explain(model, "admit", (intent_id,)) if admitted else None
                proof = {"file": str(self.path), "ruleset_hash": self.ruleset_hash, "derivations": [tree]}
                if not admitted:
                    denials = ["GUARD.datalog_no_admit"]
        notes = tuple(f"Datalog: {reason}" for reason in denials)
        return EngineResult(engine=self.name, denials=tuple(denials), proof=proof, notes=notes)

    def reason_codes(self) -> list[str]:
        """The reason codes `deny` rules can give (constant second arguments of their heads)."""
        codes = set()
        for rule in self.engine.program.rules:
            head = rule.head
            if head.predicate == "deny" and len(head.args) == 2 and isinstance(head.args[1], Constant):
                codes.add(str(head.args[1].value))
        return sorted(codes)

    def unreachable_rules(self) -> list[str]:
        """Rules that can never fire: a positive premise no fact, rule or context fact provides."""
        program = self.engine.program
        provided = CONTEXT_PREDICATES | {clause.head.predicate for clause in (*program.facts, *program.rules)}
        warnings = []
        for rule in program.rules:
            for literal in rule.body:
                if isinstance(literal, Atom) and literal.predicate not in provided:
                    warnings.append(
                        f"{literal.location}: rule {rule.head.predicate} can never fire: nothing provides "
                        f"{literal.predicate} (context facts: {', '.join(sorted(CONTEXT_PREDICATES))})"
                    )
        return warnings

    def _materialised(self, context: DecisionContext) -> Materialized:
        facts = market_facts(context)
        key = tuple((predicate, tuple(rows)) for predicate, rows in sorted(facts.items()))
        if self._base is None or key != self._base_key:
            self._base = Materialized(self.engine, facts, provenance=True)
            self._base_key = key
        return self._base


def market_facts(context: DecisionContext) -> FactRows:
    """The base: facts shared by every intent until the account, venue or model changes."""
    venue, model = context.venue, context.model
    return {
        "guard_state": [(name(context.guard_state.value),)],
        "account_region": [(name(context.region),)],
        "venue": [(name(venue.venue), name("healthy" if venue.healthy else "unhealthy"))],
        "model_drift": [(string(model.model_id),)] if model.model_id and model.drift_detected else [],
        "fallback_model": [(string(model.model_id),)] if model.model_id and model.is_fallback else [],
    }


def intent_facts(intent: Intent, context: DecisionContext, quantity: float) -> FactRows:
    """The overlay: the intent and the facts about its symbol."""
    market = context.market
    intent_id, symbol = string(intent.intent_id), string(intent.symbol)
    return {
        "intent": [(intent_id, symbol, name(intent.side.value), string(intent.strategy_id))],
        "order_type": [(intent_id, name(intent.order_type.value))],
        "requested_leverage": [(intent_id, number(intent.leverage or context.position.leverage))],
        "intent_model": [(intent_id, string(intent.model_id))] if intent.model_id else [],
        "reducing": [(intent_id,)] if is_risk_reducing(intent, context.position.quantity, quantity) else [],
        "has_stop": [(intent_id,)] if intent.stop_loss is not None else [],
        "position": [(symbol, number(context.position.quantity))] if context.position.quantity else [],
        "regime": [(symbol, name(market.regime.value))],
        "volatility_regime": [(symbol, name(market.volatility_regime.value))],
        "data_flag": [(symbol, name(flag)) for flag in market.data_quality_flags],
    }
