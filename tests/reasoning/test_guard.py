"""The guard's own logic, with stand-in engines: states, fail-closed answers, combining verdicts."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from core.decision import Verdict
from core.intent import Intent
from core.orders import Side
from reasoning.context import DecisionContext, GuardState
from reasoning.engine import EngineResult
from reasoning.guard import Guard, GuardConfig
from reasoning.rule_tests import default_context

BTC = "BTC/USDT:USDT"


class FakeClock:
    """Seconds that pass only when an engine says it took them: budget tests without sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


CLOCK = FakeClock()


@dataclass
class StubEngine:
    name: str
    denials: tuple[str, ...] = ()
    max_qty: float | None = None
    error: Exception | None = None
    takes_s: float = 0.0  # how long the engine takes, on the fake clock

    def evaluate(self, intent: Intent, context: DecisionContext, quantity: float) -> EngineResult:
        CLOCK.now += self.takes_s
        if self.error is not None:
            raise self.error
        return EngineResult(self.name, self.denials, {"stub": self.name}, self.max_qty)


@dataclass
class StubProver(StubEngine):
    last_timeout_s: float | None = None

    def prove_order(
        self, intent: Intent, context: DecisionContext, quantity: float, timeout_s: float = 10.0
    ) -> EngineResult:
        self.last_timeout_s = timeout_s
        fits = self.max_qty is None or quantity <= self.max_qty
        return EngineResult(self.name, () if fits else ("L1.max_position_notional",), {}, self.max_qty)


def buy(**changes: object) -> Intent:
    base = Intent(ts=0, symbol=BTC, side=Side.BUY, strategy_id="test", notional=600.0)
    return replace(base, **changes) if changes else base


def guard_with(*engines: StubEngine, state: GuardState = GuardState.ACTIVE) -> Guard:
    budgets = {"datalog": 50.0, "clips": 50.0, "prolog": 50.0, "z3": 50.0}
    return Guard(list(engines), "ruleset-hash", GuardConfig(budgets_ms=budgets), state=state, clock=CLOCK)


def healthy_engines(max_qty: float = 0.05) -> list[StubEngine]:
    return [StubEngine("datalog"), StubEngine("clips"), StubEngine("prolog"), StubProver("z3", max_qty=max_qty)]


def test_all_engines_consenting_and_a_quantity_within_the_proven_maximum_is_admitted_with_every_proof() -> None:
    decision = guard_with(*healthy_engines()).decide(buy(), default_context(), 0.01)

    assert decision.verdict is Verdict.ADMIT
    assert decision.max_qty == 0.05
    assert set(decision.proofs) == {"guard", "datalog", "clips", "prolog", "z3"}
    assert decision.ruleset_hash == "ruleset-hash"
    assert decision.context_hash == default_context().context_hash()


def test_a_quantity_above_the_proven_maximum_is_reduced_to_it() -> None:
    decision = guard_with(*healthy_engines(max_qty=0.004)).decide(buy(), default_context(), 0.01)

    assert (decision.verdict, decision.max_qty) == (Verdict.REDUCE, 0.004)


def test_any_engines_denial_denies_with_the_reasons_of_every_engine() -> None:
    engines = healthy_engines()
    engines[0].denials = ("L7.restricted_symbol",)
    engines[2].denials = ("L5.unknown_strategy",)

    decision = guard_with(*engines).decide(buy(), default_context(), 0.01)

    assert decision.verdict is Verdict.DENY
    assert decision.reasons == ("L5.unknown_strategy", "L7.restricted_symbol")


@pytest.mark.parametrize("failing", ["datalog", "clips", "prolog", "z3"])
def test_an_engine_that_raises_denies_with_its_own_reason_code(failing: str) -> None:
    engines = healthy_engines()
    next(e for e in engines if e.name == failing).error = RuntimeError("boom")

    decision = guard_with(*engines).decide(buy(), default_context(), 0.01)

    assert decision.verdict is Verdict.DENY
    assert decision.reasons == (f"GUARD.engine_error.{failing}",)
    assert "boom" in decision.proofs["guard"]["engine_errors"][failing]


@pytest.mark.parametrize("slow", ["datalog", "clips", "prolog", "z3"])
def test_an_engine_over_its_time_budget_denies_even_if_it_would_admit(slow: str) -> None:
    engines = healthy_engines()
    next(e for e in engines if e.name == slow).takes_s = 0.051  # budget 50 ms

    decision = guard_with(*engines).decide(buy(), default_context(), 0.01)

    assert decision.verdict is Verdict.DENY
    assert decision.reasons == (f"GUARD.timeout.{slow}",)


def test_an_engine_timeout_error_denies_as_a_timeout() -> None:
    engines = healthy_engines()
    engines[2].error = TimeoutError("prolog worker did not answer within 2 ms")

    decision = guard_with(*engines).decide(buy(), default_context(), 0.01)

    assert decision.reasons == ("GUARD.timeout.prolog",)


def test_a_missing_fact_denies_and_names_the_fact() -> None:
    context = default_context()
    context = replace(context, market=replace(context.market, atr=float("nan")))

    decision = guard_with(*healthy_engines()).decide(buy(), context, 0.01)

    assert decision.reasons == ("L6.missing_fact",)
    assert decision.proofs["guard"]["missing_facts"] == ["market.atr"]


