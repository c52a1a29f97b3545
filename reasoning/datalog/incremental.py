"""Incremental evaluation for the decision path: materialise the base once, then per intent add a few
facts, derive only their consequences, and roll them back.

The base model (market, account, positions, limits) is evaluated once per market update and prepared:
every index any rule variant may use is built up front. `Materialized.overlay(facts)` then adds the
intent's facts to the base relations in place and walks the strata in order, carrying per predicate the
facts added and removed so far:

- a stratum none of whose inputs changed is skipped (most of the knowledge base, per intent);
- a stratum whose inputs only gained facts, none of them read under negation or a transform, continues
  semi-naively from those facts (monotone, so exactly the new consequences);
- any other stratum (an input lost facts, or a changed input is negated or aggregated) is recomputed
  from scratch into fresh relations that shadow the base ones; its added and removed facts feed on.

Everything the overlay did is on an undo log (facts appended to relations and index buckets, relations
shadowed, constants interned), so `retract()` restores the base exactly, in time proportional to what
the intent derived. The result equals a full evaluation of base plus intent facts; the tests check that.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from contextlib import contextmanager

from reasoning.datalog.ast import Location
from reasoning.datalog.evaluation import (
    Engine,
    Fact,
    FactSet,
    Model,
    ProvenanceStore,
    Relation,
    UndoLog,
    run_stratum,
)


class Materialized:
    """A base model ready for per-intent overlays. Overlays are used one at a time (`with base.overlay(...)`)."""

    def __init__(self, engine: Engine, facts: FactSet | None = None, provenance: bool = False) -> None:
        self.engine = engine
        self.provenance = provenance
        extra = engine.intern_facts(facts or {}, Location("<facts>", 1, 1))
        self.base = engine.evaluate_interned(extra, provenance)
        self._edb = {name: set(relation.facts) for name, relation in engine.new_database(extra).items()}
        self._plans = [engine.plan(index) for index in range(len(engine.program.strata))]
        # predicate → the strata that read it, so an overlay visits only strata its facts can reach
        self._readers: dict[str, list[int]] = {}
        for index, plan in enumerate(self._plans):
            for name in plan.reads:
                self._readers.setdefault(name, []).append(index)
        for index in range(len(engine.rules)):
            for compiled in engine.variants(index):
                for predicate, positions in compiled.index_positions:
                    self.base.database.setdefault(predicate, Relation()).index(positions)
        self._active = False

    @contextmanager
    def overlay(self, facts: FactSet, source: str = "<intent>") -> Iterator[Model]:
        """The model of base plus `facts`, valid inside the `with` block; retracted on leaving it."""
        if self._active:
            raise RuntimeError("one overlay at a time: leave the previous `with` block first")
        self._active = True
        engine = self.engine
        mark = engine.interner.mark()
        undo: UndoLog = []
        store: ProvenanceStore | None = {} if self.provenance else None
        database = self.base.database
        try:
            given = engine.intern_facts(facts, Location(source, 1, 1))
            added: dict[str, set[Fact]] = {}
            removed: dict[str, set[Fact]] = {}
            direct: dict[str, set[Fact]] = {}
            for predicate, rows in given.items():
                relation = database.setdefault(predicate, Relation())
                new = [fact for fact in rows if fact not in relation.facts]
                if new:
                    relation.extend(new)
                    undo.append((relation, new))
                    added[predicate] = set(new)
                    direct[predicate] = set(new)
            pending = sorted({index for name in added for index in self._readers.get(name, ())})
            while pending:
                current = heapq.heappop(pending)
                plan = self._plans[current]
                if any(name in removed for name in plan.reads) or any(name in added for name in plan.strict_reads):
                    shadowed = self._shadow(plan.stratum.predicates, given, undo)
                    run_stratum(engine, plan, database, None, store, None)
                    changed = self._record_changes(shadowed, direct, added, removed)
                else:
                    derived = run_stratum(engine, plan, database, added, store, undo)
                    for predicate, facts_added in derived.items():
                        added.setdefault(predicate, set()).update(facts_added)
                    changed = list(derived)
                for name in changed:
                    for index in self._readers.get(name, ()):
                        if index > current and index not in pending:
                            heapq.heappush(pending, index)
            layers = [store, *self.base.provenance] if store is not None else []
            yield Model(engine, database, layers)
        finally:
            for target, change in reversed(undo):
                if isinstance(target, Relation):
                    assert isinstance(change, list)
                    target.retract(change)
                else:
                    assert isinstance(change, Relation)
                    database[target] = change
            engine.interner.truncate(mark)
            self._active = False

    def _shadow(self, predicates: frozenset[str], given: dict[str, set[Fact]], undo: UndoLog) -> dict[str, Relation]:
        """Shadow a stratum's relations with fresh ones holding only their input facts; return the shadowed."""
        database = self.base.database
        shadowed = {}
        for name in predicates:
            shadowed[name] = database.get(name, Relation())
            undo.append((name, shadowed[name]))
            database[name] = Relation(self._edb.get(name, set()) | given.get(name, set()))
        return shadowed

    def _record_changes(
        self,
        shadowed: dict[str, Relation],
        direct: dict[str, set[Fact]],
        added: dict[str, set[Fact]],
        removed: dict[str, set[Fact]],
    ) -> list[str]:
        """A recomputed stratum's net change against the base (the shadowed relations, less the intent's facts);
        returns the predicates that differ from the base."""
        changed = []
        for name, relation in shadowed.items():
            old = relation.facts - direct.get(name, set())
            new = self.base.database[name].facts
            gained, lost = new - old, old - new
            if gained:
                added[name] = gained
            else:
                added.pop(name, None)
            if lost:
                removed[name] = lost
            else:
                removed.pop(name, None)
            if gained or lost:
                changed.append(name)
        return changed
