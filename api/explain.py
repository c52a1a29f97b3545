"""A decision of the proof log in plain language: which rules and limits admitted, reduced or denied it, and why.

Everything said comes from the record itself — the verdict, the reason codes and each engine's proof (Z3's unsat
core, binding limits and constants; the Datalog derivation of each `deny`; the CLIPS rules that fired and their
facts; the Prolog precondition trace; the guard's own checks) — plus, when the rule files of the decision's rule
set are at hand (matched by content hash, never assumed), the descriptions and comments risk officers wrote in
them. Without those files the explanation still stands on the proofs alone.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from api.index import IndexedFill
from reasoning.engine import layer_of
from reasoning.limits.bounds import value as derived_value
from reasoning.limits.parser import derived_tree
from reasoning.limits.vocabulary import CONSTANTS, DERIVED
from reasoning.rules import RULE_FILES

LAYER_NAMES = {
    "L1": "position",
    "L2": "portfolio",
    "L3": "account",
    "L4": "systemic",
    "L5": "model",
    "L6": "operational",
    "L7": "compliance",
    "GUARD": "guard",
    "EX": "exchange",
}
ENGINE_TITLES = {
    "datalog": "Datalog policy",
    "clips": "CLIPS expert rules",
    "prolog": "Prolog strategy preconditions",
    "z3": "Z3 limits",
}
ENGINE_ORDER = ("datalog", "clips", "prolog", "z3")
_GUARD_REASONS = {
    "L4.kill_switch": "the kill switch had halted trading, so the guard refused every intent that is not closing risk",
    "L4.reducing_only": "the guard was admitting only risk-reducing intents, and this one would have grown risk",
    "L6.missing_fact": "facts the rules need were missing from the decision context",
    "GUARD.no_proven_max_qty": "no engine proved any positive quantity admissible",
}
_COMPARISON = re.compile(r"\s*(-?)([a-z][a-z0-9_]*)\s*(<=|<|>=|>)\s*(-?)([a-z][a-z0-9_]*)\s*\Z")
_NAME = re.compile(r"\b[a-z][a-z0-9_]*\b")
_KEYWORDS = frozenset({"and", "or", "not", "if", "else", "abs", "min", "max", "qty"})


@dataclass(frozen=True, slots=True)
class EngineFinding:
    engine: str  # datalog, clips, prolog, z3, guard
    title: str
    objected: bool
    reasons: tuple[str, ...]
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    verdict: str
    summary: str
    traded: bool
    findings: tuple[EngineFinding, ...]
    trading: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class RuleTexts:
    """Rule files found by the SHA-256 of their bytes; engines' proofs cite exactly those hashes."""

    by_sha256: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, texts: Iterable[str]) -> RuleTexts:
        return cls({hashlib.sha256(text.encode("utf-8")).hexdigest(): text for text in texts})

    def get(self, sha256: object) -> str | None:
        return self.by_sha256.get(sha256) if isinstance(sha256, str) else None


@dataclass(frozen=True, slots=True)
class _LimitText:
    layer: str
    description: str
    unit: str
    constraint: str


def explain(record: Mapping[str, Any], fills: Sequence[IndexedFill], rule_texts: RuleTexts) -> Explanation:
    facts = _DecisionFacts.of(record)
    reasons = facts.reasons
    findings = [_guard_finding(facts)] if _guard_reasons(facts) else []
    findings += [_engine_finding(name, facts, rule_texts) for name in ENGINE_ORDER if name in facts.proofs]
    z3_limits = _limits(rule_texts.get(_proof(facts, "z3").get("ruleset_hash")))
    summary = _summary(facts, z3_limits)
    trading = _trading_lines(facts, fills)
    traded = bool(fills)
    lines = [summary, _intent_line(facts), ""]
    objections = [finding for finding in findings if finding.objected]
    if objections:
        lines.append("Why:")
        lines += [f"- {line}" for finding in objections for line in finding.lines]
        lines.append("")
    quiet = [finding for finding in findings if not finding.objected]
    if quiet:
        lines.append("No objection from:")
        lines += [f"- {finding.title}: {' '.join(finding.lines)}" for finding in quiet]
        lines.append("")
    if not facts.proofs.keys() - {"guard"} and reasons:
        lines += ["No engine ran: the guard refused the intent before asking them.", ""]
    lines += list(trading)
    return Explanation(
        verdict=facts.verdict,
        summary=summary,
        traded=traded,
        findings=tuple(findings),
        trading=trading,
        text="\n".join(lines).rstrip() + "\n",
    )


