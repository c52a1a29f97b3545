"""Bearer API tokens: issued once, stored only as a SHA-256 hash, each with one role.

A token is `cst_` followed by 43 URL-safe characters (256 random bits). With that much entropy a plain SHA-256
is as good as a slow password hash: nothing can be guessed, so the database only has to not hold the token
itself. Tokens are found by their hash, so comparing secrets never happens character by character.

Roles: `auditor` reads; `operator` reads and engages the kill switch; `risk_officer` reads, proposes and
approves rule changes, and engages the kill switch.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from api.state import StateDb
from core.errors import CryptoScalpError

TOKEN_PREFIX = "cst_"
_TOKEN_SHAPE = re.compile(r"cst_[A-Za-z0-9_-]{43}\Z")
_NAME_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id     TEXT PRIMARY KEY,         -- public identifier, e.g. in `tokens list` and logs
    name         TEXT NOT NULL UNIQUE,     -- who holds it; what "by" says in the proof log
    role         TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,     -- hex SHA-256 of the whole token; the token itself is never stored
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
"""


class Role(StrEnum):
    AUDITOR = "auditor"
    RISK_OFFICER = "risk_officer"
    OPERATOR = "operator"


class TokenError(CryptoScalpError):
    """A token cannot be created or revoked as asked (bad role or name, name taken, unknown token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: never the token, only what it was issued to."""

    token_id: str
    name: str
    role: Role

    @property
    def label(self) -> str:
        """How the proof log names the actor: `alice (risk_officer)`."""
        return f"{self.name} ({self.role.value})"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    def __init__(self, state: StateDb) -> None:
        self._state = state
        state.execute_script(SCHEMA)

    def create(self, role: Role | str, name: str | None = None) -> tuple[TokenInfo, str]:
        """A new token for `role`; returns its record and the token, which is shown this once and never stored."""
        checked_role = _role(role)
        token_id = secrets.token_hex(6)
        holder = name if name is not None else f"{checked_role.value}-{token_id}"
        if not _NAME_SHAPE.match(holder):
            raise TokenError(
                f"token name {holder!r}: use 1-64 letters, digits and _ . @ - (starting with a letter or digit)"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created_at = _now()
        try:
            with self._state.transaction() as db:
                db.execute(
                    "INSERT INTO api_tokens (token_id, name, role, token_sha256, created_at) VALUES (?, ?, ?, ?, ?)",
                    (token_id, holder, checked_role.value, token_hash(token), created_at),
                )
        except sqlite3.IntegrityError:
            raise TokenError(f"a token named {holder!r} exists already; choose another --name") from None
        return TokenInfo(token_id, holder, checked_role, created_at, None), token

    def authenticate(self, token: str) -> Principal | None:
        """Whom an unrevoked token was issued to, or None for anything else (malformed, unknown, revoked)."""
        if not _TOKEN_SHAPE.match(token):
            return None
        row = (
            self._state.connection()
            .execute(
                "SELECT token_id, name, role FROM api_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
                (token_hash(token),),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Principal(row[0], row[1], Role(row[2]))

    def revoke(self, token_id_or_name: str) -> TokenInfo:
        """Revoke by token id or name; refusing one already revoked or unknown."""
        with self._state.transaction() as db:
            row = db.execute(
                "SELECT token_id, name, role, created_at, revoked_at FROM api_tokens WHERE token_id = ? OR name = ?",
                (token_id_or_name, token_id_or_name),
            ).fetchone()
            if row is None:
                raise TokenError(f"no token with id or name {token_id_or_name!r}; `cryptoscalp tokens list` shows them")
            if row[4] is not None:
                raise TokenError(f"token {row[0]} ({row[1]}) was revoked already at {row[4]}")
            revoked_at = _now()
            db.execute("UPDATE api_tokens SET revoked_at = ? WHERE token_id = ?", (revoked_at, row[0]))
        return TokenInfo(row[0], row[1], Role(row[2]), row[3], revoked_at)

    def list(self) -> list[TokenInfo]:
        rows = self._state.connection().execute(
            "SELECT token_id, name, role, created_at, revoked_at FROM api_tokens ORDER BY created_at, token_id"
        )
        return [TokenInfo(row[0], row[1], Role(row[2]), row[3], row[4]) for row in rows]


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        known = ", ".join(item.value for item in Role)
        raise TokenError(f"unknown role {role!r}; expected one of {known}") from None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
