"""The CLIPS engine and rules/expert.clp: each rule fires on its case and not on the neighbouring one."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from core.orders import OrderType, Side
from reasoning import expert
from reasoning.context import MarketRegime, VolatilityRegime
from reasoning.expert import (
    DENIED_FUNCTIONS,
    MAX_EVALUATION_DEPTH,
    MAX_NESTING,
    RULES_PATH,
    ClipsEngine,
    ClipsEngineError,
    ClipsRuleError,
)
from tests.reasoning.engines.factories import MARK, make_context, make_intent


@pytest.fixture(scope="module")
def engine() -> ClipsEngine:
    return ClipsEngine()


# (rule, reason, intent changes, context changes that make it fire, context changes of a neighbour that does not)
RULE_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "extreme-volatility-no-quotes",
        "L4.extreme_volatility_no_quotes",
        {"strategy_id": "market_making"},
        {"market": {"volatility_regime": VolatilityRegime.EXTREME, "spread_widening": True}},
        {"market": {"volatility_regime": VolatilityRegime.EXTREME, "spread_widening": False}},
    ),
    (
        "illiquid-no-market-entries",
        "L4.illiquid_market_entry",
        {"order_type": OrderType.MARKET},
        {"market": {"regime": MarketRegime.ILLIQUID}},
        {"market": {"regime": MarketRegime.RANGING}},
    ),
    (
        "funding-against-direction",
        "L1.funding_against_direction",
        {"side": Side.BUY},
        {"market": {"funding_rate": 0.0015}},  # longs pay 0.15 % ≥ 0.10 %
        {"market": {"funding_rate": -0.0015}},  # shorts pay: a long is paid
    ),
    (
        "price-shock-pause",
        "L4.price_shock_pause",
        {},
        {"market": {"price_change_pct": -0.035}},
        {"market": {"price_change_pct": -0.025}},
    ),
    (
        "wide-spread-no-taker-entries",
        "L4.wide_spread_taker_entry",
        {"order_type": OrderType.MARKET},
        {"market": {"spread_bps": 12.0}},
        {"market": {"spread_bps": 10.0}},
    ),
    (
        "data-quality-flags-no-entries",
        "L6.data_quality_flags",
        {},
        {"market": {"data_quality_flags": ("gap",)}},
        {"market": {"data_quality_flags": ()}},
    ),
    (
        "venue-degraded-no-entries",
        "L6.venue_degraded",
        {},
        {"venue": {"latency_ms": 750.0}},
        {"venue": {"latency_ms": 450.0}},
    ),
    (
        "fallback-model-needs-confidence",
        "L5.fallback_low_confidence",
        {"confidence": 0.55},
        {"model": {"is_fallback": True}},
        {"model": {"is_fallback": False}},
    ),
    (
        "stop-loss-on-wrong-side",
        "L1.stop_loss_wrong_side",
        {"stop_loss": MARK + 50.0},  # a long's stop above the mark
        {},
        {"market": {"mark_price": MARK + 100.0}},
    ),
    (
        "reduce-only-nothing-to-reduce",
        "L1.reduce_only_without_position",
        {"reduce_only": True, "side": Side.SELL},
        {"position": {"quantity": 0.0}},
        {"position": {"quantity": 0.05}},
    ),
]


@pytest.mark.parametrize(
    ("rule", "reason", "intent", "firing", "neighbour"), RULE_CASES, ids=[c[0] for c in RULE_CASES]
)
def test_rule_fires_on_its_case_with_its_reason_and_facts(
    engine: ClipsEngine,
    rule: str,
    reason: str,
    intent: dict[str, Any],
    firing: dict[str, Any],
    neighbour: dict[str, Any],
) -> None:
    result = engine.evaluate(make_intent(**intent), make_context(**firing), 0.01)

    assert result.denials == (reason,)
    fired = {step["rule"]: step["facts"] for step in result.proof["fired"]}
    assert rule in fired
    assert fired[rule] and all(fact in result.proof["facts"] for fact in fired[rule])


@pytest.mark.parametrize(
    ("rule", "reason", "intent", "firing", "neighbour"), RULE_CASES, ids=[c[0] for c in RULE_CASES]
)
def test_rule_does_not_fire_on_the_neighbouring_case(
    engine: ClipsEngine,
    rule: str,
    reason: str,
    intent: dict[str, Any],
    firing: dict[str, Any],
    neighbour: dict[str, Any],
) -> None:
    result = engine.evaluate(make_intent(**intent), make_context(**neighbour), 0.01)

    assert result.denials == ()
    assert rule not in {step["rule"] for step in result.proof["fired"]}


def test_every_rule_of_the_file_has_a_case() -> None:
    rules = {line.split()[1] for line in RULES_PATH.read_text().splitlines() if line.startswith("(defrule ")}

    assert rules - {"classify-intent-effect"} == {case[0] for case in RULE_CASES}


def hostile_context() -> dict[str, Any]:
    """Every opening-only rule would fire on this market."""
    return {
        "market": {
            "volatility_regime": VolatilityRegime.EXTREME,
            "spread_widening": True,
            "regime": MarketRegime.ILLIQUID,
            "funding_rate": -0.01,  # against shorts
            "price_change_pct": 0.08,
            "spread_bps": 40.0,
            "data_quality_flags": ("gap", "ffill"),
        },
        "venue": {"error_rate": 0.5},
        "model": {"is_fallback": True},
    }


def test_a_reduce_only_order_against_the_position_passes_every_rule(engine: ClipsEngine) -> None:
    intent = make_intent("market_making", side=Side.SELL, order_type=OrderType.MARKET, reduce_only=True)
    context = make_context(position={"quantity": 0.05}, **hostile_context())

    result = engine.evaluate(intent, context, 0.05)

    assert result.denials == ()
    assert "(intent-effect (kind reducing))" in result.proof["facts"].values()


def test_an_order_that_shrinks_the_position_passes_without_the_reduce_only_flag(engine: ClipsEngine) -> None:
    intent = make_intent("market_making", side=Side.SELL, order_type=OrderType.MARKET, stop_loss=MARK - 100.0)
    context = make_context(position={"quantity": 0.05}, **hostile_context())

    assert engine.evaluate(intent, context, 0.03).denials == ()


def test_selling_more_than_the_position_opens_risk_and_is_judged(engine: ClipsEngine) -> None:
    intent = make_intent(side=Side.SELL, order_type=OrderType.MARKET)
    context = make_context(position={"quantity": 0.05}, market={"regime": MarketRegime.ILLIQUID})

    assert engine.evaluate(intent, context, 0.08).denials == ("L4.illiquid_market_entry",)


def test_a_stop_and_reverse_opens_risk_and_is_judged(engine: ClipsEngine) -> None:
    intent = make_intent(side=Side.SELL, order_type=OrderType.MARKET, reverse=True)
    context = make_context(position={"quantity": 0.05}, market={"regime": MarketRegime.ILLIQUID})

    assert engine.evaluate(intent, context, 0.03).denials == ("L4.illiquid_market_entry",)


def test_ruleset_hash_is_the_sha256_of_the_file(engine: ClipsEngine) -> None:
    import hashlib

    assert engine.ruleset_hash == hashlib.sha256(RULES_PATH.read_bytes()).hexdigest()


def write_variant(tmp_path: Path, old: str, new: str) -> Path:
    source = RULES_PATH.read_text()
    assert old in source
    path = tmp_path / "expert.clp"
    path.write_text(source.replace(old, new, 1))
    return path


def line_and_column_of(path: Path, needle: str) -> tuple[int, int]:
    text = path.read_text()
    offset = text.index(needle)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def test_an_unknown_slot_is_reported_at_its_token(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "(market (regime illiquid))", "(market (regim illiquid))")

    with pytest.raises(ClipsRuleError) as raised:
        ClipsEngine(path)

    assert (raised.value.line, raised.value.column) == line_and_column_of(path, "regim illiquid")
    assert str(raised.value).startswith(f"{path}:{raised.value.line}:{raised.value.column}: ")
    assert "regim" in raised.value.message


def test_a_malformed_rule_is_reported_inside_its_construct(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "(market (regime illiquid))\n  =>", "(market (regime illiquid))\n  (test)\n  =>")

    with pytest.raises(ClipsRuleError) as raised:
        ClipsEngine(path)

    test_line, test_column = line_and_column_of(path, "(test)")
    assert raised.value.line == test_line
    assert raised.value.column >= test_column


def test_an_unclosed_construct_is_reported_where_it_opens(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path, "(assert (deny (reason L6.venue_degraded))))", "(assert (deny (reason L6.venue_degraded)))"
    )

    with pytest.raises(ClipsRuleError) as raised:
        ClipsEngine(path)

    assert (raised.value.line, raised.value.column) == line_and_column_of(path, "(defrule venue-degraded-no-entries")


def test_a_malformed_reason_code_is_rejected_at_load(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "(reason L4.price_shock_pause)", "(reason price-shock)")

    with pytest.raises(ClipsRuleError) as raised:
        ClipsEngine(path)

    assert (raised.value.line, raised.value.column) == line_and_column_of(path, "price-shock)")


def test_a_missing_template_slot_is_rejected(tmp_path: Path) -> None:
    path = write_variant(tmp_path, "  (slot leverage (type FLOAT)))", "  )")

    with pytest.raises(ClipsRuleError, match="lacks slot 'leverage'"):
        ClipsEngine(path)


def test_a_bad_reload_keeps_the_last_good_rules(tmp_path: Path) -> None:
    path = tmp_path / "expert.clp"
    path.write_text(RULES_PATH.read_text())
    engine = ClipsEngine(path)
    good_hash = engine.ruleset_hash
    path.write_text(RULES_PATH.read_text() + "\n(defrule broken\n")

    with pytest.raises(ClipsRuleError):
        engine.reload()

    assert engine.ruleset_hash == good_hash
    context = make_context(market={"data_quality_flags": ("gap",)})
    assert engine.evaluate(make_intent(), context, 0.01).denials == ("L6.data_quality_flags",)


def test_a_reload_replaces_the_rules_in_every_thread(tmp_path: Path) -> None:
    path = tmp_path / "expert.clp"
    path.write_text(RULES_PATH.read_text())
    engine = ClipsEngine(path)
    context = make_context(market={"spread_bps": 12.0})
    intent = make_intent(order_type=OrderType.MARKET)
    assert engine.evaluate(intent, context, 0.01).denials == ("L4.wide_spread_taker_entry",)
    path.write_text(RULES_PATH.read_text().replace("?*max-taker-spread-bps* = 10.0", "?*max-taker-spread-bps* = 20.0"))

    engine.reload()

    assert engine.evaluate(intent, context, 0.01).denials == ()


def test_a_nan_fact_raises_instead_of_matching_nothing(engine: ClipsEngine) -> None:
    with pytest.raises(ClipsEngineError, match="price-change"):
        engine.evaluate(make_intent(), make_context(market={"price_change_pct": float("nan")}), 0.01)


def test_rules_that_feed_each_other_hit_the_firing_limit(tmp_path: Path) -> None:
    looping = "\n(defrule count-forever ?f <- (account (open-orders ?n)) => (modify ?f (open-orders (+ ?n 1))))\n"
    path = tmp_path / "expert.clp"
    path.write_text(RULES_PATH.read_text() + looping)
    engine = ClipsEngine(path, firing_limit=50)

    with pytest.raises(ClipsEngineError, match="limit 50"):
        engine.evaluate(make_intent(), make_context(), 0.01)


def test_two_threads_deciding_at_once_each_get_their_own_answer(engine: ClipsEngine) -> None:
    shocked = make_context(market={"price_change_pct": 0.05})
    calm = make_context()
    intent = make_intent()
    answers: dict[str, set[tuple[str, ...]]] = {"shocked": set(), "calm": set()}
    start = threading.Barrier(2)

    def decide(name: str, context: Any) -> None:
        start.wait()
        for _ in range(300):
            answers[name].add(engine.evaluate(intent, context, 0.01).denials)

    threads = [threading.Thread(target=decide, args=args) for args in (("shocked", shocked), ("calm", calm))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == {"shocked": {("L4.price_shock_pause",)}, "calm": {()}}


# A rule file is data: loading it, or deciding with it, must not reach outside the engine. Each attack
# below would touch MARKER (or stop, blind or crash the process) if it ran.

RHS_OF_VENUE_RULE = "(assert (deny (reason L6.venue_degraded))))"


@pytest.mark.parametrize(
    ("old", "new", "culprit"),
    [
        ("(defglobal\n", '(defglobal ?*pwned* = (system "touch {marker}"))\n(defglobal\n', "system"),
        (RHS_OF_VENUE_RULE, '(system "touch {marker}")\n  ' + RHS_OF_VENUE_RULE, "system"),
        (RHS_OF_VENUE_RULE, "(exit)\n  " + RHS_OF_VENUE_RULE, "exit"),
        ("(test (or", '(test (system "touch {marker}"))\n  (test (or', "system"),
        ("(market (regime illiquid))", '(market (regime ?r&:(system "touch {marker}")))', "system"),
        ("(reason L4.price_shock_pause)", '(reason (system "touch {marker}"))', "system"),
        ("(slot leverage (type FLOAT))", '(slot leverage (type FLOAT) (default (system "touch {marker}")))', "system"),
        ("(return opening))", '(system "touch {marker}")\n  (return opening))', "system"),
        ("(defglobal\n", '(deffacts boot (deny (reason (system "touch {marker}"))))\n(defglobal\n', "system"),
        (RHS_OF_VENUE_RULE, '(eval "(system \\"touch {marker}\\")")\n  ' + RHS_OF_VENUE_RULE, "eval"),
        (RHS_OF_VENUE_RULE, '(build "(defrule x =>)")\n  ' + RHS_OF_VENUE_RULE, "build"),
        (RHS_OF_VENUE_RULE, '(funcall (sym-cat sys tem) "touch {marker}")\n  ' + RHS_OF_VENUE_RULE, "funcall"),
        (RHS_OF_VENUE_RULE, '(sort system "touch {marker}" "x")\n  ' + RHS_OF_VENUE_RULE, "system"),
        (RHS_OF_VENUE_RULE, '(open "{marker}" out "w")\n  ' + RHS_OF_VENUE_RULE, "open"),
        (RHS_OF_VENUE_RULE, '(batch* "{marker}")\n  ' + RHS_OF_VENUE_RULE, "batch*"),
        (RHS_OF_VENUE_RULE, "(unwatch rules)\n  " + RHS_OF_VENUE_RULE, "unwatch"),
        (RHS_OF_VENUE_RULE, "(halt)\n  " + RHS_OF_VENUE_RULE, "halt"),
    ],
    ids=[
        "defglobal-value",
        "right-hand-side",
        "exit",
        "test-element",
        "pattern-constraint",
        "asserted-slot-value",
        "template-default",
        "deffunction-body",
        "deffacts-value",
        "eval",
        "build",
        "funcall",
        "sort-comparator",
        "open",
        "batch*",
        "unwatch",
        "halt",
    ],
)
def test_a_denied_call_is_refused_at_its_token_before_clips_sees_the_file(
    tmp_path: Path, old: str, new: str, culprit: str
) -> None:
    marker = tmp_path / "pwned"
    path = write_variant(tmp_path, old, new.format(marker=marker))

    with pytest.raises(ClipsRuleError, match=rf"\({re.escape(culprit)} \.\.\.\) is not allowed") as raised:
        ClipsEngine(path)

    text, inserted = path.read_text(), new.format(marker=marker)
    called = min(i for i in (inserted.find(f"{culprit} "), inserted.find(f"{culprit})")) if i >= 0)
    offset = text.index(inserted) + called  # the callee's name, where the inserted text calls it
    expected = (text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset))
    assert (raised.value.line, raised.value.column) == expected
    assert not marker.exists()


def test_a_bad_reload_with_a_denied_call_keeps_the_last_good_rules_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "expert.clp"
    path.write_text(RULES_PATH.read_text())
    engine = ClipsEngine(path)
    good_hash = engine.ruleset_hash
    path.write_text(RULES_PATH.read_text() + f'\n(defglobal ?*pwned* = (system "touch {marker}"))\n')

    with pytest.raises(ClipsRuleError, match="system"):
        engine.reload()

    assert not marker.exists()
    assert engine.ruleset_hash == good_hash
    context = make_context(market={"data_quality_flags": ("gap",)})
    assert engine.evaluate(make_intent(), context, 0.01).denials == ("L6.data_quality_flags",)


def test_denied_names_in_comments_strings_and_slot_names_are_not_calls(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path,
        "(slot rate-limit-used (type FLOAT)))",
        "(slot rate-limit-used (type FLOAT))\n  (slot open (type FLOAT))\n  (slot close (type FLOAT)))",
    )
    with path.open("a") as rules:
        rules.write(
            '\n; (system "touch x") in a comment\n'
            '(defglobal ?*note* = "(system \\"touch x\\")")\n'
            "(defrule venue-close-above-open\n"
            "  ?venue <- (venue (open ?open) (close ?close&:(> ?close ?open)))\n"
            "  =>\n"
            "  (modify ?venue (close ?open))\n"
            "  (assert (deny (reason L6.venue_degraded))))\n"
        )

    engine = ClipsEngine(path)

    assert engine.evaluate(make_intent(), make_context(), 0.01).denials == ()


def test_printout_to_t_is_allowed_and_the_rule_still_denies(tmp_path: Path) -> None:
    path = write_variant(
        tmp_path, RHS_OF_VENUE_RULE, '(printout t "venue degraded: " ?latency " ms" crlf)\n  ' + RHS_OF_VENUE_RULE
    )

    result = ClipsEngine(path).evaluate(make_intent(), make_context(venue={"latency_ms": 750.0}), 0.01)

    assert result.denials == ("L6.venue_degraded",)
    assert "venue-degraded-no-entries" in {step["rule"] for step in result.proof["fired"]}


@pytest.mark.parametrize(
    ("functions", "closing_call", "cycle"),
    [
        ("(deffunction spin (?n) (+ 1 (spin ?n)))", "(spin ?n)", "spin → spin"),
        (
            "(deffunction pong (?n))\n(deffunction ping (?n) (pong ?n))\n(deffunction pong (?n) (ping ?n))",
            "(ping ?n)",
            "ping → pong → ping",
        ),
        (
            "(deffunction spawn (?n) (assert (account (open-orders ?n))) TRUE)\n"
            "(defrule spawn-more (account (open-orders ?n&:(spawn (+ ?n 1)))) =>)",
            "(assert (account",
            "pattern matching → spawn → pattern matching",
        ),
    ],
    ids=["itself", "each-other", "through-pattern-matching"],
)
def test_recursion_is_refused_because_a_deep_one_crashes_the_process(
    tmp_path: Path, functions: str, closing_call: str, cycle: str
) -> None:
    path = tmp_path / "expert.clp"
    path.write_text(f"{RULES_PATH.read_text()}\n{functions}\n(defglobal ?*start* = 0)\n")

    with pytest.raises(ClipsRuleError, match=f"recursion \\({cycle}\\)") as raised:
        ClipsEngine(path)

    line, column = line_and_column_of(path, closing_call)
    assert (raised.value.line, raised.value.column) == (line, column + 1)  # the callee's name, inside its "("


def test_parentheses_nested_deeper_than_the_limit_are_refused(tmp_path: Path) -> None:
    nested = "(+ 1 " * MAX_NESTING + "1" + ")" * MAX_NESTING
    path = tmp_path / "expert.clp"
    path.write_text(f"{RULES_PATH.read_text()}\n(defglobal ?*deep* = {nested})\n")

    with pytest.raises(ClipsRuleError, match=f"nest more than {MAX_NESTING} deep") as raised:
        ClipsEngine(path)

    # the defglobal's "(" is level 1, so the 100th "(+ 1 " (5 characters each) is level 101
    line, column = line_and_column_of(path, "(defglobal ?*deep*")
    assert (raised.value.line, raised.value.column) == (line, column + len("(defglobal ?*deep* = ") + 5 * 99)


def test_a_chain_of_calls_nested_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    # each function nests 50 levels and calls the previous one: 41 of them reach 41 * 50 = 2,050 > 2,000
    levels, count = 50, MAX_EVALUATION_DEPTH // 50 + 1
    functions = "\n".join(
        f"(deffunction level{k} () {'(+ 1 ' * levels}{f'(level{k - 1})' if k else '1'}{')' * levels})"
        for k in range(count)
    )
    path = tmp_path / "expert.clp"
    path.write_text(f"{RULES_PATH.read_text()}\n{functions}\n(defglobal ?*deep* = (level{count - 1}))\n")

    with pytest.raises(ClipsRuleError, match=f"more than {MAX_EVALUATION_DEPTH} could overflow"):
        ClipsEngine(path)


def test_a_comparator_or_message_named_at_run_time_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "expert.clp"
    path.write_text(f"{RULES_PATH.read_text()}\n(deffunction ordered (?compare $?values) (sort ?compare $?values))\n")

    with pytest.raises(ClipsRuleError, match="sort must name what it calls literally") as raised:
        ClipsEngine(path)

    assert (raised.value.line, raised.value.column) == line_and_column_of(path, "?compare $?values))")


def test_every_denied_function_is_named_in_the_module_docstring() -> None:
    documented = expert.__doc__ or ""

    undocumented = [
        name for name in DENIED_FUNCTIONS if not re.search(rf"(?<![\w*-]){re.escape(name)}(?![\w*-])", documented)
    ]

    assert undocumented == []
