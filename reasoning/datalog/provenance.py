"""Derivation trees, on demand, as JSON: what the proof log stores for a Datalog decision.

Evaluation keeps only each derived fact's rule and the tuples its positive atoms matched; the rest
(variable bindings, values computed by `=`/`let`, the absent facts that negations relied on) is rebuilt
here from the rule, so recording stays cheap. A node:

    {"fact": "deny(/i1, /restricted)", "rule": "policy.mg:40:1", "clause": "deny(I, ...) :- ...",
     "bindings": {"I": "/i1", ...}, "premises": [node, ...], "absent": ["halted(/btc)"]}

A fact given as input is a leaf: {"fact": ..., "source": "policy.mg:3:1"} for a fact of the rule file,
{"fact": ..., "source": "input"} for one supplied at evaluation time. A fact derived by a transform
rule lists its group's rows: "rows": [{"bindings": ..., "premises": [...]}, ...].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasoning.datalog.ast import Atom, Clause, Comparison, Constant, Let, NegatedAtom, Variable, Wildcard
from reasoning.datalog.evaluation import Fact, Model, evaluate_expression

JsonValue = str | int | float


def json_value(constant: Constant) -> JsonValue:
    return constant.value


def render(predicate: str, args: Sequence[Constant]) -> str:
    return f"{predicate}({', '.join(map(str, args))})"


def explain(model: Model, predicate: str, args: Sequence[Constant]) -> dict[str, Any] | None:
    """The derivation tree of `predicate(args)`, or None if the fact does not hold."""
    if not model.contains(predicate, args):
        return None
    ids = model.engine.interner.ids
    root = (predicate, tuple(ids[(arg.kind, arg.value)] for arg in args))
    nodes: dict[tuple[str, Fact], dict[str, Any]] = {}
    # iterative post-order: recursive derivations (a 1,000-step path) are deeper than Python's stack
    stack: list[tuple[str, Fact]] = [root]
    while stack:
        key = stack[-1]
        if key in nodes:
            stack.pop()
            continue
        premises = _premise_keys(model, *key)
        missing = [premise for premise in premises if premise not in nodes]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        nodes[key] = _node(model, key[0], key[1], nodes)
    return nodes[root]


def _premise_keys(model: Model, predicate: str, fact: Fact) -> list[tuple[str, Fact]]:
    derivation = model.derivation(predicate, fact)
    if derivation is None:
        return []
    rule_index, *premises = derivation
    rule = model.engine.rules[rule_index]
    atoms = [literal.predicate for literal in rule.body if isinstance(literal, Atom)]
    rows = premises if rule.transforms else [premises]
    return [(name, tuple(row_fact)) for row in rows for name, row_fact in zip(atoms, row, strict=True)]


def _node(model: Model, predicate: str, fact: Fact, nodes: dict[tuple[str, Fact], dict[str, Any]]) -> dict[str, Any]:
    args = model.decode(fact)
    text = render(predicate, args)
    derivation = model.derivation(predicate, fact)
    if derivation is None:
        location = model.engine.program_facts.get(predicate, {}).get(fact)
        return {"fact": text, "source": str(location) if location is not None else "input"}
    rule_index, *premises = derivation
    rule = model.engine.rules[rule_index]
    node: dict[str, Any] = {"fact": text, "rule": str(rule.location), "clause": str(rule)}
    atoms = [literal for literal in rule.body if isinstance(literal, Atom)]
    if rule.transforms:
        node["bindings"] = {
            arg.name: json_value(value)
            for arg, value in zip(rule.head.args, args, strict=True)
            if isinstance(arg, Variable)
        }
        node["rows"] = [_body(model, rule, atoms, row, nodes) for row in premises]
    else:
        node.update(_body(model, rule, atoms, premises, nodes))
    return node


def _body(
    model: Model,
    rule: Clause,
    atoms: list[Atom],
    matched: Sequence[Fact],
    nodes: dict[tuple[str, Fact], dict[str, Any]],
) -> dict[str, Any]:
    interner = model.engine.interner
    env: dict[str, int] = {}
    for atom, row in zip(atoms, matched, strict=True):
        for arg, ident in zip(atom.args, row, strict=True):
            if isinstance(arg, Variable):
                env[arg.name] = ident
    _bind_computed(rule, env, model)
    body: dict[str, Any] = {
        "bindings": {name: interner.values[ident] for name, ident in sorted(env.items())},
        "premises": [nodes[(atom.predicate, tuple(row))] for atom, row in zip(atoms, matched, strict=True)],
    }
    absent = [
        render(literal.atom.predicate, [_instantiate(arg, env, model) for arg in literal.atom.args])
        for literal in rule.body
        if isinstance(literal, NegatedAtom)
    ]
    if absent:
        body["absent"] = absent
    conditions = [str(literal) for literal in rule.body if isinstance(literal, Comparison)]
    if conditions:
        body["conditions"] = conditions
    return body


def _instantiate(arg: object, env: dict[str, int], model: Model) -> Any:
    if isinstance(arg, Variable):
        return model.engine.interner.constant(env[arg.name])
    return Wildcard() if isinstance(arg, Wildcard) else arg


def _bind_computed(rule: Clause, env: dict[str, int], model: Model) -> None:
    """Values bound by `let` and by `=` with one unbound variable, in whatever order their inputs allow."""
    pending = [literal for literal in rule.body if isinstance(literal, Let | Comparison)]
    progress = True
    while pending and progress:
        progress = False
        for literal in list(pending):
            if isinstance(literal, Let):
                target, source = literal.variable, literal.expression
            elif literal.op == "=" and isinstance(literal.left, Variable) and literal.left.name not in env:
                target, source = literal.left, literal.right
            elif literal.op == "=" and isinstance(literal.right, Variable) and literal.right.name not in env:
                target, source = literal.right, literal.left
            else:
                pending.remove(literal)
                continue
            try:
                env[target.name] = evaluate_expression(source, env, model.engine.interner)
            except KeyError:
                continue
            pending.remove(literal)
            progress = True
