"""The CLIPS engine of the guard: regime and microstructure expert rules from `rules/expert.clp`.

Per decision, on the calling thread's own `clips.Environment` (CLIPS environments are not shared
between threads, so each worker thread builds one, lazily, from the current rule set): reset, assert
one fact per template (`intent`, `market`, `account`, `position`, `model`, `venue`), run with a
rule-firing limit, collect the `deny` facts' reason codes.

The proof is the list of rules that fired with the facts each matched. It comes from CLIPS's own
`(watch rules)` trace (`FIRE 1 rule-name: f-2,f-5,*`), captured by a router, rather than from a
`fired` record each rule would have to assert: a rule author cannot forget it and cannot make it lie.

Loading splits the file into its top-level constructs (noting where each starts) and builds them one
by one, so a CLIPS error, which CLIPS reports per construct, is mapped back to `file:line:col`: the
construct's line, refined to the token where CLIPS stopped reading by counting the tokens of the
echo CLIPS prints after `ERROR:`. A bad file raises `ClipsRuleError`; the engine keeps its last good
rule set. `ruleset_hash` is the SHA-256 of the file's bytes.

A rule file is data that risk officers edit: loading it, or deciding with it, must not reach outside
the engine. CLIPS evaluates expressions while building (defglobal values, template defaults), so
before any construct reaches CLIPS, `check_calls` reads the constructs' expressions (comments and
string literals skipped) and refuses, at `file:line:col`:

* a call to a function (`DENIED_FUNCTIONS`, from the CLIPS 6.4 Basic Programming Guide) that
  - reaches the operating system or the process: system, exit, chdir, set-locale;
  - reads or writes files or the console's input: open, close, flush, rewind, seek, tell,
    with-open-file, remove, rename, read, readline, read-number, get-char, unget-char, dribble-on,
    dribble-off, fetch, toss, print-region, get-region;
  - loads or saves constructs, facts or instances: load, load*, bload, bsave, save, batch, batch*,
    constructs-to-c, load-facts, save-facts, bload-facts, bsave-facts, load-instances,
    save-instances, restore-instances, bload-instances, bsave-instances;
  - runs code named or built at run time: eval, build, funcall, check-syntax, python-function
    (clipspy's call into Python), call, new;
  - changes the engine, its constructs or settings, or stops a decision part-way: clear, reset, run,
    halt, pop-focus, clear-focus-stack, set-current-module, refresh, refresh-agenda, watch, unwatch
    (the proof is the `watch rules` trace), set-break, remove-break, set-strategy,
    set-salience-evaluation, set-fact-duplication, set-reset-globals, set-dynamic-constraint-checking,
    set-sequence-operator-recognition, set-class-defaults-mode, set-beta-memory-resizing, profile,
    profile-reset, set-profile-percent-threshold, conserve-mem, release-mem, undefrule,
    undeftemplate, undeffacts, undefglobal, undeffunction, undefgeneric, undefmethod, undefclass,
    undefinstances, undefmessage-handler.
  Output to a router (printout, print, println, format, put-char; `t` is captured) stays allowed.
* sort, call-specific-method or send whose function or message is not named literally: it could
  name a denied function at run time;
* recursion, a cycle of calls among the file's deffunctions, generic functions and message handlers,
  also through pattern matching (a function that changes facts or instances has CLIPS evaluate the
  rules' tests and constraints before it returns, and they may call it again);
* parentheses nested more than `MAX_NESTING` deep, or calls nested more than `MAX_EVALUATION_DEPTH`
  deep along the deepest chain of calls: CLIPS parses and evaluates by recursion in C, without a
  limit, and a stack overflow kills the process.

A call is told from data by its position: the template and slot names of a pattern, of an asserted
or `deffacts` fact and of a `modify`/`duplicate` slot are names, not calls (a template may have slots
`open` and `close`); every other list head is a call. Where it cannot tell (COOL object patterns
and messages), the check assumes a call. A rule's right-hand side that loops (`while`) still blocks
its thread: CLIPS has no time limit, and the engine runs on the caller's thread.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import clips
from clips._clips import ffi, lib
from clips.common import environment_builder
from clips.values import python_value

from core.errors import CryptoScalpError
from core.intent import Intent
from reasoning.context import DecisionContext
from reasoning.engine import JSON, EngineResult, RuleFileError

RULES_PATH = Path(__file__).resolve().parents[1] / "rules" / "expert.clp"
DEFAULT_FIRING_LIMIT = 256  # far above what one decision needs; reaching it means rules feed each other
# CLIPS parses and evaluates nested expressions by recursion in C, with no limit: measured on an 8 MiB
# thread stack, 10,000 levels build and evaluate, 30,000 crash the process (parsing nested calls, or a
# chain of deffunctions calling each other). The shipped rules nest 6 levels and call 1 deffunction deep.
MAX_NESTING = 100  # parentheses, within one construct
MAX_EVALUATION_DEPTH = 2_000  # nesting summed along the deepest chain of calls to the file's own functions

REASON_CODE = re.compile(r"L[1-7]\.[a-z][a-z0-9_]*")
_REASON_SLOT = re.compile(r"\(reason\s+([^\s()]+)")
_TOKEN = re.compile(r';[^\n]*|"(?:\\.|[^"\\])*"?|[()]|[^\s()";]+')
_DENY_REASON = re.compile(r"\(deny \(reason ([^\s()]+)\)\)")
_FIRE = re.compile(r"FIRE\s+\d+\s+(?:\w+::)?(\S+):\s*(.*)")


class ClipsRuleError(RuleFileError):
    """The CLIPS rule file was rejected, at `path:line:column`."""


class ClipsEngineError(CryptoScalpError):
    """A decision could not be completed (firing limit reached, malformed reason code, CLIPS error)."""


@dataclass(frozen=True, slots=True)
class Construct:
    """One top-level construct of the rule file and where it starts (1-based line and column)."""

    text: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class ClipsRuleset:
    path: Path
    constructs: tuple[Construct, ...]
    ruleset_hash: str  # SHA-256 of the file bytes


def split_constructs(path: Path, source: str) -> tuple[Construct, ...]:
    """Cut `source` into its top-level parenthesised constructs, skipping comments and whitespace."""
    constructs: list[Construct] = []
    depth = 0
    start = 0
    start_line = start_column = 0
    line, line_start = 1, 0
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\n":
            line, line_start = line + 1, index + 1
        elif char == ";":
            end = source.find("\n", index)
            index = len(source) if end < 0 else end
            continue
        elif char == '"':
            end = _string_end(source, index)
            if end < 0:
                raise ClipsRuleError(path, line, index - line_start + 1, "string is never closed")
            line += source.count("\n", index, end)
            if "\n" in source[index:end]:
                line_start = source.rfind("\n", index, end) + 1
            index = end
            continue
        elif char == "(":
            if depth == 0:
                start, start_line, start_column = index, line, index - line_start + 1
            depth += 1
            if depth > MAX_NESTING:
                raise ClipsRuleError(
                    path,
                    line,
                    index - line_start + 1,
                    f"parentheses nest more than {MAX_NESTING} deep here; CLIPS parses nesting by recursion and "
                    "a rule file needs nowhere near that",
                )
        elif char == ")":
            if depth == 0:
                raise ClipsRuleError(path, line, index - line_start + 1, "')' closes nothing")
            depth -= 1
            if depth == 0:
                constructs.append(Construct(source[start : index + 1], start_line, start_column))
        elif depth == 0 and not char.isspace():
            raise ClipsRuleError(
                path, line, index - line_start + 1, f"expected '(' starting a construct, found {char!r}"
            )
        index += 1
    if depth:
        raise ClipsRuleError(path, start_line, start_column, "this construct's '(' is never closed")
    return tuple(constructs)


def _string_end(source: str, opening: int) -> int:
    """Index just past the string literal opening at `opening`, or -1 when it never closes."""
    index = opening + 1
    while index < len(source):
        if source[index] == "\\":
            index += 2
            continue
        if source[index] == '"':
            return index + 1
        index += 1
    return -1


class _CapturingRouter(clips.Router):  # type: ignore[misc]  # clipspy ships no annotations
    """Takes CLIPS's console output (the rule-firing trace, errors, warnings) instead of printing it.

    Its priority is above clipspy's own error router (40), so CLIPS errors end up here, not on stderr.
    """

    def __init__(self) -> None:
        super().__init__("cryptoscalp-capture", 50)
        self.chunks: list[str] = []

    def query(self, name: str) -> bool:
        return name in ("stdout", "stderr", "stdwrn")

    def write(self, name: str, message: str) -> None:
        self.chunks.append(message)

    def take(self) -> str:
        text = "".join(self.chunks)
        self.chunks.clear()
        return text


def load_ruleset(path: Path) -> ClipsRuleset:
    """Read, split, build and check the rule file; raise `ClipsRuleError` at the first problem."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ClipsRuleError(path, 1, 1, f"cannot read the rule file: {error.strerror}") from error
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ClipsRuleError(path, line, 1, "the rule file is not UTF-8") from error
    ruleset = ClipsRuleset(path, split_constructs(path, source), hashlib.sha256(raw).hexdigest())
    check_calls(path, ruleset.constructs)
    _check_reason_codes(path, source)
    environment, _ = _build_environment(ruleset)
    _check_templates(ruleset, environment)
    return ruleset


