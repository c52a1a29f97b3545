"""`/v1/log`, checkpoints, consistency and inclusion proofs: everything checks out with the public key alone."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

from reasoning.prooflog.checkpoint import Checkpoint, signature_is_valid
from reasoning.prooflog.keys import load_public_key
from reasoning.prooflog.log import CheckpointPolicy, ProofLog
from reasoning.prooflog.proofs import verify_consistency, verify_inclusion
from tests.api.conftest import CHECKPOINT_EVERY, ApiEnv


def checkpoint_of(raw: dict[str, object]) -> Checkpoint:
    return Checkpoint(
        int(str(raw["tree_size"])),
        bytes.fromhex(str(raw["root_hash"])),
        str(raw["signed_at"]),
        str(raw["key_id"]),
        bytes.fromhex(str(raw["signature"])),
    )


def test_every_served_checkpoint_is_signed_by_the_logs_key(api: ApiEnv) -> None:
    public_key = load_public_key(api.settings.public_key_path)

    body = api.get("/v1/log/checkpoints").json()

    checkpoints = [checkpoint_of(raw) for raw in body["checkpoints"]]
    # 1 rule change + 98 decisions + 45 fills (36 admitted, 9 reduced) = 144 records, signed every 16: 16 … 144
    assert [c.tree_size for c in checkpoints] == list(range(CHECKPOINT_EVERY, 144 + 1, CHECKPOINT_EVERY))
    assert all(signature_is_valid(public_key, c) for c in checkpoints)
    assert body["next_cursor"] is None


def test_checkpoints_are_paged_with_a_cursor(api: ApiEnv) -> None:
    first = api.get("/v1/log/checkpoints", limit=3).json()
    second = api.get("/v1/log/checkpoints", limit=3, cursor=first["next_cursor"]).json()

    sizes = [c["tree_size"] for c in first["checkpoints"] + second["checkpoints"]]
    assert sizes == [16, 32, 48, 64, 80, 96]


def test_consistency_proofs_connect_consecutive_signed_roots(api: ApiEnv) -> None:
    checkpoints = [checkpoint_of(raw) for raw in api.get("/v1/log/checkpoints").json()["checkpoints"]]

    for older, newer in itertools.pairwise(checkpoints):
        body = api.get("/v1/log/consistency", first=older.tree_size, second=newer.tree_size).json()
        path = [bytes.fromhex(node) for node in body["path"]]
        assert verify_consistency(older.tree_size, newer.tree_size, older.root_hash, newer.root_hash, path)


def test_consistency_beyond_the_log_is_a_404_and_backwards_a_422(api: ApiEnv) -> None:
    assert api.get("/v1/log/consistency", first=1, second=10_000).status_code == 404
    backwards = api.get("/v1/log/consistency", first=20, second=10)
    assert backwards.status_code == 422 and "first" in backwards.text


def test_an_inclusion_proof_leads_from_the_record_bytes_to_a_signed_root(api: ApiEnv) -> None:
    public_key = load_public_key(api.settings.public_key_path)
    logged = api.decision("a restricted symbol cannot be bought")

    body = api.get(f"/v1/decisions/{logged.decision_id}/inclusion-proof").json()

    checkpoint = checkpoint_of(body["checkpoint"])
    leaf = hashlib.sha256(b"\x00" + body["canonical"].encode("utf-8")).digest()
    path = [bytes.fromhex(node) for node in body["audit_path"]]
    assert signature_is_valid(public_key, checkpoint)
    assert leaf.hex() == body["leaf_hash"]
    assert verify_inclusion(body["seq"], checkpoint.tree_size, leaf, path, checkpoint.root_hash)


def test_an_inclusion_proof_can_target_an_older_checkpoint(api: ApiEnv) -> None:
    logged = api.decisions[2]  # record 3 or 4, inside the first 16

    body = api.get(f"/v1/decisions/{logged.decision_id}/inclusion-proof", tree_size=16).json()

    assert body["tree_size"] == body["checkpoint"]["tree_size"] == 16
    checkpoint = checkpoint_of(body["checkpoint"])
    leaf = bytes.fromhex(body["leaf_hash"])
    path = [bytes.fromhex(node) for node in body["audit_path"]]
    assert verify_inclusion(body["seq"], 16, leaf, path, checkpoint.root_hash)


def test_an_inclusion_proof_for_a_size_that_was_never_signed_is_a_404_and_one_too_small_a_422(api: ApiEnv) -> None:
    logged = api.decisions[2]
    assert api.get(f"/v1/decisions/{logged.decision_id}/inclusion-proof", tree_size=17).status_code == 404
    too_small = api.get(f"/v1/decisions/{logged.decision_id}/inclusion-proof", tree_size=1)
    assert too_small.status_code == 422 and "tree_size" in too_small.text


def test_a_record_not_yet_covered_by_a_checkpoint_is_a_409(api: ApiEnv) -> None:
    record = dict(api.decisions[0].record, decision_id="unsigned-decision")
    unsigned = CheckpointPolicy(every_records=None, on_close=False)
    with ProofLog.open(Path(api.settings.proof_log), policy=unsigned) as log:
        log.append("decision", record)

    response = api.get("/v1/decisions/unsigned-decision/inclusion-proof")

    assert response.status_code == 409
    assert "not yet covered by a signed checkpoint" in response.json()["detail"]


def test_the_log_summary_gives_size_latest_checkpoint_and_public_key(api: ApiEnv) -> None:
    body = api.get("/v1/log").json()

    assert body["size"] == 144
    assert body["latest_checkpoint"]["tree_size"] == 144
    assert body["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert body["key_id"] == body["latest_checkpoint"]["key_id"]