@dataclass(frozen=True, slots=True)
class _DecisionFacts:
    decision_id: str
    verdict: str
    reasons: tuple[str, ...]
    requested_qty: float | None
    max_qty: float | None
    symbol: str
    intent: Mapping[str, Any]
    proofs: Mapping[str, Any]
    record: Mapping[str, Any]

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> _DecisionFacts:
        reasons = record.get("reasons")
        intent = record.get("intent")
        proofs = record.get("proofs")
        return cls(
            decision_id=str(record.get("decision_id", "")),
            verdict=str(record.get("verdict", "")),
            reasons=tuple(str(reason) for reason in reasons) if isinstance(reasons, list) else (),
            requested_qty=_float(record.get("requested_qty")),
            max_qty=_float(record.get("max_qty")),
            symbol=str(record.get("symbol", "")),
            intent=intent if isinstance(intent, Mapping) else {},
            proofs=proofs if isinstance(proofs, Mapping) else {},
            record=record,
        )

    @property
    def base_asset(self) -> str:
        return self.symbol.split("/", 1)[0] if "/" in self.symbol else "base units"


# ---------------------------------------------------------------- summary and intent


def _summary(facts: _DecisionFacts, limits: Mapping[str, _LimitText]) -> str:
    if facts.verdict == "deny":
        phrases = [_reason_phrase(reason, facts, limits) for reason in facts.reasons]
        listed = "; ".join(phrases[:3]) + (f"; and {len(phrases) - 3} more" if len(phrases) > 3 else "")
        return f"Denied. {listed or 'No reason code was recorded'}."
    requested = _quantity(facts.requested_qty, facts.base_asset)
    proven = _quantity(facts.max_qty, facts.base_asset)
    binding = _binding_phrase(facts, limits)
    if facts.verdict == "reduce":
        return f"Reduced from {requested} to {proven}, the most Z3 proved admissible{binding}."
    if facts.verdict == "admit":
        within = f"the requested {requested} is within the {proven} Z3 proved admissible{binding}"
        return f"Admitted. No engine objected, and {within}."
    return f"Verdict {facts.verdict!r}: not one this explanation knows (admit, reduce or deny)."


def _binding_phrase(facts: _DecisionFacts, limits: Mapping[str, _LimitText]) -> str:
    binding = _strings(_proof(facts, "z3").get("binding"))
    if not binding:
        return ""
    named = ", ".join(_limit_title(code, limits) for code in binding)
    return f"; above that, {named} would be exceeded"


def _reason_phrase(reason: str, facts: _DecisionFacts, limits: Mapping[str, _LimitText]) -> str:
    title = _reason_title(reason)
    z3 = _proof(facts, "z3")
    if reason in _strings(z3.get("unsat_core")) and reason in limits:
        detail = _limit_violation(limits[reason], z3, facts.requested_qty, facts.base_asset)
        return f"{title} — {detail} (Z3 unsat core)"
    if reason in _strings(z3.get("unsat_core")):
        return f"{title} (Z3 unsat core)"
    engine = _engine_of(reason, facts)
    return f"{title} ({ENGINE_TITLES.get(engine, 'guard')})"


def _reason_title(reason: str) -> str:
    layer = layer_of(reason)
    name = reason.split(".", 1)[1] if "." in reason else reason
    return f"{layer} {LAYER_NAMES.get(layer, layer)}: {name}"


