"""API tokens: shown once, stored hashed, one role each, revocable; `cryptoscalp tokens`."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import tokens_app
from api.state import StateDb
from api.tokens import Role, TokenError, TokenStore


@pytest.fixture()
def store(tmp_path: Path) -> TokenStore:
    return TokenStore(StateDb(tmp_path / "state.sqlite3"))


def test_a_token_is_stored_only_as_its_sha256(tmp_path: Path, store: TokenStore) -> None:
    info, token = store.create(Role.AUDITOR, "alice")

    rows = sqlite3.connect(tmp_path / "state.sqlite3").execute("SELECT * FROM api_tokens").fetchall()
    assert token not in repr(rows)
    assert hashlib.sha256(token.encode()).hexdigest() in repr(rows)
    assert store.authenticate(token) is not None and store.authenticate(token).name == "alice"  # type: ignore[union-attr]
    assert info.role is Role.AUDITOR


def test_a_revoked_token_no_longer_authenticates(store: TokenStore) -> None:
    info, token = store.create(Role.OPERATOR, "oscar")

    store.revoke(info.token_id)

    assert store.authenticate(token) is None
    with pytest.raises(TokenError, match="revoked already"):
        store.revoke("oscar")


def test_an_unknown_role_or_a_taken_name_is_refused(store: TokenStore) -> None:
    store.create(Role.AUDITOR, "alice")

    with pytest.raises(TokenError, match="unknown role 'admin'"):
        store.create("admin", "bob")
    with pytest.raises(TokenError, match="exists already"):
        store.create(Role.OPERATOR, "alice")


def test_tokens_create_prints_the_token_once_and_list_never_shows_it(tmp_path: Path) -> None:
    runner = CliRunner()
    state = tmp_path / "state.sqlite3"

    created = runner.invoke(tokens_app, ["create", "--role", "risk_officer", "--name", "rita", "--state", str(state)])
    listed = runner.invoke(tokens_app, ["list", "--state", str(state)])

    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("cst_") and len(token) == 47
    assert "rita" in listed.stdout and "risk_officer" in listed.stdout and token not in listed.stdout
    assert TokenStore(StateDb(state)).authenticate(token) is not None


def test_tokens_revoke_by_name(tmp_path: Path) -> None:
    runner = CliRunner()
    state = tmp_path / "state.sqlite3"
    token = runner.invoke(tokens_app, ["create", "--role", "auditor", "--name", "al", "--state", str(state)]).stdout

    revoked = runner.invoke(tokens_app, ["revoke", "al", "--state", str(state)])

    assert revoked.exit_code == 0 and "revoked token" in revoked.stdout
    assert TokenStore(StateDb(state)).authenticate(token.strip()) is None
