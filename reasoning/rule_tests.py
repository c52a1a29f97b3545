"""`cryptoscalp rules test`: the risk officers' test cases for the rule set, like `opa test`.

Each `rules/tests/*.yaml` file holds a list of cases. A case changes a calm, healthy
default context (`default_context`, which no rule objects to) only where it matters,
names an intent, and states the verdict and the exact set of reason codes expected:

```yaml
- name: a restricted symbol cannot be bought
  intent: {symbol: "LUNA/USDT:USDT", side: buy, notional: 500}
  context:
    market: {symbol: "LUNA/USDT:USDT", mark_price: 0.5}
  expect: {verdict: deny, reasons: [L7.restricted_symbol]}
```

`intent` takes the fields of `core.intent.Intent` (`side`, `symbol`, `strategy_id`,
`quantity` or `notional`, `order_type`, `limit_price`, `leverage`, `stop_loss`,
`reduce_only`, `reverse`, `model_id`, …); `quantity` of the case (optional) is the
order quantity judged, else the intent's quantity or notional at the mark. `context`
overrides fields of the groups `market`, `account`, `position`, `portfolio`, `model`,
`venue`, and `now_ts`, `guard_state`, `region`. `expect` may also give `max_qty`.

Every reason code a rule file can produce must be expected by at least one case (or, for
a limit, bind the `max_qty` of a passing `reduce` case); `rules test` reports the ones
no case covers and fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from core.decision import Decision, Verdict
from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import (
    AccountFacts,
    DecisionContext,
    GuardState,
    MarketFacts,
    MarketRegime,
    ModelFacts,
    PortfolioFacts,
    PositionFacts,
    VenueFacts,
    VolatilityRegime,
)
from reasoning.guard import Guard, GuardConfig
from reasoning.rules import RULE_FILES, RuleSet, RuleSetError

DEFAULT_NOW = 1_748_736_000_000  # 2025-06-01 00:00 UTC
_REASON_CODE = re.compile(r"\b(L[1-7]\.[a-z0-9_]+)\b")


def default_context() -> DecisionContext:
    """A calm, healthy account and market in which no rule objects to a small trend trade."""
    return DecisionContext(
        now_ts=DEFAULT_NOW,
        guard_state=GuardState.ACTIVE,
        market=MarketFacts(
            symbol="BTC/USDT:USDT",
            mark_price=60_000.0,
            last_bar_ts=DEFAULT_NOW - 1_000,
            atr=120.0,
            volatility=0.0008,
            volatility_regime=VolatilityRegime.NORMAL,
            regime=MarketRegime.TRENDING,
            spread_bps=1.5,
            spread_widening=False,
            breakout_confirmed=False,
            price_change_pct=0.001,
            funding_rate=0.0001,
        ),
        account=AccountFacts(
            equity=10_000.0,
            wallet_balance=10_000.0,
            available_balance=8_000.0,
            used_margin=2_000.0,
            daily_pnl=50.0,
            drawdown=0.01,
            consecutive_losses=0,
            open_orders=1,
            orders_last_second=0,
            orders_today=40,
            trades_today=12,
        ),
        position=PositionFacts(quantity=0.0, entry_price=0.0, leverage=3.0, liquidation_price=None),
        portfolio=PortfolioFacts(gross_exposure=2_000.0, net_exposure=1_000.0, open_positions=1, max_correlation=0.3),
        model=ModelFacts(model_id="", drift_detected=False, calibration_error=0.0, is_fallback=False),
        venue=VenueFacts(venue="simulated", healthy=True, error_rate=0.0, latency_ms=20.0, rate_limit_used=0.05),
        region="sg",
    )


@dataclass(frozen=True, slots=True)
class RuleCase:
    file: Path
    name: str
    intent: Intent
    context: DecisionContext
    quantity: float
    verdict: Verdict
    reasons: frozenset[str]
    max_qty: float | None


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    case: RuleCase
    decision: Decision

    @property
    def passed(self) -> bool:
        case, decision = self.case, self.decision
        if decision.verdict is not case.verdict or frozenset(decision.reasons) != case.reasons:
            return False
        if case.max_qty is None:
            return True
        tolerance = 1e-9 * max(1.0, case.max_qty)
        return decision.max_qty is not None and abs(decision.max_qty - case.max_qty) <= tolerance


@dataclass(frozen=True, slots=True)
class RuleTestReport:
    outcomes: list[CaseOutcome]
    uncovered: list[str]  # reason codes of the rule files that no case expects

    @property
    def passed(self) -> bool:
        return not self.uncovered and all(outcome.passed for outcome in self.outcomes)


def load_cases(directory: Path) -> list[RuleCase]:
    files = sorted((directory / "tests").glob("*.yaml"))
    if not files:
        raise RuleSetError(f"{directory / 'tests'}:1:1: no test cases (*.yaml)")
    return [case for path in files for case in _cases_of(path)]


def run_rule_tests(ruleset: RuleSet, cases: list[RuleCase]) -> RuleTestReport:
    guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig())
    outcomes = []
    for case in cases:
        guard.set_state(case.context.guard_state, f"test case {case.name}")
        outcomes.append(CaseOutcome(case, guard.decide(case.intent, case.context, case.quantity)))
    expected = {reason for case in cases for reason in case.reasons}
    # a passing `reduce` case with its max_qty covers the limits that bound it
    for outcome in outcomes:
        if outcome.passed and outcome.case.verdict is Verdict.REDUCE and outcome.case.max_qty is not None:
            expected.update(outcome.decision.proofs.get("z3", {}).get("binding", []))
    uncovered = sorted(set(reason_codes(ruleset)) - expected)
    return RuleTestReport(outcomes, uncovered)


def reason_codes(ruleset: RuleSet) -> list[str]:
    """Every reason code the rule files can produce: as the engines declare them (Datalog: the
    `deny` heads; limits: `layer.name` of each limit), else as written in the file."""
    codes: set[str] = set()
    for engine in ruleset.engines:
        declared = getattr(engine, "reason_codes", None)
        if callable(declared):
            codes.update(declared())
    for key in ("clips", "prolog"):  # the Datalog and Z3 engines list their own
        text = (ruleset.directory / RULE_FILES[key]).read_text(encoding="utf-8")
        codes.update(_REASON_CODE.findall(text))
    return sorted(codes)


def _cases_of(path: Path) -> list[RuleCase]:
    text = path.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise RuleSetError(f"{path}:{line}:{column}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(document, list):
        raise RuleSetError(f"{path}:1:1: expected a list of test cases")
    cases = []
    for number, raw in enumerate(document, start=1):
        where = f"{path}:{_line_of_case(text, number)}:1"
        try:
            cases.append(_case(path, raw))
        except (KeyError, TypeError, ValueError) as exc:
            raise RuleSetError(f"{where}: case {number}: {exc}") from None
    return cases


def _line_of_case(text: str, number: int) -> int:
    starts = [index for index, line in enumerate(text.splitlines(), start=1) if line.startswith("- ")]
    return starts[number - 1] if number <= len(starts) else 1


def _case(path: Path, raw: Any) -> RuleCase:
    if not isinstance(raw, dict):
        raise TypeError("expected a mapping with name, intent, context and expect")
    unknown = set(raw) - {"name", "intent", "context", "expect", "quantity"}
    if unknown:
        raise KeyError(f"unknown keys {sorted(unknown)}")
    context = _context(raw.get("context") or {})
    intent = _intent(raw["intent"], context)
    expect = raw["expect"]
    price = intent.limit_price or context.market.mark_price
    quantity = float(raw["quantity"]) if "quantity" in raw else intent.requested_qty(price, context.position.quantity)
    return RuleCase(
        file=path,
        name=str(raw["name"]),
        intent=intent,
        context=context,
        quantity=quantity,
        verdict=Verdict(expect["verdict"]),
        reasons=frozenset(str(reason) for reason in expect.get("reasons", [])),
        max_qty=float(expect["max_qty"]) if "max_qty" in expect else None,
    )


_GROUPS: dict[str, type] = {
    "market": MarketFacts,
    "account": AccountFacts,
    "position": PositionFacts,
    "portfolio": PortfolioFacts,
    "model": ModelFacts,
    "venue": VenueFacts,
}
_ENUMS: dict[str, type] = {"volatility_regime": VolatilityRegime, "regime": MarketRegime}


def _context(overrides: dict[str, Any]) -> DecisionContext:
    context = default_context()
    unknown = set(overrides) - set(_GROUPS) - {"now_ts", "guard_state", "region"}
    if unknown:
        raise KeyError(f"unknown context keys {sorted(unknown)}")
    changes: dict[str, Any] = {}
    for group, values in overrides.items():
        if group in _GROUPS:
            current = getattr(context, group)
            names = {item.name for item in fields(current)}
            wrong = set(values) - names
            if wrong:
                raise KeyError(f"{group} has no facts {sorted(wrong)} (it has {sorted(names)})")
            typed = {key: _ENUMS[key](value) if key in _ENUMS else value for key, value in values.items()}
            if "data_quality_flags" in typed:
                typed["data_quality_flags"] = tuple(typed["data_quality_flags"])
            changes[group] = replace(current, **typed)
    if "guard_state" in overrides:
        changes["guard_state"] = GuardState(overrides["guard_state"])
    if "now_ts" in overrides:
        changes["now_ts"] = int(overrides["now_ts"])
    if "region" in overrides:
        changes["region"] = str(overrides["region"])
    return replace(context, **changes)


def _intent(raw: dict[str, Any], context: DecisionContext) -> Intent:
    values = dict(raw)
    values.setdefault("symbol", context.market.symbol)
    values.setdefault("strategy_id", "baseline.ema_cross")
    values["side"] = Side(values["side"])
    if "order_type" in values:
        values["order_type"] = OrderType(values["order_type"])
    if "rationale" in values:
        values["rationale"] = tuple((str(k), float(v)) for k, v in values["rationale"].items())
    return Intent(ts=context.now_ts, **values)