def _limit_title(code: str, limits: Mapping[str, _LimitText]) -> str:
    return _reason_title(code) if code not in limits else f"{_reason_title(code)} ({limits[code].constraint})"


def _intent_line(facts: _DecisionFacts) -> str:
    intent = facts.intent
    side = str(intent.get("side", "?"))
    order_type = str(intent.get("order_type", "?"))
    model = str(intent.get("model_id") or "none")
    version = str(intent.get("model_version") or "")
    flags = [flag for flag in ("reduce_only", "reverse") if intent.get(flag) is True]
    record = facts.record
    decided = _time(record.get("decided_at_ms"))
    mode = record.get("mode")
    run = record.get("run_id")
    where = f" in {mode}" if isinstance(mode, str) and mode else ""
    where += f" run {run}" if isinstance(run, str) and run else ""
    requested = _quantity(facts.requested_qty, facts.base_asset)
    return (
        f"Intent {facts.decision_id}: {side} {requested} on {facts.symbol} ({order_type}"
        f"{', ' + ', '.join(flags) if flags else ''}), strategy {intent.get('strategy_id', '?')}, model {model}"
        f"{' ' + version if version else ''}; decided {decided}{where}."
    )


# ---------------------------------------------------------------- the guard's own reasons


def _guard_reasons(facts: _DecisionFacts) -> list[str]:
    return [reason for reason in facts.reasons if _engine_of(reason, facts) == "guard"]


def _guard_finding(facts: _DecisionFacts) -> EngineFinding:
    guard = _proof(facts, "guard")
    errors = guard.get("engine_errors") if isinstance(guard.get("engine_errors"), Mapping) else {}
    lines = []
    for reason in _guard_reasons(facts):
        if reason in _GUARD_REASONS:
            detail = _GUARD_REASONS[reason]
            if reason == "L6.missing_fact" and _strings(guard.get("missing_facts")):
                detail += f" ({', '.join(_strings(guard.get('missing_facts')))})"
        elif reason == "L6.stale_data":
            detail = (
                f"the market data was {_plain_number(guard.get('data_age_ms'))} ms old, older than the "
                f"{_plain_number(guard.get('max_data_age_ms'))} ms the guard accepts"
            )
        elif reason.startswith(("GUARD.timeout.", "GUARD.engine_error.")):
            engine = reason.rsplit(".", 1)[1]
            what = "overran its time budget" if ".timeout." in reason else "failed"
            error = errors.get(engine) if isinstance(errors, Mapping) else None
            cause = f" ({error})" if error else ""
            detail = f"the {ENGINE_TITLES.get(engine, engine)} engine {what}{cause}; the guard fails closed"
        else:
            detail = "no engine's proof gives this reason; it comes from the guard itself"
        lines.append(f"{_reason_title(reason)} (guard): {detail}.")
    return EngineFinding("guard", "Guard", True, tuple(_guard_reasons(facts)), tuple(lines))


def _engine_of(reason: str, facts: _DecisionFacts) -> str:
    for engine in ENGINE_ORDER:
        if reason in _engine_denials(engine, facts):
            return engine
    return "guard"


def _engine_denials(engine: str, facts: _DecisionFacts) -> list[str]:
    proof = _proof(facts, engine)
    if engine == "z3":
        return _strings(proof.get("unsat_core")) if facts.verdict == "deny" else []
    if engine == "datalog":
        return [reason for derivation in _derivations(proof) if (reason := _datalog_reason(derivation))]
    return _strings(proof.get("denials"))


# ---------------------------------------------------------------- the four engines


