"""The Z3 limits isolated in a child process: the same answers as in process, and every fault of the child
(killed, stopped past its budget, refusing a rule set) ends in a denial and a fresh child, never an admission."""

from __future__ import annotations

import os
import random
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.decision import Verdict
from reasoning.guard import Guard, GuardConfig
from reasoning.limits import LimitsEngine, LimitsSolverError
from reasoning.limits.parser import load_ruleset as load_limits
from reasoning.limits.worker import START_TIMEOUT_S
from reasoning.rules import RULES_DIR, RuleWatcher, load_ruleset
from tests.reasoning.limits.cases import random_case
from tests.reasoning.limits.helpers import LIMITS_FILE, make_context, make_intent


@pytest.fixture(scope="module")
def isolated() -> Iterator[LimitsEngine]:
    engine = LimitsEngine(LIMITS_FILE, isolated=True)
    yield engine
    engine.close()


def test_the_isolated_engine_answers_exactly_as_the_in_process_one(isolated: LimitsEngine) -> None:
    local = LimitsEngine(LIMITS_FILE)
    rng = random.Random(11)
    cases = [random_case(rng) for _ in range(300)]

    for case in cases:
        here = local.evaluate(case.intent, case.context, case.qty)
        there = isolated.evaluate(case.intent, case.context, case.qty)
        assert (there.denials, there.max_qty, there.notes) == (here.denials, here.max_qty, here.notes)
        assert there.proof == here.proof
        proved_here = local.prove_order(case.intent, case.context, case.qty)
        proved_there = isolated.prove_order(case.intent, case.context, case.qty)
        assert proved_there.denials == proved_here.denials
    verdicts = {bool(local.evaluate(c.intent, c.context, c.qty).denials) for c in cases}
    assert verdicts == {True, False}  # both paths were exercised


def test_submit_returns_before_the_answer_and_answers_come_back_to_their_own_request(
    isolated: LimitsEngine,
) -> None:
    intent, context = make_intent(), make_context()

    first = isolated.submit(intent, context, 0.001)
    second = isolated.submit(intent, context, 100.0)

    # collected out of order: each pending gets its own answer
    late = second.result(5.0)
    assert late.proof["qty"] == 100.0 and late.proof == isolated.evaluate(intent, context, 100.0).proof
    assert first.result(5.0).proof["qty"] == 0.001


def guard_with(engine: LimitsEngine, budget_ms: float = 250.0) -> Guard:
    budgets = {"datalog": 250.0, "clips": 250.0, "prolog": 250.0, "z3": budget_ms}
    return Guard([engine], engine.ruleset_hash, GuardConfig(budgets_ms=budgets))


def test_a_killed_child_makes_the_decision_deny_and_a_fresh_child_takes_over() -> None:
    engine = LimitsEngine(LIMITS_FILE, isolated=True)
    guard = guard_with(engine)
    intent, context = make_intent(), make_context()
    try:
        assert guard.decide(intent, context, 0.01).verdict is Verdict.ADMIT
        worker = engine.worker
        assert worker is not None and worker.pid is not None
        killed = worker.pid
        os.kill(killed, signal.SIGKILL)

        denied = guard.decide(intent, context, 0.01)

        assert denied.verdict is Verdict.DENY
        assert denied.reasons == ("GUARD.engine_error.z3",)
        assert worker.starts == 2 and worker.pid != killed  # relaunched at once
        assert worker.ready(START_TIMEOUT_S)
        assert guard.decide(intent, context, 0.01).verdict is Verdict.ADMIT
    finally:
        engine.close()


def test_a_late_answer_is_a_timeout_denial_and_is_dropped_when_it_comes() -> None:
    engine = LimitsEngine(LIMITS_FILE, isolated=True)
    guard = guard_with(engine, budget_ms=50.0)
    intent, context = make_intent(), make_context()
    try:
        assert guard.decide(intent, context, 0.01).verdict is Verdict.ADMIT
        worker = engine.worker
        assert worker is not None and worker.pid is not None
        os.kill(worker.pid, signal.SIGSTOP)  # a slow solver
        late = guard.decide(intent, context, 0.01)
        os.kill(worker.pid, signal.SIGCONT)

        assert late.reasons == ("GUARD.timeout.z3",)
        # the late answer to the first request is dropped: the next one gets its own, from the same child
        again = engine.evaluate(intent, context, 0.5)
        assert again.proof["qty"] == 0.5
        assert worker.starts == 1
    finally:
        engine.close()


