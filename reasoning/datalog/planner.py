"""Compiles each rule into a specialised Python function: a join plan turned into nested loops.

Interpreting a rule tuple by tuple (unify, copy a binding dict, look up the next atom) costs several
Python objects per candidate fact. Instead each rule, and each of its semi-naive variants (one per
positive atom that may read the last round's new facts), is planned once and generated as source: one
`for` per positive atom over a hash index keyed by exactly the argument positions bound at that point,
variables as locals holding interned ints, filters as `continue`. The inner loop then allocates nothing
but the derived tuple.

Join order: the delta atom first (it is the smallest relation in a semi-naive round), then greedily the
filter whose variables are bound (negation, comparison, `=`, `let`) or else the positive atom with the
most bound arguments. Index keys are an int for one bound position, a tuple for several.

Provenance variants record, for each derived fact, the tuples its positive atoms matched (in body order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reasoning.datalog.ast import (
    Apply,
    Atom,
    BodyLiteral,
    Clause,
    Comparison,
    Constant,
    Expression,
    Let,
    Location,
    NegatedAtom,
    Variable,
    Wildcard,
)
from reasoning.datalog.values import SCALAR_FUNCTIONS, Interner, number

# run(db, delta, out): adds head tuples (or transform rows) to `out`, a set; with provenance a dict
# new fact → (rule index, *matched tuples), or transform row → matched tuples
RuleFunction = Callable[[dict[str, Any], Any, Any], None]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Clause
    rule_index: int
    delta_position: int | None
    provenance: bool
    row_variables: tuple[str, ...]
    index_positions: tuple[tuple[str, tuple[int, ...]], ...]
    source: str
    run: RuleFunction


def atom_variables(atom: Atom) -> set[str]:
    return {arg.name for arg in atom.args if isinstance(arg, Variable)}


def expression_variables(expression: Expression) -> set[str]:
    if isinstance(expression, Variable):
        return {expression.name}
    if isinstance(expression, Apply):
        return set().union(*(expression_variables(arg) for arg in expression.args))
    return set()


def row_variables(rule: Clause) -> tuple[str, ...]:
    """The body's variables in first-appearance order: the columns a transform receives."""
    seen: dict[str, None] = {}
    for literal in rule.body:
        if isinstance(literal, Atom):
            for arg in literal.args:
                if isinstance(arg, Variable):
                    seen.setdefault(arg.name)
        elif isinstance(literal, Let):
            seen.setdefault(literal.variable.name)
        elif isinstance(literal, Comparison) and literal.op == "=":
            for side in (literal.left, literal.right):
                if isinstance(side, Variable):
                    seen.setdefault(side.name)
    return tuple(seen)


def join_order(body: tuple[BodyLiteral, ...], delta_position: int | None) -> list[int]:
    """Body positions in evaluation order (see the module docstring)."""
    remaining = list(range(len(body)))
    order: list[int] = []
    bound: set[str] = set()
    if delta_position is not None:
        remaining.remove(delta_position)
        order.append(delta_position)
        bound |= atom_variables(_atom(body[delta_position]))
    while remaining:
        chosen = next((i for i in remaining if _is_ready_filter(body[i], bound)), None)
        if chosen is None:
            atoms = [i for i in remaining if isinstance(body[i], Atom)]
            if not atoms:
                raise AssertionError(f"rule body cannot be ordered (analysis let an unsafe rule through): {body}")
            chosen = max(atoms, key=lambda i: (_bound_count(_atom(body[i]), bound), -i))
        remaining.remove(chosen)
        order.append(chosen)
        bound |= _binds(body[chosen], bound)
    return order


def _atom(literal: BodyLiteral) -> Atom:
    assert isinstance(literal, Atom)
    return literal


def _bound_count(atom: Atom, bound: set[str]) -> int:
    return sum(1 for arg in atom.args if isinstance(arg, Constant) or (isinstance(arg, Variable) and arg.name in bound))


def _is_ready_filter(literal: BodyLiteral, bound: set[str]) -> bool:
    if isinstance(literal, NegatedAtom):
        return atom_variables(literal.atom) <= bound
    if isinstance(literal, Let):
        return expression_variables(literal.expression) <= bound
    if isinstance(literal, Comparison):
        if expression_variables(literal.left) | expression_variables(literal.right) <= bound:
            return True
        return literal.op == "=" and _assignment_target(literal, bound) is not None
    return False


