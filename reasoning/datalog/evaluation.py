"""Bottom-up evaluation: strata in order, semi-naive inside each, over interned tuples.

Hand-written because the engine must be exact, explainable and fast on recursion. pyDatalog (in the
package list) resolves queries top-down with memoisation: its answers depend on clause order and
recursion is slow. It serves as the differential oracle in the tests, not as the engine.

A relation is a set of int tuples plus hash indexes (dicts of lists) on the argument positions that
some compiled rule looks up; indexes are built on first use and kept up to date as facts arrive.
Round one of a stratum evaluates every rule on the full relations; each later round evaluates, for
every positive atom over a predicate of the stratum, the rule variant that reads only the previous
round's new facts there. With provenance on, the first derivation of each fact is kept: its rule and
the tuples its positive atoms matched. Keeping the first one makes every derivation tree finite.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reasoning.datalog.analysis import AnalysedProgram, Stratum
from reasoning.datalog.ast import Apply, Atom, Clause, Constant, Expression, Location, NegatedAtom, Variable
from reasoning.datalog.planner import CompiledRule, compile_rule
from reasoning.datalog.values import REDUCERS, SCALAR_FUNCTIONS, Interner, sort_key

Fact = tuple[int, ...]
FactSet = Mapping[str, Collection[Sequence[Constant]]]
# provenance of one derived fact: (rule index, *premises); the premises are the matched tuples of the
# rule's positive atoms in body order, or for a transform rule one tuple of those per contributing row
Derivation = tuple[Any, ...]
ProvenanceStore = dict[str, dict[Fact, Derivation]]
UndoLog = list[tuple["Relation", list[Fact]] | tuple[str, "Relation"]]


class Relation:
    """The facts of one predicate and its indexes: positions → {key: [fact, ...]}."""

    __slots__ = ("facts", "indexes")

    def __init__(self, facts: Iterable[Fact] = ()) -> None:
        self.facts: set[Fact] = set(facts)
        self.indexes: dict[tuple[int, ...], tuple[Callable[[Fact], Any], dict[Any, list[Fact]]]] = {}

    def index(self, positions: tuple[int, ...]) -> dict[Any, list[Fact]]:
        found = self.indexes.get(positions)
        if found is None:
            key = operator.itemgetter(*positions)
            buckets: dict[Any, list[Fact]] = {}
            for fact in self.facts:
                buckets.setdefault(key(fact), []).append(fact)
            found = self.indexes[positions] = (key, buckets)
        return found[1]

    def extend(self, new: Sequence[Fact]) -> None:
        """Add facts known to be absent."""
        self.facts.update(new)
        for key, buckets in self.indexes.values():
            get = buckets.get
            for fact in new:
                bucket = get(key(fact))
                if bucket is None:
                    buckets[key(fact)] = [fact]
                else:
                    bucket.append(fact)

    def retract(self, added: Sequence[Fact]) -> None:
        """Undo `extend(added)`; called in reverse order of the extends, so each fact is its bucket's last."""
        self.facts.difference_update(added)
        for key, buckets in self.indexes.values():
            for fact in reversed(added):
                bucket = buckets[key(fact)]
                if bucket[-1] == fact:
                    bucket.pop()
                else:  # an index built after this fact arrived holds it in set order
                    bucket.remove(fact)
                if not bucket:
                    del buckets[key(fact)]


@dataclass(frozen=True, slots=True)
class StratumPlan:
    """A stratum's compiled rules, indexed for the two ways it is evaluated.

    `full`: (rule index, plain variant, provenance variant) for round one; `delta_calls`: for each
    predicate, the (plain, provenance) variants reading only new facts of that predicate at one atom.
    """

    stratum: Stratum
    full: tuple[tuple[int, CompiledRule, CompiledRule], ...]
    delta_calls: dict[str, tuple[tuple[CompiledRule, CompiledRule], ...]]
    reads: frozenset[str]
    strict_reads: frozenset[str]


