"""Finds the largest admissible quantity for one decision; the prover then confirms it with Z3.

With the per-decision constants fixed, every limit is piecewise linear in `qty` (the parser rejects
anything else), so its admissible set over qty ≥ 0 is a finite union of intervals. `admissible_intervals`
walks the pieces left to right: on each piece every comparison, `abs`, `min`, `max` and if-expression has
a fixed branch, the expression is `a·qty + b`, and the next breakpoint is the nearest root. Intersecting
the limits' interval sets gives the admissible set and its supremum — the candidate `max_qty`.

The walk runs as Python generated once per limit body (`_piece_function`, from the interpreter
`_truth_right`/`_affine` it mirrors operation for operation), so a decision does no tree walking.

This is a search aid, not the proof: intervals are taken closed (a strict bound's endpoint is checked
exactly afterwards), floats round, and the prover asks Z3 both that the candidate is admissible and that
nothing above it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from reasoning.limits import ir
from reasoning.limits.errors import LimitsContextError

INF = math.inf
Interval = tuple[float, float]
_MAX_PIECES = 10_000
_ZERO_TOLERANCE = 1e-12


def value(node: ir.Node, env: dict[str, float], qty: float) -> float:
    """The number `node` denotes at `qty` (plain floats)."""
    return float(_point_function(node)(env, qty))


def holds(node: ir.Node, env: dict[str, float], qty: float) -> bool:
    """Whether the condition `node` is true at `qty`."""
    return bool(_point_function(node)(env, qty))


PointFunction = Callable[[dict[str, float], float], float | bool]
_FUNCTIONS: dict[int, tuple[ir.Node, PointFunction]] = {}


def _point_function(node: ir.Node) -> PointFunction:
    """`node` as compiled Python (generated once per tree node): the bound search evaluates the same
    subtrees at many points, and interpreting the tree each time costs more than the Z3 checks."""
    cached = _FUNCTIONS.get(id(node))
    if cached is not None and cached[0] is node:
        return cached[1]
    source = f"lambda env, qty: {_python_source(node)}"
    function: PointFunction = eval(source, {"_divisor": _divisor, "__builtins__": {"abs": abs, "min": min, "max": max}})
    _FUNCTIONS[id(node)] = (node, function)
    return function


def _python_source(node: ir.Node) -> str:
    match node:
        case ir.Number(value=number):
            return repr(number)
        case ir.Constant(name=name):
            return f"env[{name!r}]"
        case ir.Qty():
            return "qty"
        case ir.Negate(operand=operand):
            return f"(-{_python_source(operand)})"
        case ir.Arith(op="/", left=left, right=right):
            return f"({_python_source(left)} / _divisor({_python_source(right)}))"
        case ir.Arith(op=op, left=left, right=right):
            return f"({_python_source(left)} {op} {_python_source(right)})"
        case ir.Abs(operand=operand):
            return f"abs({_python_source(operand)})"
        case ir.Extremum(op=op, left=left, right=right):
            return f"{op}({_python_source(left)}, {_python_source(right)})"
        case ir.Choice(test=test, body=body, orelse=orelse):
            return f"({_python_source(body)} if {_python_source(test)} else {_python_source(orelse)})"
        case ir.Truth(value=truth):
            return repr(truth)
        case ir.Compare(op=op, left=left, right=right):
            return f"({_python_source(left)} {op} {_python_source(right)})"
        case ir.Logic(op=op, operands=operands):
            return "(" + f" {op} ".join(_python_source(item) for item in operands) + ")"
        case ir.Not(operand=operand):
            return f"(not {_python_source(operand)})"
    raise TypeError(f"not an expression: {node!r}")


def admissible_intervals(body: ir.Node, env: dict[str, float], growth_threshold: float | None) -> list[Interval]:
    """Closed intervals of qty ≥ 0 where the limit holds. `growth_threshold`: the limit binds only for
    qty > it (growth-only limits); None: it binds at every qty."""
    return interval_function(body)(env, growth_threshold)


IntervalFunction = Callable[[dict[str, float], float | None], list[Interval]]
PieceFunction = Callable[[dict[str, float], float], tuple[bool, float]]
_INTERVAL_FUNCTIONS: dict[int, tuple[ir.Node, IntervalFunction]] = {}


def interval_function(body: ir.Node) -> IntervalFunction:
    """`admissible_intervals` specialised to `body` (built once per tree): the piece walk runs generated
    Python (`_piece_function`) instead of interpreting the tree at every piece of every decision."""
    cached = _INTERVAL_FUNCTIONS.get(id(body))
    if cached is not None and cached[0] is body:
        return cached[1]
    point = _point_function(body)
    if not body.uses_qty:

        def constant_intervals(env: dict[str, float], growth_threshold: float | None) -> list[Interval]:
            if point(env, 0.0):
                return [(0.0, INF)]
            return [] if growth_threshold is None else [(0.0, growth_threshold)]

        function: IntervalFunction = constant_intervals
    else:
        piece = _piece_function(body)

        def piecewise_intervals(env: dict[str, float], growth_threshold: float | None) -> list[Interval]:
            return _walk(piece, point, env, growth_threshold)

        function = piecewise_intervals
    _INTERVAL_FUNCTIONS[id(body)] = (body, function)
    return function


def _walk(
    piece: PieceFunction, point: PointFunction, env: dict[str, float], growth_threshold: float | None
) -> list[Interval]:
    intervals: list[Interval] = []
    start = 0.0
    for _ in range(_MAX_PIECES):
        truth, end = piece(env, start)
        exempt = growth_threshold is not None and start < growth_threshold
        if exempt and growth_threshold is not None:
            end = min(end, growth_threshold)
        if truth or exempt:
            _append(intervals, start, end)
        if end == INF:
            return intervals
        if (growth_threshold is not None and end <= growth_threshold) or point(env, end):
            _append(intervals, end, end)
        start = end
    raise LimitsContextError(f"limits bound search: more than {_MAX_PIECES} pieces")


def intersect(first: list[Interval], second: list[Interval]) -> list[Interval]:
    result: list[Interval] = []
    i = j = 0
    while i < len(first) and j < len(second):
        low, high = max(first[i][0], second[j][0]), min(first[i][1], second[j][1])
        if low <= high:
            result.append((low, high))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return result


def _append(intervals: list[Interval], low: float, high: float) -> None:
    if intervals and intervals[-1][1] >= low:
        intervals[-1] = (intervals[-1][0], max(intervals[-1][1], high))
    else:
        intervals.append((low, high))


def _divisor(number: float) -> float:
    if number == 0:
        raise LimitsContextError("a limit divides by a fact that is zero in this decision")
    return number


def _sign(value_at: float, slope: float, scale: float = 0.0) -> int:
    """Sign just right of the point: the value's, or the slope's where the value is (numerically) zero."""
    if abs(value_at) > _ZERO_TOLERANCE * scale:
        return 1 if value_at > 0 else -1
    return (slope > 0) - (slope < 0)


def _root(slope: float, offset: float, start: float) -> float:
    if slope == 0:
        return INF
    root = -offset / slope
    return root if root > start else INF


def _affine(node: ir.Node, env: dict[str, float], start: float) -> tuple[float, float, float]:
    """(a, b, end): `node` equals a·qty + b on the piece (start, end)."""
    if not node.uses_qty:
        return 0.0, value(node, env, start), INF
    match node:
        case ir.Qty():
            return 1.0, 0.0, INF
        case ir.Negate(operand=operand):
            slope, offset, end = _affine(operand, env, start)
            return -slope, -offset, end
        case ir.Arith(op=op, left=left, right=right):
            a1, b1, end1 = _affine(left, env, start)
            a2, b2, end2 = _affine(right, env, start)
            end = min(end1, end2)
            if op == "+":
                return a1 + a2, b1 + b2, end
            if op == "-":
                return a1 - a2, b1 - b2, end
            if op == "*":  # one factor is constant (the parser rejects qty·qty)
                return a1 * b2 + a2 * b1, b1 * b2, end
            divisor = _divisor(b2)
            return a1 / divisor, b1 / divisor, end
        case ir.Abs(operand=operand):
            slope, offset, end = _affine(operand, env, start)
            sign = _piece_sign(slope, offset, start)
            sign = sign or 1
            return sign * slope, sign * offset, min(end, _root(slope, offset, start))
        case ir.Extremum(op=op, left=left, right=right):
            a1, b1, end1 = _affine(left, env, start)
            a2, b2, end2 = _affine(right, env, start)
            sign = _piece_sign(a1 - a2, b1 - b2, start)
            take_first = sign <= 0 if op == "min" else sign >= 0
            end = min(end1, end2, _root(a1 - a2, b1 - b2, start))
            return (a1, b1, end) if take_first else (a2, b2, end)
        case ir.Choice(test=test, body=body, orelse=orelse):
            truth, test_end = _truth_right(test, env, start)
            slope, offset, end = _affine(body if truth else orelse, env, start)
            return slope, offset, min(end, test_end)
    raise TypeError(f"not a number: {node!r}")


def _piece_sign(slope: float, offset: float, start: float) -> int:
    at = slope * start + offset
    return _sign(at, slope, abs(slope * start) + abs(offset))


def _truth_right(node: ir.Node, env: dict[str, float], start: float) -> tuple[bool, float]:
    """(truth, end): whether `node` holds on the piece (start, end)."""
    if not node.uses_qty:
        return holds(node, env, start), INF
    match node:
        case ir.Compare(op=op, left=left, right=right):
            a1, b1, end1 = _affine(left, env, start)
            a2, b2, end2 = _affine(right, env, start)
            slope, offset = a1 - a2, b1 - b2
            truth = _COMPARE_SIGN[op](_piece_sign(slope, offset, start))
            return truth, min(end1, end2, _root(slope, offset, start))
        case ir.Logic(op=op, operands=operands):
            parts = [_truth_right(item, env, start) for item in operands]
            truths = [truth for truth, _ in parts]
            return (all(truths) if op == "and" else any(truths)), min(end for _, end in parts)
        case ir.Not(operand=operand):
            truth, end = _truth_right(operand, env, start)
            return not truth, end
        case ir.Choice(test=test, body=body, orelse=orelse):
            test_truth, test_end = _truth_right(test, env, start)
            truth, end = _truth_right(body if test_truth else orelse, env, start)
            return truth, min(end, test_end)
    raise TypeError(f"not a condition: {node!r}")


_COMPARE_SIGN = {
    "<": lambda sign: sign < 0,
    "<=": lambda sign: sign <= 0,
    ">": lambda sign: sign > 0,
    ">=": lambda sign: sign >= 0,
    "==": lambda sign: sign == 0,
    "!=": lambda sign: sign != 0,
}


def _piece_function(node: ir.Node) -> PieceFunction:
    """`_truth_right(node, ·, ·)` as generated Python: the same float operations in the same order (so the
    same pieces and ends), with no tree walking, dispatch or tuple building per node."""
    writer = _PieceWriter()
    truth, end = writer.condition(node, 1)
    writer.lines.append(f"    return {truth}, {end}")
    source = "def piece(env, qty):\n" + "\n".join(writer.lines)
    namespace: dict[str, object] = {
        "_divisor": _divisor,
        "_root": _root,
        "_piece_sign": _piece_sign,
        "INF": INF,
        "__builtins__": {"abs": abs, "min": min, "max": max, "float": float, "bool": bool},
    }
    exec(compile(source, "<limits piece function>", "exec"), namespace)  # source generated from the IR
    function: PieceFunction = namespace["piece"]  # type: ignore[assignment]
    return function


class _PieceWriter:
    """Emits straight-line code (branches only for if-expressions) mirroring `_affine`/`_truth_right`;
    `qty` in the generated code is the piece's start, as `start` there."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._count = 0

    def _fresh(self) -> str:
        self._count += 1
        return f"v{self._count}"

    def _emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def number(self, node: ir.Node, depth: int) -> tuple[str, str, str]:
        """Names of (a, b, end) holding `_affine(node, env, start)`."""
        if not node.uses_qty:
            offset = self._fresh()
            self._emit(depth, f"{offset} = float({_python_source(node)})")
            return "0.0", offset, "INF"
        match node:
            case ir.Qty():
                return "1.0", "0.0", "INF"
            case ir.Negate(operand=operand):
                slope, offset, end = self.number(operand, depth)
                names = self._fresh(), self._fresh()
                self._emit(depth, f"{names[0]}, {names[1]} = -{slope}, -{offset}")
                return names[0], names[1], end
            case ir.Arith(op=op, left=left, right=right):
                a1, b1, end1 = self.number(left, depth)
                a2, b2, end2 = self.number(right, depth)
                slope, offset, end = self._fresh(), self._fresh(), self._fresh()
                self._emit(depth, f"{end} = min({end1}, {end2})")
                if op in ("+", "-"):
                    self._emit(depth, f"{slope}, {offset} = {a1} {op} {a2}, {b1} {op} {b2}")
                elif op == "*":
                    self._emit(depth, f"{slope}, {offset} = {a1} * {b2} + {a2} * {b1}, {b1} * {b2}")
                else:
                    divisor = self._fresh()
                    self._emit(depth, f"{divisor} = _divisor({b2})")
                    self._emit(depth, f"{slope}, {offset} = {a1} / {divisor}, {b1} / {divisor}")
                return slope, offset, end
            case ir.Abs(operand=operand):
                a, b, inner_end = self.number(operand, depth)
                sign, slope, offset, end = self._fresh(), self._fresh(), self._fresh(), self._fresh()
                self._emit(depth, f"{sign} = _piece_sign({a}, {b}, qty) or 1")
                self._emit(depth, f"{slope}, {offset} = {sign} * {a}, {sign} * {b}")
                self._emit(depth, f"{end} = min({inner_end}, _root({a}, {b}, qty))")
                return slope, offset, end
            case ir.Extremum(op=op, left=left, right=right):
                a1, b1, end1 = self.number(left, depth)
                a2, b2, end2 = self.number(right, depth)
                sign, slope, offset, end = self._fresh(), self._fresh(), self._fresh(), self._fresh()
                self._emit(depth, f"{sign} = _piece_sign({a1} - {a2}, {b1} - {b2}, qty)")
                self._emit(depth, f"{end} = min({end1}, {end2}, _root({a1} - {a2}, {b1} - {b2}, qty))")
                self._emit(depth, f"if {sign} {'<=' if op == 'min' else '>='} 0:")
                self._emit(depth + 1, f"{slope}, {offset} = {a1}, {b1}")
                self._emit(depth, "else:")
                self._emit(depth + 1, f"{slope}, {offset} = {a2}, {b2}")
                return slope, offset, end
            case ir.Choice(test=test, body=body, orelse=orelse):
                truth, test_end = self.condition(test, depth)
                slope, offset, end = self._fresh(), self._fresh(), self._fresh()
                self._emit(depth, f"if {truth}:")
                taken = self.number(body, depth + 1)
                self._emit(depth + 1, f"{slope}, {offset}, {end} = {taken[0]}, {taken[1]}, min({taken[2]}, {test_end})")
                self._emit(depth, "else:")
                taken = self.number(orelse, depth + 1)
                self._emit(depth + 1, f"{slope}, {offset}, {end} = {taken[0]}, {taken[1]}, min({taken[2]}, {test_end})")
                return slope, offset, end
        raise TypeError(f"not a number: {node!r}")

    def condition(self, node: ir.Node, depth: int) -> tuple[str, str]:
        """Names of (truth, end) holding `_truth_right(node, env, start)`."""
        if not node.uses_qty:
            truth = self._fresh()
            self._emit(depth, f"{truth} = bool({_python_source(node)})")
            return truth, "INF"
        match node:
            case ir.Compare(op=op, left=left, right=right):
                a1, b1, end1 = self.number(left, depth)
                a2, b2, end2 = self.number(right, depth)
                slope, offset, truth, end = self._fresh(), self._fresh(), self._fresh(), self._fresh()
                self._emit(depth, f"{slope}, {offset} = {a1} - {a2}, {b1} - {b2}")
                self._emit(depth, f"{truth} = _piece_sign({slope}, {offset}, qty) {_SIGN_TEST[op]}")
                self._emit(depth, f"{end} = min({end1}, {end2}, _root({slope}, {offset}, qty))")
                return truth, end
            case ir.Logic(op=op, operands=operands):
                parts = [self.condition(item, depth) for item in operands]
                truth, end = self._fresh(), self._fresh()
                joined = f" {op} ".join(part[0] for part in parts)
                self._emit(depth, f"{truth} = bool({joined})")
                self._emit(depth, f"{end} = min(({', '.join(part[1] for part in parts)},))")
                return truth, end
            case ir.Not(operand=operand):
                inner, end = self.condition(operand, depth)
                truth = self._fresh()
                self._emit(depth, f"{truth} = not {inner}")
                return truth, end
            case ir.Choice(test=test, body=body, orelse=orelse):
                test_truth, test_end = self.condition(test, depth)
                truth, end = self._fresh(), self._fresh()
                self._emit(depth, f"if {test_truth}:")
                taken = self.condition(body, depth + 1)
                self._emit(depth + 1, f"{truth}, {end} = {taken[0]}, min({taken[1]}, {test_end})")
                self._emit(depth, "else:")
                taken = self.condition(orelse, depth + 1)
                self._emit(depth + 1, f"{truth}, {end} = {taken[0]}, min({taken[1]}, {test_end})")
                return truth, end
        raise TypeError(f"not a condition: {node!r}")


_SIGN_TEST = {"<": "< 0", "<=": "<= 0", ">": "> 0", ">=": ">= 0", "==": "== 0", "!=": "!= 0"}
