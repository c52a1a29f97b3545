"""What each construct means, with hand-computed expectations."""

from __future__ import annotations

import pytest

from reasoning.datalog.ast import Constant
from reasoning.datalog.errors import DatalogEvaluationError

from .helpers import evaluate, rows


def test_transitive_closure_of_a_chain():
    model = evaluate(
        "edge(1, 2). edge(2, 3). edge(3, 4).\npath(X, Y) :- edge(X, Y).\npath(X, Z) :- edge(X, Y), path(Y, Z)."
    )
    # 3 + 2 + 1 pairs
    assert rows(model, "path") == [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]


def test_recursion_on_a_cycle_terminates_with_every_pair():
    model = evaluate("e(/a, /b). e(/b, /a).\nr(X, Y) :- e(X, Y).\nr(X, Z) :- r(X, Y), r(Y, Z).")
    assert rows(model, "r") == [("/a", "/a"), ("/a", "/b"), ("/b", "/a"), ("/b", "/b")]


def test_mutual_recursion_even_and_odd():
    source = (
        "succ(0, 1). succ(1, 2). succ(2, 3). succ(3, 4).\neven(0).\neven(Y) :- odd(X), succ(X, Y).\n"
        "odd(Y) :- even(X), succ(X, Y)."
    )
    model = evaluate(source)
    assert rows(model, "even") == [(0,), (2,), (4,)]
    assert rows(model, "odd") == [(1,), (3,)]


def test_negation_reads_a_completed_lower_stratum():
    source = (
        "node(/a). node(/b). node(/c). edge(/a, /b).\n"
        "reach(X, Y) :- edge(X, Y).\nreach(X, Z) :- reach(X, Y), edge(Y, Z).\n"
        "isolated(X) :- node(X), !reach(X, _), !reach(_, X)."
    )
    assert rows(evaluate(source), "isolated") == [("/c",)]


def test_negation_over_three_strata():
    source = "n(1). n(2). n(3). p(1).\nq(X) :- n(X), !p(X).\nr(X) :- n(X), !q(X)."
    model = evaluate(source)
    assert rows(model, "q") == [(2,), (3,)]
    assert rows(model, "r") == [(1,)]


def test_wildcards_are_independent():
    assert rows(evaluate("e(1, 2). e(3, 3).\nboth(X) :- e(X, _), e(_, X).\nloop(X) :- e(X, X)."), "both") == [(3,)]


def test_comparisons():
    source = (
        "v(1). v(2). v(3).\nlt(X) :- v(X), X < 2.\nle(X) :- v(X), X <= 2.\ngt(X) :- v(X), X > 2.\n"
        "ge(X) :- v(X), X >= 2.\neq(X) :- v(X), X = 2.\nne(X) :- v(X), X != 2."
    )
    model = evaluate(source)
    assert [rows(model, name) for name in ("lt", "le", "gt", "ge", "eq", "ne")] == [
        [(1,)], [(1,), (2,)], [(3,)], [(2,), (3,)], [(2,)], [(1,), (3,)]
    ]  # fmt: skip


def test_functions_in_let_and_in_equalities():
    source = (
        "v(7, 2).\n"
        "r(P, M, T, D, A, Lo, Hi) :- v(X, Y), let P = fn:plus(X, Y), M = fn:minus(X, Y), T = fn:mult(X, Y),"
        " D = fn:div(X, Y), A = fn:abs(fn:minus(Y, X)), Lo = fn:min(X, Y), Hi = fn:max(X, Y)."
    )
    # 7+2, 7-2, 7*2, 7/2 truncated, |2-7|, min, max
    assert rows(evaluate(source), "r") == [(9, 5, 14, 3, 5, 2, 7)]


def test_integer_division_truncates_toward_zero_and_floats_divide_exactly():
    source = "r(A, B, C) :- A = fn:div(-7, 2), B = fn:div(7, -2), C = fn:div(-7.0, 2)."
    # Go semantics: -7/2 = -3 (not Python's -4); any float operand: -3.5
    assert rows(evaluate(source), "r") == [(-3, -3, -3.5)]


def test_division_by_zero_is_an_error_at_the_call():
    with pytest.raises(DatalogEvaluationError) as caught:
        evaluate("v(0).\nr(Y) :- v(X), Y = fn:div(1, X).")
    assert str(caught.value) == "test.mg:2:19: fn:div: division by zero"


