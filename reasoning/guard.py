"""The reasoning guard: no intent reaches sizing or a venue unless all four engines admit it.

`Guard.decide(intent, context, quantity)` runs the Datalog knowledge base, the CLIPS
expert rules, the Prolog strategy validation and the Z3 limits over one
`DecisionContext` and returns a `Decision` with one proof per engine:

* any engine's denial denies the intent, with every reason code any engine gave;
* otherwise the quantity is capped by the largest quantity the Z3 limits proved
  admissible: `admit` when the requested quantity fits, `reduce` (to `max_qty`) when
  only less does, `deny` when nothing does.

It fails closed. The guard denies, with its own reason code, when

* the kill switch has halted it (`L4.kill_switch`), or it only reduces risk and the
  intent would grow it (`L4.reducing_only`);
* a fact is missing (`L6.missing_fact`) or the market data is older than
  `max_data_age_ms` (`L6.stale_data`);
* an engine raises (`GUARD.engine_error.<engine>`) or overruns its time budget
  (`GUARD.timeout.<engine>`): Python engines cannot be interrupted, so an overrun is
  detected when the engine returns and its answer discarded; the Prolog worker and the
  Z3 solver enforce their own timeouts and raise (an isolated Z3 child that misses its
  budget is killed and restarted);
* no engine proved a maximum quantity (`GUARD.no_proven_max_qty`).

Engines that can run concurrently (`ConcurrentEngine`: the Z3 limits in their own
process) are started first and collected last, so their work overlaps the others'.

Risk-reducing intents (reduce-only, or an opposite-side order no larger than the
position) pass the state and growth checks; the engines' rules exempt them from the
limits that only bound growth of risk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.decision import Decision, Verdict
from core.intent import Intent
from reasoning.context import DecisionContext, GuardState
from reasoning.engine import ConcurrentEngine, Engine, EngineResult, EngineTimeout, PendingResult, close_engines

KILL_SWITCH = "L4.kill_switch"
REDUCING_ONLY = "L4.reducing_only"
MISSING_FACT = "L6.missing_fact"
STALE_DATA = "L6.stale_data"
NO_PROVEN_MAX_QTY = "GUARD.no_proven_max_qty"

# quantities within this fraction of a position count as "no larger than the position"
_QTY_TOLERANCE = 1e-9


@runtime_checkable
class OrderProver(Protocol):
    """An engine that can prove one concrete order (the Z3 limits engine)."""

    name: str

    def prove_order(
        self, intent: Intent, context: DecisionContext, quantity: float, timeout_s: float
    ) -> EngineResult: ...


def engine_error(engine: str) -> str:
    return f"GUARD.engine_error.{engine}"


def engine_timeout(engine: str) -> str:
    return f"GUARD.timeout.{engine}"


@dataclass(frozen=True, slots=True)
class GuardConfig:
    # per-engine time budgets; a backtest uses generous ones so that a noisy machine
    # cannot change its decisions (live trading configures tight ones: ARCHITECTURE.md
    # budgets the whole guard at 2 ms). A concurrent engine's time runs from its start,
    # so its budget covers the other engines' time too.
    budgets_ms: Mapping[str, float] = field(
        default_factory=lambda: {"datalog": 250.0, "clips": 250.0, "prolog": 250.0, "z3": 250.0}
    )
    max_data_age_ms: int = 180_000


def is_risk_reducing(intent: Intent, position_qty: float, quantity: float) -> bool:
    """Reduce-only, or an order against the position that at most closes it."""
    if intent.reduce_only:
        return True
    against = position_qty * intent.side.sign < 0
    return against and quantity <= abs(position_qty) * (1.0 + _QTY_TOLERANCE)


class Guard:
    def __init__(
        self,
        engines: Sequence[Engine],
        ruleset_hash: str,
        config: GuardConfig | None = None,
        state: GuardState = GuardState.ACTIVE,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.engines = tuple(engines)
        self.ruleset_hash = ruleset_hash
        self._concurrent = _concurrent_names(self.engines)
        self.config = config or GuardConfig()
        self._state = state
        self._state_reason = "start"
        self._lock = threading.Lock()
        self._clock = clock  # seconds; what engine time budgets are measured with

    @property
    def state(self) -> GuardState:
        return self._state

    @property
    def state_reason(self) -> str:
        return self._state_reason

    def set_state(self, state: GuardState, reason: str) -> None:
        """ACTIVE ↔ REDUCING ↔ HALTED; the kill switch sets HALTED, only an operator clears it."""
        with self._lock:
            self._state = state
            self._state_reason = reason

    def replace_engines(self, engines: Sequence[Engine], ruleset_hash: str) -> None:
        """Swap in a newly loaded rule set (already validated by its loader) in one step."""
        with self._lock:
            self.engines = tuple(engines)
            self.ruleset_hash = ruleset_hash
            self._concurrent = _concurrent_names(self.engines)

    def close(self) -> None:
        """Release what the engines hold outside this process (an isolated Z3 child)."""
        with self._lock:
            engines = self.engines
        close_engines(engines)

    def decide(self, intent: Intent, context: DecisionContext, quantity: float) -> Decision:
        with self._lock:
            engines, ruleset_hash, state, concurrent = self.engines, self.ruleset_hash, self._state, self._concurrent
        reducing = is_risk_reducing(intent, context.position.quantity, quantity)
        guard_proof: dict[str, Any] = {
            "state": state.value,
            "risk_reducing": reducing,
            "requested_qty": quantity,
            "data_age_ms": context.data_age_ms,
            "max_data_age_ms": self.config.max_data_age_ms,
        }
        audit = _Audit(intent.intent_id, quantity, context.context_hash(), ruleset_hash, guard_proof)
        if state is GuardState.HALTED:
            return audit.deny((KILL_SWITCH,), {})
        if state is GuardState.REDUCING and not reducing:
            return audit.deny((REDUCING_ONLY,), {})
        missing = context.missing_facts()
        if missing:
            guard_proof["missing_facts"] = missing
            return audit.deny((MISSING_FACT,), {})
        if context.data_age_ms > self.config.max_data_age_ms:
            return audit.deny((STALE_DATA,), {})
        if quantity <= 0:
            raise ValueError(f"intent {intent.intent_id}: the guard judges a positive quantity, got {quantity}")

        results: dict[str, EngineResult] = {}
        failures: list[str] = []
        timings: dict[str, float] = {}
        errors: dict[str, str] = {}
        # concurrent engines work (on the other core) while the rest run here; answers keep engine order
        started = {
            engine.name: self._start(engine, intent, context, quantity)
            for engine in engines
            if engine.name in concurrent and isinstance(engine, ConcurrentEngine)
        }
        outcomes = {
            engine.name: self._run(engine, intent, context, quantity)
            for engine in engines
            if engine.name not in started
        }
        for engine in engines:
            if engine.name in started:
                outcomes[engine.name] = self._finish(engine, *started[engine.name])
        for engine in engines:
            outcome, timings[engine.name], error = outcomes[engine.name]
            if error:
                errors[engine.name] = error
            if isinstance(outcome, str):
                failures.append(outcome)
            else:
                results[engine.name] = outcome
        proofs = {name: result.proof for name, result in results.items()}
        guard_proof["timings_ms"] = timings
        if errors:
            guard_proof["engine_errors"] = errors
        if failures:
            return audit.deny(tuple(failures), proofs)
        denials = tuple(sorted({reason for result in results.values() for reason in result.denials}))
        if denials:
            return audit.deny(denials, proofs)
        proven = [result.max_qty for result in results.values() if result.max_qty is not None]
        if not proven:
            return audit.deny((NO_PROVEN_MAX_QTY,), proofs)
        max_qty = min(proven)
        if max_qty <= 0:
            return audit.deny((NO_PROVEN_MAX_QTY,), proofs)
        verdict = Verdict.ADMIT if quantity <= max_qty else Verdict.REDUCE
        return audit.decision(verdict, (), max_qty, proofs)

    def prove_order(self, intent: Intent, context: DecisionContext, quantity: float) -> tuple[str, ...]:
        """Prove the sized order against the limits again before it leaves: () when proven,
        else the reason codes that forbid it. Fails closed like `decide`."""
        with self._lock:
            engines = self.engines
        provers = [engine for engine in engines if isinstance(engine, OrderProver)]
        if not provers:
            return (NO_PROVEN_MAX_QTY,)
        denials: set[str] = set()
        for prover in provers:
            try:
                budget_s = self._budget_ms(prover) / 1000.0
                denials.update(prover.prove_order(intent, context, quantity, budget_s).denials)
            except (TimeoutError, EngineTimeout):
                denials.add(engine_timeout(prover.name))
            except Exception:  # fail closed: the order does not leave
                denials.add(engine_error(prover.name))
        return tuple(sorted(denials))

    def _budget_ms(self, engine: Engine) -> float:
        return self.config.budgets_ms.get(engine.name, min(self.config.budgets_ms.values(), default=1.0))

    def _run(
        self, engine: Engine, intent: Intent, context: DecisionContext, quantity: float
    ) -> tuple[EngineResult | str, float, str]:
        """The engine's result or the reason code of its failure, how long it took (ms), and any error."""
        started = self._clock()
        outcome: EngineResult | str
        error = ""
        try:
            outcome = engine.evaluate(intent, context, quantity)
        except Exception as exc:  # fail closed on any engine fault; the reason code names the engine
            outcome, error = self._failure(engine, exc)
        return self._timed(engine, started, outcome, error)

    def _start(
        self, engine: ConcurrentEngine, intent: Intent, context: DecisionContext, quantity: float
    ) -> tuple[float, PendingResult | str, str]:
        started = self._clock()
        try:
            return started, engine.submit(intent, context, quantity), ""
        except Exception as exc:
            return (started, *self._failure(engine, exc))

    def _finish(
        self, engine: Engine, started: float, pending: PendingResult | str, error: str
    ) -> tuple[EngineResult | str, float, str]:
        outcome: EngineResult | str = pending if isinstance(pending, str) else ""
        if not isinstance(pending, str):
            remaining_s = max(self._budget_ms(engine) / 1000.0 - (self._clock() - started), 0.0)
            try:
                outcome = pending.result(remaining_s)
            except Exception as exc:
                outcome, error = self._failure(engine, exc)
        return self._timed(engine, started, outcome, error)

    @staticmethod
    def _failure(engine: Engine | ConcurrentEngine, exc: Exception) -> tuple[str, str]:
        timed_out = isinstance(exc, (TimeoutError, EngineTimeout))
        code = engine_timeout(engine.name) if timed_out else engine_error(engine.name)
        return code, f"{type(exc).__name__}: {exc}"

    def _timed(
        self, engine: Engine, started: float, outcome: EngineResult | str, error: str
    ) -> tuple[EngineResult | str, float, str]:
        budget_ms = self._budget_ms(engine)
        elapsed_ms = (self._clock() - started) * 1000.0
        if elapsed_ms > budget_ms and not isinstance(outcome, str):
            outcome, error = engine_timeout(engine.name), f"took {elapsed_ms:.3f} ms, budget {budget_ms} ms"
        return outcome, round(elapsed_ms, 4), error


def _concurrent_names(engines: Sequence[Engine]) -> frozenset[str]:
    """Engines that can work while others run: an isolated limits engine (in process, submitting
    first would only reorder the work)."""
    return frozenset(
        engine.name for engine in engines if isinstance(engine, ConcurrentEngine) and getattr(engine, "isolated", False)
    )


@dataclass(frozen=True, slots=True)
class _Audit:
    """Fills in the fields every decision of one `decide` call shares."""

    intent_id: str
    quantity: float
    context_hash: str
    ruleset_hash: str
    guard_proof: dict[str, Any]

    def deny(self, reasons: tuple[str, ...], proofs: dict[str, Any]) -> Decision:
        return self.decision(Verdict.DENY, reasons, 0.0, proofs)

    def decision(self, verdict: Verdict, reasons: tuple[str, ...], max_qty: float, proofs: dict[str, Any]) -> Decision:
        return Decision(
            intent_id=self.intent_id,
            verdict=verdict,
            reasons=reasons,
            max_qty=max_qty,
            requested_qty=self.quantity,
            proofs={"guard": self.guard_proof} | proofs,
            context_hash=self.context_hash,
            ruleset_hash=self.ruleset_hash,
        )
