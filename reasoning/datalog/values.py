"""Interned constants and the built-in functions.

Evaluation works on tuples of small integers: each distinct constant is interned once, so joins hash
and compare ints, and equality is identity of ids. The kind is part of the key, so the name `/a` and the
string "a" stay apart, and so do `1` and `1.0` (as in Mangle, where they have different types).
Numbers are Python ints (unbounded, where Mangle's are 64-bit) and finite floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from reasoning.datalog.ast import Constant, ConstantKind, Location
from reasoning.datalog.errors import DatalogEvaluationError

Number = int | float


class Interner:
    """Constant ↔ id. `mark()`/`truncate()` let a per-intent overlay drop the constants it introduced."""

    __slots__ = ("ids", "kinds", "values")

    def __init__(self) -> None:
        self.ids: dict[tuple[ConstantKind, object], int] = {}
        self.kinds: list[ConstantKind] = []
        self.values: list[Any] = []

    def intern(self, kind: ConstantKind, value: str | int | float) -> int:
        key = (kind, value)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.values)
            self.kinds.append(kind)
            self.values.append(value)
        return found

    def intern_constant(self, constant: Constant) -> int:
        return self.intern(constant.kind, constant.value)

    def intern_number(self, value: Number, location: Location) -> int:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise DatalogEvaluationError(location, f"result {value} is not a finite number")
            return self.intern("float", value)
        return self.intern("int", value)

    def constant(self, ident: int) -> Constant:
        return Constant(self.kinds[ident], self.values[ident])

    def mark(self) -> int:
        return len(self.values)

    def truncate(self, mark: int) -> None:
        for ident in range(mark, len(self.values)):
            del self.ids[(self.kinds[ident], self.values[ident])]
        del self.kinds[mark:]
        del self.values[mark:]


def sort_key(constant: Constant) -> tuple[int, Number | str]:
    """Facts are listed numbers first (by value), then names, then strings."""
    if constant.kind in ("int", "float"):
        return (0, constant.value)
    return (1 if constant.kind == "name" else 2, constant.value)


def number(value: object, function: str, location: Location) -> Number:
    if type(value) is int or type(value) is float:
        return value
    raise DatalogEvaluationError(location, f"{function} expects numbers, got {_show(value)}")


def _show(value: object) -> str:
    return f'"{value}" (a string or name)' if isinstance(value, str) else repr(value)


def _numbers(args: Sequence[object], function: str, location: Location) -> list[Number]:
    return [number(arg, function, location) for arg in args]


def _plus(args: Sequence[object], location: Location) -> Number:
    return sum(_numbers(args, "fn:plus", location))


def _minus(args: Sequence[object], location: Location) -> Number:
    values = _numbers(args, "fn:minus", location)
    if len(values) == 1:
        return -values[0]
    result = values[0]
    for value in values[1:]:
        result -= value
    return result


def _mult(args: Sequence[object], location: Location) -> Number:
    result: Number = 1
    for value in _numbers(args, "fn:mult", location):
        result *= value
    return result


def _div(args: Sequence[object], location: Location) -> Number:
    """Integer division truncates toward zero, as Go's (Mangle's) `/` does; any float makes it true division."""
    values = _numbers(args, "fn:div", location)
    result = values[0]
    for value in values[1:]:
        if value == 0:
            raise DatalogEvaluationError(location, "fn:div: division by zero")
        if isinstance(result, int) and isinstance(value, int):
            quotient = abs(result) // abs(value)
            result = quotient if (result >= 0) == (value > 0) else -quotient
        else:
            result = result / value
    return result


def _abs(args: Sequence[object], location: Location) -> Number:
    return abs(number(args[0], "fn:abs", location))


def _min(args: Sequence[object], location: Location) -> Number:
    return min(_numbers(args, "fn:min", location))


def _max(args: Sequence[object], location: Location) -> Number:
    return max(_numbers(args, "fn:max", location))


ScalarFunction = Callable[[Sequence[object], Location], Number]

# name → (function, minimum arity, maximum arity or None)
SCALAR_FUNCTIONS: dict[str, tuple[ScalarFunction, int, int | None]] = {
    "fn:plus": (_plus, 1, None),
    "fn:minus": (_minus, 1, None),
    "fn:mult": (_mult, 1, None),
    "fn:div": (_div, 2, None),
    "fn:abs": (_abs, 1, 1),
    "fn:min": (_min, 2, None),
    "fn:max": (_max, 2, None),
}


def _count(values: Sequence[object], location: Location) -> Number:
    return len(values)


def _sum(values: Sequence[object], location: Location) -> Number:
    """Floats are summed exactly rounded (fsum), so a group's total does not depend on row order."""
    numbers = _numbers(values, "fn:sum", location)
    return math.fsum(numbers) if any(isinstance(value, float) for value in numbers) else sum(numbers)


def _reduce_min(values: Sequence[object], location: Location) -> Number:
    return min(_numbers(values, "fn:min", location))


def _reduce_max(values: Sequence[object], location: Location) -> Number:
    return max(_numbers(values, "fn:max", location))


def _avg(values: Sequence[object], location: Location) -> Number:
    """Always a float: sum / count."""
    return math.fsum(_numbers(values, "fn:avg", location)) / len(values)


# reducers, applied to the column of one group; name → (function, arity): fn:count() counts rows
REDUCERS: dict[str, tuple[ScalarFunction, int]] = {
    "fn:count": (_count, 0),
    "fn:sum": (_sum, 1),
    "fn:min": (_reduce_min, 1),
    "fn:max": (_reduce_max, 1),
    "fn:avg": (_avg, 1),
}