_OUTSIDE_WORLD = "it reaches the operating system or the process itself"
_FILES = "it reads or writes files or the console's input"
_PERSISTENCE = "it loads or saves constructs, facts or instances"
_RUN_TIME_CODE = "it runs code that is named or built only at run time"
_ENGINE = "it changes the engine, its constructs or its settings, or stops a decision part-way"

# The functions a rule file may not call (CLIPS 6.4 Basic Programming Guide, chapter 12), with why.
DENIED_FUNCTIONS: dict[str, str] = {
    **dict.fromkeys(("system", "exit", "chdir", "set-locale"), _OUTSIDE_WORLD),
    **dict.fromkeys(
        (
            "open", "close", "flush", "rewind", "seek", "tell", "with-open-file", "remove", "rename",
            "read", "readline", "read-number", "get-char", "unget-char", "dribble-on", "dribble-off",
            "fetch", "toss", "print-region", "get-region",
        ),
        _FILES,
    ),
    **dict.fromkeys(
        (
            "load", "load*", "bload", "bsave", "save", "batch", "batch*", "constructs-to-c",
            "load-facts", "save-facts", "bload-facts", "bsave-facts",
            "load-instances", "save-instances", "restore-instances", "bload-instances", "bsave-instances",
        ),
        _PERSISTENCE,
    ),
    **dict.fromkeys(("eval", "build", "funcall", "check-syntax", "python-function", "call", "new"), _RUN_TIME_CODE),
    **dict.fromkeys(
        (
            "clear", "reset", "run", "halt", "pop-focus", "clear-focus-stack", "set-current-module",
            "refresh", "refresh-agenda", "watch", "unwatch", "set-break", "remove-break",
            "set-strategy", "set-salience-evaluation", "set-fact-duplication", "set-reset-globals",
            "set-dynamic-constraint-checking", "set-sequence-operator-recognition", "set-class-defaults-mode",
            "set-beta-memory-resizing", "profile", "profile-reset", "set-profile-percent-threshold",
            "conserve-mem", "release-mem",
            "undefrule", "undeftemplate", "undeffacts", "undefglobal", "undeffunction", "undefgeneric",
            "undefmethod", "undefclass", "undefinstances", "undefmessage-handler",
        ),
        _ENGINE,
    ),
}  # fmt: skip