def _engine_finding(engine: str, facts: _DecisionFacts, texts: RuleTexts) -> EngineFinding:
    proof = _proof(facts, engine)
    source = texts.get(proof.get("ruleset_hash"))
    denials = [reason for reason in _engine_denials(engine, facts) if reason in facts.reasons]
    title = f"{ENGINE_TITLES[engine]} ({RULE_FILES[engine]})"
    if engine == "z3":
        lines = _z3_lines(facts, proof, _limits(source), denials)
    elif engine == "datalog":
        lines = _datalog_lines(proof, source, denials)
    elif engine == "clips":
        lines = _clips_lines(proof, source, denials)
    else:
        lines = _prolog_lines(facts, proof, source, denials)
    limited = engine == "z3" and facts.verdict == "reduce" and bool(_strings(proof.get("binding")))
    return EngineFinding(engine, title, bool(denials) or limited, tuple(denials), tuple(lines))


def _z3_lines(
    facts: _DecisionFacts, proof: Mapping[str, Any], limits: Mapping[str, _LimitText], denials: list[str]
) -> list[str]:
    base = facts.base_asset
    proven = _float(proof.get("max_qty"))
    if denials:
        lines = []
        for code in denials:
            limit = limits.get(code)
            if limit is None:
                lines.append(f"{_reason_title(code)} (Z3 limits, unsat core): no admissible quantity satisfies it.")
                continue
            violation = _limit_violation(limit, proof, facts.requested_qty, base)
            lines.append(f"{_reason_title(code)} (Z3 limits, unsat core): {limit.description} {violation}.")
        if proven:
            lines.append(f"Z3 proved at most {_quantity(proven, base)} admissible, less than the requested amount.")
        return lines
    binding = _strings(proof.get("binding"))
    said = f"proved up to {_quantity(proven, base)} admissible" if proven is not None else "found no violated limit"
    if not binding:
        return [f"{said}."]
    if facts.verdict == "reduce":
        return [_binding_line(code, limits.get(code), proof, facts.requested_qty, proven, base) for code in binding]
    bound = []
    for code in binding:
        limit = limits.get(code)
        where = f" ({_limit_values(limit, proof, proven, base)})" if limit is not None and proven is not None else ""
        bound.append(f"{_reason_title(code)}{where}")
    return [f"{said}; the limit that binds there: {'; '.join(bound)}."]


def _binding_line(
    code: str,
    limit: _LimitText | None,
    proof: Mapping[str, Any],
    requested: float | None,
    proven: float | None,
    base: str,
) -> str:
    title = f"{_reason_title(code)} (Z3 limits, binding)"
    if limit is None:
        return f"{title}: admits at most {_quantity(proven, base)}."
    at_request = _limit_violation(limit, proof, requested, base)
    at_max = _limit_values(limit, proof, proven, base)
    return (
        f"{title}: {limit.description} At the requested {_quantity(requested, base)}, {at_request}; "
        f"Z3 proved {_quantity(proven, base)} the most it admits ({at_max})."
    )


def _limit_violation(limit: _LimitText, proof: Mapping[str, Any], qty: float | None, base: str) -> str:
    constants = _constants(proof)
    comparison = _COMPARISON.match(limit.constraint)
    if comparison is not None and qty is not None:
        left_sign, left, operator, right_sign, right = comparison.groups()
        left_value = _name_value(left, constants, qty, left_sign)
        right_value = _name_value(right, constants, qty, right_sign)
        if left_value is not None and right_value is not None:
            direction = "above" if operator in ("<=", "<") else "below"
            shown_left = _format_value(left, left_value, limit.unit, base)
            shown_right = _format_value(right, right_value, limit.unit, base)
            return f"{_spoken(left)} {shown_left} is {direction} the {shown_right} limit"
    return f"`{limit.constraint}` does not hold ({_limit_values(limit, proof, qty, base)})"


def _spoken(name: str) -> str:
    """`data_age_ms` → `data age` (the unit follows the number)."""
    return re.sub(r"_(ms|atr|bps)\Z", "", name).replace("_", " ")