def test_stale_market_data_denies() -> None:
    context = default_context()
    # the default config allows 180 s: this bar closed 200 s before the decision
    context = replace(context, market=replace(context.market, last_bar_ts=context.now_ts - 200_000))

    decision = guard_with(*healthy_engines()).decide(buy(), context, 0.01)

    assert decision.reasons == ("L6.stale_data",)


def test_no_engine_proving_a_maximum_quantity_denies() -> None:
    engines = [StubEngine("datalog"), StubEngine("clips"), StubEngine("prolog")]

    decision = guard_with(*engines).decide(buy(), default_context(), 0.01)

    assert decision.reasons == ("GUARD.no_proven_max_qty",)


def long_context(quantity: float = 0.02) -> DecisionContext:
    context = default_context()
    return replace(context, position=replace(context.position, quantity=quantity, entry_price=60_000.0))


def test_halted_guard_denies_everything_reductions_included() -> None:
    guard = guard_with(*healthy_engines(), state=GuardState.HALTED)

    opening = guard.decide(buy(), default_context(), 0.01)
    closing = guard.decide(buy(side=Side.SELL, reduce_only=True), long_context(), 0.02)

    assert opening.reasons == closing.reasons == ("L4.kill_switch",)


def test_reducing_guard_admits_reductions_and_denies_growth() -> None:
    guard = guard_with(*healthy_engines(), state=GuardState.REDUCING)

    growth = guard.decide(buy(), long_context(), 0.01)
    partial_close = guard.decide(buy(side=Side.SELL), long_context(), 0.01)
    flip = guard.decide(buy(side=Side.SELL), long_context(), 0.03)

    assert growth.reasons == ("L4.reducing_only",)
    assert partial_close.verdict is Verdict.ADMIT
    assert flip.reasons == ("L4.reducing_only",)  # 0.03 against a 0.02 long opens a 0.01 short


def test_active_guard_after_the_kill_switch_is_cleared_admits_again() -> None:
    guard = guard_with(*healthy_engines(), state=GuardState.HALTED)
    guard.set_state(GuardState.ACTIVE, "operator cleared the kill switch")

    assert guard.decide(buy(), default_context(), 0.01).verdict is Verdict.ADMIT


def test_the_sized_order_is_proven_again_and_a_larger_one_refused() -> None:
    guard = guard_with(*healthy_engines(max_qty=0.05))

    assert guard.prove_order(buy(), default_context(), 0.05) == ()
    assert guard.prove_order(buy(), default_context(), 0.06) == ("L1.max_position_notional",)
    prover = guard.engines[-1]
    assert isinstance(prover, StubProver) and prover.last_timeout_s == 0.05  # the z3 budget, 50 ms


def test_proving_an_order_without_a_prover_fails_closed() -> None:
    guard = guard_with(StubEngine("datalog"))

    assert guard.prove_order(buy(), default_context(), 0.01) == ("GUARD.no_proven_max_qty",)


@dataclass
class StubConcurrent(StubProver):
    """A prover that works while the others run (as the isolated Z3 does); records the order of events."""

    events: list[str] | None = None
    isolated: bool = True
    fail_on_collect: Exception | None = None

    def submit(self, intent: Intent, context: DecisionContext, quantity: float) -> StubPending:
        assert self.events is not None
        self.events.append(f"submit {self.name}")
        return StubPending(self, intent, context, quantity)


@dataclass
class StubPending:
    engine: StubConcurrent
    intent: Intent
    context: DecisionContext
    quantity: float

    def result(self, timeout_s: float) -> EngineResult:
        assert self.engine.events is not None
        self.engine.events.append(f"collect {self.engine.name} within {timeout_s:.3f} s")
        if self.engine.fail_on_collect is not None:
            raise self.engine.fail_on_collect
        return self.engine.evaluate(self.intent, self.context, self.quantity)


@dataclass
class Recording(StubEngine):
    events: list[str] | None = None

    def evaluate(self, intent: Intent, context: DecisionContext, quantity: float) -> EngineResult:
        assert self.events is not None
        self.events.append(f"run {self.name}")
        return super().evaluate(intent, context, quantity)


def test_a_concurrent_engine_is_started_first_collected_last_and_its_proof_keeps_engine_order() -> None:
    events: list[str] = []
    engines = [
        Recording("datalog", events=events, takes_s=0.010),
        StubConcurrent("z3", max_qty=0.05, events=events),
        Recording("clips", events=events, takes_s=0.005),
    ]

    decision = guard_with(*engines).decide(buy(), default_context(), 0.01)

    assert events == ["submit z3", "run datalog", "run clips", "collect z3 within 0.035 s"]
    assert decision.verdict is Verdict.ADMIT
    assert list(decision.proofs) == ["guard", "datalog", "z3", "clips"]
    # its time runs from its start, so it includes the others' 15 ms
    assert decision.proofs["guard"]["timings_ms"]["z3"] == pytest.approx(15.0)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(RuntimeError("worker died"), "GUARD.engine_error.z3"), (TimeoutError("late"), "GUARD.timeout.z3")],
)
def test_a_concurrent_engine_failing_when_collected_denies(fault: Exception, reason: str) -> None:
    events: list[str] = []
    engines = [StubEngine("datalog"), StubConcurrent("z3", max_qty=0.05, events=events, fail_on_collect=fault)]

    decision = guard_with(*engines).decide(buy(), default_context(), 0.01)

    assert decision.verdict is Verdict.DENY
    assert decision.reasons == (reason,)