# Functions whose argument at this position names the function (or message) they call.
_CALLEE_ARGUMENT = {"sort": 1, "call-specific-method": 1, "send": 2}
# Functions that change facts or instances, so that CLIPS matches patterns (and evaluates the tests and
# constraints of rules' left-hand sides) before they return.
_PATTERN_MATCHING_CALLS = frozenset(
    (
        "assert", "retract", "modify", "duplicate", "assert-string", "str-assert", "send", "dynamic-put",
        "make-instance", "active-make-instance", "unmake-instance", "delete-instance", "initialize-instance",
        "active-initialize-instance", "modify-instance", "active-modify-instance", "message-modify-instance",
        "active-message-modify-instance", "duplicate-instance", "active-duplicate-instance",
        "message-duplicate-instance", "active-message-duplicate-instance", "slot-replace$", "slot-insert$",
        "slot-delete$", "slot-direct-replace$", "slot-direct-insert$", "slot-direct-delete$",
    )
)  # fmt: skip
_CONSTRUCTS = frozenset(
    (
        "defrule", "deffacts", "deftemplate", "defglobal", "deffunction", "defgeneric", "defmethod",
        "defclass", "defmessage-handler", "definstances", "defmodule",
    )
)  # fmt: skip
_CONDITIONAL_ELEMENTS = frozenset(("and", "or", "not", "exists", "forall", "logical"))
_MATCHING = "pattern matching"  # the call-graph node for what a fact change evaluates
_TOP = ""  # the call-graph node for a decision (reset, run) and for building the file


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class _List:
    """A parenthesised expression of a construct; `line`, `column` are those of its `(`."""

    items: tuple[_Token | _List, ...]
    line: int
    column: int

    def head(self) -> str:
        first = self.items[0] if self.items else None
        return first.text.rpartition("::")[2] if isinstance(first, _Token) else ""

    def lists(self, start: int = 1) -> Iterator[tuple[_Token | _List, _List]]:
        """The sub-lists from item `start` (at least 1) on, each with the item just before it."""
        for index in range(start, len(self.items)):
            item = self.items[index]
            if isinstance(item, _List):
                yield self.items[index - 1], item


def _parse(construct: Construct) -> _List:
    """The construct as nested lists of tokens, comments left out (its parentheses balance: it was split)."""
    text = construct.text
    stack: list[tuple[list[_Token | _List], int, int]] = []
    line, line_start = construct.line, -(construct.column - 1)
    position = 0
    parsed: _List | None = None
    for match in _TOKEN.finditer(text):
        newlines = text.count("\n", position, match.start())
        if newlines:
            line, line_start = line + newlines, text.rfind("\n", position, match.start()) + 1
        position = match.start()
        token, column = match.group(), match.start() - line_start + 1
        if token == "(":
            stack.append(([], line, column))
        elif token == ")":
            items, opened_line, opened_column = stack.pop()
            parsed = _List(tuple(items), opened_line, opened_column)
            if stack:
                stack[-1][0].append(parsed)
        elif not token.startswith(";"):
            stack[-1][0].append(_Token(token, line, column))
    assert parsed is not None and not stack
    return parsed


@dataclass(frozen=True, slots=True)
class _Call:
    callee: str  # a function of the file, or _MATCHING
    depth: int  # of the call's expression within the caller's own nesting
    at: _Token


