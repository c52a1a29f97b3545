"""Parser for the Mangle subset the policy files use: facts, rules, negation, comparisons, `let`,
`|> do fn:group_by(...)` transforms and `Decl` declarations.

Hand-written (a tokenizer and a recursive-descent parser) because the grammar is small, Mangle ships
no Python parser, and every error must carry the exact `file:line:col` a risk officer needs.
The token shapes follow Mangle's grammar: names `/a/b`, variables `X`, `_`, predicate and function
names `lower_case` and `fn:plus`, numbers `-12`, floats `1.5e-3`, strings in double or single quotes,
`#` comments. `⟸` is accepted for `:-`. Beyond Mangle, `let V = expr` may also stand in a rule body,
where it means Mangle's `V = expr`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from reasoning.datalog.ast import (
    Apply,
    Atom,
    BodyLiteral,
    Clause,
    Comparison,
    ComparisonOp,
    Constant,
    Decl,
    Expression,
    Let,
    Location,
    NegatedAtom,
    Program,
    Term,
    Transform,
    TypeName,
    Variable,
    Wildcard,
)
from reasoning.datalog.errors import DatalogSyntaxError

TYPE_NAMES: tuple[TypeName, ...] = ("/any", "/name", "/string", "/number", "/float64")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\"}

# Order matters: floats before integers, `:-` and `|>` before single characters.
_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+|\#[^\n]*)
  | (?P<float>-?[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?)
  | (?P<int>-?[0-9]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>/[A-Za-z0-9_~%-]+(?:(?:\.|/)[A-Za-z0-9_~%-]+)*)
  | (?P<variable>[A-Z][A-Za-z0-9_]*|_)
  | (?P<ident>:?[a-z][A-Za-z0-9_]*(?:[:.][a-z][A-Za-z0-9_]*)*)
  | (?P<punct>:-|⟸|\|>|!=|<=|>=|[(),.!=<>\[\]])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    location: Location


def tokenize(text: str, file: str) -> Iterator[Token]:
    line, line_start, position = 1, 0, 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        location = Location(file, line, position - line_start + 1)
        if match is None:
            raise DatalogSyntaxError(location, f"unexpected character {text[position]!r}")
        kind = cast(str, match.lastgroup)
        chunk = match.group()
        if kind != "space":
            yield Token(kind, chunk, location)
        newlines = chunk.count("\n")
        if newlines:
            line += newlines
            line_start = match.start() + chunk.rindex("\n") + 1
        position = match.end()
    yield Token("end", "", Location(file, line, position - line_start + 1))


def parse_program(text: str, file: str) -> Program:
    """Parse a whole rule file."""
    return _Parser(text, file).program()


def parse_atom(text: str, file: str = "<query>") -> Atom:
    """Parse one atom such as `deny(/i1, R)`, as given to `explain` (a trailing `.` is allowed)."""
    parser = _Parser(text, file)
    atom = parser.atom()
    parser.accept(".")
    parser.expect_end()
    return atom


class _Parser:
    def __init__(self, text: str, file: str) -> None:
        self.tokens = list(tokenize(text, file))
        self.index = 0
        self.file = file

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.token.kind in ("punct", "ident") and self.token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str, context: str) -> Token:
        if self.token.kind in ("punct", "ident") and self.token.text == text:
            return self.advance()
        raise self.error(f"expected '{text}' {context}")

    def expect_end(self) -> None:
        if self.token.kind != "end":
            raise self.error("expected end of input")

    def error(self, message: str) -> DatalogSyntaxError:
        found = "end of input" if self.token.kind == "end" else f"'{self.token.text}'"
        return DatalogSyntaxError(self.token.location, f"{message}, found {found}")

    def program(self) -> Program:
        clauses: list[Clause] = []
        decls: list[Decl] = []
        while self.token.kind != "end":
            if self.token.kind == "variable" and self.token.text == "Decl":
                decls.append(self.decl())
            else:
                clauses.append(self.clause())
        return Program(self.file, tuple(clauses), tuple(decls))

    def clause(self) -> Clause:
        head = self.atom()
        body: list[BodyLiteral] = []
        transforms: list[Transform] = []
        if self.accept(":-") or self.accept("⟸"):
            body.append(self.literal())
            while self.accept(","):
                body.append(self.literal())
            while self.token.text == "|>" and self.token.kind == "punct":
                transforms.append(self.transform())
        self.expect(".", "at the end of a clause")
        return Clause(head, tuple(body), tuple(transforms), head.location)

    def atom(self) -> Atom:
        token = self.token
        if token.kind != "ident" or token.text.startswith("fn:"):
            raise self.error("expected a predicate name")
        self.advance()
        self.expect("(", f"after predicate {token.text}")
        args: list[Term] = []
        if not self.accept(")"):
            args.append(self.term())
            while self.accept(","):
                args.append(self.term())
            self.expect(")", f"to close the arguments of {token.text}")
        return Atom(token.text, tuple(args), token.location)

    def term(self) -> Term:
        token = self.token
        if token.kind == "variable":
            self.advance()
            return Wildcard() if token.text == "_" else Variable(token.text)
        constant = self.constant()
        if constant is None:
            raise self.error("expected a variable or a constant")
        return constant

    def constant(self) -> Constant | None:
        token = self.token
        if token.kind == "name":
            constant = Constant("name", token.text)
        elif token.kind == "string":
            constant = Constant("string", _unquote(token))
        elif token.kind == "int":
            constant = Constant("int", int(token.text))
        elif token.kind == "float":
            constant = Constant("float", float(token.text))
        else:
            return None
        self.advance()
        return constant

    def literal(self) -> BodyLiteral:
        start = self.token
        if self.accept("!"):
            return NegatedAtom(self.atom(), start.location)
        if start.kind == "ident" and start.text == "let":
            return self.let()
        if start.kind == "ident" and not start.text.startswith("fn:"):
            return self.atom()
        left = self.expression()
        op = self.token.text
        if self.token.kind != "punct" or op not in ("=", "!=", "<", "<=", ">", ">="):
            raise self.error("expected a comparison operator (=, !=, <, <=, >, >=)")
        self.advance()
        return Comparison(cast(ComparisonOp, op), left, self.expression(), start.location)

    def expression(self) -> Expression:
        token = self.token
        if token.kind == "ident" and token.text.startswith("fn:"):
            self.advance()
            self.expect("(", f"after function {token.text}")
            args: list[Expression] = []
            if not self.accept(")"):
                args.append(self.expression())
                while self.accept(","):
                    args.append(self.expression())
                self.expect(")", f"to close the arguments of {token.text}")
            return Apply(token.text, tuple(args), token.location)
        term = self.term()
        if isinstance(term, Wildcard):
            raise DatalogSyntaxError(token.location, "'_' cannot stand in an expression")
        return term

    def let(self) -> Let:
        start = self.expect("let", "")
        token = self.token
        if token.kind != "variable" or token.text == "_":
            raise self.error("expected a variable after 'let'")
        self.advance()
        self.expect("=", f"after 'let {token.text}'")
        return Let(Variable(token.text), self.expression(), start.location)

    def transform(self) -> Transform:
        start = self.advance()
        group_by: tuple[Variable, ...] | None = None
        lets: list[Let] = []
        if self.accept("do"):
            function = self.token
            if function.kind != "ident" or function.text != "fn:group_by":
                raise self.error("expected 'fn:group_by' after 'do'")
            grouping = self.expression()
            assert isinstance(grouping, Apply)
            if not all(isinstance(arg, Variable) for arg in grouping.args):
                raise DatalogSyntaxError(grouping.location, "fn:group_by takes variables only")
            group_by = cast(tuple[Variable, ...], grouping.args)
            if not self.accept(","):
                return Transform(group_by, (), start.location)
        lets.append(self.let())
        while self.accept(","):
            lets.append(self.let())
        return Transform(group_by, tuple(lets), start.location)

    def decl(self) -> Decl:
        start = self.advance()
        atom = self.atom()
        names: list[str] = []
        for arg in atom.args:
            if not isinstance(arg, Variable):
                raise DatalogSyntaxError(atom.location, f"Decl {atom.predicate}: arguments must be variables")
            names.append(arg.name)
        doc = ""
        bounds: list[tuple[TypeName, ...]] = []
        if self.accept("descr"):
            doc = self.descriptors()
        while self.accept("bound"):
            bounds.append(self.bound())
        self.expect(".", "at the end of a Decl")
        return Decl(atom.predicate, tuple(names), tuple(bounds), doc, start.location)

    def descriptors(self) -> str:
        """`descr [doc("..."), arg(X, "..."), extensional()]`: kept as documentation, `doc` returned."""
        self.expect("[", "after 'descr'")
        doc = ""
        while not self.accept("]"):
            entry = self.atom()
            if entry.predicate == "doc" and entry.args and isinstance(entry.args[0], Constant):
                doc = str(entry.args[0].value)
            if not self.accept(",") and self.token.text != "]":
                raise self.error("expected ',' or ']' in descr")
        return doc

    def bound(self) -> tuple[TypeName, ...]:
        self.expect("[", "after 'bound'")
        types: list[TypeName] = []
        while not self.accept("]"):
            token = self.token
            if token.kind != "name" or token.text not in TYPE_NAMES:
                raise self.error(f"expected a type ({', '.join(TYPE_NAMES)})")
            types.append(TYPE_NAMES[TYPE_NAMES.index(token.text)])
            self.advance()
            if not self.accept(",") and self.token.text != "]":
                raise self.error("expected ',' or ']' in bound")
        return tuple(types)


def _unquote(token: Token) -> str:
    body = token.text[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            escaped = body[index + 1]
            if escaped not in _ESCAPES:
                column = token.location.column + index + 1
                location = Location(token.location.file, token.location.line, column)
                raise DatalogSyntaxError(location, f"unknown escape '\\{escaped}' in string")
            out.append(_ESCAPES[escaped])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)
