"""`/v1/decisions/{id}/explain`: the guard's real proofs read back in plain language, for every kind of verdict."""

from __future__ import annotations

from typing import Any

from api.explain import RuleTexts, explain
from reasoning.rules import RULES_DIR
from tests.api.conftest import ApiEnv


def explained(api: ApiEnv, case: str) -> dict[str, Any]:
    response = api.get(f"/v1/decisions/{api.decision(case).decision_id}/explain")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def repository_rule_texts() -> RuleTexts:
    return RuleTexts.of(path.read_text(encoding="utf-8") for path in RULES_DIR.iterdir() if path.is_file())


def test_a_z3_denial_names_the_limit_with_the_observed_value_and_the_threshold(api: ApiEnv) -> None:
    body = explained(api, "no new risk in a 12 % drawdown")

    # drawdown 0.12 against max_drawdown 0.10 (limits.toml, unit "ratio", shown in percent)
    assert body["summary"] == (
        "Denied. L3 account: max_drawdown — drawdown 12 % is above the 10 % limit (Z3 unsat core)."
    )
    (z3,) = [finding for finding in body["findings"] if finding["engine"] == "z3"]
    assert z3["objected"] and z3["reasons"] == ["L3.max_drawdown"]
    assert "Drawdown from the equity peak" in z3["lines"][0]
    quiet = {finding["engine"] for finding in body["findings"] if not finding["objected"]}
    assert quiet == {"datalog", "clips", "prolog"}
    assert "No objection from:" in body["text"]
    assert body["rule_files_found"] is True


def test_a_denied_intent_is_said_never_to_have_been_traded(api: ApiEnv) -> None:
    body = explained(api, "no new risk in a 12 % drawdown")

    assert body["traded"] is False
    assert body["trading"] == ["Never traded: the intent was denied, so it was not sized and no order was sent."]


def test_a_datalog_denial_quotes_the_rule_its_premises_and_the_comment_that_justifies_it(api: ApiEnv) -> None:
    body = explained(api, "a restricted symbol cannot be bought")

    (datalog,) = [finding for finding in body["findings"] if finding["engine"] == "datalog"]
    (line,) = datalog["lines"]
    assert line.startswith("L7 compliance: restricted_symbol (Datalog, policy.mg:18):")
    assert 'restricted_symbol("LUNA/USDT:USDT") [policy.mg:14]' in line
    assert "could not be derived" in line  # the intent is not a risk-reducing one
    assert "Symbols the desk may not open risk in" in line


def test_clips_and_prolog_denials_name_the_fired_rule_and_the_failed_precondition(api: ApiEnv) -> None:
    body = explained(api, "no market orders opening risk in an illiquid market")

    assert body["summary"].startswith("Denied. L4 systemic: illiquid_market_entry (CLIPS expert rules)")
    lines = {finding["engine"]: " ".join(finding["lines"]) for finding in body["findings"]}
    assert "rule illiquid-no-market-entries fired on" in lines["clips"]
    assert "(regime illiquid)" in lines["clips"]
    assert "strategy momentum_breakout requires regime_not_in([illiquid]), but observed illiquid" in lines["prolog"]
    assert "Breakouts in thin books" in lines["prolog"]


def test_a_reduction_says_how_far_and_which_limit_bound_it(api: ApiEnv) -> None:
    body = explained(api, "a 0.02 BTC entry is cut to the 600 USDT of gross exposure left")

    assert body["summary"].startswith("Reduced from 0.02 BTC to 0.01 BTC, the most Z3 proved admissible")
    (z3,) = [finding for finding in body["findings"] if finding["engine"] == "z3"]
    assert z3["objected"]
    # the case's book is 59,400 USDT gross; 0.02 BTC at 60,000 adds 1,200 → 60,600 > 60,000 at the request, and
    # the 600 USDT left buy 0.01 BTC
    expected = "At the requested 0.02 BTC, gross exposure after 60,600 USDT is above the 60,000 USDT limit"
    assert expected in z3["lines"][0]


def test_an_admitted_and_filled_intent_reports_its_order_and_fill(api: ApiEnv) -> None:
    body = explained(api, "a calm trend trade is admitted")

    assert body["summary"].startswith("Admitted. No engine objected, and the requested 0.01 BTC is within the 0.15 BTC")
    assert body["traded"] is True
    assert any(line.startswith("Filled (record ") and "at 60,010.5" in line for line in body["trading"])


def test_a_guard_denial_before_any_engine_ran_says_so() -> None:
    record = {
        "decision_id": "halted-1",
        "verdict": "deny",
        "reasons": ["L4.kill_switch"],
        "symbol": "BTC/USDT:USDT",
        "requested_qty": 0.01,
        "max_qty": 0.0,
        "intent": {"side": "buy", "order_type": "market", "strategy_id": "baseline.ema_cross"},
        "proofs": {"guard": {"state": "halted", "risk_reducing": False}},
        "orders": [],
    }

    explanation = explain(record, [], RuleTexts())

    assert explanation.summary == "Denied. L4 systemic: kill_switch (guard)."
    assert "the kill switch had halted trading" in explanation.text
    assert "No engine ran: the guard refused the intent before asking them." in explanation.text


def test_an_engine_timeout_is_explained_as_a_fail_closed_denial() -> None:
    record = {
        "decision_id": "slow-1",
        "verdict": "deny",
        "reasons": ["GUARD.timeout.z3"],
        "proofs": {"guard": {"timings_ms": {"z3": 300.0}, "engine_errors": {"z3": "took 300 ms, budget 250 ms"}}},
    }

    text = explain(record, [], RuleTexts()).text

    assert "GUARD guard: timeout.z3 (guard): the Z3 limits engine overran its time budget" in text
    assert "(took 300 ms, budget 250 ms); the guard fails closed" in text


def test_without_the_rule_files_the_explanation_stands_on_the_proofs_alone(api: ApiEnv) -> None:
    record = api.decision("no new risk in a 12 % drawdown").record

    explanation = explain(record, [], RuleTexts())

    assert explanation.summary == "Denied. L3 account: max_drawdown (Z3 unsat core)."


def test_real_backtest_decisions_of_every_verdict_are_explained() -> None:
    from trader.backtest import BacktestConfig, run_backtest
    from trader.proof_records import proof_entries

    # the records exactly as a backtest logs them (2 synthetic days: admits, reductions and denials)
    result = run_backtest(BacktestConfig(synthetic=True, days=2, seed=7, pairs=["BTC", "ETH", "SOL"]))
    seen: dict[str, tuple[str, list[str]]] = {}
    for kind, record in proof_entries(result):
        if kind == "decision" and record["verdict"] not in seen:
            seen[record["verdict"]] = (explain(record, [], repository_rule_texts()).text, record["reasons"])

    deny_text, deny_reasons = seen["deny"]
    layer, name = deny_reasons[0].split(".", 1)
    assert deny_text.startswith(f"Denied. {layer} ") and name in deny_text
    assert seen["reduce"][0].startswith("Reduced from ")
    assert seen["admit"][0].startswith("Admitted. No engine objected")
