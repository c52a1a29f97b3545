"""Small helpers for the Datalog tests: evaluate source text and read facts back as plain Python values."""

from __future__ import annotations

from reasoning.datalog.analysis import analyse
from reasoning.datalog.evaluation import Engine, FactSet, Model
from reasoning.datalog.parser import parse_program


def engine_of(source: str, file: str = "test.mg") -> Engine:
    return Engine(analyse(parse_program(source, file)))


def evaluate(source: str, facts: FactSet | None = None, provenance: bool = False) -> Model:
    return engine_of(source).evaluate(facts, provenance)


def rows(model: Model, predicate: str) -> list[tuple[object, ...]]:
    return [tuple(arg.value for arg in row) for row in model.facts(predicate)]
