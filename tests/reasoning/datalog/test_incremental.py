"""An overlay must give exactly what a full evaluation of base plus intent facts gives, and leave no trace."""

from __future__ import annotations

import pytest

from reasoning.datalog.ast import Constant
from reasoning.datalog.evaluation import Model
from reasoning.datalog.incremental import Materialized
from reasoning.datalog.loading import load_engine

from .helpers import engine_of
from .policy_world import POLICY, base_facts, intent_facts


def snapshot(model: Model) -> dict[str, list[tuple[Constant, ...]]]:
    return {name: model.facts(name) for name in model.predicates() if model.facts(name)}


@pytest.fixture(scope="module")
def world():
    base = base_facts(symbols=60)
    return base, Materialized(load_engine(POLICY), base)


def test_policy_decisions_equal_full_reevaluation(world):
    base, materialized = world
    full_engine = load_engine(POLICY)
    for intent in intent_facts(25, symbols=60):
        merged = {name: list(rows) for name, rows in base.items()}
        for name, rows in intent.items():
            merged.setdefault(name, []).extend(rows)
        expected = snapshot(full_engine.evaluate(merged))
        with materialized.overlay(intent) as model:
            assert snapshot(model) == expected


def test_retracting_restores_the_base_exactly(world):
    _, materialized = world
    before = snapshot(materialized.base)
    indexes = {
        name: {pos: dict(b[1]) for pos, b in rel.indexes.items()} for name, rel in materialized.base.database.items()
    }
    for intent in intent_facts(10, symbols=60):
        with materialized.overlay(intent) as model:
            assert snapshot(model) != before  # the intent's facts and what they derive are in, for now
    assert snapshot(materialized.base) == before
    after = {
        name: {pos: dict(b[1]) for pos, b in rel.indexes.items()} for name, rel in materialized.base.database.items()
    }
    assert after == indexes


SOURCE = """
sym(/btc). sym(/eth). sym(/sol).
pos(/btc, 3). pos(/eth, 2).
quiet(S) :- sym(S), !order(S, _).
busy_count(N) :- order(S, _) |> do fn:group_by(), let N = fn:count().
exposure(S, N) :- pos(S, Q) |> do fn:group_by(S), let N = fn:sum(Q).
exposure_with_orders(S, N) :- pos(S, Q) |> do fn:group_by(S), let N = fn:sum(Q).
exposure_with_orders(S, N) :- order(S, Q) |> do fn:group_by(S), let N = fn:sum(Q).
loud(S) :- sym(S), !quiet(S).
reach(X, Y) :- link(X, Y).
reach(X, Z) :- reach(X, Y), link(Y, Z).
cut(X) :- sym(X), !reach(/btc, X).
"""


def name(value: str) -> Constant:
    return Constant("name", value)


@pytest.mark.parametrize(
    "overlay",
    [
        {"order": [(name("/btc"), Constant("int", 1))]},  # removes quiet(/btc): a retraction below negation
        {"order": [(name("/sol"), Constant("int", 5)), (name("/eth"), Constant("int", 1))]},
        {"pos": [(name("/btc"), Constant("int", 4))]},  # aggregation over a base predicate the overlay touches
        {"link": [(name("/btc"), name("/eth")), (name("/eth"), name("/sol"))]},  # recursion, then negation
        {"quiet": [(name("/eth"),)]},  # facts added straight to a derived predicate
        {},
    ],
)
def test_negation_and_aggregation_over_touched_predicates_match_full_evaluation(overlay):
    engine = engine_of(SOURCE)
    materialized = Materialized(engine)
    expected = snapshot(engine_of(SOURCE).evaluate(overlay))
    with materialized.overlay(overlay) as model:
        assert snapshot(model) == expected
    assert snapshot(materialized.base) == snapshot(engine_of(SOURCE).evaluate())


def test_overlay_provenance_explains_the_intent_and_is_dropped_after():
    from reasoning.datalog.provenance import explain

    materialized = Materialized(engine_of(SOURCE), provenance=True)
    with materialized.overlay({"order": [(name("/btc"), Constant("int", 1))]}) as model:
        tree = explain(model, "loud", (name("/btc"),))
        assert tree is not None and tree["absent"] == ["quiet(/btc)"]
    assert explain(materialized.base, "loud", (name("/btc"),)) is None


def test_one_overlay_at_a_time():
    materialized = Materialized(engine_of(SOURCE))
    with materialized.overlay({}), pytest.raises(RuntimeError), materialized.overlay({}):
        raise AssertionError("a second overlay opened while the first was active")
