"""A backtest's decisions, fills and rule changes land in its tamper-evident proof log, complete and in order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.decision import Verdict
from reasoning.prooflog.keys import load_public_key, public_key_path
from reasoning.prooflog.log import default_key_path
from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.prooflog.verify import verify
from trader.backtest import BacktestConfig, run_backtest
from trader.proof_records import proof_entries
from trader.report import write_report
from trader.result import BacktestResult


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    return run_backtest(BacktestConfig(synthetic=True, days=1, seed=3, pairs=["BTC", "ETH"]))


def stored(path: Path) -> list[dict[str, object]]:
    store = SqliteStore(path, read_only=True)
    try:
        return [json.loads(row.canonical) for row in store.records()]
    finally:
        store.close()


def test_the_report_writes_a_proof_log_that_verifies_and_holds_every_decision_and_fill(
    result: BacktestResult, tmp_path: Path
) -> None:
    artifacts = write_report(result, tmp_path)

    public_key = load_public_key(public_key_path(default_key_path(artifacts.proof_log)))
    store = SqliteStore(artifacts.proof_log, read_only=True)
    try:
        report = verify(store, public_key)
    finally:
        store.close()
    assert report.failure is None and report.unsigned_records == 0
    envelopes = stored(artifacts.proof_log)
    kinds = [envelope["kind"] for envelope in envelopes]
    assert kinds.count("decision") == len(result.decisions)
    assert kinds.count("fill") == len(result.fills)
    assert report.records == len(envelopes)


def test_each_decision_record_carries_its_intent_context_proofs_sizing_and_orders(result: BacktestResult) -> None:
    entries = proof_entries(result)
    decisions = {record["decision_id"]: record for kind, record in entries if kind == "decision"}
    by_intent = {intent.intent_id: (intent, decision) for intent, decision in result.decisions}
    assert decisions.keys() == by_intent.keys()

    sent = 0
    for decision_id, record in decisions.items():
        intent, decision = by_intent[decision_id]
        assert record["verdict"] == decision.verdict.value
        assert record["reasons"] == list(decision.reasons)
        assert record["layers"] == sorted({reason.split(".")[0] for reason in decision.reasons})
        assert record["context_hash"] == decision.context_hash == result.contexts[decision_id].context_hash()
        assert record["ruleset_hash"] == decision.ruleset_hash
        assert record["intent"]["intent_id"] == decision_id and record["symbol"] == intent.symbol
        assert record["mode"] == "backtest" and record["run_id"] == result.run_id
        orders = [order for order in result.orders if order.request.intent_id == decision_id]
        assert [order["order_id"] for order in record["orders"]] == [order.order_id for order in orders]
        if record["sizing"] is not None:
            assert record["sizing"]["qty"] > 0
        if decision.verdict is not Verdict.DENY:
            # everything admitted was sized, proven again and sent
            assert record["sizing"] is not None and record["sizing"]["proven_denials"] == []
            assert record["orders"][0]["qty"] == pytest.approx(record["sizing"]["qty"])
            sent += 1
    assert sent > 0


def test_records_are_in_time_order_and_every_fill_names_a_decision_that_came_before(result: BacktestResult) -> None:
    entries = proof_entries(result)
    seen: set[str] = set()
    last = -1
    for kind, record in entries:
        at = record["decided_at_ms"] if kind == "decision" else record["filled_at_ms"] if kind == "fill" else last
        assert at >= last
        last = at
        if kind == "decision":
            seen.add(record["decision_id"])
        elif kind == "fill":
            assert record["decision_id"] in seen or record["decision_id"] == ""


def test_non_finite_facts_become_null_rather_than_breaking_canonical_json() -> None:
    from trader.proof_records import _plain

    assert _plain({"a": float("nan"), "b": (1.5, float("inf")), "c": Verdict.DENY}) == {
        "a": None,
        "b": [1.5, None],
        "c": "deny",
    }
    with pytest.raises(TypeError, match="not JSON"):
        _plain({"x": object()})


def test_a_hot_reload_is_a_rule_change_record_placed_before_the_decisions_it_governs(result: BacktestResult) -> None:
    from dataclasses import replace

    from reasoning.rules import RuleChange

    first_intent = result.decisions[0][0].intent_id
    at = result.contexts[first_intent].now_ts
    change = RuleChange(True, "new-hash", "new-hash", ("policy.mg",), "", "old-hash")
    entries = proof_entries(replace(result, rule_changes=[(at, change)]))

    kinds = [kind for kind, _ in entries]
    assert kinds[0] == "rule_change"
    record = entries[0][1]
    assert record["previous_hash"] == "old-hash" and record["ruleset_hash"] == "new-hash"
    assert record["files_changed"] == ["policy.mg"] and record["accepted"] is True
