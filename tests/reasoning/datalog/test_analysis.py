"""Every analysis error, with its location."""

from __future__ import annotations

import pytest

from reasoning.datalog.analysis import analyse
from reasoning.datalog.errors import DatalogAnalysisError
from reasoning.datalog.parser import parse_program


def rejection(source: str) -> str:
    with pytest.raises(DatalogAnalysisError) as caught:
        analyse(parse_program(source, "policy.mg"))
    return str(caught.value)


def test_arity_mismatch_points_at_the_second_use_and_names_the_first():
    message = rejection("edge(/a, /b).\npath(X) :- edge(X, Y, Z).")
    assert message == "policy.mg:2:12: edge has 2 arguments (as at policy.mg:1:1), but 3 are given here"


def test_unsafe_head_variable():
    message = rejection("p(X, Y) :- q(X).")
    assert message == "policy.mg:1:1: unsafe: head variable Y of p(X, Y) is not bound by the body"


def test_unsafe_variable_only_in_a_negation():
    message = rejection("p(X) :- q(X), !r(X, Y).")
    assert message == "policy.mg:1:15: unsafe: variable Y in negated atom r(X, Y) is not bound by a positive atom"


def test_unsafe_variable_only_in_a_comparison():
    assert rejection("p(X) :- q(X), X < Y.") == (
        "policy.mg:1:15: unsafe: variable Y in X < Y is not bound by a positive atom or let"
    )


def test_fact_with_a_variable_is_not_ground():
    assert rejection("p(X).") == "policy.mg:1:1: fact p(X) is not ground: X needs a rule body that binds it"


def test_wildcard_in_a_head():
    assert rejection("p(_) :- q(_).") == "policy.mg:1:1: '_' cannot stand in the head p(_)"


def test_unknown_function():
    assert rejection("p(Y) :- q(X), Y = fn:pow(X, 2).") == "policy.mg:1:19: unknown function fn:pow"


def test_reducer_used_as_a_plain_function_hints_at_group_by():
    assert rejection("p(Y) :- q(X), Y = fn:sum(X).") == (
        "policy.mg:1:19: unknown function fn:sum (a reducer: use it after |> do fn:group_by(...))"
    )


def test_plain_function_after_group_by_is_not_a_reducer():
    assert rejection("t(S, N) :- p(S, Q) |> do fn:group_by(S), let N = fn:plus(Q, 1).") == (
        "policy.mg:1:50: fn:plus is not a reducer; after fn:group_by use fn:count, fn:sum, fn:min, fn:max, fn:avg"
    )


def test_head_variable_not_kept_by_the_group_by():
    assert rejection("t(Q, N) :- p(S, Q) |> do fn:group_by(S), let N = fn:count().") == (
        "policy.mg:1:1: unsafe: head variable Q of t(Q, N) is not bound after the transforms"
    )


def test_function_arity():
    assert rejection("p(Y) :- q(X), Y = fn:abs(X, 1).") == "policy.mg:1:19: fn:abs takes 1 arguments, 2 given"


def test_recursion_through_negation_is_rejected_with_the_cycle_named():
    source = "p(X) :- base(X), !q(X).\nq(X) :- r(X).\nr(X) :- p(X)."
    assert rejection(source) == (
        "policy.mg:1:18: not stratifiable: recursion through negation or aggregation: p -> !q -> r -> p"
    )


def test_recursion_through_aggregation_is_rejected():
    source = "total(N) :- step(X) |> do fn:group_by(), let N = fn:count().\nstep(X) :- total(X)."
    assert "not stratifiable: recursion through negation or aggregation: total -> !step -> total" in rejection(source)


def test_fact_breaking_its_decl_bound():
    source = "Decl pos(S, Q) bound [/name, /number].\npos(/btc, 1.5)."
    assert rejection(source) == (
        "policy.mg:2:1: pos(S=/btc, Q=1.5) does not match Decl pos at policy.mg:1:1: expected [/name, /number]"
    )


def test_use_with_another_arity_than_declared():
    source = "Decl pos(S, Q).\np(X) :- pos(X)."
    assert rejection(source) == "policy.mg:2:9: pos has 2 arguments (as at policy.mg:1:1), but 1 are given here"


def test_decl_bound_of_the_wrong_length():
    assert rejection("Decl pos(S, Q) bound [/name].") == "policy.mg:1:1: Decl pos: bound has 1 types for 2 arguments"


def test_decl_accepts_any_of_several_bounds():
    program = analyse(
        parse_program(
            'Decl e(K, V) bound [/string, /number] bound [/string, /string].\ne("a", 1).\ne("b", "x").', "p.mg"
        )
    )
    assert len(program.facts) == 2


def test_strata_put_what_a_stratum_reads_first():
    program = analyse(parse_program("a(X) :- b(X), !c(X).\nc(X) :- d(X).\nb(X) :- e(X).", "p.mg"))
    order = [sorted(stratum.predicates) for stratum in program.strata]
    assert order.index(["c"]) < order.index(["a"]) and order.index(["b"]) < order.index(["a"])
