"""Who may call what: every route against every role and every kind of bad token; and nothing secret leaks.

Roles: auditor reads; operator reads and holds the kill switch; risk officer reads, proposes and approves rule
changes, and holds the kill switch. Only /healthz is open.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from api.state import StateDb
from api.tokens import TokenStore
from reasoning.proposals import ProposalService
from tests.api.conftest import ApiEnv, LoggedDecision, issue_tokens, settings_in, write_log

READERS = ("auditor", "operator", "risk_officer")
OFFICERS = ("risk_officer",)
HOLDERS = ("operator", "risk_officer")
VALID_COMMENT = "\n# reviewed by the risk committee\n"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    allowed: tuple[str, ...]
    body: dict[str, Any] | None = None
    success: int = 200

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = (
    Route("GET", "/v1/decisions", READERS),
    Route("GET", "/v1/decisions/{decision}", READERS),
    Route("GET", "/v1/decisions/{decision}/explain", READERS),
    Route("GET", "/v1/decisions/{decision}/inclusion-proof", READERS),
    Route("GET", "/v1/log", READERS),
    Route("GET", "/v1/log/checkpoints", READERS),
    Route("GET", "/v1/log/consistency?first=16&second=32", READERS),
    Route("GET", "/v1/rules", READERS),
    Route("GET", "/v1/rules/proposals", READERS),
    Route("GET", "/v1/rules/proposals/{proposal}", READERS),
    Route("GET", "/v1/rules/{ruleset}", READERS),
    Route("GET", "/v1/kill-switch", READERS),
    Route("GET", "/metrics", READERS),
    Route("POST", "/v1/rules/proposals", OFFICERS, {"files": {"limits.toml": "{limits}"}, "description": "x"}, 201),
    Route("POST", "/v1/rules/proposals/{proposal}/approve", OFFICERS),
    Route("POST", "/v1/kill-switch", HOLDERS, {"reason": "drill", "flatten": False}),
    Route("POST", "/v1/kill-switch/release", HOLDERS, {"reason": "drill over"}),
)


@dataclass(frozen=True, slots=True)
class MatrixEnv:
    api: ApiEnv
    values: dict[str, str]
    revoked: str

    def call(self, route: Route, headers: dict[str, str]) -> Any:
        path = route.path.format(**self.values)
        body = None
        if route.body is not None:
            body = {
                key: ({k: v.format(**self.values) for k, v in value.items()} if isinstance(value, dict) else value)
                for key, value in route.body.items()
            }
        return self.api.client.request(route.method, path, headers=headers, json=body)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory, guard_decisions: list[LoggedDecision]) -> Iterator[MatrixEnv]:
    directory = tmp_path_factory.mktemp("matrix")
    settings = settings_in(directory)
    write_log(Path(settings.proof_log), guard_decisions)
    tokens = issue_tokens(settings.state_db)
    state = StateDb(settings.state_db)
    store = TokenStore(state)
    revoked = store.create("auditor", "former-auditor")[1]
    store.revoke("former-auditor")
    state.close()
    limits = (settings.rules_dir / "limits.toml").read_text(encoding="utf-8")
    # a pending proposal by someone who holds no token here, so the one risk officer may approve it
    service = ProposalService(settings.rules_dir, settings.state_db, None)
    proposal = service.propose({"limits.toml": limits + VALID_COMMENT}, "victor", "comment")
    assert proposal.status == "pending", proposal
    values = {
        "decision": guard_decisions[0].decision_id,
        "proposal": proposal.id,
        "ruleset": service.current().ruleset_hash,
        "limits": limits + VALID_COMMENT + "# and again\n",
    }
    with TestClient(create_app(settings)) as client:
        yield MatrixEnv(ApiEnv(client, settings, tokens, guard_decisions), values, revoked)


@pytest.mark.parametrize("route", ROUTES, ids=str)
@pytest.mark.parametrize(
    "credentials",
    ["none", "malformed", "unknown", "revoked", "basic"],
)
def test_every_route_but_healthz_refuses_a_missing_or_bad_token_with_401(
    matrix: MatrixEnv, route: Route, credentials: str
) -> None:
    headers = {
        "none": {},
        "malformed": {"Authorization": "Bearer not-a-token"},
        "unknown": {"Authorization": "Bearer cst_" + "A" * 43},
        "revoked": {"Authorization": f"Bearer {matrix.revoked}"},
        "basic": {"Authorization": f"Basic {matrix.api.tokens['auditor']}"},
    }[credentials]

    response = matrix.call(route, headers)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("route", ROUTES, ids=str)
@pytest.mark.parametrize("role", READERS)
def test_every_route_admits_exactly_its_roles(matrix: MatrixEnv, route: Route, role: str) -> None:
    response = matrix.call(route, matrix.api.headers(role))

    if role in route.allowed:
        assert response.status_code == route.success, response.text
    else:
        assert response.status_code == 403, response.text
        assert role in response.json()["detail"]


def test_healthz_needs_no_token(matrix: MatrixEnv) -> None:
    response = matrix.api.client.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_the_openapi_schema_documents_bearer_auth_on_every_v1_route(matrix: MatrixEnv) -> None:
    schema = matrix.api.client.get("/openapi.json").json()

    for path, operations in schema["paths"].items():
        for operation in operations.values():
            secured = bool(operation.get("security"))
            assert secured == (path != "/healthz"), path


SECRETS = {
    "BINANCE_API_KEY": "fake-exchange-key-9f8e7d6c5b4a",
    "BINANCE_API_SECRET": "fake-exchange-secret-0a1b2c3d4e5f",
    "CRYPTOSCALP_EXCHANGE_SECRET": "another-fake-secret-777",
}


def test_no_response_of_any_route_carries_a_token_the_signing_key_or_a_secret(
    matrix: MatrixEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    api = matrix.api
    private_key_lines = [
        line for line in api.settings.signing_key_path.read_text().splitlines() if line and not line.startswith("---")
    ]
    forbidden = [*api.tokens.values(), matrix.revoked, *SECRETS.values(), *private_key_lines]
    responses = [api.client.get("/openapi.json"), api.client.get("/healthz")]
    for route in ROUTES:
        for role in (*READERS, "risk_officer_2"):
            responses.append(matrix.call(route, api.headers(role)))
        responses.append(matrix.call(route, {"Authorization": f"Bearer {matrix.revoked}"}))
    responses.append(api.client.get("/v1/decisions/nope", headers=api.headers("auditor")))
    responses.append(api.client.get("/v1/decisions", params={"cursor": api.tokens["auditor"][:40]}))

    for response in responses:
        exposed = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
        for secret in forbidden:
            assert secret not in exposed, f"{response.request.method} {response.request.url} leaks a secret"
    assert os.environ["BINANCE_API_SECRET"] == SECRETS["BINANCE_API_SECRET"]


def test_a_database_password_in_the_proof_log_dsn_never_reaches_a_response(tmp_path: Path) -> None:
    # nothing listens on port 1: every read of the log fails, and the failure must not quote the DSN
    password = "pg-password-never-shown"
    local = settings_in(tmp_path)
    settings = ApiSettings(
        proof_log=f"postgresql://auditor:{password}@127.0.0.1:1/prooflog?connect_timeout=2",
        state_db=local.state_db,
        rules_dir=local.rules_dir,
        kill_switch_file=local.kill_switch_file,
        signing_key=tmp_path / "absent.key",
    )
    tokens = issue_tokens(settings.state_db)
    headers = {"Authorization": f"Bearer {tokens['risk_officer']}"}
    with TestClient(create_app(settings)) as client:
        responses = [
            client.get("/v1/decisions", headers=headers),
            client.get("/v1/decisions/abc", headers=headers),
            client.get("/v1/log", headers=headers),
            client.get("/v1/log/checkpoints", headers=headers),
            client.get("/metrics", headers=headers),
            client.post("/v1/kill-switch", headers=headers, json={"reason": "db down"}),
        ]

    assert [response.status_code for response in responses] == [503] * 6
    for response in responses:
        assert password not in response.text
