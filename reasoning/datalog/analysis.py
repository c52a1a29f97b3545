"""Checks a parsed program before anything runs, and splits it into strata.

Rejected, each with `file:line:col: message`: a predicate used with two arities, facts or arguments that
break a `Decl`, unknown functions or wrong function arity, unsafe rules (a head variable, or a variable
of a negated atom, comparison or function, that no positive atom, `=` or `let` binds), and programs
whose recursion passes through negation or aggregation (the cycle is named).

Each strongly connected component of the predicate dependency graph is one stratum; strata are listed
so that everything a stratum reads is computed before it. Negation and transforms (aggregation) may
only read lower strata.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from reasoning.datalog.ast import (
    Apply,
    Atom,
    Clause,
    Comparison,
    Constant,
    Decl,
    Expression,
    Let,
    Location,
    NegatedAtom,
    Program,
    Transform,
    Variable,
    Wildcard,
)
from reasoning.datalog.errors import DatalogAnalysisError
from reasoning.datalog.values import REDUCERS, SCALAR_FUNCTIONS

# Each positive atom becomes one nested loop of generated Python, which allows 20 nested blocks.
MAX_BODY_ATOMS = 16
_TYPE_OF_KIND = {"name": "/name", "string": "/string", "int": "/number", "float": "/float64"}


@dataclass(frozen=True, slots=True)
class Stratum:
    predicates: frozenset[str]
    rules: tuple[Clause, ...]
    recursive: bool


@dataclass(frozen=True, slots=True)
class AnalysedProgram:
    file: str
    facts: tuple[Clause, ...]
    rules: tuple[Clause, ...]
    arities: dict[str, int]
    decls: dict[str, Decl]
    strata: tuple[Stratum, ...]

    def check_fact(self, predicate: str, args: tuple[Constant, ...], location: Location) -> None:
        """Arity and `Decl` bounds of a fact from outside the rule file (JSON facts, an intent's facts)."""
        _check_arity(self.arities, {}, predicate, len(args), location)
        decl = self.decls.get(predicate)
        if decl is not None:
            _check_bounds(decl, dict(enumerate(args)), predicate, location)


def analyse(program: Program) -> AnalysedProgram:
    decls = _decls(program.decls)
    arities = {name: decl.arity for name, decl in decls.items()}
    first_use: dict[str, Location] = {name: decl.location for name, decl in decls.items()}
    for clause in program.clauses:
        for atom in _atoms(clause):
            _check_arity(arities, first_use, atom.predicate, atom.arity, atom.location)
    facts, rules = [], []
    for clause in program.clauses:
        if clause.is_fact:
            _check_ground(clause)
            facts.append(clause)
        else:
            _check_rule(clause)
            rules.append(clause)
        decl = decls.get(clause.head.predicate)
        if decl is not None:
            constants = {i: arg for i, arg in enumerate(clause.head.args) if isinstance(arg, Constant)}
            _check_bounds(decl, constants, clause.head.predicate, clause.head.location)
    strata = _stratify(rules)
    return AnalysedProgram(program.file, tuple(facts), tuple(rules), arities, decls, strata)


def _decls(decls: Iterable[Decl]) -> dict[str, Decl]:
    found: dict[str, Decl] = {}
    for decl in decls:
        if decl.predicate in found:
            raise DatalogAnalysisError(
                decl.location, f"{decl.predicate} is declared twice (first at {found[decl.predicate].location})"
            )
        for bound in decl.bounds:
            if len(bound) != decl.arity:
                raise DatalogAnalysisError(
                    decl.location,
                    f"Decl {decl.predicate}: bound has {len(bound)} types for {decl.arity} arguments",
                )
        found[decl.predicate] = decl
    return found


def _atoms(clause: Clause) -> Iterator[Atom]:
    yield clause.head
    for literal in clause.body:
        if isinstance(literal, Atom):
            yield literal
        elif isinstance(literal, NegatedAtom):
            yield literal.atom


def _check_arity(
    arities: dict[str, int], first_use: dict[str, Location], predicate: str, arity: int, location: Location
) -> None:
    known = arities.setdefault(predicate, arity)
    if known != arity:
        where = f" (as at {first_use[predicate]})" if predicate in first_use else ""
        raise DatalogAnalysisError(location, f"{predicate} has {known} arguments{where}, but {arity} are given here")
    first_use.setdefault(predicate, location)


def _check_bounds(decl: Decl, constants: dict[int, Constant], predicate: str, location: Location) -> None:
    if not decl.bounds:
        return
    for bound in decl.bounds:
        if all(bound[i] in ("/any", _TYPE_OF_KIND[c.kind]) for i, c in constants.items()):
            return
    shown = ", ".join(f"{decl.arg_names[i]}={c}" for i, c in sorted(constants.items()))
    expected = " or ".join(f"[{', '.join(bound)}]" for bound in decl.bounds)
    raise DatalogAnalysisError(
        location, f"{predicate}({shown}) does not match Decl {predicate} at {decl.location}: expected {expected}"
    )


def _check_ground(clause: Clause) -> None:
    for arg in clause.head.args:
        if not isinstance(arg, Constant):
            raise DatalogAnalysisError(
                clause.location, f"fact {clause.head} is not ground: {arg} needs a rule body that binds it"
            )


def _variables(expression: Expression) -> Iterator[Variable]:
    if isinstance(expression, Variable):
        yield expression
    elif isinstance(expression, Apply):
        for arg in expression.args:
            yield from _variables(arg)


def _check_function(expression: Expression, reducer: bool) -> None:
    if not isinstance(expression, Apply):
        if reducer:
            raise DatalogAnalysisError(
                _location_of(expression), "a let after fn:group_by needs a reducer (fn:count, fn:sum, ...)"
            )
        return
    if reducer:
        if expression.function not in REDUCERS:
            known = ", ".join(REDUCERS)
            raise DatalogAnalysisError(
                expression.location, f"{expression.function} is not a reducer; after fn:group_by use {known}"
            )
        arity = REDUCERS[expression.function][1]
        if len(expression.args) != arity or not all(isinstance(a, Variable) for a in expression.args):
            wanted = "no arguments" if arity == 0 else "one variable"
            raise DatalogAnalysisError(expression.location, f"{expression.function} takes {wanted}")
        return
    spec = SCALAR_FUNCTIONS.get(expression.function)
    if spec is None:
        hint = " (a reducer: use it after |> do fn:group_by(...))" if expression.function in REDUCERS else ""
        raise DatalogAnalysisError(expression.location, f"unknown function {expression.function}{hint}")
    _, least, most = spec
    if len(expression.args) < least or (most is not None and len(expression.args) > most):
        wanted = str(least) if least == most else f"at least {least}" if most is None else f"{least} to {most}"
        raise DatalogAnalysisError(
            expression.location,
            f"{expression.function} takes {wanted} arguments, {len(expression.args)} given",
        )
    for arg in expression.args:
        _check_function(arg, reducer=False)


def _location_of(expression: Expression) -> Location:
    return expression.location if isinstance(expression, Apply) else Location("<unknown>", 0, 0)


def _body_bindings(clause: Clause) -> set[str]:
    """Variables the body binds: positive atoms, then `=` and `let` whose inputs are bound, to a fixpoint."""
    bound = {arg.name for lit in clause.body if isinstance(lit, Atom) for arg in lit.args if isinstance(arg, Variable)}
    changed = True
    while changed:
        changed = False
        for literal in clause.body:
            if isinstance(literal, Let) and literal.variable.name not in bound:
                if all(v.name in bound for v in _variables(literal.expression)):
                    bound.add(literal.variable.name)
                    changed = True
            elif isinstance(literal, Comparison) and literal.op == "=":
                for target, source in ((literal.left, literal.right), (literal.right, literal.left)):
                    if (
                        isinstance(target, Variable)
                        and target.name not in bound
                        and all(v.name in bound for v in _variables(source))
                    ):
                        bound.add(target.name)
                        changed = True
    return bound


def _check_rule(clause: Clause) -> None:
    atoms = sum(1 for literal in clause.body if isinstance(literal, Atom))
    if atoms > MAX_BODY_ATOMS:
        raise DatalogAnalysisError(
            clause.location, f"rule has {atoms} positive atoms; at most {MAX_BODY_ATOMS} are supported (split it)"
        )
    bound = _body_bindings(clause)
    for literal in clause.body:
        if isinstance(literal, NegatedAtom):
            for arg in literal.atom.args:
                if isinstance(arg, Variable) and arg.name not in bound:
                    raise DatalogAnalysisError(
                        literal.location,
                        f"unsafe: variable {arg} in negated atom {literal.atom} is not bound by a positive atom",
                    )
        elif isinstance(literal, Comparison | Let):
            expressions = (literal.left, literal.right) if isinstance(literal, Comparison) else (literal.expression,)
            for expression in expressions:
                _check_function(expression, reducer=False)
                for variable in _variables(expression):
                    if variable.name not in bound:
                        raise DatalogAnalysisError(
                            literal.location,
                            f"unsafe: variable {variable} in {literal} is not bound by a positive atom or let",
                        )
            if isinstance(literal, Let) and _bound_twice(clause, literal):
                raise DatalogAnalysisError(literal.location, f"{literal.variable} is bound twice")
    available = bound
    for transform in clause.transforms:
        available = _check_transform(transform, available)
    for arg in clause.head.args:
        if isinstance(arg, Wildcard):
            raise DatalogAnalysisError(clause.head.location, f"'_' cannot stand in the head {clause.head}")
        if isinstance(arg, Variable) and arg.name not in available:
            reason = "after the transforms" if clause.transforms else "by the body"
            raise DatalogAnalysisError(
                clause.head.location, f"unsafe: head variable {arg} of {clause.head} is not bound {reason}"
            )


def _bound_twice(clause: Clause, let: Let) -> bool:
    lets = sum(1 for other in clause.body if isinstance(other, Let) and other.variable == let.variable)
    in_atoms = any(let.variable in literal.args for literal in clause.body if isinstance(literal, Atom))
    return lets > 1 or in_atoms


def _check_transform(transform: Transform, available: set[str]) -> set[str]:
    reducer = transform.group_by is not None
    for variable in transform.group_by or ():
        if variable.name not in available:
            raise DatalogAnalysisError(transform.location, f"fn:group_by({variable}): {variable} is not bound")
    result = {v.name for v in transform.group_by} if transform.group_by is not None else set(available)
    for let in transform.lets:
        _check_function(let.expression, reducer)
        for variable in _variables(let.expression):
            if variable.name not in available:
                raise DatalogAnalysisError(let.location, f"unsafe: variable {variable} in {let} is not bound")
        if let.variable.name in result:
            raise DatalogAnalysisError(let.location, f"{let.variable} is bound twice")
        result.add(let.variable.name)
    return result


def _stratify(rules: Iterable[Clause]) -> tuple[Stratum, ...]:
    """Tarjan's SCCs over `head → body predicate` edges; an SCC comes out after everything it reads."""
    rules_of: dict[str, list[Clause]] = {}
    for rule in rules:
        rules_of.setdefault(rule.head.predicate, []).append(rule)
    # predicate → [(body predicate, strict: negated or aggregated, location of the literal)]
    edges: dict[str, list[tuple[str, bool, Location]]] = {}
    for head, clauses in rules_of.items():
        for rule in clauses:
            for literal in rule.body:
                if isinstance(literal, Atom | NegatedAtom):
                    atom = literal.atom if isinstance(literal, NegatedAtom) else literal
                    strict = isinstance(literal, NegatedAtom) or bool(rule.transforms)
                    if atom.predicate in rules_of:
                        edges.setdefault(head, []).append((atom.predicate, strict, literal.location))
    components = _strongly_connected(list(rules_of), edges)
    strata: list[Stratum] = []
    for component in components:
        members = frozenset(component)
        inner = [
            (head, dep, strict, loc) for head in component for dep, strict, loc in edges.get(head, ()) if dep in members
        ]
        for head, dep, strict, location in inner:
            if strict:
                cycle = " -> ".join([head, f"!{dep}", *_path(dep, head, edges, members)[1:]])
                raise DatalogAnalysisError(
                    location, f"not stratifiable: recursion through negation or aggregation: {cycle}"
                )
        ordered_rules = tuple(rule for head in sorted(members) for rule in rules_of[head])
        strata.append(Stratum(members, ordered_rules, recursive=bool(inner)))
    return tuple(strata)


def _path(
    start: str, goal: str, edges: dict[str, list[tuple[str, bool, Location]]], members: frozenset[str]
) -> list[str]:
    """Shortest dependency path start → … → goal inside one component (breadth first)."""
    previous: dict[str, str] = {start: start}
    frontier = [start]
    while goal not in previous:
        following: list[str] = []
        for node in frontier:
            for dep, _, _ in edges.get(node, ()):
                if dep in members and dep not in previous:
                    previous[dep] = node
                    following.append(dep)
        frontier = following
    path = [goal]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return path[::-1]


def _strongly_connected(nodes: list[str], edges: dict[str, list[tuple[str, bool, Location]]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        # iterative Tarjan: (node, iterator over its successors)
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for dep, _, _ in successors:
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(edges.get(dep, ()))))
                    advanced = True
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
