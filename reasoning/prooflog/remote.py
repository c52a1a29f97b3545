"""Verify a proof log through its API, with nothing but the public key: `cryptoscalp proof verify --remote URL`.

An auditor who cannot (or should not) open the database checks what the API serves against signatures only the
log's private key can make:

1. every checkpoint (`GET /v1/log/checkpoints`) is signed by the given public key, sizes grow, times do not go
   back;
2. each checkpoint extends the one before (`GET /v1/log/consistency`, RFC 9162 §2.1.4): the log was only ever
   appended to between them;
3. every decision (or a random sample) hashes to the leaf its inclusion proof starts from, is the envelope of a
   decision record at that sequence number with that id, and its audit path leads to the root of one of those
   verified checkpoints (`GET /v1/decisions/{id}/inclusion-proof`, RFC 9162 §2.1.3).

The API is trusted for nothing: a modified record, a forged or altered checkpoint, a rewritten history or a proof
for another record fails one of these checks, and the first failure is reported with the record or checkpoint
it concerns. Records appended after the latest checkpoint cannot be checked yet and are counted, not failed.
"""

from __future__ import annotations

import binascii
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reasoning.prooflog.checkpoint import Checkpoint, signature_is_valid
from reasoning.prooflog.errors import ProofLogError
from reasoning.prooflog.keys import key_id
from reasoning.prooflog.merkle import leaf_hash
from reasoning.prooflog.proofs import verify_consistency, verify_inclusion
from reasoning.prooflog.verify import VerificationFailed, VerificationFailure

TOKEN_ENVIRONMENT_VARIABLE = "CRYPTOSCALP_API_TOKEN"
PAGE_SIZE = 500
REQUEST_TIMEOUT_S = 30.0


class RemoteError(ProofLogError):
    """The API could not be asked (unreachable, refused the token, answered something that is not the API)."""


@dataclass(frozen=True, slots=True)
class RemoteReport:
    checkpoints: int  # signed checkpoints verified
    consistency_proofs: int  # between consecutive checkpoints
    decisions: int  # decisions the API lists
    decisions_checked: int  # inclusion proofs verified (all, or the sample)
    decisions_unsigned: int  # appended after the latest checkpoint: not provable yet
    signed_size: int  # records covered by the latest checkpoint
    root_hash: bytes  # its root
    failure: VerificationFailure | None

    @property
    def ok(self) -> bool:
        return self.failure is None


def connect(url: str, token: str | None) -> httpx.Client:
    """An HTTP client for the API at `url` that sends `token` (the caller closes it)."""
    if not token:
        raise RemoteError(f"no API token: pass --token or set {TOKEN_ENVIRONMENT_VARIABLE} (an auditor token will do)")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT_S)


def verify_remote(
    client: httpx.Client, public_key: Ed25519PublicKey, sample: int | None = None, rng: random.Random | None = None
) -> RemoteReport:
    """Check the API behind `client` (base URL and token set) as the module docstring says; with `sample`, the
    inclusion of that many decisions drawn at random, else of every decision."""
    checker = _RemoteChecker(client, public_key)
    failure: VerificationFailure | None = None
    try:
        checker.run(sample, rng or random.Random())
    except VerificationFailed as failed:
        failure = failed.failure
    latest = checker.checkpoints[-1] if checker.checkpoints else None
    return RemoteReport(
        checkpoints=len(checker.checkpoints),
        consistency_proofs=checker.consistency_proofs,
        decisions=checker.decisions,
        decisions_checked=checker.decisions_checked,
        decisions_unsigned=checker.decisions_unsigned,
        signed_size=latest.tree_size if latest is not None else 0,
        root_hash=latest.root_hash if latest is not None else b"",
        failure=failure,
    )


