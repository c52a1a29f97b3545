"""`/v1/decisions`: filters, cursor pagination, the full record from the log, and the index kept in step with it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from reasoning.prooflog.log import ProofLog
from tests.api.conftest import ApiEnv, LoggedDecision, issue_tokens, settings_in, tamperable, write_log


def all_pages(api: ApiEnv, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = api.get("/v1/decisions", **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def test_pages_follow_each_other_without_gap_or_repeat_until_the_last_has_no_cursor(api: ApiEnv) -> None:
    items = all_pages(api, limit=7)

    seqs = [item["seq"] for item in items]
    assert len(items) == len(api.decisions)  # 98 decisions over 14 pages of 7
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [item["decision_id"] for item in items] == [d.decision_id for d in api.decisions]


def test_descending_order_pages_from_the_newest_decision(api: ApiEnv) -> None:
    items = all_pages(api, limit=10, order="desc")

    assert [item["decision_id"] for item in items] == [d.decision_id for d in reversed(api.decisions)]


def test_each_filter_keeps_only_the_decisions_that_match_it(api: ApiEnv) -> None:
    records = [d.record for d in api.decisions]
    expected = {
        "verdict=reduce": [r for r in records if r["verdict"] == "reduce"],
        "symbol=SOL": [r for r in records if r["symbol"] == "SOL/USDT:USDT"],
        "strategy=mean_reversion": [r for r in records if r["strategy_id"] == "mean_reversion"],
        "model=gbm-7": [r for r in records if r["model_id"] == "gbm-7"],
        "reason=L3.max_drawdown": [r for r in records if "L3.max_drawdown" in r["reasons"]],
        "layer=L5": [r for r in records if "L5" in r["layers"]],
        "run_id=run-a": [r for r in records if r["run_id"] == "run-a"],
    }
    queries: dict[str, dict[str, str]] = {
        "verdict=reduce": {"verdict": "reduce"},
        "symbol=SOL": {"symbol": "SOL/USDT:USDT"},
        "strategy=mean_reversion": {"strategy": "mean_reversion"},
        "model=gbm-7": {"model": "gbm-7"},
        "reason=L3.max_drawdown": {"reason": "L3.max_drawdown"},
        "layer=L5": {"layer": "L5"},
        "run_id=run-a": {"run_id": "run-a"},
    }
    for name, query in queries.items():
        found = [item["decision_id"] for item in all_pages(api, limit=5, **query)]
        assert found == [r["decision_id"] for r in expected[name]], name
        assert found, f"{name}: the test log should hold such decisions"


def test_filters_combine_and_the_time_range_includes_since_and_excludes_until(api: ApiEnv) -> None:
    # decisions are one minute apart from 2025-06-01 00:00 UTC: minutes 10..19 are the 10 in [00:10, 00:20)
    items = all_pages(api, since="2025-06-01T00:10:00Z", until="2025-06-01T00:20:00Z")
    assert [item["decision_id"] for item in items] == [d.decision_id for d in api.decisions[10:20]]

    denied_then = all_pages(api, since="2025-06-01T00:10:00Z", until="2025-06-01T00:20:00Z", verdict="deny")
    assert [item["decision_id"] for item in denied_then] == [
        d.decision_id for d in api.decisions[10:20] if d.verdict == "deny"
    ]


def test_bad_filters_are_a_422_naming_the_parameter(api: ApiEnv) -> None:
    cases = {
        "verdict": {"verdict": "maybe"},
        "limit": {"limit": 0},
        "layer": {"layer": "L9"},
        "reason": {"reason": "drop table"},
        "since": {"since": "yesterday"},
        "cursor": {"cursor": "not-a-cursor"},
        "order": {"order": "sideways"},
    }
    for field, params in cases.items():
        response = api.get("/v1/decisions", **params)
        assert response.status_code == 422, (field, response.text)
        assert field in json.dumps(response.json()["detail"]), field


def test_a_time_range_that_ends_before_it_starts_is_a_422(api: ApiEnv) -> None:
    response = api.get("/v1/decisions", since="2025-06-02T00:00:00Z", until="2025-06-01T00:00:00Z")

    assert response.status_code == 422
    assert "since" in response.text


def test_a_cursor_of_the_other_order_is_refused(api: ApiEnv) -> None:
    cursor = api.get("/v1/decisions", limit=2).json()["next_cursor"]

    response = api.get("/v1/decisions", limit=2, order="desc", cursor=cursor)

    assert response.status_code == 422 and "cursor" in response.text


def test_a_decision_comes_with_its_canonical_envelope_whose_hash_is_its_leaf(api: ApiEnv) -> None:
    logged = api.decision("no new risk in a 12 % drawdown")

    body = api.get(f"/v1/decisions/{logged.decision_id}").json()

    canonical = body["canonical"].encode("utf-8")
    assert hashlib.sha256(b"\x00" + canonical).hexdigest() == body["leaf_hash"]
    envelope = json.loads(canonical)
    assert envelope["seq"] == body["seq"] and envelope["kind"] == "decision"
    assert envelope["record"] == body["record"] == logged.record
    assert body["record"]["proofs"]["z3"]["unsat_core"] == ["L3.max_drawdown"]
    assert body["fills"] == [] and body["other_seqs"] == []


def test_an_admitted_decision_lists_its_fill(api: ApiEnv) -> None:
    logged = api.decision("a calm trend trade is admitted")

    body = api.get(f"/v1/decisions/{logged.decision_id}").json()

    (fill,) = body["fills"]
    assert fill["seq"] == body["seq"] + 1  # the writer logs a fill right after its decision
    assert fill["qty"] == logged.record["orders"][0]["qty"] and fill["price"] == 60_010.5


def test_a_stored_record_that_is_no_longer_a_decision_is_a_409_pointing_at_verification(api: ApiEnv) -> None:
    logged = api.decisions[7]
    seq = api.get(f"/v1/decisions/{logged.decision_id}").json()["seq"]
    tamperable(api.settings.proof_log).execute(
        "UPDATE proof_records SET canonical = CAST(? AS BLOB) WHERE seq = ?", ('{"not":"an envelope"}', seq)
    )

    detail = api.get(f"/v1/decisions/{logged.decision_id}")
    explanation = api.get(f"/v1/decisions/{logged.decision_id}/explain")
    proof = api.get(f"/v1/decisions/{logged.decision_id}/inclusion-proof")

    assert detail.status_code == explanation.status_code == 409
    assert "cryptoscalp proof verify" in detail.json()["detail"]
    # the proof serves the stored bytes as they are: the client's hash check is what exposes them
    assert proof.status_code == 200 and proof.json()["canonical"] == '{"not":"an envelope"}'


def test_an_unknown_decision_is_a_404(api: ApiEnv) -> None:
    for suffix in ("", "/explain", "/inclusion-proof"):
        response = api.get(f"/v1/decisions/0000000000000000{suffix}")
        assert response.status_code == 404, suffix
        assert "0000000000000000" in response.json()["detail"]


def test_decisions_appended_after_the_server_started_are_found(api: ApiEnv) -> None:
    before = len(all_pages(api, limit=500))
    record = dict(api.decisions[0].record, decision_id="late-decision", verdict="deny")
    with ProofLog.open(Path(api.settings.proof_log)) as log:
        log.append("decision", record)

    after = all_pages(api, limit=500)

    assert len(after) == before + 1 and after[-1]["decision_id"] == "late-decision"
    assert api.get("/v1/decisions/late-decision").status_code == 200


def test_a_decision_logged_twice_is_served_from_its_latest_record_naming_the_other(api: ApiEnv) -> None:
    logged = api.decisions[5]
    with ProofLog.open(Path(api.settings.proof_log)) as log:
        seq = log.append("decision", logged.record)

    body = api.get(f"/v1/decisions/{logged.decision_id}").json()

    assert body["seq"] == seq and len(body["other_seqs"]) == 1 and body["other_seqs"][0] < seq


def test_the_index_is_rebuilt_when_the_log_behind_it_is_replaced(
    tmp_path: Path, guard_decisions: list[LoggedDecision]
) -> None:
    settings = settings_in(tmp_path)
    write_log(Path(settings.proof_log), guard_decisions[:10])
    tokens = issue_tokens(settings.state_db)
    headers = {"Authorization": f"Bearer {tokens['auditor']}"}
    with TestClient(create_app(settings)) as client:
        first = client.get("/v1/decisions", headers=headers, params={"limit": 500}).json()["items"]
    for leftover in tmp_path.glob("prooflog.sqlite3*"):
        if not leftover.name.endswith((".key", ".pub")):
            leftover.unlink()
    write_log(Path(settings.proof_log), guard_decisions[20:25])

    with TestClient(create_app(settings)) as client:
        second = client.get("/v1/decisions", headers=headers, params={"limit": 500}).json()["items"]

    assert [item["decision_id"] for item in first] == [d.decision_id for d in guard_decisions[:10]]
    assert [item["decision_id"] for item in second] == [d.decision_id for d in guard_decisions[20:25]]