def _assignment_target(literal: Comparison, bound: set[str]) -> tuple[Variable, Expression] | None:
    for target, source in ((literal.left, literal.right), (literal.right, literal.left)):
        if isinstance(target, Variable) and target.name not in bound and expression_variables(source) <= bound:
            return target, source
    return None


def _binds(literal: BodyLiteral, bound: set[str]) -> set[str]:
    if isinstance(literal, Atom):
        return atom_variables(literal)
    if isinstance(literal, Let):
        return {literal.variable.name}
    if isinstance(literal, Comparison) and literal.op == "=":
        found = _assignment_target(literal, bound)
        return {found[0].name} if found else set()
    return set()


class _Generator:
    """Builds the source of one rule variant; `names` are the globals the source refers to."""

    def __init__(self, interner: Interner) -> None:
        self.interner = interner
        self.names: dict[str, Any] = {"VAL": interner.values, "NUMID": interner.intern_number}
        self.lines: list[str] = []
        self.depth = 1
        self.in_loop = False
        self.variables: dict[str, str] = {}
        self.indexes: list[tuple[str, tuple[int, ...]]] = []
        self.prelude: list[str] = []

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def global_name(self, prefix: str, value: object) -> str:
        name = f"{prefix}{len(self.names)}"
        self.names[name] = value
        return name

    def constant(self, constant: Constant) -> str:
        return str(self.interner.intern_constant(constant))

    def variable(self, name: str) -> str:
        return self.variables[name]

    def bind(self, name: str) -> str:
        local = f"v{len(self.variables)}"
        self.variables[name] = local
        return local

    def term(self, term: Variable | Constant) -> str:
        return self.constant(term) if isinstance(term, Constant) else self.variable(term.name)

    def relation(self, predicate: str, attribute: str, positions: tuple[int, ...] = ()) -> str:
        local = f"R{len(self.prelude)}"
        if attribute == "facts":
            self.prelude.append(f"{local} = db[{predicate!r}].facts")
        else:
            self.prelude.append(f"{local} = db[{predicate!r}].index({positions!r})")
            self.indexes.append((predicate, positions))
        return local

    def filter(self, condition: str) -> None:
        """Keep going only if `condition` holds: `continue` inside a loop, an `if` block before any."""
        if self.in_loop:
            self.emit(f"if not ({condition}): continue")
        else:
            self.emit(f"if {condition}:")
            self.depth += 1

    def value(self, expression: Expression) -> str:
        """Source evaluating to the Python value (not the id) of an expression."""
        if isinstance(expression, Variable):
            return f"VAL[{self.variable(expression.name)}]"
        if isinstance(expression, Constant):
            return repr(expression.value)
        function = self.global_name("F", SCALAR_FUNCTIONS[expression.function][0])
        location = self.global_name("L", expression.location)
        args = "".join(f"{self.value(arg)}, " for arg in expression.args)
        return f"{function}(({args}), {location})"

    def ident(self, expression: Expression) -> str:
        """Source evaluating to the interned id of an expression."""
        if isinstance(expression, Apply):
            return f"NUMID({self.value(expression)}, {self.global_name('L', expression.location)})"
        return self.term(expression)


def _comparison(op: str) -> Callable[[object, object, Location], bool]:
    def compare(left: object, right: object, location: Location) -> bool:
        a, b = number(left, op, location), number(right, op, location)
        return a < b if op == "<" else a <= b if op == "<=" else a > b if op == ">" else a >= b

    return compare


_COMPARE = {op: _comparison(op) for op in ("<", "<=", ">", ">=")}


def compile_rule(
    rule: Clause, rule_index: int, delta_position: int | None, provenance: bool, interner: Interner
) -> CompiledRule:
    gen = _Generator(interner)
    tuples: dict[int, str] = {}
    for position in join_order(rule.body, delta_position):
        literal = rule.body[position]
        if isinstance(literal, Atom):
            tuples[position] = _emit_atom(gen, literal, position, position == delta_position)
        elif isinstance(literal, NegatedAtom):
            _emit_negation(gen, literal.atom)
        elif isinstance(literal, Let):
            gen.emit(f"{gen.bind(literal.variable.name)} = {gen.ident(literal.expression)}")
        else:
            _emit_comparison(gen, literal)
    columns = row_variables(rule) if rule.transforms else ()
    if rule.transforms:
        produced = "(" + "".join(f"{gen.variable(name)}, " for name in columns) + ")"
    else:
        produced = "(" + "".join(f"{gen.term(_head_term(arg))}, " for arg in rule.head.args) + ")"
    matched = "".join(f"{tuples[p]}, " for p in sorted(tuples))
    if provenance and rule.transforms:
        gen.emit(f"f = {produced}")
        gen.emit(f"if f not in out: out[f] = ({matched})")
    elif provenance:
        # only facts new to the head relation, each with its first derivation: (rule index, *matched tuples)
        head = gen.relation(rule.head.predicate, "facts")
        gen.emit(f"f = {produced}")
        gen.emit(f"if f not in out and f not in {head}: out[f] = ({rule_index}, {matched})")
    else:
        gen.emit(f"add({produced})")
    header = ["def run(db, delta, out):"]
    header += [f"    {line}" for line in gen.prelude]
    if not provenance:
        header.append("    add = out.add")
    source = "\n".join(header + gen.lines) + "\n"
    namespace = dict(gen.names)
    namespace.update({f"CMP_{name}": fn for name, fn in zip(("lt", "le", "gt", "ge"), _COMPARE.values(), strict=True)})
    exec(compile(source, f"<rule {rule.location}>", "exec"), namespace)
    return CompiledRule(
        rule, rule_index, delta_position, provenance, columns, tuple(gen.indexes), source, namespace["run"]
    )