class _RemoteChecker:
    def __init__(self, client: httpx.Client, public_key: Ed25519PublicKey) -> None:
        self.client = client
        self.public_key = public_key
        self.key_id = key_id(public_key)
        self.checkpoints: list[Checkpoint] = []
        self.consistency_proofs = 0
        self.decisions = 0
        self.decisions_checked = 0
        self.decisions_unsigned = 0

    def run(self, sample: int | None, rng: random.Random) -> None:
        for checkpoint in self.fetch_checkpoints():
            self.check_signature(checkpoint)
            if self.checkpoints:
                self.check_consistency(self.checkpoints[-1], checkpoint)
            self.checkpoints.append(checkpoint)
        if not self.checkpoints:
            raise VerificationFailed(
                VerificationFailure("the API serves no signed checkpoint; there is nothing to verify against")
            )
        latest_by_id = {item["decision_id"]: item["seq"] for item in self.fetch_decisions()}
        self.decisions = len(latest_by_id)
        chosen = sorted(latest_by_id.items(), key=lambda item: item[1])
        if sample is not None and sample < len(chosen):
            chosen = sorted(rng.sample(chosen, sample), key=lambda item: item[1])
        signed_size = self.checkpoints[-1].tree_size
        by_size = {checkpoint.tree_size: checkpoint for checkpoint in self.checkpoints}
        for decision_id, seq in chosen:
            if seq >= signed_size:
                self.decisions_unsigned += 1
                continue
            self.check_inclusion(decision_id, seq, by_size)
            self.decisions_checked += 1

    # ---------------------------------------------------------------- fetching

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> dict[str, Any]:
        try:
            response = self.client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.client.base_url}{path}: request failed ({type(exc).__name__}: {exc})") from None
        if response.status_code in (401, 403):
            raise RemoteError(
                f"{response.url}: the API refused the token ({response.status_code}): {_detail(response)}"
            )
        if response.status_code != 200:
            raise RemoteError(f"{response.url}: HTTP {response.status_code}: {_detail(response)}")
        try:
            body = response.json()
        except ValueError:
            raise RemoteError(f"{response.url}: the answer is not JSON; is this the CryptoScalp API?") from None
        if not isinstance(body, dict):
            raise RemoteError(f"{response.url}: expected a JSON object")
        return body

    def pages(self, path: str, key: str, params: Mapping[str, str | int]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            body = self.get(path, {**params, **({"cursor": cursor} if cursor else {})})
            items = body.get(key)
            if not isinstance(items, list):
                raise RemoteError(f"{path}: the answer has no list `{key}`")
            yield from (item for item in items if isinstance(item, dict))
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def fetch_checkpoints(self) -> Iterator[Checkpoint]:
        for raw in self.pages("/v1/log/checkpoints", "checkpoints", {"limit": 1000}):
            yield _checkpoint(raw)

    def fetch_decisions(self) -> Iterator[dict[str, Any]]:
        for item in self.pages("/v1/decisions", "items", {"limit": PAGE_SIZE}):
            if not isinstance(item.get("decision_id"), str) or not isinstance(item.get("seq"), int):
                raise RemoteError("/v1/decisions: an item without decision_id and seq")
            yield item

    # ---------------------------------------------------------------- checks

    def check_signature(self, checkpoint: Checkpoint) -> None:
        size = checkpoint.tree_size
        if checkpoint.key_id != self.key_id:
            problem = f"signed by key {checkpoint.key_id}, the public key given is {self.key_id}"
            raise VerificationFailed(VerificationFailure(problem, checkpoint_size=size))
        if not signature_is_valid(self.public_key, checkpoint):
            problem = "signature does not verify with the public key (checkpoint forged or altered)"
            raise VerificationFailed(VerificationFailure(problem, checkpoint_size=size))
        if self.checkpoints:
            previous = self.checkpoints[-1]
            if size <= previous.tree_size:
                problem = f"served after the checkpoint of size {previous.tree_size}: sizes must grow"
                raise VerificationFailed(VerificationFailure(problem, checkpoint_size=size))
            if checkpoint.signed_at < previous.signed_at:
                problem = f"signed at {checkpoint.signed_at}, before the previous checkpoint ({previous.signed_at})"
                raise VerificationFailed(VerificationFailure(problem, checkpoint_size=size))

    def check_consistency(self, older: Checkpoint, newer: Checkpoint) -> None:
        body = self.get("/v1/log/consistency", {"first": older.tree_size, "second": newer.tree_size})
        path = _hashes(body.get("path"), "/v1/log/consistency path")
        self.consistency_proofs += 1
        if not verify_consistency(older.tree_size, newer.tree_size, older.root_hash, newer.root_hash, path):
            problem = (
                f"not consistent with the checkpoint of size {older.tree_size}: the log was rewritten, not only "
                f"appended to, between them (or the API served a bad proof)"
            )
            raise VerificationFailed(VerificationFailure(problem, older.tree_size, newer.tree_size))

    def check_inclusion(self, decision_id: str, seq: int, by_size: Mapping[int, Checkpoint]) -> None:
        body = self.get(f"/v1/decisions/{decision_id}/inclusion-proof")
        where = f"decision {decision_id}"
        if body.get("seq") != seq or body.get("leaf_index") != seq:
            fail = f"{where}: the proof is for record {body.get('seq')}, the listing says {seq}"
            raise VerificationFailed(VerificationFailure(fail, seq))
        canonical = body.get("canonical")
        if not isinstance(canonical, str):
            raise VerificationFailed(VerificationFailure(f"{where}: the proof carries no record bytes", seq))
        self.check_envelope(decision_id, seq, canonical)
        leaf = leaf_hash(canonical.encode("utf-8"))
        if _hex(body.get("leaf_hash"), "leaf_hash") != leaf:
            fail = f"{where}: the record's bytes do not hash to the proof's leaf hash (record altered)"
            raise VerificationFailed(VerificationFailure(fail, seq))
        served = _checkpoint(body.get("checkpoint"))
        trusted = by_size.get(served.tree_size)
        if trusted is None or trusted != served:
            fail = (
                f"{where}: proven against a checkpoint of size {served.tree_size} that is not among the verified ones"
            )
            raise VerificationFailed(VerificationFailure(fail, seq, served.tree_size))
        path = _hashes(body.get("audit_path"), "audit_path")
        if body.get("tree_size") != trusted.tree_size or not verify_inclusion(
            seq, trusted.tree_size, leaf, path, trusted.root_hash
        ):
            fail = (
                f"{where}: the audit path does not lead to the signed root of size {trusted.tree_size} "
                f"(record or tree altered)"
            )
            raise VerificationFailed(VerificationFailure(fail, seq, trusted.tree_size))

    @staticmethod
    def check_envelope(decision_id: str, seq: int, canonical: str) -> None:
        try:
            envelope = json.loads(canonical)
        except ValueError:
            raise VerificationFailed(
                VerificationFailure(f"decision {decision_id}: its record bytes are not JSON", seq)
            ) from None
        record = envelope.get("record") if isinstance(envelope, dict) else None
        if not isinstance(record, dict) or envelope.get("seq") != seq or envelope.get("kind") != "decision":
            fail = f"decision {decision_id}: the bytes served are not the envelope of decision record {seq}"
            raise VerificationFailed(VerificationFailure(fail, seq))
        if record.get("decision_id") != decision_id:
            fail = f"decision {decision_id}: record {seq} is decision {record.get('decision_id')!r}"
            raise VerificationFailed(VerificationFailure(fail, seq))


def _checkpoint(raw: object) -> Checkpoint:
    if not isinstance(raw, dict):
        raise RemoteError("a checkpoint in the answer is not a JSON object")
    size, signed_at, kid = raw.get("tree_size"), raw.get("signed_at"), raw.get("key_id")
    if not isinstance(size, int) or not isinstance(signed_at, str) or not isinstance(kid, str):
        raise RemoteError("a checkpoint in the answer lacks tree_size, signed_at or key_id")
    return Checkpoint(
        size, _hex(raw.get("root_hash"), "root_hash"), signed_at, kid, _hex(raw.get("signature"), "signature")
    )


def _hashes(raw: object, what: str) -> list[bytes]:
    if not isinstance(raw, list):
        raise RemoteError(f"{what}: expected a list of hex hashes")
    return [_hex(item, what) for item in raw]


def _hex(raw: object, what: str) -> bytes:
    if not isinstance(raw, str):
        raise RemoteError(f"{what}: expected hex text")
    try:
        return bytes.fromhex(raw)
    except (ValueError, binascii.Error):
        raise RemoteError(f"{what}: not hex") from None


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail)[:300] if detail is not None else response.text[:300]