def _limit_values(limit: _LimitText, proof: Mapping[str, Any], qty: float | None, base: str) -> str:
    constants = _constants(proof)
    shown = []
    for name in dict.fromkeys(_NAME.findall(limit.constraint)):
        if name in _KEYWORDS:
            continue
        found = _name_value(name, constants, qty, "")
        if found is not None:
            shown.append(f"{name} = {_format_value(name, found, limit.unit, base)}")
    at = (
        f" at {_quantity(qty, base)}"
        if qty is not None and any(n in DERIVED for n in _NAME.findall(limit.constraint))
        else ""
    )
    return f"{', '.join(shown)}{at}" if shown else f"`{limit.constraint}`"


def _name_value(name: str, constants: Mapping[str, float], qty: float | None, sign: str) -> float | None:
    if name in constants:
        found: float | None = constants[name]
    elif name in DERIVED and qty is not None:
        try:
            found = derived_value(derived_tree(name)[0], dict(constants), qty)
        except (KeyError, ValueError, ZeroDivisionError, ArithmeticError):
            found = None
    else:
        found = None
    return -found if found is not None and sign == "-" else found


def _datalog_lines(proof: Mapping[str, Any], source: str | None, denials: list[str]) -> list[str]:
    if not denials:
        admitted = [d for d in _derivations(proof) if str(d.get("fact", "")).startswith("admit(")]
        if admitted:
            return [
                f"no deny rule matched, so `{admitted[0].get('clause', 'admit')}` derived {admitted[0].get('fact')}."
            ]
        return ["no deny rule matched."]
    lines = []
    for derivation in _derivations(proof):
        reason = _datalog_reason(derivation)
        if reason is None or reason not in denials:
            continue
        location = _short_location(str(derivation.get("rule", "")))
        premises = [
            f"{premise.get('fact')}"
            + (f" [{_short_location(str(premise.get('source')))}]" if premise.get("source") != "input" else "")
            for premise in derivation.get("premises", [])
            if isinstance(premise, Mapping)
        ]
        absent = _strings(derivation.get("absent"))
        because = f"from {', '.join(premises)}" if premises else "from no premises"
        if absent:
            because += f", and {' nor '.join(absent)} could not be derived"
        comment = _comment_above(source, _line_of(location), "#") if source else None
        why = f" {comment}" if comment else ""
        lines.append(
            f"{_reason_title(reason)} (Datalog, {location}): `{derivation.get('clause')}` derived "
            f"{derivation.get('fact')} {because}.{why}"
        )
    return lines


def _clips_lines(proof: Mapping[str, Any], source: str | None, denials: list[str]) -> list[str]:
    fired = [entry for entry in proof.get("fired", []) if isinstance(entry, Mapping)]
    raw_facts = proof.get("facts")
    facts: Mapping[str, Any] = raw_facts if isinstance(raw_facts, Mapping) else {}
    if not denials:
        names = ", ".join(str(entry.get("rule")) for entry in fired) or "none"
        return [f"no deny rule fired (rules fired: {names})."]
    lines = []
    for reason in denials:
        rule = _clips_rule(source, reason) if source else None
        matched = [entry for entry in fired if rule is None or entry.get("rule") == rule]
        matched = [entry for entry in matched if entry.get("rule") != "classify-intent-effect"] or matched
        shown = []
        for entry in matched:
            bound = "; ".join(str(facts.get(fact_id, fact_id)) for fact_id in _strings(entry.get("facts")))
            shown.append(f"rule {entry.get('rule')} fired on {bound}")
        comment = _clips_comment(source, rule) if source and rule else None
        why = f" {comment}" if comment else ""
        lines.append(f"{_reason_title(reason)} (CLIPS): {'; '.join(shown) or 'a deny fact was asserted'}.{why}")
    return lines


