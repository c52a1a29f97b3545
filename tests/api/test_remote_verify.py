"""The independent verifier against a real server on 127.0.0.1: a good log verifies; every kind of tampering
the API could do (a modified record, a forged checkpoint, a rewritten history) is caught and named."""

from __future__ import annotations

import json
import random
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from reasoning.prooflog.cli import proof_app
from reasoning.prooflog.keys import load_public_key
from reasoning.prooflog.merkle import leaf_hash
from reasoning.prooflog.remote import RemoteError, connect, verify_remote
from tests.api.conftest import ApiEnv, tamperable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


@contextmanager
def serving(app: Asgi) -> Iterator[str]:
    """uvicorn on a port the OS picked; the socket listens before the thread starts, so requests just queue."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def rewriting(app: Asgi, path_part: str, edit: Callable[[Any], Any]) -> Asgi:
    """The app, except that JSON answers of paths containing `path_part` go through `edit` first."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or path_part not in scope["path"]:
            await app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = json.dumps(edit(json.loads(b"".join(chunks)))).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return wrapped


def check(api: ApiEnv, app: Asgi, sample: int | None = None) -> Any:
    public_key = load_public_key(api.settings.public_key_path)
    with serving(app) as url, connect(url, api.tokens["auditor"]) as client:
        return verify_remote(client, public_key, sample, random.Random(7))


def test_a_good_log_verifies_through_the_api_alone(api: ApiEnv) -> None:
    report = check(api, api.client.app)

    assert report.failure is None, report.failure.message()
    # 144 records signed every 16: 9 checkpoints, 8 consistency proofs between them, every decision included
    assert (report.checkpoints, report.consistency_proofs, report.signed_size) == (9, 8, 144)
    assert report.decisions == report.decisions_checked == len(api.decisions)


def test_a_sample_checks_only_that_many_decisions(api: ApiEnv) -> None:
    report = check(api, api.client.app, sample=10)

    assert report.ok and report.decisions_checked == 10 and report.decisions == len(api.decisions)


def test_a_record_modified_in_the_database_is_caught_and_named(api: ApiEnv) -> None:
    target = api.decision("no new risk in a 12 % drawdown")
    seq = api.get(f"/v1/decisions/{target.decision_id}").json()["seq"]
    db = tamperable(api.settings.proof_log)
    (canonical,) = db.execute("SELECT canonical FROM proof_records WHERE seq = ?", (seq,)).fetchone()
    forged = canonical.replace(b'"verdict":"deny"', b'"verdict":"admit"')
    db.execute("UPDATE proof_records SET canonical = ? WHERE seq = ?", (forged, seq))

    report = check(api, api.client.app)

    assert report.failure is not None and report.failure.sequence == seq
    assert f"decision {target.decision_id}" in report.failure.message()
    assert "do not hash to the proof's leaf hash (record altered)" in report.failure.message()


def test_a_record_modified_together_with_its_leaf_hash_is_caught_at_the_signed_root(api: ApiEnv) -> None:
    target = api.decision("a restricted symbol cannot be bought")
    seq = api.get(f"/v1/decisions/{target.decision_id}").json()["seq"]
    db = tamperable(api.settings.proof_log)
    (canonical,) = db.execute("SELECT canonical FROM proof_records WHERE seq = ?", (seq,)).fetchone()
    forged = canonical.replace(b'"L7.restricted_symbol"', b'"L7.restricted_symbx"')
    db.execute("UPDATE proof_records SET canonical = ?, leaf_hash = ? WHERE seq = ?", (forged, leaf_hash(forged), seq))

    report = check(api, api.client.app)

    assert report.failure is not None and report.failure.sequence == seq
    assert "does not lead to the signed root" in report.failure.message()


def test_a_forged_checkpoint_is_caught_by_its_signature(api: ApiEnv) -> None:
    def forge(body: dict[str, Any]) -> dict[str, Any]:
        last = body["checkpoints"][-1]
        last["root_hash"] = "00" * 32
        return body

    report = check(api, rewriting(api.client.app, "/v1/log/checkpoints", forge))

    assert report.failure is not None and report.failure.checkpoint_size == 144
    assert "signature does not verify" in report.failure.message()


def test_a_history_rewritten_between_checkpoints_is_caught_by_the_consistency_proof(api: ApiEnv) -> None:
    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("first") == 64:
            body["path"][0] = "11" * 32
        return body

    report = check(api, rewriting(api.client.app, "/v1/log/consistency", rewrite))

    assert report.failure is not None and report.failure.checkpoint_size == 80
    assert "not consistent with the checkpoint of size 64" in report.failure.message()


def test_a_proof_for_another_record_is_caught(api: ApiEnv) -> None:
    other = api.decisions[0]

    def swap(body: dict[str, Any]) -> dict[str, Any]:
        if body["decision_id"] == api.decisions[1].decision_id:
            return api.get(f"/v1/decisions/{other.decision_id}/inclusion-proof").json()
        return body

    report = check(api, rewriting(api.client.app, "/inclusion-proof", swap))

    assert report.failure is not None and "the proof is for record" in report.failure.message()


def test_a_bad_token_is_an_error_not_a_verdict(api: ApiEnv) -> None:
    public_key = load_public_key(api.settings.public_key_path)
    with (
        serving(api.client.app) as url,
        connect(url, "cst_" + "x" * 43) as client,
        pytest.raises(RemoteError, match="refused the token"),
    ):
        verify_remote(client, public_key)


def test_proof_verify_remote_prints_ok_or_names_the_first_bad_record(api: ApiEnv) -> None:
    runner = CliRunner()
    pubkey = str(api.settings.public_key_path)
    with serving(api.client.app) as url:
        good = runner.invoke(
            proof_app,
            ["verify", "--remote", url, "--pubkey", pubkey],
            env={"CRYPTOSCALP_API_TOKEN": api.tokens["auditor"]},
        )
    seq = api.get(f"/v1/decisions/{api.decisions[3].decision_id}").json()["seq"]
    db = tamperable(api.settings.proof_log)
    db.execute("UPDATE proof_records SET canonical = CAST(? AS BLOB) WHERE seq = ?", ('{"tampered":true}', seq))
    with serving(api.client.app) as url:
        bad = runner.invoke(
            proof_app, ["verify", "--remote", url, "--pubkey", pubkey, "--token", api.tokens["auditor"]]
        )
    missing_key = runner.invoke(proof_app, ["verify", "--remote", "http://127.0.0.1:1"])

    assert good.exit_code == 0, good.output
    assert good.stdout.startswith("ok: ") and f"{len(api.decisions)} of {len(api.decisions)} decisions" in good.stdout
    assert bad.exit_code == 1 and f"record {seq}" in bad.stderr
    assert missing_key.exit_code == 2 and "--pubkey" in missing_key.stderr