@dataclass(slots=True)
class _CallCheck:
    """Walks every construct: refuses denied calls, and records calls between the file's own functions."""

    path: Path
    slots: dict[str, frozenset[str]]  # template → its slots
    functions: frozenset[str]  # deffunctions, generic functions, message handlers
    every_slot: frozenset[str] = field(init=False)
    calls: dict[str, list[_Call]] = field(default_factory=dict)  # caller → its calls
    nesting: dict[str, int] = field(default_factory=dict)  # caller → its deepest expression

    def __post_init__(self) -> None:
        self.every_slot = frozenset().union(*self.slots.values())

    def construct(self, tree: _List) -> None:
        kind = tree.head()
        if kind == "defrule":
            self.rule(tree)
        elif kind == "deffacts":
            for _, fact in tree.lists():
                self.fact(fact, _TOP, 1)
        elif kind in ("deffunction", "defmethod", "defmessage-handler"):
            owner = _name_at(tree, 2 if kind == "defmessage-handler" else 1)
            for _, expression in tree.lists():
                self.expression(expression, owner, 1)
        elif kind in _CONSTRUCTS:  # defaults of templates and classes are evaluated whenever a fact or instance is made
            owner = _MATCHING if kind in ("deftemplate", "defclass") else _TOP
            for _, expression in tree.lists():
                self.expression(expression, owner, 1)
        else:  # not a construct: CLIPS refuses it, unless it is a denied call
            self.expression(tree, _TOP, 1)

    def rule(self, tree: _List) -> None:
        arrow = next((i for i, item in enumerate(tree.items) if isinstance(item, _Token) and item.text == "=>"), None)
        end = len(tree.items) if arrow is None else arrow
        for item in tree.items[1:end]:
            if isinstance(item, _List):
                self.condition(item)
        for _, action in tree.lists(end + 1):
            self.expression(action, _TOP, 1)

    def condition(self, element: _List) -> None:
        """A conditional element; its tests and constraints are evaluated while matching."""
        kind = element.head()
        if kind in _CONDITIONAL_ELEMENTS:
            for _, inner in element.lists():
                self.condition(inner)
        elif kind in ("test", "declare"):
            for _, expression in element.lists():
                self.expression(expression, _MATCHING, 1)
        else:  # a pattern: (template (slot constraint...)...), (relation constraint...) or (object ...)
            slots = None if kind == "object" else self.slots.get(kind, frozenset())
            for before, inner in element.lists():
                if _is_connector(before):
                    self.expression(inner, _MATCHING, 1)
                else:
                    self.slot_or_expression(inner, slots, _MATCHING, 1)

    def fact(self, fact: _List, owner: str, depth: int) -> None:
        """`(template (slot value...)...)` or `(relation value...)`: the name is no call, values may be."""
        slots = self.slots.get(fact.head(), frozenset())
        for _, inner in fact.lists():
            self.slot_or_expression(inner, slots, owner, depth + 1)

    def slot_or_expression(self, inner: _List, slots: frozenset[str] | None, owner: str, depth: int) -> None:
        """`(slot value...)` when `inner` names one of `slots` (None: any), else an expression."""
        if inner.items and isinstance(inner.items[0], _Token) and (slots is None or inner.head() in slots):
            for _, value in inner.lists():
                self.expression(value, owner, depth + 1)
        else:
            self.expression(inner, owner, depth)

    def expression(self, call: _List, owner: str, depth: int) -> None:
        self.nesting[owner] = max(self.nesting.get(owner, 0), depth)
        function = call.head()
        first = call.items[0] if call.items else None
        if isinstance(first, _List):
            self.expression(first, owner, depth + 1)
        elif isinstance(first, _Token):
            self.callee(function, first, owner, depth)
            if function in _CALLEE_ARGUMENT:
                self.named_callee(call, function, owner, depth)
        for index, item in enumerate(call.items[1:], start=1):
            if not isinstance(item, _List):
                continue
            if function == "assert":
                self.fact(item, owner, depth)
            elif function in ("modify", "duplicate") and index > 1:  # (modify <fact> (slot value)...)
                self.slot_or_expression(item, self.every_slot, owner, depth + 1)
            else:
                self.expression(item, owner, depth + 1)

    def callee(self, function: str, at: _Token, owner: str, depth: int) -> None:
        reason = DENIED_FUNCTIONS.get(function)
        if reason is not None:
            raise ClipsRuleError(
                self.path, at.line, at.column, f"({function} ...) is not allowed in a rule file: {reason}"
            )
        if function in self.functions:
            self.calls.setdefault(owner, []).append(_Call(function, depth, at))
        if function in _PATTERN_MATCHING_CALLS:
            self.calls.setdefault(owner, []).append(_Call(_MATCHING, depth, at))

    def named_callee(self, call: _List, function: str, owner: str, depth: int) -> None:
        """`(sort <function> ...)`, `(call-specific-method <generic> ...)`, `(send <object> <message> ...)`."""
        index = _CALLEE_ARGUMENT[function]
        named = call.items[index] if len(call.items) > index else call.items[0]
        if not isinstance(named, _Token) or named.text[:1] in ("?", "$", '"'):
            raise ClipsRuleError(
                self.path,
                named.line,
                named.column,
                f"{function} must name what it calls literally, so that the call can be checked",
            )
        if function == "send":
            if named.text in self.functions:
                self.calls.setdefault(owner, []).append(_Call(named.text, depth + 1, named))
        else:
            self.callee(named.text.rpartition("::")[2], named, owner, depth + 1)