def _head_term(arg: object) -> Variable | Constant:
    assert isinstance(arg, Variable | Constant)
    return arg


def _emit_atom(gen: _Generator, atom: Atom, position: int, is_delta: bool) -> str:
    """A loop (or a membership test) over `atom`; binds its new variables; returns the tuple's local name."""
    name = f"t{position}"
    bound_positions = [
        i
        for i, arg in enumerate(atom.args)
        if not is_delta and (isinstance(arg, Constant) or (isinstance(arg, Variable) and arg.name in gen.variables))
    ]
    keys = [gen.term(_head_term(atom.args[i])) for i in bound_positions]
    if not is_delta and len(bound_positions) == atom.arity:
        facts = gen.relation(atom.predicate, "facts")
        gen.emit(f"{name} = ({''.join(f'{key}, ' for key in keys)})")
        gen.filter(f"{name} in {facts}")
        return name
    if is_delta:
        gen.emit(f"for {name} in delta:")
    elif not bound_positions:
        gen.emit(f"for {name} in {gen.relation(atom.predicate, 'facts')}:")
    else:
        index = gen.relation(atom.predicate, "index", tuple(bound_positions))
        key = keys[0] if len(keys) == 1 else f"({', '.join(keys)})"
        gen.emit(f"for {name} in {index}.get({key}, ()):")
    gen.depth += 1
    gen.in_loop = True
    for i, arg in enumerate(atom.args):
        if i in bound_positions or isinstance(arg, Wildcard):
            continue
        if isinstance(arg, Constant):
            gen.emit(f"if {name}[{i}] != {gen.constant(arg)}: continue")
        elif isinstance(arg, Variable) and arg.name in gen.variables:
            gen.emit(f"if {name}[{i}] != {gen.variable(arg.name)}: continue")
        elif isinstance(arg, Variable):
            gen.emit(f"{gen.bind(arg.name)} = {name}[{i}]")
    return name


def _emit_negation(gen: _Generator, atom: Atom) -> None:
    keys = [(i, gen.term(arg)) for i, arg in enumerate(atom.args) if isinstance(arg, Variable | Constant)]
    if len(keys) == atom.arity:
        facts = gen.relation(atom.predicate, "facts")
        gen.filter(f"({''.join(f'{key}, ' for _, key in keys)}) not in {facts}")
    elif keys:
        index = gen.relation(atom.predicate, "index", tuple(i for i, _ in keys))
        key = keys[0][1] if len(keys) == 1 else f"({', '.join(key for _, key in keys)})"
        gen.filter(f"not {index}.get({key})")
    else:
        gen.filter(f"not {gen.relation(atom.predicate, 'facts')}")


def _emit_comparison(gen: _Generator, literal: Comparison) -> None:
    if literal.op == "=":
        found = _assignment_target(literal, set(gen.variables))
        if found is not None:
            target, source = found
            gen.emit(f"{gen.bind(target.name)} = {gen.ident(source)}")
            return
    if literal.op in ("=", "!="):
        operator = "==" if literal.op == "=" else "!="
        gen.filter(f"{gen.ident(literal.left)} {operator} {gen.ident(literal.right)}")
        return
    compare = {"<": "CMP_lt", "<=": "CMP_le", ">": "CMP_gt", ">=": "CMP_ge"}[literal.op]
    location = gen.global_name("L", literal.location)
    gen.filter(f"{compare}({gen.value(literal.left)}, {gen.value(literal.right)}, {location})")
