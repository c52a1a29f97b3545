"""The syntax tree of a Mangle-style Datalog program: the one place the parser, analysis and evaluation share.

Every node is an immutable value that knows where it came from (`Location`), so each later phase can
report `file:line:col: message` and provenance can name the rule that derived a fact. `str()` of a node
renders it back in Mangle syntax.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

ConstantKind = Literal["name", "string", "int", "float"]
ComparisonOp = Literal["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Constant:
    """A name (`/btc`, kept with its leading slash), a string, an integer or a float.

    Names and strings are different values even when spelled alike, and so are `1` and `1.0`.
    """

    kind: ConstantKind
    value: str | int | float

    def __str__(self) -> str:
        if self.kind == "string":
            return json.dumps(self.value)
        return repr(self.value) if self.kind == "float" else str(self.value)


@dataclass(frozen=True, slots=True)
class Variable:
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Wildcard:
    """`_`: matches anything; every occurrence is a fresh, unnamed variable."""

    def __str__(self) -> str:
        return "_"


@dataclass(frozen=True, slots=True)
class Apply:
    """A built-in function call such as `fn:plus(X, 1)`."""

    function: str
    args: tuple[Expression, ...]
    location: Location

    def __str__(self) -> str:
        return f"{self.function}({', '.join(map(str, self.args))})"


Term = Variable | Wildcard | Constant
Expression = Variable | Constant | Apply


@dataclass(frozen=True, slots=True)
class Atom:
    predicate: str
    args: tuple[Term, ...]
    location: Location

    @property
    def arity(self) -> int:
        return len(self.args)

    def __str__(self) -> str:
        return f"{self.predicate}({', '.join(map(str, self.args))})"


@dataclass(frozen=True, slots=True)
class NegatedAtom:
    atom: Atom
    location: Location

    def __str__(self) -> str:
        return f"!{self.atom}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """`Left op Right`; `=` with an unbound variable on one side binds it (Mangle's assignment)."""

    op: ComparisonOp
    left: Expression
    right: Expression
    location: Location

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True, slots=True)
class Let:
    """`let V = expr`: in a transform after `do fn:group_by(...)` expr is a reducer, elsewhere a function."""

    variable: Variable
    expression: Expression
    location: Location

    def __str__(self) -> str:
        return f"let {self.variable} = {self.expression}"


BodyLiteral = Atom | NegatedAtom | Comparison | Let


@dataclass(frozen=True, slots=True)
class Transform:
    """One `|> ...` stage: `do fn:group_by(G...)` followed by reducer lets, or plain lets applied row by row."""

    group_by: tuple[Variable, ...] | None
    lets: tuple[Let, ...]
    location: Location

    def __str__(self) -> str:
        parts = [] if self.group_by is None else [f"do fn:group_by({', '.join(map(str, self.group_by))})"]
        return "|> " + ", ".join([*parts, *map(str, self.lets)])


@dataclass(frozen=True, slots=True)
class Clause:
    """A fact (no body, ground head) or a rule; `location` is the head's, and names the rule in provenance."""

    head: Atom
    body: tuple[BodyLiteral, ...]
    transforms: tuple[Transform, ...]
    location: Location

    @property
    def is_fact(self) -> bool:
        return not self.body and not self.transforms

    def __str__(self) -> str:
        if self.is_fact:
            return f"{self.head}."
        body = ", ".join(map(str, self.body))
        stages = "".join(f" {transform}" for transform in self.transforms)
        return f"{self.head} :- {body}{stages}."


TypeName = Literal["/any", "/name", "/string", "/number", "/float64"]


@dataclass(frozen=True, slots=True)
class Decl:
    """`Decl pred(A, B) descr [doc("...")] bound [/name, /number].`; several bounds are alternatives."""

    predicate: str
    arg_names: tuple[str, ...]
    bounds: tuple[tuple[TypeName, ...], ...]
    doc: str
    location: Location

    @property
    def arity(self) -> int:
        return len(self.arg_names)


@dataclass(frozen=True, slots=True)
class Program:
    file: str
    clauses: tuple[Clause, ...]
    decls: tuple[Decl, ...]