def _name_at(tree: _List, index: int) -> str:
    item = tree.items[index] if len(tree.items) > index else None
    return item.text.rpartition("::")[2] if isinstance(item, _Token) else _TOP


def _is_connector(before: _Token | _List) -> bool:
    """Does the token before a list make it a constraint's expression (`?x&:(...)`, `=(...)`)?"""
    return isinstance(before, _Token) and before.text.endswith((":", "="))


def check_calls(path: Path, constructs: tuple[Construct, ...]) -> None:
    """Refuse a call to a denied function, and calls that could nest without bound (see the module doc)."""
    trees = [_parse(construct) for construct in constructs]
    slots: dict[str, frozenset[str]] = {}
    functions: set[str] = set()
    handlers: set[str] = set()
    for tree in trees:
        kind = tree.head()
        if kind == "deftemplate":
            slots[_name_at(tree, 1)] = frozenset(
                _name_at(slot, 1) for _, slot in tree.lists() if slot.head() in ("slot", "multislot", "field")
            )
        elif kind in ("deffunction", "defgeneric", "defmethod"):
            functions.add(_name_at(tree, 1))
        elif kind == "defmessage-handler":
            handlers.add(_name_at(tree, 2))
    check = _CallCheck(path, slots, frozenset((functions | handlers) - {_TOP}))
    for tree in trees:
        check.construct(tree)
    # every decision resets and matches; making or changing an instance may run any handler (init, put-...)
    implicit = _Token("", 1, 1)
    check.calls.setdefault(_TOP, []).append(_Call(_MATCHING, 0, implicit))
    check.calls.setdefault(_MATCHING, []).extend(_Call(handler, 1, implicit) for handler in sorted(handlers))
    _check_evaluation_depth(path, check)


def _check_evaluation_depth(path: Path, check: _CallCheck) -> None:
    """Refuse recursion (a cycle of calls) and chains of calls nested deeper than MAX_EVALUATION_DEPTH.

    A node's depth is the deepest nesting its evaluation reaches: its own expressions, or a call's depth
    in them plus the callee's. Nodes are the file's functions, `_MATCHING` (what a fact change evaluates)
    and `_TOP`; computed depth-first without Python recursion, as a chain of calls may be long.
    """
    deepest: dict[str, tuple[int, list[str]]] = {}  # node → (depth, the chain of calls that reaches it)
    for root in check.calls:  # every caller, not only those a decision reaches: no recursion at all
        if root not in deepest:
            _deepest_calls(path, check, root, deepest)


def _deepest_calls(path: Path, check: _CallCheck, root: str, deepest: dict[str, tuple[int, list[str]]]) -> None:
    on_path = [root]
    stack: list[tuple[str, Iterator[_Call]]] = [(root, iter(check.calls[root]))]
    while stack:
        node, pending = stack[-1]
        call = next(pending, None)
        if call is None:
            stack.pop()
            on_path.pop()
            depth, chain, at = check.nesting.get(node, 0), [node], None
            for made in check.calls.get(node, []):
                callee_depth, callee_chain = deepest[made.callee]
                if made.depth + callee_depth > depth:
                    depth, chain, at = made.depth + callee_depth, [node, *callee_chain], made.at
            deepest[node] = (depth, chain)
            if depth > MAX_EVALUATION_DEPTH and at is not None:
                raise ClipsRuleError(
                    path,
                    at.line,
                    at.column,
                    f"calls nest {depth} levels deep from here ({_chain_text(chain)}); CLIPS evaluates them by "
                    f"recursion in C and more than {MAX_EVALUATION_DEPTH} could overflow the process's stack",
                )
        elif call.callee in on_path:
            raise ClipsRuleError(
                path,
                call.at.line,
                call.at.column,
                f"recursion ({_chain_text([*on_path[on_path.index(call.callee) :], call.callee])}): CLIPS has no "
                "limit on recursion and a deep one crashes the process; a rule file may not recurse",
            )
        elif call.callee not in deepest:
            stack.append((call.callee, iter(check.calls.get(call.callee, []))))
            on_path.append(call.callee)


def _chain_text(chain: list[str]) -> str:
    named = [node for node in chain if node != _TOP]
    if len(named) > 6:
        named = [*named[:4], f"… {len(named) - 5} more …", named[-1]]
    return " → ".join(named)


def _check_reason_codes(path: Path, source: str) -> None:
    for match in _REASON_SLOT.finditer(source):
        code = match.group(1)
        if not code.startswith("?") and not REASON_CODE.fullmatch(code):
            line = source.count("\n", 0, match.start(1)) + 1
            column = match.start(1) - (source.rfind("\n", 0, match.start(1)) + 1) + 1
            raise ClipsRuleError(path, line, column, f"reason code {code!r} is not of the form L<1-7>.<snake_case>")


