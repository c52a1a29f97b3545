"""Shared set-up of the API tests: a proof log of real guard decisions, an app over it, a token per role.

The decisions are the guard's own verdicts on the rule test cases of `rules/tests/` (admits, reductions, denials
by every engine), each made unique by a rationale entry naming its case, logged in the trading loop's record
format; the admitted ones get an order and a fill. Each test gets its own copy of the rules and databases in
tmp_path, so proposals and the kill switch never touch the repository.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from api.state import StateDb
from api.tokens import Role, TokenStore
from reasoning.engine import layer_of
from reasoning.guard import Guard, GuardConfig
from reasoning.prooflog.log import CheckpointPolicy, ProofLog
from reasoning.rule_tests import load_cases
from reasoning.rules import RULES_DIR, load_ruleset
from trader.decision_log import decision_record

CHECKPOINT_EVERY = 16
FIRST_DECISION_MS = 1_748_736_000_000  # 2025-06-01 00:00 UTC
MINUTE_MS = 60_000


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    case: str
    record: dict[str, Any]

    @property
    def decision_id(self) -> str:
        return str(self.record["decision_id"])

    @property
    def verdict(self) -> str:
        return str(self.record["verdict"])


@dataclass(frozen=True, slots=True)
class ApiEnv:
    client: TestClient
    settings: ApiSettings
    tokens: dict[str, str]  # auditor, operator, risk_officer, risk_officer_2 → token
    decisions: list[LoggedDecision]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, url: str, who: str = "auditor", **params: Any) -> Any:
        return self.client.get(url, headers=self.headers(who), params=params)

    def decision(self, case: str) -> LoggedDecision:
        return next(item for item in self.decisions if item.case == case)


@pytest.fixture(scope="session")
def guard_decisions() -> list[LoggedDecision]:
    return judge_rule_test_cases()


def judge_rule_test_cases() -> list[LoggedDecision]:
    """The guard's verdict on every rule test case, as the trading loop logs a decision (minute apart)."""
    ruleset = load_ruleset(RULES_DIR)
    try:
        guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig())
        logged = []
        for number, case in enumerate(load_cases(RULES_DIR)):
            intent = replace(case.intent, rationale=(*case.intent.rationale, ("case", float(number))))
            guard.set_state(case.context.guard_state, "test")
            decision = guard.decide(intent, case.context, case.quantity)
            record = decision_record(intent, decision, case.context)
            record.pop("detail")
            record |= {
                "decision_id": intent.intent_id,
                "decided_at_ms": FIRST_DECISION_MS + number * MINUTE_MS,
                "run_id": "run-a" if number % 2 else "run-b",
                "mode": "paper",
                "symbol": intent.symbol,
                "strategy_id": intent.strategy_id,
                "model_id": intent.model_id,
                "model_version": intent.model_version,
                "layers": sorted({layer_of(reason) for reason in decision.reasons}),
                "sizing": None,
                "orders": [],
            }
            if decision.verdict.value != "deny":
                quantity = min(decision.requested_qty or 0.0, decision.max_qty or 0.0)
                record["sizing"] = {"method": "fixed_notional", "inputs": {}, "qty": quantity, "proven_denials": []}
                record["orders"] = [_order(intent.intent_id, intent.symbol, intent.side.value, quantity)]
            logged.append(LoggedDecision(case.name, json.loads(json.dumps(record))))
        return logged
    finally:
        ruleset.close()


def _order(decision_id: str, symbol: str, side: str, quantity: float) -> dict[str, Any]:
    return {
        "client_order_id": f"co-{decision_id}",
        "symbol": symbol,
        "side": side,
        "type": "market",
        "qty": quantity,
        "price": None,
        "stop_price": None,
        "reduce_only": False,
    }


def fill_record(decision: LoggedDecision) -> dict[str, Any]:
    order = decision.record["orders"][0]
    return {
        "decision_id": decision.decision_id,
        "client_order_id": order["client_order_id"],
        "symbol": order["symbol"],
        "side": order["side"],
        "qty": order["qty"],
        "price": 60_010.5,
        "fee": 0.3,
        "liquidity": "taker",
        "filled_at_ms": decision.record["decided_at_ms"] + 1_000,
    }


def write_log(path: Path, decisions: list[LoggedDecision]) -> None:
    """Each decision, then its fill when it was admitted; a rule change first; signed every 16 records and on close."""
    entries: list[tuple[str, dict[str, Any]]] = [
        ("rule_change", {"accepted": True, "previous_hash": "", "ruleset_hash": "start", "files_changed": []})
    ]
    for decision in decisions:
        entries.append(("decision", decision.record))
        if decision.record["orders"]:
            entries.append(("fill", fill_record(decision)))
    with ProofLog.open(path, policy=CheckpointPolicy(every_records=CHECKPOINT_EVERY)) as log:
        log.append_many(entries)


def tamperable(proof_log: str) -> sqlite3.Connection:
    """The log's database with its append-only triggers dropped: what an attacker with the file can do."""
    db = sqlite3.connect(proof_log, isolation_level=None)
    for action in ("update", "delete"):
        db.execute(f"DROP TRIGGER proof_records_no_{action}")
    return db


def issue_tokens(state_db: Path) -> dict[str, str]:
    state = StateDb(state_db)
    try:
        store = TokenStore(state)
        return {
            "auditor": store.create(Role.AUDITOR, "alice")[1],
            "operator": store.create(Role.OPERATOR, "oscar")[1],
            "risk_officer": store.create(Role.RISK_OFFICER, "rita")[1],
            "risk_officer_2": store.create(Role.RISK_OFFICER, "roger")[1],
        }
    finally:
        state.close()


def settings_in(directory: Path) -> ApiSettings:
    rules = directory / "rules"
    if not rules.exists():
        shutil.copytree(RULES_DIR, rules)
    return ApiSettings(
        proof_log=str(directory / "prooflog.sqlite3"),
        state_db=directory / "api-state.sqlite3",
        rules_dir=rules,
        kill_switch_file=directory / "kill_switch.json",
    )


@pytest.fixture()
def api(tmp_path: Path, guard_decisions: list[LoggedDecision]) -> Iterator[ApiEnv]:
    settings = settings_in(tmp_path)
    write_log(Path(settings.proof_log), guard_decisions)
    tokens = issue_tokens(settings.state_db)
    with TestClient(create_app(settings)) as client:
        yield ApiEnv(client, settings, tokens, guard_decisions)
