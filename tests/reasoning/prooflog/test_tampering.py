"""Every kind of tampering with a stored log is detected, and the first bad record is named."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reasoning.prooflog.checkpoint import sign_checkpoint
from reasoning.prooflog.keys import load_or_create_signing_key
from reasoning.prooflog.log import default_key_path
from reasoning.prooflog.merkle import leaf_hash
from tests.reasoning.prooflog.helpers import EVERY, RECORDS, build_log, tamper, verify_file


def _checkpointed(db: Path) -> None:
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    source = build_log(tmp_path)
    _checkpointed(source)
    return source


def stored_bytes(db: Path, seq: int) -> bytes:
    connection = sqlite3.connect(db)
    (canonical,) = connection.execute("SELECT canonical FROM proof_records WHERE seq = ?", (seq,)).fetchone()
    connection.close()
    return bytes(canonical)


def test_an_untouched_log_verifies(db: Path) -> None:
    report = verify_file(db)

    assert report.ok, report.failure
    assert report.records == RECORDS
    assert report.checkpoints == RECORDS // EVERY
    assert report.unsigned_records == 0


def test_the_database_refuses_updates_and_deletes(db: Path) -> None:
    connection = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM proof_records WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE proof_checkpoints SET signed_at = 'x'")
    connection.close()


def test_flipping_any_byte_of_a_record_names_that_record(db: Path) -> None:
    original = stored_bytes(db, 13)
    for position in range(len(original)):
        altered = bytearray(original)
        altered[position] ^= 0x01
        tamper(db, ("UPDATE proof_records SET canonical = ? WHERE seq = 13", (bytes(altered),)))

        report = verify_file(db)

        assert report.failure is not None, f"byte {position} flipped went unnoticed"
        assert report.failure.sequence == 13
        assert "altered" in report.failure.problem
    tamper(db, ("UPDATE proof_records SET canonical = ? WHERE seq = 13", (original,)))
    assert verify_file(db).ok


def test_rewriting_a_record_and_its_leaf_hash_is_caught_by_the_tree(db: Path) -> None:
    forged = stored_bytes(db, 20).replace(b'"admit"', b'"deny!"')
    tamper(db, ("UPDATE proof_records SET canonical = ?, leaf_hash = ? WHERE seq = 20", (forged, leaf_hash(forged))))

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.sequence == 20
    assert "records 20–21" in failure.problem


def test_deleting_a_record_names_it(db: Path) -> None:
    tamper(db, ("DELETE FROM proof_records WHERE seq = 17", ()))

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.sequence == 17
    assert "missing" in failure.problem


def test_deleting_the_last_records_is_caught_by_the_last_checkpoint(db: Path) -> None:
    tamper(db, ("DELETE FROM proof_records WHERE seq >= 37", ()))

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.sequence == 37
    assert failure.checkpoint_size == RECORDS


def test_inserting_a_record_names_the_insertion_point(db: Path) -> None:
    # the attacker renumbers rows 25.. upwards and writes a self-consistent forged record 25
    forged = stored_bytes(db, 25).replace(b'"intent-25"', b'"intent-XX"')
    tamper(
        db,
        ("UPDATE proof_records SET seq = -seq - 1 WHERE seq >= 25", ()),
        ("UPDATE proof_records SET seq = -seq WHERE seq < 0", ()),
        ("INSERT INTO proof_records VALUES (25, 'decision', "
         "(SELECT created_at FROM proof_records WHERE seq = 24), ?, ?)", (forged, leaf_hash(forged))),
    )  # fmt: skip

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.sequence == 25


def test_reordering_two_records_names_the_first(db: Path) -> None:
    tamper(
        db,
        ("UPDATE proof_records SET seq = -1 WHERE seq = 9", ()),
        ("UPDATE proof_records SET seq = 9 WHERE seq = 30", ()),
        ("UPDATE proof_records SET seq = 30 WHERE seq = -1", ()),
    )

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.sequence == 9
    assert "reordered" in failure.problem


def test_relabelling_a_record_kind_names_it(db: Path) -> None:
    tamper(db, ("UPDATE proof_records SET kind = 'kill_switch' WHERE seq = 5", ()))

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.sequence == 5


def test_swapping_two_checkpoint_signatures_names_the_first_checkpoint(db: Path) -> None:
    tamper(
        db,
        ("CREATE TEMP TABLE saved AS SELECT tree_size, signature FROM proof_checkpoints", ()),
        ("UPDATE proof_checkpoints SET signature = (SELECT signature FROM saved WHERE tree_size = 24) "
         "WHERE tree_size = 16", ()),
        ("UPDATE proof_checkpoints SET signature = (SELECT signature FROM saved WHERE tree_size = 16) "
         "WHERE tree_size = 24", ()),
    )  # fmt: skip

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.checkpoint_size == 16
    assert "signature" in failure.problem


@pytest.mark.parametrize("column", ["root_hash", "signature"])
def test_altering_a_checkpoint_root_or_signature_is_detected(db: Path, column: str) -> None:
    tamper(db, (f"UPDATE proof_checkpoints SET {column} = zeroblob(length({column})) WHERE tree_size = 32", ()))

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.checkpoint_size == 32


def test_a_validly_signed_checkpoint_of_other_records_names_the_range_it_covers(db: Path) -> None:
    key = load_or_create_signing_key(default_key_path(db))
    forged = sign_checkpoint(key, 24, leaf_hash(b"another history"), "2030-01-01T00:00:00.000000Z")
    tamper(db, ("UPDATE proof_checkpoints SET root_hash = ?, signature = ?, signed_at = ? WHERE tree_size = 24",
                (forged.root_hash, forged.signature, forged.signed_at)))  # fmt: skip

    failure = verify_file(db).failure

    assert failure is not None
    assert failure.checkpoint_size == 24
    assert failure.sequence == 16


def test_a_log_checked_with_another_public_key_fails_at_the_first_checkpoint(db: Path, tmp_path: Path) -> None:
    other = load_or_create_signing_key(tmp_path / "other" / "key")
    from reasoning.prooflog.sqlite_store import SqliteStore
    from reasoning.prooflog.verify import verify

    store = SqliteStore(db, read_only=True)
    failure = verify(store, other.public_key()).failure
    store.close()

    assert failure is not None
    assert failure.checkpoint_size == EVERY
    assert "key" in failure.problem
