"""The proof log as request handlers use it: a read-only store per thread, and short-lived writers.

Reads: each request thread opens its own store on first use (a SQLite connection belongs to one thread): read-only
for SQLite; for PostgreSQL an autocommit store, because a read-only one reads one snapshot for its whole life and
would never see the records appended after it opened. Proofs are built straight from the store: they need stored
subtree hashes, not a writer.

Writes (a kill-switch record, a rule change): the trading loop is the log's usual writer, so the API never keeps a
writer open; it opens one for the append, signs a checkpoint so the new record is provable at once, and closes it.
A writer that finds the log grown under it (`StoreError`) is reopened and the append retried.

Caveat: the log has one writer at a time (`SqliteStore` detects a second, it does not serialise them), so a
trading loop that keeps its writer open finds the log grown after an API append and must reopen it.
"""

from __future__ import annotations

import logging
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.settings import ApiSettings
from core.errors import CryptoScalpError
from reasoning.prooflog.canonical import JsonObject
from reasoning.prooflog.errors import KeyFileError, StoreError
from reasoning.prooflog.keys import load_public_key
from reasoning.prooflog.log import CheckpointPolicy
from reasoning.prooflog.opening import is_dsn, open_log, open_store
from reasoning.prooflog.records import RecordKind
from reasoning.prooflog.store import ProofLogStore

APPEND_ATTEMPTS = 3
_NO_AUTOMATIC_CHECKPOINT = CheckpointPolicy(every_records=None, on_close=False)
_log = logging.getLogger(__name__)


class LogWriteUnavailable(CryptoScalpError):
    """The API cannot append to the proof log (no signing key, or the store refused the write)."""


class LogAccess:
    def __init__(self, settings: ApiSettings) -> None:
        self._target = settings.proof_log
        self._signing_key = settings.signing_key_path
        self._public_key_path = settings.public_key_path
        self._local = threading.local()
        self._public_key: Ed25519PublicKey | None = None
        self._write_lock = threading.Lock()

    def store(self) -> ProofLogStore:
        """This thread's read-only store (opened on first use)."""
        store: ProofLogStore | None = getattr(self._local, "store", None)
        if store is None:
            store = open_store(self._target, read_only=not is_dsn(self._target))
            self._local.store = store
        return store

    def public_key(self) -> Ed25519PublicKey:
        if self._public_key is None:
            self._public_key = load_public_key(self._public_key_path)
        return self._public_key

    def append(self, kind: RecordKind, record: JsonObject) -> int:
        """Append one record and sign a checkpoint covering it; returns its sequence number. An append that
        another writer got in ahead of is retried on a reopened log; once the record is in, it is never
        appended again (if only the checkpoint fails, the next one anyone signs covers the record)."""
        if not self._signing_key.exists():
            raise LogWriteUnavailable("the API has no signing key for the proof log, so it cannot append records")
        with self._write_lock:
            problem: StoreError | None = None
            for _ in range(APPEND_ATTEMPTS):
                try:
                    log = open_log(self._target, self._signing_key, _NO_AUTOMATIC_CHECKPOINT)
                except StoreError as exc:
                    problem = exc
                    continue
                except KeyFileError as exc:
                    raise LogWriteUnavailable(f"the API cannot sign with its key: {exc}") from None
                try:
                    seq = log.append(kind, record)
                except StoreError as exc:
                    problem = exc
                    log.close()
                    continue
                try:
                    log.checkpoint()
                except StoreError as exc:
                    _log.warning("record %d appended, but its checkpoint was not signed: %s", seq, exc)
                log.close()
                return seq
        _log.error("proof log append failed after %d attempts: %s", APPEND_ATTEMPTS, problem)
        raise LogWriteUnavailable("the proof log refused the append (see the server log); nothing was recorded")