class Engine:
    """An analysed program, its constants interned and its rules compiled on demand (one function per variant)."""

    def __init__(self, program: AnalysedProgram) -> None:
        self.program = program
        self.interner = Interner()
        self.rules = program.rules
        self.rule_ids = {id(rule): i for i, rule in enumerate(self.rules)}
        self._compiled: dict[tuple[int, int | None, bool], CompiledRule] = {}
        self._plans: dict[int, StratumPlan] = {}
        self.program_facts: dict[str, dict[Fact, Location]] = {name: {} for name in program.arities}
        for clause in program.facts:
            fact = tuple(self.interner.intern_constant(arg) for arg in clause.head.args)  # type: ignore[arg-type]
            self.program_facts[clause.head.predicate].setdefault(fact, clause.location)

    def plan(self, stratum_index: int) -> StratumPlan:
        found = self._plans.get(stratum_index)
        if found is None:
            stratum = self.program.strata[stratum_index]
            indexes = [self.rule_ids[id(rule)] for rule in stratum.rules]
            full = tuple((i, self.compiled(i, None, False), self.compiled(i, None, True)) for i in indexes)
            delta_calls: dict[str, list[tuple[CompiledRule, CompiledRule]]] = {}
            for i in indexes:
                rule = self.rules[i]
                if rule.transforms:
                    continue
                for position, literal in enumerate(rule.body):
                    if isinstance(literal, Atom):
                        pair = (self.compiled(i, position, False), self.compiled(i, position, True))
                        delta_calls.setdefault(literal.predicate, []).append(pair)
            found = self._plans[stratum_index] = StratumPlan(
                stratum,
                full,
                {name: tuple(pairs) for name, pairs in delta_calls.items()},
                frozenset(inputs(stratum)),
                frozenset(strict_inputs(stratum)),
            )
        return found

    def compiled(self, rule_index: int, delta_position: int | None, provenance: bool) -> CompiledRule:
        key = (rule_index, delta_position, provenance)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = compile_rule(
                self.rules[rule_index], rule_index, delta_position, provenance, self.interner
            )
        return found

    def variants(self, rule_index: int) -> list[CompiledRule]:
        """Every variant of a rule an incremental update may run (so their indexes can be built up front)."""
        rule = self.rules[rule_index]
        positions = [None, *(i for i, literal in enumerate(rule.body) if isinstance(literal, Atom))]
        return [
            self.compiled(rule_index, position, provenance) for position in positions for provenance in (False, True)
        ]

    def intern_facts(self, facts: FactSet, source: Location) -> dict[str, set[Fact]]:
        interned: dict[str, set[Fact]] = {}
        for predicate, rows in facts.items():
            target = interned.setdefault(predicate, set())
            for row in rows:
                args = tuple(row)
                self.program.check_fact(predicate, args, source)
                target.add(tuple(self.interner.intern_constant(arg) for arg in args))
        return interned

    def new_database(self, extra: Mapping[str, set[Fact]]) -> dict[str, Relation]:
        database = {name: Relation(facts) for name, facts in self.program_facts.items()}
        for predicate, facts in extra.items():
            database.setdefault(predicate, Relation()).facts.update(facts)
        return database

    def evaluate(self, facts: FactSet | None = None, provenance: bool = False, source: str = "<facts>") -> Model:
        """The least model of the program over its own facts plus `facts`."""
        return self.evaluate_interned(self.intern_facts(facts or {}, Location(source, 1, 1)), provenance)

    def evaluate_interned(self, extra: Mapping[str, set[Fact]], provenance: bool) -> Model:
        database = self.new_database(extra)
        store: ProvenanceStore | None = {} if provenance else None
        for index in range(len(self.program.strata)):
            run_stratum(self, self.plan(index), database, None, store, None)
        return Model(self, database, [store] if store is not None else [])