def test_arithmetic_on_a_name_is_an_error():
    with pytest.raises(DatalogEvaluationError) as caught:
        evaluate("v(/btc).\nr(Y) :- v(X), Y = fn:plus(X, 1).")
    assert str(caught.value) == 'test.mg:2:19: fn:plus expects numbers, got "/btc" (a string or name)'


def test_ordering_comparison_on_strings_is_an_error():
    with pytest.raises(DatalogEvaluationError, match=r"test.mg:2:15: < expects numbers"):
        evaluate('v("a").\nr(X) :- v(X), X < 1.')


def test_integers_and_floats_with_equal_value_are_different_constants():
    model = evaluate("a(1). b(1.0).\nsame(X) :- a(X), b(X).\nnum(X) :- a(X), X = 1.0.")
    assert rows(model, "same") == [] and rows(model, "num") == []


def test_names_and_strings_spelled_alike_are_different_constants():
    model = evaluate('a(/btc). b("/btc"). c("btc").\nsame(X) :- a(X), b(X).\nall(X) :- a(X).\nall(X) :- b(X).')
    assert rows(model, "same") == []
    assert [row[0] for row in evaluate('a(/btc). a("/btc").').facts("a")] == [
        Constant("name", "/btc"),
        Constant("string", "/btc"),
    ]


def test_large_integers_stay_exact():
    assert rows(evaluate("r(X) :- X = fn:mult(9007199254740993, 3)."), "r") == [(27021597764222979,)]


def test_aggregation_per_group():
    source = (
        "pos(/btc, /a, 3). pos(/btc, /b, 4). pos(/eth, /a, 2). pos(/eth, /b, 2).\n"
        "agg(S, C, Sum, Lo, Hi, Avg) :- pos(S, Acct, Q) |> do fn:group_by(S),"
        " let C = fn:count(), let Sum = fn:sum(Q), let Lo = fn:min(Q), let Hi = fn:max(Q), let Avg = fn:avg(Q)."
    )
    # btc: 2 rows, 3+4=7, min 3, max 4, avg 3.5; eth: two rows of 2 (different accounts) count twice
    assert rows(evaluate(source), "agg") == [("/btc", 2, 7, 3, 4, 3.5), ("/eth", 2, 4, 2, 2, 2.0)]


def test_aggregation_over_nothing_yields_no_fact_not_zero():
    source = (
        "sym(/btc). sym(/eth). pos(/btc, 3).\n"
        "total(S, N) :- pos(S, Q) |> do fn:group_by(S), let N = fn:sum(Q).\n"
        "count(N) :- none(X) |> do fn:group_by(), let N = fn:count()."
    )
    model = evaluate(source)
    assert rows(model, "total") == [("/btc", 3)]
    assert rows(model, "count") == []


def test_empty_group_filled_by_negation_as_mangle_recommends():
    source = (
        "sym(/btc). sym(/eth). pos(/btc, 3).\n"
        "total(S, N) :- pos(S, Q) |> do fn:group_by(S), let N = fn:sum(Q).\n"
        "exposure(S, N) :- total(S, N).\nexposure(S, 0) :- sym(S), !total(S, _)."
    )
    assert rows(evaluate(source), "exposure") == [("/btc", 3), ("/eth", 0)]


def test_sum_of_floats_and_ints_is_a_float():
    assert rows(evaluate("v(1). v(0.5).\nt(N) :- v(X) |> do fn:group_by(), let N = fn:sum(X)."), "t") == [(1.5,)]


def test_let_transform_without_group_by_applies_row_by_row():
    source = "v(1). v(2).\nd(X, Y) :- v(X) |> let Y = fn:mult(X, 10)."
    assert rows(evaluate(source), "d") == [(1, 10), (2, 20)]


def test_transform_stages_chain():
    source = (
        "v(/a, 2). v(/a, 3). v(/b, 5).\n"
        "t(S, M) :- v(S, X) |> do fn:group_by(S), let N = fn:sum(X) |> let M = fn:mult(N, 2)."
    )
    assert rows(evaluate(source), "t") == [("/a", 10), ("/b", 10)]


def test_facts_listed_numbers_then_names_then_strings():
    model = evaluate('v("x"). v(/y). v(2.5). v(-1).')
    assert rows(model, "v") == [(-1,), (2.5,), ("/y",), ("x",)]


def test_input_facts_join_program_rules():
    model = evaluate("big(S) :- pos(S, Q), Q > 10.", {"pos": [(Constant("name", "/btc"), Constant("int", 11))]})
    assert rows(model, "big") == [("/btc",)]