def test_a_child_stuck_on_a_request_is_replaced_at_the_next_decision() -> None:
    engine = LimitsEngine(LIMITS_FILE, isolated=True, stuck_after_s=0.0)
    guard = guard_with(engine, budget_ms=50.0)
    intent, context = make_intent(), make_context()
    try:
        assert guard.decide(intent, context, 0.01).verdict is Verdict.ADMIT
        worker = engine.worker
        assert worker is not None and worker.pid is not None
        stuck = worker.pid
        os.kill(stuck, signal.SIGSTOP)  # a solver that never answers

        assert guard.decide(intent, context, 0.01).reasons == ("GUARD.timeout.z3",)
        replaced = guard.decide(intent, context, 0.01)

        assert replaced.reasons == ("GUARD.engine_error.z3",)
        assert "stuck" in replaced.proofs["guard"]["engine_errors"]["z3"]
        assert worker.pid not in (None, stuck)
        with pytest.raises(ProcessLookupError):
            os.kill(stuck, 0)  # killed and reaped
        assert worker.ready(START_TIMEOUT_S)
        assert guard.decide(intent, context, 0.01).verdict is Verdict.ADMIT
    finally:
        engine.close()


def test_a_closed_engine_refuses_and_starts_no_child() -> None:
    engine = LimitsEngine(LIMITS_FILE, isolated=True)
    worker = engine.worker
    assert worker is not None and worker.pid is not None
    engine.close()

    with pytest.raises(LimitsSolverError, match="closed"):
        engine.evaluate(make_intent(), make_context(), 0.01)
    assert worker.pid is None and worker.starts == 1


def test_asking_a_pending_twice_gives_the_same_answer(isolated: LimitsEngine) -> None:
    pending = isolated.submit(make_intent(), make_context(), 0.01)

    first = pending.result(5.0)

    assert pending.result(5.0) == first


def test_a_rule_set_the_child_refuses_leaves_the_previous_one_active(isolated: LimitsEngine) -> None:
    before = isolated.evaluate(make_intent(), make_context(), 0.01)

    with pytest.raises(LimitsSolverError, match="refused"):
        isolated.install(load_limits(LIMITS_FILE), frozenset({"no_such_limit"}))

    after = isolated.evaluate(make_intent(), make_context(), 0.01)
    assert after.proof == before.proof


def test_the_mutation_hook_reaches_the_child(isolated: LimitsEngine) -> None:
    rules = load_limits(LIMITS_FILE)
    intent, context = make_intent(), make_context(account={"daily_pnl": -1e6})
    assert "L3.max_daily_loss" in isolated.evaluate(intent, context, 0.01).denials
    try:
        isolated.install(rules, frozenset({"max_daily_loss"}))
        assert "L3.max_daily_loss" not in isolated.evaluate(intent, context, 0.01).denials
    finally:
        isolated.install(rules)


def test_hot_reload_of_an_isolated_rule_set_stops_the_previous_child(tmp_path: Path) -> None:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIR, directory)
    first = load_ruleset(directory, isolate_limits=True)
    guard = Guard(first.engines, first.ruleset_hash, GuardConfig())
    watcher = RuleWatcher(guard, first)
    old = next(engine for engine in first.engines if isinstance(engine, LimitsEngine))
    assert old.worker is not None
    old_pid = old.worker.pid
    try:
        with (directory / "limits.toml").open("a") as handle:
            handle.write("\n# reviewed\n")

        change = watcher.poll()

        assert change is not None and change.accepted
        new = next(engine for engine in watcher.active.engines if isinstance(engine, LimitsEngine))
        assert new.isolated and new.worker is not None and new.worker.pid not in (None, old_pid)
        assert old.worker.pid is None  # closed
        decision = guard.decide(make_intent(), make_context(), 0.01)
        assert decision.proofs["z3"]["ruleset_hash"] == new.ruleset_hash
        assert decision.proofs["z3"]["max_qty"] > 0
        assert not [reason for reason in decision.reasons if reason.startswith("GUARD.")]
    finally:
        watcher.active.close()