class Model:
    """Evaluated facts; `provenance` lists derivation stores, the first one that knows a fact wins."""

    def __init__(
        self,
        engine: Engine,
        database: dict[str, Relation],
        provenance: list[ProvenanceStore],
    ) -> None:
        self.engine = engine
        self.database = database
        self.provenance = provenance

    def predicates(self) -> list[str]:
        return sorted(self.database)

    def decode(self, fact: Fact) -> tuple[Constant, ...]:
        return tuple(self.engine.interner.constant(ident) for ident in fact)

    def facts(self, predicate: str) -> list[tuple[Constant, ...]]:
        relation = self.database.get(predicate)
        rows = [self.decode(fact) for fact in relation.facts] if relation is not None else []
        return sorted(rows, key=lambda row: tuple(map(sort_key, row)))

    def contains(self, predicate: str, args: Sequence[Constant]) -> bool:
        ids = self.engine.interner.ids
        fact = tuple(ids.get((arg.kind, arg.value), -1) for arg in args)
        relation = self.database.get(predicate)
        return relation is not None and fact in relation.facts

    def matching(self, pattern: Atom) -> list[tuple[Constant, ...]]:
        """Facts of the pattern's predicate that agree with its constants and repeated variables."""
        found = []
        for row in self.facts(pattern.predicate):
            bindings: dict[str, Constant] = {}
            if all(_matches(arg, value, bindings) for arg, value in zip(pattern.args, row, strict=True)):
                found.append(row)
        return found

    def derivation(self, predicate: str, fact: Fact) -> Derivation | None:
        for store in self.provenance:
            found = store.get(predicate, {}).get(fact)
            if found is not None:
                return found
        return None


def _matches(arg: object, value: Constant, bindings: dict[str, Constant]) -> bool:
    if isinstance(arg, Constant):
        return arg == value
    if isinstance(arg, Variable):
        return bindings.setdefault(arg.name, value) == value
    return True


def run_stratum(
    engine: Engine,
    plan: StratumPlan,
    database: dict[str, Relation],
    additions: Mapping[str, Collection[Fact]] | None,
    provenance: ProvenanceStore | None,
    undo: UndoLog | None,
) -> dict[str, list[Fact]]:
    """Evaluate one stratum in place. With `additions` (predicate → facts just added below or to this
    stratum's own inputs), continue from them semi-naively instead of starting from scratch; that is
    exact only when nothing was removed and no added predicate is read under negation or a transform.
    Returns the facts this stratum added."""
    recording = provenance is not None
    calls: list[tuple[CompiledRule, Any]] = []
    transformed: dict[str, dict[Fact, Derivation]] = {}
    if additions is None:
        for index, plain, traced in plan.full:
            rule = plain.rule
            if rule.transforms:
                for fact, derivation in derive_by_transforms(engine, index, database, recording).items():
                    transformed.setdefault(rule.head.predicate, {}).setdefault(fact, derivation)
            elif all(database.setdefault(a.predicate, Relation()).facts for a in _positive_atoms(rule)):
                calls.append((traced if recording else plain, None))
    else:
        for predicate, pairs in plan.delta_calls.items():
            delta = additions.get(predicate)
            if delta:
                calls.extend((pair[recording], delta) for pair in pairs)
    added: dict[str, list[Fact]] = {}
    new = _derive(calls, database, recording)
    for predicate, derived in transformed.items():
        facts = database[predicate].facts
        if provenance is None:
            new.setdefault(predicate, set()).update(fact for fact in derived if fact not in facts)
            continue
        target = new.setdefault(predicate, {})
        for fact, derivation in derived.items():
            if fact not in facts:
                target.setdefault(fact, derivation)
    own = plan.stratum.predicates
    while True:
        _merge(new, database, provenance, undo, added)
        if not plan.stratum.recursive or not any(new.values()):
            return added
        calls = [
            (pair[recording], new[predicate])
            for predicate in own
            if new.get(predicate)
            for pair in plan.delta_calls.get(predicate, ())
        ]
        new = _derive(calls, database, recording)


def _positive_atoms(rule: Clause) -> list[Atom]:
    return [literal for literal in rule.body if isinstance(literal, Atom)]


def _derive(calls: list[tuple[CompiledRule, Any]], database: dict[str, Relation], provenance: bool) -> dict[str, Any]:
    """Run rule variants; new facts per head predicate: a set, or with provenance a dict fact → derivation."""
    if not provenance:
        outputs: dict[str, set[Fact]] = {}
        for compiled, delta in calls:
            compiled.run(database, delta, outputs.setdefault(compiled.rule.head.predicate, set()))
        return {predicate: out - database[predicate].facts for predicate, out in outputs.items()}
    found: dict[str, dict[Fact, Derivation]] = {}
    for compiled, delta in calls:
        compiled.run(database, delta, found.setdefault(compiled.rule.head.predicate, {}))
    return found