def _check_templates(ruleset: ClipsRuleset, environment: clips.Environment) -> None:
    for template_name, slots in REQUIRED_SLOTS.items():
        construct = next((c for c in ruleset.constructs if _defines(c, "deftemplate", template_name)), None)
        line, column = (construct.line, construct.column) if construct else (1, 1)
        try:
            template = environment.find_template(template_name)
        except LookupError as error:
            raise ClipsRuleError(
                ruleset.path, line, column, f"deftemplate {template_name!r} is missing (the engine asserts it)"
            ) from error
        declared = {slot.name for slot in template.slots}
        for slot in slots:
            if slot not in declared:
                raise ClipsRuleError(
                    ruleset.path,
                    line,
                    column,
                    f"deftemplate {template_name!r} lacks slot {slot!r} (the engine sets it)",
                )


def _defines(construct: Construct, kind: str, name: str) -> bool:
    tokens = construct.text[1:].split(None, 2)
    return len(tokens) >= 2 and tokens[0] == kind and tokens[1].rstrip(")") == name


def _build_environment(ruleset: ClipsRuleset) -> tuple[clips.Environment, _CapturingRouter]:
    environment = clips.Environment()
    router = _CapturingRouter()
    environment.add_router(router)
    for construct in ruleset.constructs:
        try:
            environment.build(construct.text)
        except clips.CLIPSError as error:
            raise _located_error(ruleset.path, construct, router.take() or str(error)) from error
        router.take()  # warnings of a construct that built are not errors
    environment.eval("(watch rules)")
    return environment, router


def _located_error(path: Path, construct: Construct, clips_output: str) -> ClipsRuleError:
    """Map CLIPS's per-construct error to the token where it stopped reading, when it echoes one."""
    message, _, echo = clips_output.partition("ERROR:")
    message = " ".join(message.split()) or "CLIPS rejected this construct"
    line, column = construct.line, construct.column
    echoed = [t for t in _TOKEN.findall(echo.replace("MAIN::", "")) if not t.startswith(";")]
    if echoed:
        offset = 0
        seen = 0
        for match in _TOKEN.finditer(construct.text):
            if match.group().startswith(";"):
                continue
            offset = match.start()
            seen += 1
            if seen == len(echoed):
                break
        before = construct.text[:offset]
        line = construct.line + before.count("\n")
        column = (construct.column + offset) if "\n" not in before else offset - before.rfind("\n")
    return ClipsRuleError(path, line, column, message)


_FLOAT, _INTEGER, _SYMBOL, _STRING, _STRINGS = "float", "integer", "symbol", "string", "strings"

# What the engine asserts per decision: template → (slot, CLIPS type). `_slot_values` gives the values
# in the same order.
FACT_SCHEMA: dict[str, tuple[tuple[str, str], ...]] = {
    "intent": (
        ("id", _STRING),
        ("strategy", _STRING),
        ("side", _SYMBOL),
        ("sign", _INTEGER),
        ("order-type", _SYMBOL),
        ("quantity", _FLOAT),
        ("reduce-only", _SYMBOL),
        ("reverse", _SYMBOL),
        ("stop-loss", _FLOAT),
        ("confidence", _FLOAT),
        ("model-id", _STRING),
    ),
    "market": (
        ("symbol", _STRING),
        ("mark-price", _FLOAT),
        ("atr", _FLOAT),
        ("volatility", _FLOAT),
        ("volatility-regime", _SYMBOL),
        ("regime", _SYMBOL),
        ("spread-bps", _FLOAT),
        ("spread-widening", _SYMBOL),
        ("breakout-confirmed", _SYMBOL),
        ("price-change", _FLOAT),
        ("funding-rate", _FLOAT),
        ("data-age-ms", _INTEGER),
        ("data-quality-flags", _STRINGS),
    ),
    "account": (
        ("equity", _FLOAT),
        ("available-balance", _FLOAT),
        ("daily-pnl", _FLOAT),
        ("drawdown", _FLOAT),
        ("consecutive-losses", _INTEGER),
        ("open-orders", _INTEGER),
        ("orders-last-second", _INTEGER),
    ),
    "position": (("quantity", _FLOAT), ("entry-price", _FLOAT), ("leverage", _FLOAT)),
    "model": (
        ("model-id", _STRING),
        ("drift-detected", _SYMBOL),
        ("calibration-error", _FLOAT),
        ("is-fallback", _SYMBOL),
    ),
    "venue": (
        ("name", _STRING),
        ("healthy", _SYMBOL),
        ("error-rate", _FLOAT),
        ("latency-ms", _FLOAT),
        ("rate-limit-used", _FLOAT),
    ),
}


