from __future__ import annotations

import pytest

from reasoning.datalog.ast import Atom, Comparison, Constant, Let, NegatedAtom, Variable, Wildcard
from reasoning.datalog.errors import DatalogSyntaxError
from reasoning.datalog.parser import parse_atom, parse_program


def test_constants_keep_their_kind_names_with_slash_strings_unquoted():
    (clause,) = parse_program('c(/binance/usdm, "BTC/USDT:USDT", -3, 1.5e-3, _).', "p.mg").clauses
    assert clause.head.args == (
        Constant("name", "/binance/usdm"),
        Constant("string", "BTC/USDT:USDT"),
        Constant("int", -3),
        Constant("float", 0.0015),
        Wildcard(),
    )


def test_a_name_ending_a_clause_does_not_swallow_the_full_stop():
    (clause,) = parse_program("p(X) :- q(X), X = /a.", "p.mg").clauses
    assert clause.body[1] == Comparison("=", Variable("X"), Constant("name", "/a"), clause.body[1].location)


def test_rule_body_has_atoms_negations_comparisons_and_lets_in_order():
    program = parse_program("r(X, Z) :- p(X), !q(X), X >= 2, let Z = fn:plus(X, 1).  # comment", "p.mg")
    kinds = [type(literal) for literal in program.clauses[0].body]
    assert kinds == [Atom, NegatedAtom, Comparison, Let]


def test_transform_reads_group_by_and_reducer_lets():
    (clause,) = parse_program("t(S, N) :- pos(S, Q) |> do fn:group_by(S), let N = fn:sum(Q).", "p.mg").clauses
    (transform,) = clause.transforms
    assert transform.group_by == (Variable("S"),)
    assert str(transform) == "|> do fn:group_by(S), let N = fn:sum(Q)"


def test_decl_with_descr_and_bounds():
    program = parse_program(
        'Decl pos(S, Q) descr [doc("positions")] bound [/name, /number] bound [/name, /float64].', "p.mg"
    )
    (decl,) = program.decls
    assert (decl.predicate, decl.arg_names, decl.doc) == ("pos", ("S", "Q"), "positions")
    assert decl.bounds == (("/name", "/number"), ("/name", "/float64"))


def test_locations_are_line_and_column_of_the_head():
    program = parse_program("# header\n\n  edge(/a, /b).\n", "rules.mg")
    assert str(program.clauses[0].location) == "rules.mg:3:3"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("edge(/a, /b)", "rules.mg:1:13: expected '.' at the end of a clause, found end of input"),
        ("edge(/a /b).", "rules.mg:1:9: expected ')' to close the arguments of edge, found '/b'"),
        ("p(X) :- q(X), X ~ 1.", "rules.mg:1:17: unexpected character '~'"),
        ('p("a\\q").', "rules.mg:1:5: unknown escape '\\q' in string"),
        ("p(X) :-\n  X.", "rules.mg:2:4: expected a comparison operator (=, !=, <, <=, >, >=), found '.'"),
        ("t(N) :- p(X) |> do fn:sum(X).", "rules.mg:1:20: expected 'fn:group_by' after 'do', found 'fn:sum'"),
        (
            "Decl p(X) bound [/int].",
            "rules.mg:1:18: expected a type (/any, /name, /string, /number, /float64), found '/int'",
        ),
    ],
)
def test_syntax_errors_name_file_line_and_column(source: str, message: str):
    with pytest.raises(DatalogSyntaxError) as caught:
        parse_program(source, "rules.mg")
    assert str(caught.value) == message


def test_query_atom_may_end_with_a_full_stop():
    assert parse_atom("deny(/i1, R).") == parse_atom("deny(/i1, R)")
