"""Compiles a checked rule set to Z3, once per rule load.

Every vocabulary constant and limit value is a Z3 real constant; `qty` a real variable. Each limit `i`
becomes `track_i ⇒ (growth ⇒ body_i)` (or `track_i ⇒ body_i` for `applies_to = "all"`), where `track_i`
is the Boolean assumption literal that names it in an unsat core and
`growth ≡ reduce_only = 0 ∧ qty > growth_threshold` (see vocabulary.py).

Per decision the prover substitutes numerals for the constants (one `Z3_substitute` over the compiled
conjunction) rather than asserting `constant = value`: with the values in place every product of a
constant and `qty` is linear, so Z3 stays in linear real arithmetic instead of nonlinear arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from reasoning.limits import ir
from reasoning.limits.parser import Limit, RuleSet


@dataclass(frozen=True, slots=True)
class CompiledLimit:
    limit: Limit
    body: ir.Node  # what the prover enforces: `limit.body`, or `Truth(True)` when mutated by a test
    track: z3.BoolRef  # assumption literal naming the limit


@dataclass(frozen=True, slots=True)
class CompiledRuleSet:
    ruleset: RuleSet
    limits: tuple[CompiledLimit, ...]
    qty: z3.ArithRef
    constants: dict[str, z3.ArithRef]  # vocabulary constants and limit values used by the terms
    conjunction: z3.BoolRef  # ∧ track_i ⇒ (guard ⇒ body_i), over the constants

    def by_track(self) -> dict[str, CompiledLimit]:
        return {str(item.track): item for item in self.limits}


def compile_ruleset(ruleset: RuleSet, weakened: frozenset[str] = frozenset()) -> CompiledRuleSet:
    """Z3 terms for every limit. `weakened` (limit names) is the mutation-testing hook: those constraints
    compile to `True`, so the property test can show it catches every single weakening."""
    unknown = weakened - {limit.name for limit in ruleset.limits}
    if unknown:
        raise ValueError(f"cannot weaken unknown limits: {sorted(unknown)}")
    builder = _TermBuilder()
    growth = z3.And(builder.constant("reduce_only") == 0, builder.qty > builder.constant("growth_threshold"))
    compiled: list[CompiledLimit] = []
    implications: list[z3.BoolRef] = []
    for limit in ruleset.limits:
        body = ir.Truth(True) if limit.name in weakened else limit.body
        track = z3.Bool(f"limit:{limit.name}")
        term = builder.boolean(body)
        if limit.applies_to == "growth":
            term = z3.Implies(growth, term)
        implications.append(z3.Implies(track, term))
        compiled.append(CompiledLimit(limit, body, track))
    return CompiledRuleSet(ruleset, tuple(compiled), builder.qty, builder.constants, z3.And(*implications))


class _TermBuilder:
    def __init__(self) -> None:
        self.qty = z3.Real("qty")
        self.constants: dict[str, z3.ArithRef] = {}

    def constant(self, name: str) -> z3.ArithRef:
        if name not in self.constants:
            self.constants[name] = z3.Real(name)
        return self.constants[name]

    def boolean(self, node: ir.Node) -> z3.BoolRef:
        match node:
            case ir.Truth(value=value):
                return z3.BoolVal(value)
            case ir.Compare(op=op, left=left, right=right):
                return _COMPARE[op](self.number(left), self.number(right))
            case ir.Logic(op="and", operands=operands):
                return z3.And(*(self.boolean(item) for item in operands))
            case ir.Logic(op="or", operands=operands):
                return z3.Or(*(self.boolean(item) for item in operands))
            case ir.Not(operand=operand):
                return z3.Not(self.boolean(operand))
            case ir.Choice(test=test, body=body, orelse=orelse):
                return z3.If(self.boolean(test), self.boolean(body), self.boolean(orelse))
        raise TypeError(f"not a condition: {node!r}")

    def number(self, node: ir.Node) -> z3.ArithRef:
        match node:
            case ir.Number(value=value):
                return z3.RealVal(repr(value))
            case ir.Constant(name=name):
                return self.constant(name)
            case ir.Qty():
                return self.qty
            case ir.Negate(operand=operand):
                return -self.number(operand)
            case ir.Arith(op=op, left=left, right=right):
                return _ARITH[op](self.number(left), self.number(right))
            case ir.Abs(operand=operand):
                value = self.number(operand)
                return z3.If(value >= 0, value, -value)
            case ir.Extremum(op=op, left=left, right=right):
                first, second = self.number(left), self.number(right)
                return z3.If(first <= second, first, second) if op == "min" else z3.If(first >= second, first, second)
            case ir.Choice(test=test, body=body, orelse=orelse):
                return z3.If(self.boolean(test), self.number(body), self.number(orelse))
        raise TypeError(f"not a number: {node!r}")


_COMPARE = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_ARITH = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}
