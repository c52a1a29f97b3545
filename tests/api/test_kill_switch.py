"""The kill switch: a halt file the trading loop polls, engaged and released through the API and logged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import api.log_access as log_access
from reasoning.kill_switch import KillSwitch
from reasoning.prooflog.log import ProofLog
from reasoning.prooflog.sqlite_store import SqliteStore
from tests.api.conftest import ApiEnv


def test_a_switch_never_engaged_reads_as_released(tmp_path: Path) -> None:
    assert KillSwitch(tmp_path / "halt.json").state().engaged is False


def test_engaging_writes_the_halt_file_the_loop_reads(tmp_path: Path) -> None:
    switch = KillSwitch(tmp_path / "halt.json")

    engaged = switch.engage("venue outage", "oscar (operator)", flatten=True)

    on_disk = json.loads((tmp_path / "halt.json").read_text())
    assert on_disk == {"engaged": True, "reason": "venue outage", "by": "oscar (operator)", "at_ms": engaged.at_ms,
                       "flatten": True}  # fmt: skip
    assert switch.state() == engaged
    assert [path.name for path in tmp_path.iterdir()] == ["halt.json"]  # no temporary file left behind


def test_release_clears_it_and_says_who(tmp_path: Path) -> None:
    switch = KillSwitch(tmp_path / "halt.json")
    switch.engage("drill", "oscar (operator)")

    released = switch.release("rita (risk_officer)", "drill over")

    assert switch.state() == released
    assert released.engaged is False and released.by == "rita (risk_officer)"


def test_an_unreadable_halt_file_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "halt.json").write_text("{not json")

    state = KillSwitch(tmp_path / "halt.json").state()

    assert state.engaged is True and "fail closed" in state.reason


def test_engaging_through_the_api_halts_logs_who_and_never_the_token(api: ApiEnv) -> None:
    response = api.client.post(
        "/v1/kill-switch", headers=api.headers("operator"), json={"reason": "venue outage", "flatten": True}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engaged"] is True and body["by"] == "oscar (operator)" and body["flatten"] is True
    assert KillSwitch(api.settings.kill_switch_file).state().engaged is True
    store = SqliteStore(Path(api.settings.proof_log), read_only=True)
    try:
        stored = store.record(body["seq"])
        latest = store.latest_checkpoint()
    finally:
        store.close()
    assert stored is not None and latest is not None
    envelope = json.loads(stored.canonical)
    assert envelope["kind"] == "kill_switch"
    assert envelope["record"] == {"action": "halt", "reason": "venue outage", "by": "oscar (operator)",
                                  "flatten": True, "at_ms": body["at_ms"]}  # fmt: skip
    assert latest.tree_size == body["seq"] + 1  # signed at once, so an auditor can prove it
    assert api.tokens["operator"] not in stored.canonical.decode()


def test_releasing_through_the_api_logs_a_resume(api: ApiEnv) -> None:
    api.client.post("/v1/kill-switch", headers=api.headers("operator"), json={"reason": "drill"})

    response = api.client.post("/v1/kill-switch/release", headers=api.headers("risk_officer"), json={"reason": "ok"})

    assert response.status_code == 200 and response.json()["engaged"] is False
    assert api.get("/v1/kill-switch").json()["engaged"] is False


def test_a_kill_switch_needs_a_reason(api: ApiEnv) -> None:
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x", "unknown": 1}):
        response = api.client.post("/v1/kill-switch", headers=api.headers("operator"), json=body)
        assert response.status_code == 422, body
    assert KillSwitch(api.settings.kill_switch_file).state().engaged is False


def test_an_append_that_another_writer_got_ahead_of_is_retried_once_and_logged_once(
    api: ApiEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open_log = log_access.open_log
    opened: list[ProofLog] = []

    def open_then_let_the_loop_append(*args: Any, **kwargs: Any) -> ProofLog:
        log = real_open_log(*args, **kwargs)
        if not opened:  # the trading loop appends between our open and our append
            with ProofLog.open(Path(api.settings.proof_log)) as loop:
                loop.append("decision", api.decisions[0].record)
        opened.append(log)
        return log

    monkeypatch.setattr(log_access, "open_log", open_then_let_the_loop_append)

    response = api.client.post("/v1/kill-switch", headers=api.headers("operator"), json={"reason": "race"})

    assert response.status_code == 200 and len(opened) == 2
    store = SqliteStore(Path(api.settings.proof_log), read_only=True)
    try:
        kinds = [json.loads(row.canonical)["kind"] for row in store.records()]
    finally:
        store.close()
    assert kinds.count("kill_switch") == 1 and kinds[-1] == "kill_switch" and response.json()["seq"] == len(kinds) - 1