def _merge(
    new: dict[str, Any],
    database: dict[str, Relation],
    provenance: ProvenanceStore | None,
    undo: UndoLog | None,
    added: dict[str, list[Fact]],
) -> None:
    for predicate, facts in new.items():
        if not facts:
            continue
        ordered = list(facts)
        relation = database[predicate]
        relation.extend(ordered)
        added.setdefault(predicate, []).extend(ordered)
        if undo is not None:
            undo.append((relation, ordered))
        if provenance is not None:
            provenance.setdefault(predicate, {}).update(facts)


def evaluate_expression(expression: Expression, env: Mapping[str, int], interner: Interner) -> int:
    """The interned value of a scalar expression under `env` (transforms, provenance bindings)."""
    if isinstance(expression, Variable):
        return env[expression.name]
    if isinstance(expression, Constant):
        return interner.intern_constant(expression)
    values = [interner.values[evaluate_expression(arg, env, interner)] for arg in expression.args]
    result = SCALAR_FUNCTIONS[expression.function][0](values, expression.location)
    return interner.intern_number(result, expression.location)


def derive_by_transforms(
    engine: Engine, rule_index: int, database: dict[str, Relation], provenance: bool
) -> dict[Fact, Derivation]:
    """A rule with `|>` stages: its body's rows (one per distinct binding of the body variables) go
    through the stages (group and reduce, or compute lets row by row), then fill the head."""
    compiled = engine.compiled(rule_index, None, provenance)
    rule = compiled.rule
    if not all(database.setdefault(atom.predicate, Relation()).facts for atom in _positive_atoms(rule)):
        return {}
    out: Any = {} if provenance else set()
    compiled.run(database, None, out)
    interner = engine.interner
    columns = list(compiled.row_variables)
    rows: list[tuple[tuple[int, ...], tuple[Any, ...]]] = (
        [(row, (premises,)) for row, premises in out.items()] if provenance else [(row, ()) for row in out]
    )  # each row: (values, the matched tuples of each body row it stems from)
    for transform in rule.transforms:
        if transform.group_by is None:
            for let in transform.lets:
                rows = [
                    ((*row, evaluate_expression(let.expression, dict(zip(columns, row, strict=True)), interner)), why)
                    for row, why in rows
                ]
                columns.append(let.variable.name)
            continue
        key_columns = [columns.index(variable.name) for variable in transform.group_by]
        groups: dict[tuple[int, ...], list[tuple[tuple[int, ...], tuple[Any, ...]]]] = {}
        for row, why in rows:
            groups.setdefault(tuple(row[i] for i in key_columns), []).append((row, why))
        grouped = []
        for key, members in groups.items():
            values = list(key)
            for let in transform.lets:
                assert isinstance(let.expression, Apply)
                reducer = REDUCERS[let.expression.function][0]
                column: list[object] = list(members)
                if let.expression.args:
                    arg = let.expression.args[0]
                    assert isinstance(arg, Variable)
                    position = columns.index(arg.name)
                    column = [interner.values[row[position]] for row, _ in members]
                result = reducer(column, let.expression.location)
                values.append(interner.intern_number(result, let.expression.location))
            grouped.append((tuple(values), tuple(premise for _, why in members for premise in why)))
        rows = grouped
        columns = [variable.name for variable in transform.group_by] + [let.variable.name for let in transform.lets]
    head = [
        ("column", columns.index(arg.name))
        if isinstance(arg, Variable)
        else ("constant", interner.intern_constant(arg))
        for arg in rule.head.args
        if isinstance(arg, Variable | Constant)
    ]
    derived: dict[Fact, Derivation] = {}
    for row, why in rows:
        fact = tuple(row[value] if kind == "column" else value for kind, value in head)
        derived.setdefault(fact, (rule_index, *why))
    return derived


def strict_inputs(stratum: Stratum) -> set[str]:
    """Predicates a stratum reads under negation or through a transform (non-monotone inputs)."""
    found: set[str] = set()
    for rule in stratum.rules:
        for literal in rule.body:
            if isinstance(literal, NegatedAtom):
                found.add(literal.atom.predicate)
            elif isinstance(literal, Atom) and rule.transforms:
                found.add(literal.predicate)
    return found


def inputs(stratum: Stratum) -> set[str]:
    found = set(stratum.predicates)
    for rule in stratum.rules:
        for literal in rule.body:
            if isinstance(literal, Atom):
                found.add(literal.predicate)
            elif isinstance(literal, NegatedAtom):
                found.add(literal.atom.predicate)
    return found
