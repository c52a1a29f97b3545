"""Random programs, evaluated by the engine and by independent oracles, must agree exactly.

Oracles: a naive fixpoint written here (brute force over every variable assignment, stratum by stratum),
and pyDatalog for positive recursive programs.
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .helpers import evaluate, rows

DOMAIN = range(4)
VARIABLES = ("X", "Y", "Z")
EDB = ("e0", "e1")
IDB = ("p0", "p1", "p2", "p3")  # p_k may use p_j positively for j <= k (recursion), negatively for j < k


@st.composite
def programs(
    draw: st.DrawFn,
) -> tuple[dict[str, set[tuple[int, int]]], list[tuple[str, tuple[str, str], list[tuple[bool, str, tuple[str, str]]]]]]:
    facts = {
        name: set(draw(st.lists(st.tuples(st.sampled_from(DOMAIN), st.sampled_from(DOMAIN)), max_size=8)))
        for name in EDB
    }
    rules = []
    for level, head in enumerate(IDB):
        for _ in range(draw(st.integers(1, 2))):
            positive_names = EDB + IDB[: level + 1]
            body = []
            for _ in range(draw(st.integers(1, 3))):
                atom_args = (draw(st.sampled_from(VARIABLES)), draw(st.sampled_from(VARIABLES)))
                body.append((True, draw(st.sampled_from(positive_names)), atom_args))
            bound = sorted({v for _, _, args in body for v in args})
            if level and draw(st.booleans()):
                body.append(
                    (
                        False,
                        draw(st.sampled_from(IDB[:level] + EDB)),
                        (draw(st.sampled_from(bound)), draw(st.sampled_from(bound))),
                    )
                )
            rules.append((head, (draw(st.sampled_from(bound)), draw(st.sampled_from(bound))), body))
    return facts, rules


def mangle_source(facts, rules) -> str:
    lines = [f"{name}({a}, {b})." for name, pairs in facts.items() for a, b in sorted(pairs)]
    for head, (x, y), body in rules:
        literals = [f"{'' if positive else '!'}{name}({a}, {b})" for positive, name, (a, b) in body]
        lines.append(f"{head}({x}, {y}) :- {', '.join(literals)}.")
    return "\n".join(lines)


def naive_fixpoint(facts, rules) -> dict[str, set[tuple[int, int]]]:
    model = {name: set(pairs) for name, pairs in facts.items()} | {name: set() for name in IDB}
    for head_name in IDB:  # strata: IDB order (negation only looks back)
        changed = True
        while changed:
            changed = False
            for head, (x, y), body in rules:
                if head != head_name:
                    continue
                for values in itertools.product(DOMAIN, repeat=len(VARIABLES)):
                    env = dict(zip(VARIABLES, values, strict=True))
                    if all(((env[a], env[b]) in model[name]) == positive for positive, name, (a, b) in body):
                        fact = (env[x], env[y])
                        if fact not in model[head]:
                            model[head].add(fact)
                            changed = True
    return model


@given(programs())
@settings(max_examples=150, deadline=None)
def test_stratified_programs_agree_with_a_naive_fixpoint(program):
    facts, rules = program
    model = evaluate(mangle_source(facts, rules))
    expected = naive_fixpoint(facts, rules)
    for name in IDB:
        assert set(rows(model, name)) == expected[name], name


@pytest.mark.parametrize("seed", range(20))
def test_recursive_closure_agrees_with_pydatalog(seed: int):
    pydatalog = pytest.importorskip("pyDatalog.pyDatalog")
    rng = random.Random(seed)
    # acyclic: pyDatalog's resolution does not always terminate on cycles (the naive oracle covers those)
    edges = {tuple(sorted(rng.sample(range(8), 2))) for _ in range(rng.randrange(1, 14))}
    pydatalog.clear()
    program = "\n".join(f"+ edge({a}, {b})" for a, b in sorted(edges))
    pydatalog.load(program + "\npath(X, Y) <= edge(X, Y)\npath(X, Z) <= edge(X, Y) & path(Y, Z)")
    answer = pydatalog.ask("path(X, Y)")
    expected = set(answer.answers) if answer else set()
    source = "\n".join(f"edge({a}, {b})." for a, b in sorted(edges))
    model = evaluate(source + "\npath(X, Y) :- edge(X, Y).\npath(X, Z) :- edge(X, Y), path(Y, Z).")
    assert set(rows(model, "path")) == expected
