"""The Prolog engine and rules/strategies.pl: each precondition passes and fails with its trace."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from core.orders import OrderType, Side
from reasoning.context import MarketRegime, VolatilityRegime
from reasoning.strategy_rules import (
    MAX_RULE_FILE_BYTES,
    MAX_TERM_DEPTH,
    RULES_PATH,
    PrologEngine,
    PrologEngineError,
    PrologRuleError,
    PrologTimeoutError,
)
from tests.reasoning.engines.factories import make_context, make_intent

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def engine() -> PrologEngine:
    return PrologEngine()


def steps(result: Any) -> dict[str, tuple[str, str, str]]:
    return {step["precondition"]: (step["observed"], step["outcome"], step["reason"]) for step in result.proof["trace"]}


# (strategy, intent changes, market changes, precondition, observed, outcome, reason)
PRECONDITION_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str, str, str]] = [
    ("mean_reversion", {}, {"regime": MarketRegime.RANGING}, "regime_in([ranging])", "ranging", "pass", ""),
    (
        "mean_reversion",
        {},
        {"regime": MarketRegime.TRENDING},
        "regime_in([ranging])",
        "trending",
        "fail",
        "L5.strategy_regime_mismatch",
    ),
    ("momentum_breakout", {}, {"breakout_confirmed": True}, "breakout_confirmed", "true", "pass", ""),
    (
        "momentum_breakout",
        {},
        {"breakout_confirmed": False},
        "breakout_confirmed",
        "false",
        "fail",
        "L5.breakout_not_confirmed",
    ),
    (
        "momentum_breakout",
        {},
        {"breakout_confirmed": True, "regime": MarketRegime.VOLATILE},
        "regime_not_in([illiquid])",
        "volatile",
        "pass",
        "",
    ),
    (
        "momentum_breakout",
        {},
        {"breakout_confirmed": True, "regime": MarketRegime.ILLIQUID},
        "regime_not_in([illiquid])",
        "illiquid",
        "fail",
        "L5.strategy_regime_mismatch",
    ),
    (
        "market_making",
        {},
        {"volatility_regime": VolatilityRegime.HIGH},
        "volatility_not_in([extreme])",
        "high",
        "pass",
        "",
    ),
    (
        "market_making",
        {},
        {"volatility_regime": VolatilityRegime.EXTREME},
        "volatility_not_in([extreme])",
        "extreme",
        "fail",
        "L5.strategy_volatility_mismatch",
    ),
    ("market_making", {"order_type": OrderType.LIMIT}, {}, "order_type_in([limit])", "limit", "pass", ""),
    (
        "market_making",
        {"order_type": OrderType.MARKET},
        {},
        "order_type_in([limit])",
        "market",
        "fail",
        "L5.strategy_order_type_mismatch",
    ),
    (
        "baseline.ema_cross",
        {},
        {"regime": MarketRegime.RANGING},
        "regime_in([trending,ranging])",
        "ranging",
        "pass",
        "",
    ),
    (
        "baseline.ema_cross",
        {},
        {"regime": MarketRegime.ILLIQUID},
        "regime_in([trending,ranging])",
        "illiquid",
        "fail",
        "L5.strategy_regime_mismatch",
    ),
]


@pytest.mark.parametrize(
    ("strategy", "intent", "market", "precondition", "observed", "outcome", "reason"),
    PRECONDITION_CASES,
    ids=[f"{c[0]}-{c[3]}-{c[5]}" for c in PRECONDITION_CASES],
)
def test_precondition_outcome_is_in_the_trace_and_a_failure_denies(
    engine: PrologEngine,
    strategy: str,
    intent: dict[str, Any],
    market: dict[str, Any],
    precondition: str,
    observed: str,
    outcome: str,
    reason: str,
) -> None:
    result = engine.evaluate(make_intent(strategy, **intent), make_context(market=market), 0.01)

    observed_in_trace, outcome_in_trace, reason_in_trace = steps(result)[precondition]
    assert (observed_in_trace, outcome_in_trace) == (observed, outcome)
    assert steps(result)["known_strategy"] == (f"'{strategy}'" if "." in strategy else strategy, "pass", "none")
    if outcome == "fail":
        assert reason_in_trace == reason
        assert reason in result.denials
    else:
        assert reason_in_trace not in result.denials


def test_a_strategy_in_its_conditions_is_admitted_with_every_check_in_the_trace(engine: PrologEngine) -> None:
    intent = make_intent("market_making", order_type=OrderType.LIMIT)

    result = engine.evaluate(intent, make_context(market={"volatility_regime": VolatilityRegime.HIGH}), 0.01)

    assert result.denials == ()
    assert [step["outcome"] for step in result.proof["trace"]] == ["pass", "pass", "pass"]


def test_an_unknown_strategy_is_denied(engine: PrologEngine) -> None:
    result = engine.evaluate(make_intent("grid_martingale"), make_context(), 0.01)

    assert result.denials == ("L5.unknown_strategy",)
    assert steps(result) == {"known_strategy": ("grid_martingale", "fail", "L5.unknown_strategy")}


def test_a_strategy_id_with_quotes_cannot_inject_prolog(engine: PrologEngine) -> None:
    result = engine.evaluate(make_intent("x'), halt, ('"), make_context(), 0.01)

    assert result.denials == ("L5.unknown_strategy",)


@pytest.mark.parametrize(
    ("intent", "position"),
    [
        ({"reduce_only": True, "side": Side.SELL}, 0.05),
        ({"side": Side.SELL}, 0.05),  # sells 0.01 of a 0.05 long
        ({"side": Side.BUY}, -0.01),  # buys back the whole 0.01 short
    ],
    ids=["reduce-only", "shrinks-long", "closes-short"],
)
def test_reducing_intents_pass_whatever_their_strategy_and_regime(
    engine: PrologEngine, intent: dict[str, Any], position: float
) -> None:
    context = make_context(
        position={"quantity": position},
        market={"regime": MarketRegime.ILLIQUID, "volatility_regime": VolatilityRegime.EXTREME},
    )

    result = engine.evaluate(make_intent("unknown_strategy", order_type=OrderType.MARKET, **intent), context, 0.01)

    assert result.denials == ()
    assert steps(result) == {"reducing_intent": ("true", "pass", "none")}


def test_a_stop_and_reverse_is_not_a_reduction(engine: PrologEngine) -> None:
    intent = make_intent("mean_reversion", side=Side.SELL, reverse=True)
    context = make_context(position={"quantity": 0.05}, market={"regime": MarketRegime.TRENDING})

    assert engine.evaluate(intent, context, 0.01).denials == ("L5.strategy_regime_mismatch",)


def test_ruleset_hash_is_the_sha256_of_the_file(engine: PrologEngine) -> None:
    assert engine.ruleset_hash == hashlib.sha256(RULES_PATH.read_bytes()).hexdigest()


def test_a_nan_fact_raises_instead_of_deciding(engine: PrologEngine) -> None:
    with pytest.raises(PrologEngineError, match="not a finite number"):
        engine.evaluate(make_intent(), make_context(position={"quantity": float("nan")}), 0.01)


def test_a_syntax_error_is_located_and_the_previous_rules_stay_active(tmp_path: Path) -> None:
    path = tmp_path / "strategies.pl"
    path.write_text(RULES_PATH.read_text())
    engine = PrologEngine(path)
    good_hash = engine.ruleset_hash
    broken = RULES_PATH.read_text().replace(
        "precondition(mean_reversion, regime_in([ranging]), 'L5.strategy_regime_mismatch').",
        "precondition(mean_reversion, regime_in([ranging]) 'L5.strategy_regime_mismatch').",
    )
    path.write_text(broken)

    with pytest.raises(PrologRuleError) as raised:
        engine.reload()

    line = broken[: broken.index("precondition(mean_reversion,")].count("\n") + 1
    assert raised.value.line == line
    # SWI points just past the last token it could read, as `swipl` itself prints it
    assert raised.value.column == len("precondition(mean_reversion, regime_in([ranging])") + 1
    assert str(raised.value) == f"{path}:{line}:{raised.value.column}: error: Syntax error: Operator expected"
    assert engine.ruleset_hash == good_hash
    trending = make_context(market={"regime": MarketRegime.TRENDING})
    assert engine.evaluate(make_intent("mean_reversion"), trending, 0.01).denials == ("L5.strategy_regime_mismatch",)


def test_a_reload_replaces_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "strategies.pl"
    path.write_text(RULES_PATH.read_text())
    engine = PrologEngine(path)
    trending = make_context(market={"regime": MarketRegime.TRENDING})
    path.write_text(RULES_PATH.read_text().replace("regime_in([ranging])", "regime_in([ranging, trending])"))

    engine.reload()

    assert engine.evaluate(make_intent("mean_reversion"), trending, 0.01).denials == ()


def test_a_singleton_warning_rejects_the_file_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "strategies.pl"
    path.write_text(RULES_PATH.read_text() + "\nholds(anything, Unused) :- true.\n")

    with pytest.raises(PrologRuleError, match="Singleton") as raised:
        PrologEngine(path)

    assert raised.value.line == path.read_text().count("\n")  # the appended clause is the last line


def test_a_file_without_validate_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "strategies.pl"
    path.write_text('strategy(a, "b").\n')

    with pytest.raises(PrologRuleError, match="validate/3 is not defined"):
        PrologEngine(path)


def test_a_looping_rule_stops_at_the_inference_budget() -> None:
    engine = PrologEngine(DATA / "looping_strategies.pl", timeout_s=5.0, inference_limit=100_000)

    with pytest.raises(PrologTimeoutError, match="inference budget"):
        engine.evaluate(make_intent(), make_context(), 0.01)


def test_a_blocked_worker_makes_the_caller_time_out() -> None:
    engine = PrologEngine(DATA / "sleeping_strategies.pl", timeout_s=0.05)

    with pytest.raises(PrologTimeoutError, match="within 50 ms"):
        engine.evaluate(make_intent(), make_context(), 0.01)


def test_the_worker_serialises_calls_from_several_threads() -> None:
    exclusive = PrologEngine(DATA / "exclusive_strategies.pl", timeout_s=5.0)
    regular = PrologEngine(timeout_s=5.0)
    denials: list[tuple[str, ...]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def decide(engine: PrologEngine, strategy: str, expected: tuple[str, ...]) -> None:
        start.wait()
        for _ in range(10):
            try:
                result = engine.evaluate(make_intent(strategy), make_context(), 0.01)
            except PrologEngineError as error:
                errors.append(error)
                return
            denials.append(result.denials)
            if result.denials != expected:
                errors.append(AssertionError(f"{strategy}: {result.denials}"))

    threads = [threading.Thread(target=decide, args=(exclusive, "baseline.ema_cross", ())) for _ in range(3)]
    threads += [threading.Thread(target=decide, args=(regular, "grid", ("L5.unknown_strategy",))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(denials) == 60


# A rule file is data: loading it, or deciding with it, must run none of its code. Each attack below
# would touch MARKER (or stop, freeze or cut off the process's Prolog) if it ran.


def with_rules(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def location_of(path: Path, needle: str) -> tuple[int, int]:
    text = path.read_text()
    offset = text.index(needle)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def touch(marker: Path) -> str:
    return f"shell('touch {marker}')"


@pytest.mark.parametrize(
    "directive",
    [
        ":- halt.",
        ":- abolish(cryptoscalp_bridge:decide/4).",
        ":- repeat, fail.",
        "?- {touch}.",
        ":- initialization({touch}).",
        "(:- {touch}).",
    ],
)
def test_a_directive_is_refused_at_its_line_unrun_and_the_previous_rules_stay_active(
    tmp_path: Path, directive: str
) -> None:
    marker = tmp_path / "pwned"
    path = with_rules(tmp_path / "strategies.pl", RULES_PATH.read_text())
    engine = PrologEngine(path)
    good_hash = engine.ruleset_hash
    attack = directive.format(touch=touch(marker))
    path.write_text(RULES_PATH.read_text() + f"\n{attack}\n")

    with pytest.raises(PrologRuleError, match=r"error: directives \((:|\?)- Goal\) are not allowed") as raised:
        engine.reload()

    assert (raised.value.line, raised.value.column) == location_of(path, attack)
    assert not marker.exists()
    assert engine.ruleset_hash == good_hash
    trending = make_context(market={"regime": MarketRegime.TRENDING})
    assert engine.evaluate(make_intent("mean_reversion"), trending, 0.01).denials == ("L5.strategy_regime_mismatch",)


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        ("user:term_expansion(Term, Term) :- {touch}.", "module-qualified clause heads (user:...)"),
        ("system:goal_expansion(Goal, Goal) :- {touch}.", "module-qualified clause heads (system:...)"),
        ("user:(portray(_) :- {touch}).", "module-qualified clause heads (user:...)"),
        ('cryptoscalp_bridge:decide(_, _, _, "deny\\tL5.forged").', "module-qualified clause heads"),
        ("prolog:message(anything) --> {{ {touch} }}.", "module-qualified clause heads (prolog:...)"),
        ("term_expansion(Term, Term) :- {touch}.", "term_expansion/2 is a load-time hook"),
        ("term_expansion(Term, Layout, Term, Layout) :- {touch}.", "term_expansion/4 is a load-time hook"),
        ("goal_expansion(Goal, Goal) :- {touch}.", "goal_expansion/2 is a load-time hook"),
        ("goal_expansion(Goal, Layout, Goal, Layout) :- {touch}.", "goal_expansion/4 is a load-time hook"),
        ("quoted({{|string(_)||any text|}}).", "quasi quotations ({|Syntax||Text|}) are not allowed"),
    ],
)
def test_a_clause_that_would_run_at_load_or_land_outside_the_rule_module_is_refused_at_its_head(
    tmp_path: Path, clause: str, message: str
) -> None:
    marker = tmp_path / "pwned"
    hook = clause.format(touch=touch(marker))
    # first in the file, so that a hook would see (and run on) every clause after it
    path = with_rules(tmp_path / "strategies.pl", f"  {hook}\n{RULES_PATH.read_text()}")

    with pytest.raises(PrologRuleError) as raised:
        PrologEngine(path)

    assert message in raised.value.message
    assert (raised.value.line, raised.value.column) == (1, 3)
    assert not marker.exists()


def test_a_directive_after_a_syntax_error_is_still_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = with_rules(tmp_path / "strategies.pl", f"{RULES_PATH.read_text()}\nbroken(,).\n:- {touch(marker)}.\n")

    with pytest.raises(PrologRuleError, match="directives") as raised:
        PrologEngine(path)

    assert raised.value.line == location_of(path, ":- shell")[0]
    assert not marker.exists()


@pytest.mark.parametrize(
    ("old", "new", "culprit", "message"),
    [
        (
            "    fact(Facts, reduce_only, true),\n",
            "    fact(Facts, reduce_only, true),\n    {touch},\n",
            "shell(",
            "reducing/1 calls shell/1, which a rule file may not call",
        ),
        (
            "    reducing(Facts),\n",
            "    reducing(Facts),\n    halt,\n",
            "halt,",
            "validate/3 calls halt/0, which a rule file may not call",
        ),
        (
            "holds(breakout_confirmed, true).",
            "holds(breakout_confirmed, true) :- open('{marker}', write, _).",
            "open(",
            "holds/2 calls open/3, which a rule file may not call",
        ),
        (
            "    sort(Failed, Denials).",
            "    sort(Failed, Denials),\n    Goal =.. [halt],\n    call(Goal).",
            "call(Goal)",
            "validate/3 calls a goal that is only known at run time",
        ),
        (
            "    sort(Failed, Denials).",
            "    sort(Failed, Denials),\n    forall(member(Reason, Denials), format(user_error, '~w', [Reason])).",
            "format(user_error",
            "validate/3 calls format/3, which a rule file may not call",
        ),
        (
            "    sort(Failed, Denials).",
            "    sort(Failed, Denials),\n    audit(Denials).",
            "audit(",
            "validate/3 calls audit/1, which is not defined",
        ),
    ],
    ids=[
        "shell-in-a-helper",
        "halt",
        "open-in-a-fact-made-rule",
        "call-of-a-built-goal",
        "format-to-a-stream",
        "undefined",
    ],
)
def test_a_call_the_sandbox_rejects_is_refused_at_load_at_the_goal(
    tmp_path: Path, old: str, new: str, culprit: str, message: str
) -> None:
    marker = tmp_path / "pwned"
    source = RULES_PATH.read_text()
    assert old in source
    path = with_rules(
        tmp_path / "strategies.pl", source.replace(old, new.format(touch=touch(marker), marker=marker), 1)
    )

    with pytest.raises(PrologRuleError) as raised:
        PrologEngine(path)

    assert message in raised.value.message
    assert (raised.value.line, raised.value.column) == location_of(path, culprit)
    assert not marker.exists()


def test_side_effect_free_builtins_pass_the_sandbox(tmp_path: Path) -> None:
    path = with_rules(
        tmp_path / "strategies.pl",
        RULES_PATH.read_text().replace(
            "    sort(Failed, Denials).",
            "    sort(Failed, Denials),\n"
            "    format(string(Text), '~w', [Denials]),\n"
            "    string_length(Text, Length),\n"
            "    Length >= 0.",
        ),
    )

    engine = PrologEngine(path)

    assert engine.evaluate(make_intent("grid"), make_context(), 0.01).denials == ("L5.unknown_strategy",)


def test_a_term_nested_deeper_than_the_limit_is_refused_before_loading(tmp_path: Path) -> None:
    # SWI-Prolog recurses in C on nesting and, embedded with --nosignals, cannot catch a stack overflow
    nested = "f(" * (MAX_TERM_DEPTH + 1) + "x" + ")" * (MAX_TERM_DEPTH + 1)
    path = with_rules(tmp_path / "strategies.pl", f"{RULES_PATH.read_text()}\ndeep({nested}).\n")

    with pytest.raises(PrologRuleError, match=f"nested more than {MAX_TERM_DEPTH} levels") as raised:
        PrologEngine(path)

    assert (raised.value.line, raised.value.column) == location_of(path, "deep(")


def test_a_long_list_is_one_level_deep(tmp_path: Path) -> None:
    regimes = ", ".join(["ranging"] * (MAX_TERM_DEPTH * 2))
    path = with_rules(
        tmp_path / "strategies.pl", RULES_PATH.read_text().replace("regime_in([ranging])", f"regime_in([{regimes}])")
    )

    engine = PrologEngine(path)

    ranging = make_context(market={"regime": MarketRegime.RANGING})
    assert engine.evaluate(make_intent("mean_reversion"), ranging, 0.01).denials == ()


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    padding = "%" * MAX_RULE_FILE_BYTES + "\n"
    path = with_rules(tmp_path / "strategies.pl", RULES_PATH.read_text() + padding)

    with pytest.raises(PrologRuleError, match=f"at most {MAX_RULE_FILE_BYTES}"):
        PrologEngine(path)


def test_a_file_that_is_not_utf8_is_refused_at_the_line(tmp_path: Path) -> None:
    path = tmp_path / "strategies.pl"
    path.write_bytes(RULES_PATH.read_bytes() + b'\nstrategy(caf\xe9, "latin-1").\n')

    with pytest.raises(PrologRuleError, match="not UTF-8") as raised:
        PrologEngine(path)

    assert raised.value.line == RULES_PATH.read_bytes().count(b"\n") + 2
