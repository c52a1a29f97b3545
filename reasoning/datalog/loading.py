"""Reading rule files and JSON fact files into an `Engine`.

A fact file maps each predicate to a list of facts, each an array of arguments: JSON numbers are
integers or floats, strings starting with `/` are names, other strings are strings — the same shape
`cryptoscalp datalog eval --json` prints.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from reasoning.datalog.analysis import analyse
from reasoning.datalog.ast import Constant, Location
from reasoning.datalog.errors import DatalogSyntaxError
from reasoning.datalog.evaluation import Engine
from reasoning.datalog.parser import parse_program

FactRows = dict[str, list[tuple[Constant, ...]]]


def load_engine(path: Path) -> Engine:
    return Engine(analyse(parse_program(path.read_text(encoding="utf-8"), str(path))))


def load_facts(path: Path) -> FactRows:
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatalogSyntaxError(Location(str(path), exc.lineno, exc.colno), exc.msg) from None
    if not isinstance(document, dict):
        raise DatalogSyntaxError(Location(str(path), 1, 1), "expected an object mapping predicates to lists of facts")
    facts: FactRows = {}
    for predicate, rows in document.items():
        location = _location_of_key(text, predicate, str(path))
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise DatalogSyntaxError(location, f"{predicate}: expected a list of facts, each a list of arguments")
        facts[predicate] = [tuple(constant_of_json(value, predicate, location) for value in row) for row in rows]
    return facts


def constant_of_json(value: object, predicate: str, location: Location) -> Constant:
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise DatalogSyntaxError(location, f"{predicate}: {json.dumps(value)} is not a number, name or string")
    if isinstance(value, int):
        return Constant("int", value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DatalogSyntaxError(location, f"{predicate}: {value} is not a finite number")
        return Constant("float", value)
    assert isinstance(value, str)
    return Constant("name", value) if value.startswith("/") and len(value) > 1 else Constant("string", value)


def _location_of_key(text: str, key: str, file: str) -> Location:
    offset = max(text.find(json.dumps(key)), 0)
    line = text.count("\n", 0, offset) + 1
    return Location(file, line, offset - (text.rfind("\n", 0, offset) + 1) + 1)
