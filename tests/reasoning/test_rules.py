"""The rule set in rules/: loading, its tests, hot reload, and the guard's real engines failing closed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from core.decision import Verdict
from core.intent import Intent
from core.orders import Side
from reasoning.engine import EngineResult
from reasoning.guard import Guard, GuardConfig
from reasoning.rule_tests import default_context, load_cases, run_rule_tests
from reasoning.rules import RULES_DIR, RuleSet, RuleSetError, RuleWatcher, load_ruleset


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_ruleset(RULES_DIR)


def buy() -> Intent:
    return Intent(
        ts=0,
        symbol="BTC/USDT:USDT",
        side=Side.BUY,
        strategy_id="baseline.ema_cross",
        notional=600.0,
        stop_loss=59_700.0,
    )


def test_every_case_in_rules_tests_passes_and_every_reason_code_has_one(ruleset: RuleSet) -> None:
    report = run_rule_tests(ruleset, load_cases(RULES_DIR))

    failed = [outcome.case.name for outcome in report.outcomes if not outcome.passed]
    assert failed == []
    assert report.uncovered == []


def test_the_shipped_rule_set_has_at_least_thirty_rules_over_all_seven_layers(ruleset: RuleSet) -> None:
    from reasoning.rule_tests import reason_codes

    codes = reason_codes(ruleset)

    assert len(codes) >= 30
    assert {code.split(".")[0] for code in codes} == {f"L{n}" for n in range(1, 8)}


def test_the_rule_set_hash_changes_with_any_file_and_only_then(tmp_path: Path, ruleset: RuleSet) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    assert load_ruleset(copy).ruleset_hash == ruleset.ruleset_hash

    with (copy / "policy.mg").open("a") as handle:
        handle.write("\n# a comment is a change too\n")

    assert load_ruleset(copy).ruleset_hash != ruleset.ruleset_hash


@pytest.mark.parametrize(
    ("file_name", "broken"),
    [
        ("policy.mg", "deny(I, R) :- intent(I, _, _, _).\n"),
        ("expert.clp", "(defrule broken (intent (id ?i)) => (assert (deny (reason \n"),
        ("strategies.pl", "precondition(foo, bar\n"),
        ("limits.toml", '[limits.x]\nlayer = "L9"\n'),
    ],
)
def test_a_bad_file_is_refused_with_its_location(tmp_path: Path, file_name: str, broken: str) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    with (copy / file_name).open("a") as handle:
        handle.write("\n" + broken)

    with pytest.raises(RuleSetError) as caught:
        load_ruleset(copy)

    file, line, column = str(caught.value).split(":")[:3]
    assert file == str(copy / file_name)
    assert int(line) > 1 and int(column) >= 1


def test_a_missing_rule_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    (copy / "strategies.pl").unlink()

    with pytest.raises(RuleSetError, match=r"strategies\.pl:1:1: rule file missing"):
        load_ruleset(copy)


def test_hot_reload_swaps_a_changed_valid_set_and_keeps_the_last_good_one_on_a_bad_file(tmp_path: Path) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)
    first = load_ruleset(copy)
    guard = Guard(first.engines, first.ruleset_hash, GuardConfig())
    watcher = RuleWatcher(guard, first)
    assert watcher.poll() is None

    policy = copy / "policy.mg"
    policy.write_text(
        policy.read_text().replace('restricted_symbol("FTT/USDT:USDT").', 'restricted_symbol("BTC/USDT:USDT").')
    )
    accepted = watcher.poll()

    assert accepted is not None and accepted.accepted and accepted.files_changed == ("policy.mg",)
    assert guard.ruleset_hash == accepted.ruleset_hash != first.ruleset_hash
    assert accepted.previous_hash == first.ruleset_hash
    assert '-restricted_symbol("FTT/USDT:USDT").' in accepted.diff
    assert '+restricted_symbol("BTC/USDT:USDT").' in accepted.diff and "+++ b/policy.mg" in accepted.diff
    assert guard.decide(buy(), default_context(), 0.01).reasons == ("L7.restricted_symbol",)

    policy.write_text(policy.read_text() + "\nbroken(X) :- .\n")
    refused = watcher.poll()

    assert refused is not None and not refused.accepted and "policy.mg:" in refused.error
    assert "+broken(X) :- ." in refused.diff and refused.previous_hash == accepted.ruleset_hash
    assert guard.ruleset_hash == accepted.ruleset_hash  # the last good set stays active
    assert watcher.poll() is None  # the same bad file is reported once


@pytest.mark.parametrize("failing", ["datalog", "clips", "prolog", "z3"])
def test_each_real_engine_failing_makes_the_guard_deny(
    ruleset: RuleSet, failing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig())
    assert guard.decide(buy(), default_context(), 0.01).verdict is Verdict.ADMIT
    engine = next(e for e in ruleset.engines if e.name == failing)

    def broken(*args: object) -> None:
        raise RuntimeError(f"{failing} fault injected")

    monkeypatch.setattr(engine, "evaluate", broken)
    decision = guard.decide(buy(), default_context(), 0.01)

    assert (decision.verdict, decision.reasons) == (Verdict.DENY, (f"GUARD.engine_error.{failing}",))


@pytest.mark.parametrize("slow", ["datalog", "clips", "prolog", "z3"])
def test_each_real_engine_overrunning_its_budget_makes_the_guard_deny(
    ruleset: RuleSet, slow: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # time passes only on a fake clock, and only while the slow engine runs: no sleeping, no flakes
    clock = [0.0]
    budgets = {"datalog": 30.0, "clips": 30.0, "prolog": 30.0, "z3": 30.0}
    guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig(budgets_ms=budgets), clock=lambda: clock[0])
    engine = next(e for e in ruleset.engines if e.name == slow)
    original = engine.evaluate

    def sluggish(*args: Any) -> EngineResult:
        clock[0] += 0.031  # 31 ms against a 30 ms budget
        return original(*args)

    monkeypatch.setattr(engine, "evaluate", sluggish)
    decision = guard.decide(buy(), default_context(), 0.01)

    assert decision.reasons == (f"GUARD.timeout.{slow}",)
