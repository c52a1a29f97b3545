"""Reads `limits.toml` and checks every limit: fields, values, names, functions, units, linearity in `qty`.

The phases: TOML (tomllib) → field validation → each `constraint` parsed with Python's `ast` and walked
over a whitelist (vocabulary and limit names, numbers, + - * /, comparisons, and/or/not, abs/min/max,
if-expressions) into the typed tree of `ir.py`. Every rejection is a `LimitsFileError` located at the
offending key or expression character, as `file:line:col: message`.

Type rules: `+ -`, comparisons, `min/max` and both branches of an if-expression need the same unit (a bare
number takes the unit of the other side); `*` and `/` combine units; a 0/1 indicator (flag) compares only
with flags or numbers and may stand alone as a condition; a comparison's result is a Boolean and never a
number. A product of two `qty`-dependent terms, or a division by one, is rejected: the prover needs
constraints linear in `qty`.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasoning.limits import ir
from reasoning.limits.errors import LimitsFileError, SourceLocation
from reasoning.limits.vocabulary import CONSTANTS, DERIVED, FUNCTIONS, QTY

LAYERS = ("L1", "L2", "L3", "L4", "L5", "L6", "L7")
APPLIES_TO = ("growth", "all")
_REQUIRED_FIELDS = ("layer", "description", "value", "unit", "applies_to", "constraint")
_OPTIONAL_FIELDS = ("overrides",)
# (line in the expression from 1, column from 0) → where that character is in the file
ExpressionLocator = Callable[[int, int], SourceLocation]
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    layer: str
    description: str
    value: float
    unit: ir.Unit
    overrides: dict[str, float]  # symbol → value
    applies_to: str  # "growth" or "all"
    constraint: str  # the source expression
    body: ir.Node  # typed tree of `constraint`
    location: SourceLocation  # of the limit's table header

    @property
    def reason_code(self) -> str:
        return f"{self.layer}.{self.name}"

    def value_for(self, symbol: str) -> float:
        return self.overrides.get(symbol, self.value)


@dataclass(frozen=True, slots=True)
class RuleSet:
    path: str
    sha256: str  # of the file bytes: the rule-set identity every proof cites
    limits: tuple[Limit, ...]


def load_ruleset(path: str | Path) -> RuleSet:
    """Read and validate a limits file; raises `LimitsFileError` with `file:line:col` on any mistake."""
    source_path = Path(path)
    try:
        raw = source_path.read_bytes()
    except OSError as error:
        raise LimitsFileError(SourceLocation(str(source_path), 1, 1), f"cannot read the limits file: {error}") from None
    return parse_ruleset(raw.decode("utf-8"), str(source_path), hashlib.sha256(raw).hexdigest())


def parse_ruleset(text: str, path: str, sha256: str | None = None) -> RuleSet:
    digest = sha256 if sha256 is not None else hashlib.sha256(text.encode("utf-8")).hexdigest()
    locator = _KeyLocator(text, path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LimitsFileError(_toml_error_location(error, path), f"TOML syntax: {_toml_error_message(error)}") from None
    unknown_tables = sorted(set(document) - {"limits"})
    if unknown_tables:
        raise LimitsFileError(
            locator.table((unknown_tables[0],)),
            f"unknown table [{unknown_tables[0]}]; every limit lives in a [limits.<name>] table",
        )
    tables = document.get("limits")
    if not isinstance(tables, dict) or not tables:
        raise LimitsFileError(SourceLocation(path, 1, 1), "no limits: expected [limits.<name>] tables")
    units = {name: _limit_unit(name, table, locator) for name, table in tables.items()}
    limits = tuple(_parse_limit(name, table, units, locator) for name, table in tables.items())
    return RuleSet(path=path, sha256=digest, limits=limits)


def _limit_unit(name: str, table: object, locator: _KeyLocator) -> ir.Unit:
    where = locator.table(("limits", name))
    if not isinstance(table, dict):
        raise LimitsFileError(where, f"limits.{name} must be a table")
    unit = table.get("unit")
    if not isinstance(unit, str) or unit not in ir.UNIT_NAMES:
        raise LimitsFileError(
            locator.key(("limits", name), "unit", where),
            f"limit {name}: unit must be one of {', '.join(sorted(ir.UNIT_NAMES))}, got {unit!r}",
        )
    return ir.UNIT_NAMES[unit]


def _parse_limit(name: str, table: dict[str, Any], units: dict[str, ir.Unit], locator: _KeyLocator) -> Limit:
    header = ("limits", name)
    where = locator.table(header)
    if not _NAME.match(name):
        raise LimitsFileError(where, f"limit name {name!r} must be lower_snake_case")
    if name in CONSTANTS or name in DERIVED or name in FUNCTIONS or name == QTY.name:
        raise LimitsFileError(where, f"limit name {name!r} is a vocabulary name; choose another")
    for key in table:
        if key not in _REQUIRED_FIELDS and key not in _OPTIONAL_FIELDS:
            raise LimitsFileError(
                locator.key(header, key, where),
                f"limit {name}: unknown field {key!r} (fields: {', '.join(_REQUIRED_FIELDS + _OPTIONAL_FIELDS)})",
            )
    for key in _REQUIRED_FIELDS:
        if key not in table:
            raise LimitsFileError(where, f"limit {name}: missing field {key!r}")
    layer, description, applies_to = table["layer"], table["description"], table["applies_to"]
    if layer not in LAYERS:
        raise LimitsFileError(locator.key(header, "layer", where), f"limit {name}: layer must be one of L1..L7")
    if not isinstance(description, str) or not description.strip():
        raise LimitsFileError(locator.key(header, "description", where), f"limit {name}: description is empty")
    if applies_to not in APPLIES_TO:
        raise LimitsFileError(
            locator.key(header, "applies_to", where), f'limit {name}: applies_to must be "growth" or "all"'
        )
    value = _limit_value(name, table["value"], locator.key(header, "value", where))
    overrides: dict[str, float] = {}
    raw_overrides = table.get("overrides", {})
    if not isinstance(raw_overrides, dict):
        raise LimitsFileError(locator.key(header, "overrides", where), f"limit {name}: overrides must be a table")
    override_header = (*header, "overrides")
    for symbol, override in raw_overrides.items():
        location = locator.key(override_header, symbol, locator.table(override_header, where))
        overrides[symbol] = _limit_value(f"{name} override for {symbol}", override, location)
    constraint = table["constraint"]
    constraint_location = locator.key(header, "constraint", where)
    if not isinstance(constraint, str):
        raise LimitsFileError(constraint_location, f"limit {name}: constraint must be a string expression")
    checker = _ExpressionChecker(units, locator.expression_location(constraint_location))
    body = checker.condition(constraint, f"limit {name}")
    return Limit(name, layer, description.strip(), value, units[name], overrides, applies_to, constraint, body, where)


def _limit_value(what: str, value: object, location: SourceLocation) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LimitsFileError(location, f"{what}: value must be a number, got {value!r}")
    if not math.isfinite(value):
        raise LimitsFileError(location, f"{what}: value must be finite, got {value}")
    if value < 0:
        raise LimitsFileError(
            location,
            f"{what}: value {value} has the wrong sign; limits are magnitudes >= 0 "
            "(write the sign in the constraint, e.g. daily_pnl >= -max_daily_loss)",
        )
    return float(value)


@dataclass(frozen=True, slots=True)
class _Typed:
    node: ir.Node
    unit: ir.Unit | None  # None: a bare number (takes the unit of its partner)
    boolean: bool = False


_CMP_OPS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
}
_ARITH_OPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class _ExpressionChecker:
    """Walks one expression's `ast` over the whitelist, building the typed tree."""

    def __init__(self, limit_units: dict[str, ir.Unit], locate: ExpressionLocator) -> None:
        self._limit_units = limit_units
        self._locate = locate
        self._what = ""

    def condition(self, text: str, what: str) -> ir.Node:
        typed, tree = self.expression(text, what)
        return self._as_condition(typed, tree)

    def expression(self, text: str, what: str) -> tuple[_Typed, ast.expr]:
        self._what = what
        try:
            # parenthesised so a multi-line expression parses; positions on line 1 shift by that "("
            tree = ast.parse(f"({text}\n)", mode="eval")
        except SyntaxError as error:
            line = error.lineno or 1
            column = (error.offset or 1) - 1 - (1 if line == 1 else 0)
            text_lines = text.split("\n")
            if line > len(text_lines):  # the error is at the end of the text (e.g. a dangling operator)
                line, column = len(text_lines), len(text_lines[-1])
            raise LimitsFileError(self._locate(line, max(column, 0)), f"{what}: syntax error: {error.msg}") from None
        return self._check(tree.body), tree.body

    def _error(self, node: ast.AST, message: str) -> LimitsFileError:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0) - (1 if line == 1 else 0)
        return LimitsFileError(self._locate(line, column), f"{self._what}: {message}")

    def _as_condition(self, typed: _Typed, node: ast.AST) -> ir.Node:
        if typed.boolean:
            return typed.node
        if typed.unit is not None and typed.unit.flag:
            return ir.Compare("!=", typed.node, ir.Number(0.0))
        raise self._error(node, f"a {_describe(typed)} is used as a condition; compare it with something")

    def _number(self, typed: _Typed, node: ast.AST, role: str) -> _Typed:
        if typed.boolean:
            raise self._error(node, f"a condition (true/false) is used as a number in {role}")
        return typed

    def _check(self, node: ast.AST) -> _Typed:
        match node:
            case ast.Name(id=name):
                return self._name(node, name)
            case ast.Constant(value=value):
                if isinstance(value, bool):
                    return _Typed(ir.Truth(value), None, boolean=True)
                if isinstance(value, int | float):
                    return _Typed(ir.Number(float(value)), None)
                raise self._error(node, f"only numbers may appear as literals, not {value!r}")
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return _Typed(ir.Not(self._as_condition(self._check(operand), operand)), None, boolean=True)
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
                typed = self._number(self._check(operand), operand, "a sign")
                return typed if isinstance(op, ast.UAdd) else _Typed(ir.Negate(typed.node), typed.unit)
            case ast.BinOp(left=left, op=op, right=right):
                return self._arith(node, left, op, right)
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                return self._compare(left, ops, comparators)
            case ast.BoolOp(op=op, values=values):
                operands = tuple(self._as_condition(self._check(value), value) for value in values)
                return _Typed(ir.Logic("and" if isinstance(op, ast.And) else "or", operands), None, boolean=True)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                condition = self._as_condition(self._check(test), test)
                then, other = self._check(body), self._check(orelse)
                if then.boolean or other.boolean:
                    both = (self._as_condition(then, body), self._as_condition(other, orelse))
                    return _Typed(ir.Choice(condition, *both), None, boolean=True)
                unit = self._same_unit(node, then, other, "the two branches of an if-expression")
                return _Typed(ir.Choice(condition, then.node, other.node), unit)
            case ast.Call():
                return self._call(node)
        raise self._error(node, f"{type(node).__name__} is not allowed in a limit expression")

    def _name(self, node: ast.AST, name: str) -> _Typed:
        if name == QTY.name:
            return _Typed(ir.Qty(), QTY.unit)
        if name in CONSTANTS:
            return _Typed(ir.Constant(name), CONSTANTS[name].unit)
        if name in DERIVED:
            tree, unit = derived_tree(name)
            return _Typed(tree, unit)
        if name in self._limit_units:
            return _Typed(ir.Constant(name), self._limit_units[name])
        known = [*CONSTANTS, *DERIVED, *self._limit_units, QTY.name]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise self._error(node, f"unknown name {name!r} (not in the vocabulary nor a limit name){hint}")

    def _arith(self, node: ast.AST, left_node: ast.AST, op: ast.operator, right_node: ast.AST) -> _Typed:
        symbol = _ARITH_OPS.get(type(op))
        if symbol is None:
            raise self._error(node, f"operator {type(op).__name__} is not allowed; use + - * /")
        left = self._number(self._check(left_node), left_node, f"'{symbol}'")
        right = self._number(self._check(right_node), right_node, f"'{symbol}'")
        built = ir.Arith(symbol, left.node, right.node)
        if symbol in "+-":
            return _Typed(built, self._same_unit(node, left, right, f"'{symbol}'"))
        if symbol == "*" and left.node.uses_qty and right.node.uses_qty:
            raise self._error(node, "a product of two qty-dependent terms is nonlinear in qty")
        if symbol == "/":
            if right.node.uses_qty:
                raise self._error(node, "dividing by a qty-dependent term is nonlinear in qty")
            if isinstance(right.node, ir.Number) and right.node.value == 0:
                raise self._error(node, "division by zero")
        if left.unit is None and right.unit is None:
            return _Typed(built, None)
        left_unit, right_unit = left.unit or ir.DIMENSIONLESS, right.unit or ir.DIMENSIONLESS
        unit = left_unit.times(right_unit) if symbol == "*" else left_unit.over(right_unit)
        return _Typed(built, unit)

    def _compare(self, left_node: ast.AST, ops: list[ast.cmpop], comparators: list[ast.expr]) -> _Typed:
        parts: list[ir.Node] = []
        left = self._check(left_node)
        previous = left_node
        for op, right_node in zip(ops, comparators, strict=True):
            symbol = _CMP_OPS.get(type(op))
            if symbol is None:
                raise self._error(right_node, f"comparison {type(op).__name__} is not allowed; use < <= == != >= >")
            right = self._check(right_node)
            self._number(left, previous, "a comparison")
            self._number(right, right_node, "a comparison")
            self._same_unit(previous, left, right, "a comparison")
            parts.append(ir.Compare(symbol, left.node, right.node))
            left, previous = right, right_node
        node = parts[0] if len(parts) == 1 else ir.Logic("and", tuple(parts))
        return _Typed(node, None, boolean=True)

    def _call(self, node: ast.Call) -> _Typed:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
            raise self._error(node, f"unknown function {called!r}; allowed: {', '.join(sorted(FUNCTIONS))}")
        name = node.func.id
        if node.keywords:
            raise self._error(node, f"{name}() takes no keyword arguments")
        arguments = [self._number(self._check(argument), argument, f"{name}()") for argument in node.args]
        if name == "abs":
            if len(arguments) != 1:
                raise self._error(node, "abs() takes exactly one argument")
            return _Typed(ir.Abs(arguments[0].node), arguments[0].unit)
        if len(arguments) < 2:
            raise self._error(node, f"{name}() takes at least two arguments")
        result = arguments[0]
        for argument in arguments[1:]:
            unit = self._same_unit(node, result, argument, f"{name}()")
            result = _Typed(ir.Extremum(name, result.node, argument.node), unit)
        return result

    def _same_unit(self, node: ast.AST, left: _Typed, right: _Typed, role: str) -> ir.Unit | None:
        if left.unit is None:
            return right.unit
        if right.unit is None or right.unit == left.unit:
            return left.unit
        if left.unit.flag or right.unit.flag:
            raise self._error(
                node, f"{role} mixes a 0/1 indicator with a {_describe(right if left.unit.flag else left)}"
            )
        raise self._error(node, f"unit mismatch in {role}: {left.unit} vs {right.unit}")


