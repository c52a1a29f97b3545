"""The Datalog policy (`rules/policy.mg`) as an engine of the guard."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.intent import Intent
from core.orders import Side
from reasoning.context import DecisionContext, MarketRegime
from reasoning.policy import CONTEXT_PREDICATES, PolicyEngine, intent_facts, market_facts
from reasoning.rule_tests import default_context
from reasoning.rules import RULES_DIR

BTC = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def policy() -> PolicyEngine:
    return PolicyEngine(RULES_DIR / "policy.mg")


def buy(symbol: str = BTC, **changes: object) -> Intent:
    intent = Intent(ts=0, symbol=symbol, side=Side.BUY, strategy_id="baseline.ema_cross", notional=600.0)
    return replace(intent, **changes) if changes else intent


def with_market(context: DecisionContext, **changes: object) -> DecisionContext:
    return replace(context, market=replace(context.market, **changes))


def test_a_calm_context_is_admitted_with_the_admit_derivation_as_proof(policy: PolicyEngine) -> None:
    result = policy.evaluate(buy(), default_context(), 0.01)

    assert result.denials == ()
    (tree,) = result.proof["derivations"]
    assert tree["fact"].startswith("admit(")
    assert tree["rule"].startswith(str(RULES_DIR / "policy.mg"))


def test_a_restricted_symbol_is_denied_with_its_derivation(policy: PolicyEngine) -> None:
    result = policy.evaluate(buy("LUNA/USDT:USDT"), with_market(default_context(), symbol="LUNA/USDT:USDT"), 100.0)

    assert result.denials == ("L7.restricted_symbol",)
    (tree,) = result.proof["derivations"]
    assert tree["fact"] == f'deny("{buy("LUNA/USDT:USDT").intent_id}", "L7.restricted_symbol")'
    assert any(premise.get("fact") == 'restricted_symbol("LUNA/USDT:USDT")' for premise in tree["premises"])


def test_closing_a_position_in_a_restricted_symbol_is_not_denied(policy: PolicyEngine) -> None:
    context = with_market(default_context(), symbol="LUNA/USDT:USDT")
    context = replace(context, position=replace(context.position, quantity=-100.0, entry_price=0.5))

    result = policy.evaluate(buy("LUNA/USDT:USDT", reduce_only=True), context, 100.0)

    assert result.denials == ()


def test_a_restricted_region_is_denied(policy: PolicyEngine) -> None:
    result = policy.evaluate(buy(), replace(default_context(), region="US"), 0.01)

    assert result.denials == ("L7.restricted_region",)


def test_a_drifting_or_unapproved_model_may_not_open_risk(policy: PolicyEngine) -> None:
    drifting = replace(default_context(), model=replace(default_context().model, model_id="gbm-7", drift_detected=True))

    assert policy.evaluate(buy(model_id="gbm-7"), drifting, 0.01).denials == ("L5.model_drift",)
    assert policy.evaluate(buy(model_id="lstm-x"), default_context(), 0.01).denials == ("L5.unapproved_model",)


def test_a_symbol_the_desk_has_not_approved_is_denied_but_may_be_closed(policy: PolicyEngine) -> None:
    context = with_market(default_context(), symbol="PEPE/USDT:USDT")
    holding = replace(context, position=replace(context.position, quantity=-1e6, entry_price=1e-5))

    assert policy.evaluate(buy("PEPE/USDT:USDT"), context, 1e6).denials == ("L7.unapproved_symbol",)
    assert policy.evaluate(buy("PEPE/USDT:USDT", reduce_only=True), holding, 1e6).denials == ()


def test_no_new_risk_while_the_venue_is_unhealthy(policy: PolicyEngine) -> None:
    unhealthy = replace(default_context(), venue=replace(default_context().venue, healthy=False))

    assert policy.evaluate(buy(), unhealthy, 0.01).denials == ("L6.venue_unhealthy",)


def test_the_base_is_materialised_once_while_the_account_facts_stay_the_same(policy: PolicyEngine) -> None:
    policy.evaluate(buy(), default_context(), 0.01)
    base = policy._base

    policy.evaluate(buy(side=Side.SELL), with_market(default_context(), regime=MarketRegime.RANGING), 0.01)

    assert policy._base is base


def test_the_declared_context_predicates_are_exactly_the_facts_the_guard_asserts() -> None:
    context = default_context()

    asserted = set(market_facts(context)) | set(intent_facts(buy(), context, 0.01))

    assert asserted == CONTEXT_PREDICATES


def test_the_policy_has_no_rule_that_can_never_fire(policy: PolicyEngine) -> None:
    assert policy.unreachable_rules() == []


def test_a_rule_over_a_predicate_nothing_provides_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "policy.mg"
    path.write_text(
        'deny(I, "L7.typo") :- intent(I, _, _, _), restricted_symbl("X").\nadmit(I) :- intent(I, _, _, _).\n'
    )

    (warning,) = PolicyEngine(path).unreachable_rules()

    assert warning.startswith(f"{path}:1:")
    assert "restricted_symbl" in warning
