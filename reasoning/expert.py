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
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from dataclasses import dataclass
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
    _check_reason_codes(path, source)
    environment, _ = _build_environment(ruleset)
    _check_templates(ruleset, environment)
    return ruleset


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