def _prolog_lines(facts: _DecisionFacts, proof: Mapping[str, Any], source: str | None, denials: list[str]) -> list[str]:
    trace = [step for step in proof.get("trace", []) if isinstance(step, Mapping)]
    strategy = str(facts.intent.get("strategy_id", "?"))
    if not denials:
        checked = [f"{step.get('precondition')} passed (observed {step.get('observed')})" for step in trace]
        return [f"strategy {strategy}: {'; '.join(checked) or 'no precondition checked'}."]
    lines = []
    for reason in denials:
        failed = [step for step in trace if step.get("outcome") == "fail" and step.get("reason") == reason]
        for step in failed or [{}]:
            precondition = str(step.get("precondition", "a precondition"))
            comment = _prolog_comment(source, precondition) if source else None
            why = f" {comment}" if comment else ""
            lines.append(
                f"{_reason_title(reason)} (Prolog): strategy {strategy} requires {precondition}, but observed "
                f"{step.get('observed', 'nothing')}.{why}"
            )
    return lines


# ---------------------------------------------------------------- sizing, orders and fills


def _trading_lines(facts: _DecisionFacts, fills: Sequence[IndexedFill]) -> tuple[str, ...]:
    record = facts.record
    orders = [order for order in record.get("orders") or [] if isinstance(order, Mapping)]
    sizing = record.get("sizing") if isinstance(record.get("sizing"), Mapping) else None
    base = facts.base_asset
    if facts.verdict == "deny" and not orders:
        return ("Never traded: the intent was denied, so it was not sized and no order was sent.",)
    lines = []
    if sizing is not None:
        denials = _strings(sizing.get("proven_denials"))
        proof = (
            f"; Z3 refused the sized order: {', '.join(denials)}" if denials else "; Z3 proved the sized order again"
        )
        lines.append(f"Sized to {_quantity(_float(sizing.get('qty')), base)} by {sizing.get('method', '?')}{proof}.")
    if not orders:
        lines.append("Never traded: no order was sent for it.")
        return tuple(lines)
    for order in orders:
        price = f" at {_plain_number(order.get('price'))}" if order.get("price") is not None else ""
        lines.append(
            f"Order {order.get('client_order_id', '?')}: {order.get('type', '?')} {order.get('side', '?')} "
            f"{_quantity(_float(order.get('qty')), base)}{price}{' reduce-only' if order.get('reduce_only') else ''}."
        )
    if not fills:
        lines.append("No fill for it is in the log: it was not (yet) traded.")
    for fill in fills:
        lines.append(
            f"Filled (record {fill.seq}): {fill.side} {_quantity(fill.qty, base)} at {_plain_number(fill.price)}"
            f"{f', fee {_plain_number(fill.fee)} USDT' if fill.fee is not None else ''}"
            f"{f', {fill.liquidity}' if fill.liquidity else ''}, {_time(fill.filled_at_ms)}."
        )
    return tuple(lines)


# ---------------------------------------------------------------- rule file texts


def _limits(source: str | None) -> dict[str, _LimitText]:
    if source is None:
        return {}
    try:
        tables = tomllib.loads(source).get("limits", {})
    except tomllib.TOMLDecodeError:
        return {}
    limits = {}
    for name, table in tables.items() if isinstance(tables, dict) else ():
        if isinstance(table, dict) and isinstance(table.get("layer"), str):
            limits[f"{table['layer']}.{name}"] = _LimitText(
                layer=table["layer"],
                description=str(table.get("description", "")).strip(),
                unit=str(table.get("unit", "")),
                constraint=str(table.get("constraint", "")),
            )
    return limits


def _comment_above(source: str, line: int | None, marker: str) -> str | None:
    """The comment block nearest above `line` (1-based), passing over blank and fact lines but not other rules."""
    if line is None:
        return None
    lines = source.splitlines()
    index = min(line, len(lines)) - 2
    while index >= 0 and not lines[index].lstrip().startswith(marker):
        text = lines[index]
        if ":-" in text or text.startswith("deny("):
            return None
        index -= 1
    block: list[str] = []
    while index >= 0 and lines[index].lstrip().startswith(marker):
        text = lines[index].lstrip().lstrip(marker).strip()
        if set(text) <= set("-= ") or re.match(r"-{3,}", text):
            break
        block.insert(0, text)
        index -= 1
    return " ".join(block) or None


