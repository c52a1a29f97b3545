"""The typed expression tree a limit compiles to, shared by the Z3 compiler and the bound finder.

`parser.py` builds it from the Python-syntax expressions of `limits.toml` (after type and unit checks);
`compiler.py` turns it into Z3 terms once per rule load; `bounds.py` walks it per decision to find the
largest admissible quantity. `uses_qty` is fixed at construction so both can skip what does not
depend on the order quantity.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Unit:
    """A physical dimension as exponents of USDT, base units and milliseconds; `flag` marks 0/1 indicators."""

    usdt: int = 0
    base: int = 0
    ms: int = 0
    flag: bool = False

    def times(self, other: Unit) -> Unit:
        return Unit(self.usdt + other.usdt, self.base + other.base, self.ms + other.ms)

    def over(self, other: Unit) -> Unit:
        return Unit(self.usdt - other.usdt, self.base - other.base, self.ms - other.ms)

    def __str__(self) -> str:
        if self.flag:
            return "flag (0/1 indicator)"
        parts = [f"{name}^{exp}" if exp != 1 else name for name, exp in self._dims() if exp > 0]
        denominators = [f"{name}^{-exp}" if exp != -1 else name for name, exp in self._dims() if exp < 0]
        text = "*".join(parts) or "1"
        if denominators:
            text += "/" + "/".join(denominators)
        return "dimensionless" if text == "1" else text

    def _dims(self) -> tuple[tuple[str, int], ...]:
        return (("USDT", self.usdt), ("base", self.base), ("ms", self.ms))


DIMENSIONLESS = Unit()
FLAG = Unit(flag=True)
USDT = Unit(usdt=1)
BASE = Unit(base=1)
PRICE = Unit(usdt=1, base=-1)
MILLISECONDS = Unit(ms=1)

# The unit names a risk officer may write in `unit = "..."`.
UNIT_NAMES: dict[str, Unit] = {
    "usdt": USDT,
    "base": BASE,
    "price": PRICE,
    "ms": MILLISECONDS,
    "ratio": DIMENSIONLESS,
    "count": DIMENSIONLESS,
    "atr": DIMENSIONLESS,
    "x": DIMENSIONLESS,
    "bps": DIMENSIONLESS,
    "flag": FLAG,
}


@dataclass(frozen=True, slots=True)
class Node:
    uses_qty: bool = field(init=False, default=False)

    def _set_uses_qty(self, value: bool) -> None:
        object.__setattr__(self, "uses_qty", value)


@dataclass(frozen=True, slots=True)
class Number(Node):
    value: float


@dataclass(frozen=True, slots=True)
class Constant(Node):
    """A per-decision constant: a vocabulary fact or a limit's value (per-symbol override applied)."""

    name: str


@dataclass(frozen=True, slots=True)
class Qty(Node):
    """The order quantity: the one Z3 variable."""

    def __post_init__(self) -> None:
        self._set_uses_qty(True)


@dataclass(frozen=True, slots=True)
class Negate(Node):
    operand: Node

    def __post_init__(self) -> None:
        self._set_uses_qty(self.operand.uses_qty)


@dataclass(frozen=True, slots=True)
class Arith(Node):
    op: str  # + - * /
    left: Node
    right: Node

    def __post_init__(self) -> None:
        self._set_uses_qty(self.left.uses_qty or self.right.uses_qty)


@dataclass(frozen=True, slots=True)
class Abs(Node):
    operand: Node

    def __post_init__(self) -> None:
        self._set_uses_qty(self.operand.uses_qty)


@dataclass(frozen=True, slots=True)
class Extremum(Node):
    op: str  # min, max
    left: Node
    right: Node

    def __post_init__(self) -> None:
        self._set_uses_qty(self.left.uses_qty or self.right.uses_qty)


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str  # < <= == != >= >
    left: Node
    right: Node

    def __post_init__(self) -> None:
        self._set_uses_qty(self.left.uses_qty or self.right.uses_qty)


@dataclass(frozen=True, slots=True)
class Logic(Node):
    op: str  # and, or
    operands: tuple[Node, ...]

    def __post_init__(self) -> None:
        self._set_uses_qty(any(item.uses_qty for item in self.operands))


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node

    def __post_init__(self) -> None:
        self._set_uses_qty(self.operand.uses_qty)


@dataclass(frozen=True, slots=True)
class Choice(Node):
    """`body if test else orelse`."""

    test: Node
    body: Node
    orelse: Node

    def __post_init__(self) -> None:
        self._set_uses_qty(self.test.uses_qty or self.body.uses_qty or self.orelse.uses_qty)


@dataclass(frozen=True, slots=True)
class Truth(Node):
    """A constant Boolean; the mutation hook replaces a constraint by `Truth(True)`."""

    value: bool