def _flag(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _slot_values(intent: Intent, context: DecisionContext, quantity: float) -> tuple[tuple[Any, ...], ...]:
    """The facts of one decision, in `FACT_SCHEMA` order (absent stop: 0.0, absent confidence: -1.0)."""
    market, account, position, model, venue = (
        context.market,
        context.account,
        context.position,
        context.model,
        context.venue,
    )
    return (
        (
            intent.intent_id,
            intent.strategy_id,
            intent.side.value,
            intent.side.sign,
            intent.order_type.value,
            quantity,
            _flag(intent.reduce_only),
            _flag(intent.reverse),
            intent.stop_loss or 0.0,
            -1.0 if intent.confidence is None else intent.confidence,
            intent.model_id,
        ),
        (
            market.symbol,
            market.mark_price,
            market.atr,
            market.volatility,
            market.volatility_regime.value,
            market.regime.value,
            market.spread_bps,
            _flag(market.spread_widening),
            _flag(market.breakout_confirmed),
            market.price_change_pct,
            market.funding_rate,
            context.data_age_ms,
            market.data_quality_flags,
        ),
        (
            account.equity,
            account.available_balance,
            account.daily_pnl,
            account.drawdown,
            account.consecutive_losses,
            account.open_orders,
            account.orders_last_second,
        ),
        (position.quantity, position.entry_price, position.leverage),
        (model.model_id, _flag(model.drift_detected), model.calibration_error, _flag(model.is_fallback)),
        (venue.venue, _flag(venue.healthy), venue.error_rate, venue.latency_ms, venue.rate_limit_used),
    )


# The templates the rule file must declare, with at least these slots: what the engine asserts, and `deny`.
REQUIRED_SLOTS: dict[str, tuple[str, ...]] = {
    **{template: tuple(slot for slot, _ in slots) for template, slots in FACT_SCHEMA.items()},
    "deny": ("reason",),
}


class _Session:
    """One thread's CLIPS environment for one rule set.

    The per-decision path talks to CLIPS through clipspy's cffi layer (`clips._clips.lib`), not its
    object API: `Template.assert_fact` converts every slot in Python and `Environment.facts()` retains
    each fact it wraps; retracted-but-retained facts pile up in CLIPS's garbage list and made every
    `reset` slower as decisions accumulated (measured: 30 µs → 700 µs after 6,000 decisions). Fact
    pointers read here are used before the next CLIPS call that could retract them, so none is retained.
    """

    def __init__(self, ruleset: ClipsRuleset) -> None:
        self.ruleset = ruleset
        self.environment, self.router = _build_environment(ruleset)
        self._env = self.environment._env
        self._fact_builder = environment_builder(self._env, "fact")
        self._multifield_builder = environment_builder(self._env, "multifield")
        self._string_builder = environment_builder(self._env, "string")
        self._value = ffi.new("CLIPSValue *")
        # fact index → what the engine asserted there: (template, slots, values)
        self._asserted: dict[int, tuple[bytes, tuple[tuple[bytes, str], ...], tuple[Any, ...]]] = {}
        self._slot_names: dict[str, tuple[str, ...]] = {}
        self._schema = tuple(
            (name.encode(), tuple((slot.encode(), kind) for slot, kind in slots)) for name, slots in FACT_SCHEMA.items()
        )

    def run(self, intent: Intent, context: DecisionContext, quantity: float, firing_limit: int) -> int:
        """Reset, assert the decision's facts, run; the number of rules fired."""
        lib.Reset(self._env)
        self.router.take()
        self._asserted.clear()
        for (template, slots), values in zip(self._schema, _slot_values(intent, context, quantity), strict=True):
            self._assert(template, slots, values)
        fired: int = lib.Run(self._env, firing_limit)
        return fired

    def agenda_empty(self) -> bool:
        return bool(lib.GetNextActivation(self._env, ffi.NULL) == ffi.NULL)

    def _assert(self, template: bytes, slots: tuple[tuple[bytes, str], ...], values: tuple[Any, ...]) -> None:
        env, builder, value = self._env, self._fact_builder, self._value
        lib.FBSetDeftemplate(builder, template)
        for (slot, kind), item in zip(slots, values, strict=True):
            if kind is _FLOAT:
                number = float(item)
                if not math.isfinite(number):
                    raise ClipsEngineError(f"{template.decode()}.{slot.decode()} is {number}, not a finite number")
                value.value = lib.CreateFloat(env, number)
            elif kind is _INTEGER:
                value.value = lib.CreateInteger(env, int(item))
            elif kind is _SYMBOL:
                value.value = lib.CreateSymbol(env, item.encode())
            elif kind is _STRING:
                value.value = lib.CreateString(env, item.encode())
            elif item:
                lib.MBReset(self._multifield_builder)
                for text in item:
                    element = ffi.new("CLIPSValue *")
                    element.value = lib.CreateString(env, text.encode())
                    lib.MBAppend(self._multifield_builder, element)
                value.value = lib.MBCreate(self._multifield_builder)
            else:
                continue  # an empty multislot is the template's default
            if lib.FBPutSlot(builder, slot, value) != lib.PSE_NO_ERROR:
                lib.FBAbort(builder)
                raise ClipsEngineError(f"{template.decode()}.{slot.decode()}: CLIPS refused the value {item!r}")
        fact = lib.FBAssert(builder)
        if fact == ffi.NULL:
            raise ClipsEngineError(f"CLIPS could not assert the {template.decode()} fact (error {lib.FBError(env)})")
        self._asserted[lib.FactIndex(fact)] = (template, slots, values)

    def facts(self, wanted: set[int]) -> list[tuple[int, str, str]]:
        """The asserted facts whose index is in `wanted` and every derived fact, as (index, template, text).

        The text of a fact the engine asserted comes from the values it asserted; derived facts are
        read slot by slot. (`FactPPForm` would do, but it queries every router per printed token.)
        """
        found: list[tuple[int, str, str]] = []
        fact = lib.GetNextFact(self._env, ffi.NULL)
        while fact != ffi.NULL:
            index = lib.FactIndex(fact)
            asserted = self._asserted.get(index)
            if asserted is not None:
                if index in wanted:
                    template, slots, values = asserted
                    found.append((index, template.decode(), _asserted_fact_text(template, slots, values)))
            else:
                template_name = ffi.string(lib.DeftemplateName(lib.FactDeftemplate(fact))).decode()
                found.append((index, template_name, self._derived_fact_text(fact, template_name)))
            fact = lib.GetNextFact(self._env, fact)
        return found

    def _derived_fact_text(self, fact: Any, template: str) -> str:
        slots = self._slot_names.get(template)
        if slots is None:
            slots = tuple(slot.name for slot in self.environment.find_template(template).slots)
            self._slot_names[template] = slots
        parts = [template]
        for slot in slots:
            lib.GetFactSlot(fact, slot.encode(), self._value)
            parts.append(f"({slot} {_clips_text(python_value(self._env, self._value))})")
        return f"({' '.join(parts)})"


def _asserted_fact_text(template: bytes, slots: tuple[tuple[bytes, str], ...], values: tuple[Any, ...]) -> str:
    texts = []
    for (slot, kind), value in zip(slots, values, strict=True):
        if kind is _SYMBOL:
            text = str(value)
        elif kind is _STRINGS:
            text = " ".join(_clips_text(item) for item in value)
        else:
            text = _clips_text(value)
        texts.append(f"({slot.decode()} {text})")
    return f"({template.decode()} {' '.join(texts)})"


def _clips_text(value: Any) -> str:
    """A Python value read from CLIPS, written as CLIPS would print it."""
    if isinstance(value, tuple):
        return " ".join(_clips_text(item) for item in value)
    if isinstance(value, clips.Symbol):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


class _ThreadSessions(threading.local):
    session: _Session | None = None


class ClipsEngine:
    """The guard's CLIPS engine (`Engine` protocol); safe to call from several threads at once."""

    name = "clips"

    def __init__(self, path: Path = RULES_PATH, firing_limit: int = DEFAULT_FIRING_LIMIT) -> None:
        self._ruleset = load_ruleset(path)
        self._firing_limit = firing_limit
        self._sessions = _ThreadSessions()

    @property
    def ruleset_hash(self) -> str:
        return self._ruleset.ruleset_hash

    @property
    def path(self) -> Path:
        return self._ruleset.path

    def reload(self, path: Path | None = None) -> str:
        """Load the rule file again (or another one) and return its hash.

        On `ClipsRuleError` the current rule set stays active. Each thread rebuilds its environment
        on its next decision.
        """
        self._ruleset = load_ruleset(path or self._ruleset.path)
        return self._ruleset.ruleset_hash

    def evaluate(self, intent: Intent, context: DecisionContext, quantity: float) -> EngineResult:
        session = self._session()
        try:
            fired = session.run(intent, context, quantity, self._firing_limit)
        except clips.CLIPSError as error:
            raise ClipsEngineError(f"{session.ruleset.path}: CLIPS failed: {session.router.take() or error}") from error
        if fired >= self._firing_limit and not session.agenda_empty():
            raise ClipsEngineError(
                f"{session.ruleset.path}: {fired} rules fired without the agenda emptying (limit {self._firing_limit})"
            )
        return self._result(session, session.router.take())

    def _session(self) -> _Session:
        session = self._sessions.session
        if session is None or session.ruleset is not self._ruleset:
            session = _Session(self._ruleset)
            self._sessions.session = session
        return session

    def _result(self, session: _Session, trace: str) -> EngineResult:
        firings: list[tuple[str, list[int]]] = []
        for line in trace.splitlines():
            match = _FIRE.match(line.strip())
            if match:
                indices = [int(item[2:]) for item in match.group(2).split(",") if item.startswith("f-")]
                firings.append((match.group(1), indices))
        referenced = {index for _, indices in firings for index in indices}
        facts: dict[str, str] = {}
        denials: set[str] = set()
        for index, template, text in session.facts(referenced):
            if template == "deny":
                reason = _DENY_REASON.fullmatch(text)
                if reason is None or not REASON_CODE.fullmatch(reason.group(1)):
                    raise ClipsEngineError(f"{session.ruleset.path}: a rule asserted a malformed denial {text}")
                denials.add(reason.group(1))
            facts[f"f-{index}"] = text
        proof: JSON = {
            "ruleset_hash": session.ruleset.ruleset_hash,
            "fired": [{"rule": rule, "facts": [f"f-{i}" for i in indices]} for rule, indices in firings],
            "facts": facts,
            "denials": sorted(denials),
        }
        notes = tuple(f"{rule} fired on {', '.join(f'f-{i}' for i in indices)}" for rule, indices in firings)
        return EngineResult(engine=self.name, denials=tuple(sorted(denials)), proof=proof, notes=notes)
