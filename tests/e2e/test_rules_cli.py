"""`cryptoscalp rules check | test | what-if` and a guarded backtest, run as a risk officer would."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from reasoning.rules import RULES_DIR
from tests.e2e.test_cli import assert_one_line_error, cryptoscalp, only_run_dir


def test_rules_check_accepts_the_shipped_rules_and_prints_the_rule_set_hash(tmp_path: Path) -> None:
    run = cryptoscalp("rules", "check", RULES_DIR, cwd=tmp_path)

    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith(f"ok: {RULES_DIR} rule set ")
    assert "warning" not in run.stdout


def test_rules_check_refuses_a_bad_file_with_file_line_and_column(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    (rules / "policy.mg").write_text('deny(I, "L7.x") :- intent(I, _, _, _), !p(X).\n')

    line = assert_one_line_error(cryptoscalp("rules", "check", rules, cwd=tmp_path))

    assert f"{rules / 'policy.mg'}:1:" in line


def test_rules_check_warns_about_a_rule_that_can_never_fire(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    with (rules / "policy.mg").open("a") as handle:
        handle.write('\ndeny(I, "L7.typo") :- intent(I, S, _, _), restricted_symbl(S).\n')

    run = cryptoscalp("rules", "check", rules, cwd=tmp_path)

    assert run.exit_code == 0
    assert "can never fire: nothing provides restricted_symbl" in run.stdout


def test_rules_test_passes_on_the_shipped_rules_and_fails_on_a_broken_expectation(tmp_path: Path) -> None:
    assert cryptoscalp("rules", "test", RULES_DIR, cwd=tmp_path).exit_code == 0
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    cases = rules / "tests" / "policy.yaml"
    cases.write_text(cases.read_text().replace("reasons: [L7.restricted_region]", "reasons: [L7.restricted_symbol]"))

    run = cryptoscalp("rules", "test", rules, cwd=tmp_path)

    assert run.exit_code == 1
    assert "FAIL" in run.stdout and "1 failed" in run.stdout


@pytest.mark.slow
def test_a_guarded_backtest_logs_every_decision_and_what_if_lists_the_ones_a_rule_change_flips(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    run = cryptoscalp("backtest", "--synthetic", "--days", "2", "--pairs", "BTC", "ETH", "--out", out, cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    run_dir = only_run_dir(out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    decisions = metrics["decisions"]
    assert decisions["intents"] == decisions["admitted"] + decisions["reduced"] + decisions["denied"] > 0
    with gzip.open(run_dir / "decisions.jsonl.gz", "rt") as handle:
        records = [json.loads(line) for line in handle]
    assert len(records) == decisions["intents"]
    assert {"guard", "datalog", "clips", "prolog", "z3"} <= set(records[0]["proofs"])
    btc_admitted = [
        r
        for r in records
        if r["intent"]["symbol"] == "BTC/USDT:USDT" and r["verdict"] != "deny" and not r["intent"]["reduce_only"]
    ]
    assert btc_admitted

    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    policy = rules / "policy.mg"
    policy.write_text(
        policy.read_text().replace('restricted_symbol("FTT/USDT:USDT").', 'restricted_symbol("BTC/USDT:USDT").')
    )
    what_if = cryptoscalp("rules", "what-if", "--rules", rules, "--run", run_dir, "--json", cwd=tmp_path)

    assert what_if.exit_code == 0, what_if.stderr
    report = json.loads(what_if.stdout)
    assert report["replayed"] == len(records)
    changed = {change["intent_id"] for change in report["changes"]}
    assert {r["intent"]["intent_id"] for r in btc_admitted} <= changed
    assert all(change["symbol"] == "BTC/USDT:USDT" for change in report["changes"])
    assert all(
        "L7.restricted_symbol" in change["after"]["reasons"]
        for change in report["changes"]
        if change["after"]["verdict"] == "deny"
    )


def test_what_if_on_a_run_without_a_decision_log_is_a_one_line_error(tmp_path: Path) -> None:
    line = assert_one_line_error(cryptoscalp("rules", "what-if", "--rules", RULES_DIR, "--run", tmp_path, cwd=tmp_path))

    assert "no decision log" in line
