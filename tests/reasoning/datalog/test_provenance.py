from __future__ import annotations

from reasoning.datalog.ast import Constant
from reasoning.datalog.provenance import explain

from .helpers import evaluate, rows

SOURCE = """restricted(/doge).
intent(/i1, /doge, 5).
deny(I, /L7.restricted_symbol) :- intent(I, S, Q), restricted(S), Q > 0, !halted(S).
"""


def name(value: str) -> Constant:
    return Constant("name", value)


def test_derivation_names_rule_location_bindings_premises_and_absent_facts():
    model = evaluate(SOURCE, provenance=True)
    tree = explain(model, "deny", (name("/i1"), name("/L7.restricted_symbol")))
    assert tree == {
        "fact": "deny(/i1, /L7.restricted_symbol)",
        "rule": "test.mg:3:1",
        "clause": "deny(I, /L7.restricted_symbol) :- intent(I, S, Q), restricted(S), Q > 0, !halted(S).",
        "bindings": {"I": "/i1", "Q": 5, "S": "/doge"},
        "premises": [
            {"fact": "intent(/i1, /doge, 5)", "source": "test.mg:2:1"},
            {"fact": "restricted(/doge)", "source": "test.mg:1:1"},
        ],
        "absent": ["halted(/doge)"],
        "conditions": ["Q > 0"],
    }


def test_input_facts_are_leaves_marked_input():
    model = evaluate("big(S) :- pos(S, Q), Q > 1.", {"pos": [(name("/btc"), Constant("int", 2))]}, provenance=True)
    tree = explain(model, "big", (name("/btc"),))
    assert tree is not None and tree["premises"] == [{"fact": "pos(/btc, 2)", "source": "input"}]


def test_a_fact_that_does_not_hold_has_no_derivation():
    assert explain(evaluate(SOURCE, provenance=True), "deny", (name("/i2"), name("/x"))) is None


def test_deep_recursive_derivation_is_finite_and_complete():
    edges = " ".join(f"e({i}, {i + 1})." for i in range(1500))
    model = evaluate(edges + "\np(X, Y) :- e(X, Y).\np(X, Z) :- e(X, Y), p(Y, Z).", provenance=True)
    node = explain(model, "p", (Constant("int", 0), Constant("int", 1500)))
    depth = 0
    while node is not None and "premises" in node:
        node, depth = node["premises"][-1], depth + 1
    # one rule application per edge: p(0,1500) … p(1499,1500), then the leaf e(1499, 1500)
    assert depth == 1500


def test_recording_provenance_does_not_change_the_model():
    source = (
        "e(1, 2). e(2, 3). e(3, 1).\np(X, Y) :- e(X, Y).\np(X, Z) :- p(X, Y), e(Y, Z).\n"
        "c(N) :- p(X, _) |> do fn:group_by(), let N = fn:count()."
    )
    assert rows(evaluate(source), "p") == rows(evaluate(source, provenance=True), "p")
    assert rows(evaluate(source), "c") == rows(evaluate(source, provenance=True), "c") == [(3,)]
