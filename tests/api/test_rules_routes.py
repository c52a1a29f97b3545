"""`/v1/rules`: the active set, past sets by hash, and four-eyes proposals through `reasoning.proposals`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.rules import combined_hash, file_hashes
from tests.api.conftest import ApiEnv

COMMENT = "\n# reviewed by the risk committee\n"


def propose(api: ApiEnv, who: str, files: dict[str, str], description: str = "a reviewed change") -> Any:
    return api.client.post(
        "/v1/rules/proposals", headers=api.headers(who), json={"files": files, "description": description}
    )


def limits_text(api: ApiEnv) -> str:
    return (api.settings.rules_dir / "limits.toml").read_text(encoding="utf-8")


def logged_rule_changes(api: ApiEnv) -> list[dict[str, Any]]:
    store = SqliteStore(Path(api.settings.proof_log), read_only=True)
    try:
        envelopes = [json.loads(row.canonical) for row in store.records()]
    finally:
        store.close()
    return [envelope["record"] for envelope in envelopes if envelope["kind"] == "rule_change"]


def test_the_active_rule_set_is_served_with_its_hash_and_file_hashes(api: ApiEnv) -> None:
    body = api.get("/v1/rules").json()

    assert body["ruleset_hash"] == combined_hash(file_hashes(api.settings.rules_dir))
    assert sorted(body["files"]) == ["expert.clp", "limits.toml", "policy.mg", "strategies.pl"]
    assert body["files"]["limits.toml"]["content"] == limits_text(api)
    assert api.get(f"/v1/rules/{body['ruleset_hash']}").json() == body


def test_an_unknown_rule_set_hash_is_a_404_and_a_malformed_one_a_422(api: ApiEnv) -> None:
    assert api.get("/v1/rules/" + "0" * 64).status_code == 404
    assert api.get("/v1/rules/not-a-hash").status_code == 422


def test_a_valid_proposal_is_pending_and_another_risk_officer_activates_it(api: ApiEnv) -> None:
    before = api.get("/v1/rules").json()["ruleset_hash"]
    proposed = propose(api, "risk_officer", {"limits.toml": limits_text(api) + COMMENT})
    assert proposed.status_code == 201, proposed.text
    proposal = proposed.json()
    assert proposal["status"] == "pending" and proposal["proposed_by"] == "rita"
    assert proposal["base_hash"] == before and "+# reviewed by the risk committee" in proposal["diff"]

    approved = api.client.post(f"/v1/rules/proposals/{proposal['id']}/approve", headers=api.headers("risk_officer_2"))

    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["approved_by"] == "roger"
    assert limits_text(api).endswith(COMMENT)
    assert api.get("/v1/rules").json()["ruleset_hash"] == proposal["ruleset_hash"] != before
    (change,) = logged_rule_changes(api)[-1:]
    assert change["proposal_id"] == proposal["id"] and change["approved_by"] == "roger"
    assert change["previous_hash"] == before and change["ruleset_hash"] == proposal["ruleset_hash"]


def test_the_proposer_cannot_approve_their_own_change(api: ApiEnv) -> None:
    proposal = propose(api, "risk_officer", {"limits.toml": limits_text(api) + COMMENT}).json()

    response = api.client.post(f"/v1/rules/proposals/{proposal['id']}/approve", headers=api.headers("risk_officer"))

    assert response.status_code == 403
    assert "cannot approve it" in response.json()["detail"]
    assert not limits_text(api).endswith(COMMENT)


def test_a_change_that_fails_the_rule_tests_is_refused_with_its_failures_and_cannot_be_approved(api: ApiEnv) -> None:
    loosened = limits_text(api).replace("value = 0.10\n", "value = 0.12\n", 1)  # max_drawdown 10 % → 12 %

    response = propose(api, "risk_officer", {"limits.toml": loosened})

    assert response.status_code == 422
    body = response.json()
    assert body["proposal"]["status"] == "invalid"
    assert "no new risk in a 12 % drawdown: expected deny L3.max_drawdown, got admit" in body["detail"]
    approve = api.client.post(
        f"/v1/rules/proposals/{body['proposal']['id']}/approve", headers=api.headers("risk_officer_2")
    )
    assert approve.status_code == 409


def test_a_rule_file_with_a_syntax_error_is_refused_naming_file_line_and_column(api: ApiEnv) -> None:
    response = propose(api, "risk_officer", {"limits.toml": "[limits.broken\n"})

    assert response.status_code == 422
    assert response.json()["proposal"]["check_errors"][0].startswith("limits.toml:1:")


def test_a_proposal_for_a_file_that_is_not_a_rule_file_is_a_422(api: ApiEnv) -> None:
    response = propose(api, "risk_officer", {"../etc/passwd": "x"})

    assert response.status_code == 422 and "not a rule file" in response.json()["detail"]


def test_approving_twice_is_a_409(api: ApiEnv) -> None:
    proposal = propose(api, "risk_officer", {"limits.toml": limits_text(api) + COMMENT}).json()
    url = f"/v1/rules/proposals/{proposal['id']}/approve"
    assert api.client.post(url, headers=api.headers("risk_officer_2")).status_code == 200

    again = api.client.post(url, headers=api.headers("risk_officer_2"))

    assert again.status_code == 409 and "already approved" in again.json()["detail"]


def test_a_proposal_made_on_rules_that_changed_since_is_stale(api: ApiEnv) -> None:
    first = propose(api, "risk_officer", {"limits.toml": limits_text(api) + COMMENT}).json()
    second = propose(api, "risk_officer", {"limits.toml": limits_text(api) + "\n# another note\n"}).json()
    assert api.client.post(
        f"/v1/rules/proposals/{first['id']}/approve", headers=api.headers("risk_officer_2")
    ).is_success

    stale = api.client.post(f"/v1/rules/proposals/{second['id']}/approve", headers=api.headers("risk_officer_2"))

    assert stale.status_code == 409 and "propose the change again" in stale.json()["detail"]


def test_proposals_are_listed_and_read_by_id(api: ApiEnv) -> None:
    proposal = propose(api, "risk_officer", {"limits.toml": limits_text(api) + COMMENT}).json()

    listed = api.get("/v1/rules/proposals").json()

    assert [item["id"] for item in listed] == [proposal["id"]]
    assert api.get(f"/v1/rules/proposals/{proposal['id']}").json() == proposal
    assert api.get("/v1/rules/proposals/unknown-id").status_code == 404
    assert (
        api.client.post("/v1/rules/proposals/unknown-id/approve", headers=api.headers("risk_officer")).status_code
        == 404
    )