def _describe(typed: _Typed) -> str:
    if typed.boolean:
        return "condition"
    return "number" if typed.unit is None else f"quantity in {typed.unit}"


_DERIVED_TREES: dict[str, tuple[ir.Node, ir.Unit]] = {}


def derived_tree(name: str) -> tuple[ir.Node, ir.Unit]:
    """The typed tree of a derived vocabulary name (checked like a limit expression, once)."""
    if name not in _DERIVED_TREES:
        derived = DERIVED[name]
        checker = _ExpressionChecker({}, lambda line, column: SourceLocation(f"<vocabulary {name}>", line, column + 1))
        typed, _ = checker.expression(derived.definition, f"derived {name}")
        if typed.unit is not None and typed.unit != derived.unit:
            raise AssertionError(f"vocabulary {name}: definition has unit {typed.unit}, declared {derived.unit}")
        _DERIVED_TREES[name] = (typed.node, derived.unit)
    return _DERIVED_TREES[name]


class _KeyLocator:
    """Line and column of TOML tables and keys, found by scanning the source (tomllib keeps no positions)."""

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    _KEY = re.compile(r"^(\s*)(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_\-]+)\s*=\s*")

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self._tables: dict[tuple[str, ...], SourceLocation] = {}
        self._keys: dict[tuple[tuple[str, ...], str], SourceLocation] = {}
        self._raw_values: dict[SourceLocation, str] = {}
        current: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                current = tuple(part.strip().strip("\"'") for part in header.group(1).split("."))
                self._tables.setdefault(current, SourceLocation(path, number, line.index("[") + 1))
                continue
            key = self._KEY.match(line)
            if key:
                location = SourceLocation(path, number, key.end() + 1)
                self._keys.setdefault((current, key.group(2).strip("\"'")), location)
                self._raw_values[location] = line[key.end() :]

    def table(self, header: tuple[str, ...], fallback: SourceLocation | None = None) -> SourceLocation:
        return self._tables.get(header, fallback or SourceLocation(self.path, 1, 1))

    def key(self, header: tuple[str, ...], key: str, fallback: SourceLocation) -> SourceLocation:
        return self._keys.get((header, key), fallback)

    def expression_location(self, value_location: SourceLocation) -> ExpressionLocator:
        """Locator for positions inside the string value that starts at `value_location`."""
        raw = self._raw_values.get(value_location, "")
        quote = 3 if raw.startswith(('"""', "'''")) else 1 if raw[:1] in "\"'" else 0
        # tomllib drops a newline right after opening triple quotes: the text then starts on the next line
        starts_below = quote == 3 and not raw[3:].strip()

        def locate(line: int, column: int) -> SourceLocation:
            if line == 1 and not starts_below:
                return SourceLocation(self.path, value_location.line, value_location.column + quote + column)
            first_line = value_location.line + (1 if starts_below else 0)
            return SourceLocation(self.path, first_line + line - 1, column + 1)

        return locate


def _toml_error_location(error: tomllib.TOMLDecodeError, path: str) -> SourceLocation:
    found = re.search(r"\(at line (\d+), column (\d+)\)", str(error))
    if found:
        return SourceLocation(path, int(found.group(1)), int(found.group(2)))
    return SourceLocation(path, 1, 1)


def _toml_error_message(error: tomllib.TOMLDecodeError) -> str:
    return re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(error))
