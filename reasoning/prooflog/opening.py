"""Open a proof log by where it lives: a `postgresql://` (or `postgres://`) DSN, or else the path of a SQLite file.

One place decides the backend so the CLI, the trading loop and benchmarks accept the same `--db` values. The
signing key defaults to `<db>.key` beside a SQLite file (as `ProofLog.open`); a server has no "beside", so a DSN's
default key is `~/.cryptoscalp/prooflog.key` of the user that writes (public half `prooflog.key.pub`, which
`cryptoscalp proof verify --db DSN` reads by default). Pass `key_path` to keep one key per log.
"""

from __future__ import annotations

from pathlib import Path

from reasoning.prooflog.keys import load_or_create_signing_key
from reasoning.prooflog.log import CheckpointPolicy, ProofLog, default_key_path
from reasoning.prooflog.postgres_store import PostgresStore, redact_dsn
from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.prooflog.store import ProofLogStore

DSN_SCHEMES = ("postgresql://", "postgres://")


def is_dsn(target: str | Path) -> bool:
    """A PostgreSQL URI. A `Path` never is: it would have collapsed the `//`."""
    return isinstance(target, str) and target.lower().startswith(DSN_SCHEMES)


def default_dsn_key_path() -> Path:
    """The signing key of a log in PostgreSQL when none is given: `~/.cryptoscalp/prooflog.key`."""
    return Path.home() / ".cryptoscalp" / "prooflog.key"


def default_key_path_for(target: str | Path) -> Path:
    """Where the signing key of the log at `target` is by default (`<db>.key`, or the DSN default)."""
    return default_dsn_key_path() if is_dsn(target) else default_key_path(Path(target))


def describe_target(target: str | Path) -> str:
    """How messages name the log: the path, or the DSN without its password."""
    return redact_dsn(str(target)) if is_dsn(target) else str(target)


def open_store(target: str | Path, *, read_only: bool = False) -> ProofLogStore:
    if is_dsn(target):
        return PostgresStore(str(target), read_only=read_only)
    return SqliteStore(Path(target), read_only=read_only)


def open_log(target: str | Path, key_path: Path | None = None, policy: CheckpointPolicy | None = None) -> ProofLog:
    """The log at `target` (created if absent), signing with the key at `key_path` (created if absent)."""
    key = load_or_create_signing_key(key_path or default_key_path_for(target))
    store = open_store(target)
    try:
        return ProofLog(store, key, policy)
    except BaseException:
        store.close()
        raise