def _clips_rule(source: str | None, reason: str) -> str | None:
    if source is None:
        return None
    blocks = re.split(r"(?=\(defrule\s)", source)
    for block in blocks:
        header = re.match(r"\(defrule\s+([A-Za-z0-9_-]+)", block)
        if header and re.search(rf"\(reason\s+{re.escape(reason)}\)", block):
            return header.group(1)
    return None


def _clips_comment(source: str, rule: str) -> str | None:
    found = re.search(rf"^;;;\s*{re.escape(rule)}:\s*(.*(?:\n;;;(?!\s*-).*)*)", source, re.MULTILINE)
    if found is None:
        return None
    return " ".join(line.lstrip(";").strip() for line in found.group(1).splitlines())


def _prolog_comment(source: str, precondition: str) -> str | None:
    wanted = re.sub(r"\s+", "", precondition)
    lines = source.splitlines()
    for number, text in enumerate(lines, start=1):
        if text.startswith("precondition(") and wanted in re.sub(r"\s+", "", text):
            return _comment_above(source, number, "%")
    return None


# ---------------------------------------------------------------- small helpers


def _proof(facts: _DecisionFacts, engine: str) -> Mapping[str, Any]:
    proof = facts.proofs.get(engine)
    return proof if isinstance(proof, Mapping) else {}


def _derivations(proof: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [item for item in proof.get("derivations", []) if isinstance(item, Mapping)]


def _datalog_reason(derivation: Mapping[str, Any]) -> str | None:
    found = re.match(r'deny\(".*?",\s*"([^"]+)"\)', str(derivation.get("fact", "")))
    return found.group(1) if found else None


def _constants(proof: Mapping[str, Any]) -> dict[str, float]:
    raw = proof.get("constants")
    if not isinstance(raw, Mapping):
        return {}
    return {str(name): float(value) for name, value in raw.items() if _is_number(value)}


def _short_location(location: str) -> str:
    """`/work/main/rules/policy.mg:18:1` → `policy.mg:18` (the path is the writer's machine's)."""
    found = re.search(r"([^/\\]+?):(\d+)(?::\d+)?\Z", location)
    return f"{found.group(1)}:{found.group(2)}" if found else location


def _line_of(location: str) -> int | None:
    found = re.search(r":(\d+)\Z", location)
    return int(found.group(1)) if found else None


def _format_value(name: str, number: float, limit_unit: str, base: str) -> str:
    variable = CONSTANTS.get(name) or DERIVED.get(name)
    unit = str(variable.unit) if variable is not None else ""
    if unit == "USDT" or unit == "USDT/base":
        return f"{_plain_number(number)} USDT"
    if unit == "base":
        return _quantity(number, base)
    if unit == "ms":
        return f"{_plain_number(number)} ms"
    if unit.startswith("flag"):
        return "yes" if number else "no"
    return _in_limit_unit(number, limit_unit, base)


def _in_limit_unit(number: float, unit: str, base: str) -> str:
    if unit == "ratio":
        return f"{_plain_number(number * 100)} %"
    if unit in ("usdt", "price"):
        return f"{_plain_number(number)} USDT"
    if unit == "base":
        return _quantity(number, base)
    if unit == "x":
        return f"{_plain_number(number)}x"
    if unit in ("ms", "bps"):
        return f"{_plain_number(number)} {unit}"
    if unit == "atr":
        return f"{_plain_number(number)} ATR"
    return _plain_number(number)


def _quantity(number: float | None, base: str) -> str:
    return "an unknown quantity" if number is None else f"{_plain_number(number)} {base}"


def _plain_number(number: object) -> str:
    if not _is_number(number):
        return str(number)
    value = float(number)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.8g}"
    return f"{value:.6g}"


def _time(epoch_ms: object) -> str:
    if not _is_number(epoch_ms) or isinstance(epoch_ms, float):
        return "at an unrecorded time"
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _float(value: object) -> float | None:
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
