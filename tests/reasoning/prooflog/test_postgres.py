"""The PostgreSQL store behaves as the SQLite one, against a real server: same rows, proofs, tamper detection, CLI.

Every test gets a new database on the session's temporary server (see conftest.py). Tampering runs as the
superuser with triggers switched off for its session, as an attacker with database admin rights would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from reasoning.prooflog import postgres_store
from reasoning.prooflog.checkpoint import Checkpoint
from reasoning.prooflog.cli import proof_app
from reasoning.prooflog.errors import StoreError
from reasoning.prooflog.keys import load_or_create_signing_key, load_public_key, public_key_path
from reasoning.prooflog.log import CheckpointPolicy, ProofLog
from reasoning.prooflog.merkle import NodeKey, leaf_hash
from reasoning.prooflog.opening import open_log, open_store
from reasoning.prooflog.pg_server import TemporaryPostgres
from reasoning.prooflog.postgres_store import PostgresStore, redact_dsn
from reasoning.prooflog.proofs import verify_consistency, verify_inclusion
from reasoning.prooflog.records import StoredRecord
from reasoning.prooflog.sqlite_store import SqliteStore
from reasoning.prooflog.store import ProofLogStore
from reasoning.prooflog.verify import VerificationReport, verify
from tests.reasoning.prooflog.helpers import EVERY, RECORDS, decision

PASSWORD = "s3cret-Hunter2"


@dataclass(frozen=True, slots=True)
class PgLog:
    dsn: str
    key_path: Path

    def verify(self) -> VerificationReport:
        store = PostgresStore(self.dsn, read_only=True)
        try:
            return verify(store, load_public_key(public_key_path(self.key_path)))
        finally:
            store.close()


@pytest.fixture()
def pg_log(pg_dsn: str, tmp_path: Path) -> PgLog:
    """40 decisions appended one at a time through `open_log`, a checkpoint every 8."""
    key_path = tmp_path / "prooflog.key"
    with open_log(pg_dsn, key_path, CheckpointPolicy(every_records=EVERY)) as log:
        for number in range(RECORDS):
            log.append("decision", decision(number))
    return PgLog(pg_dsn, key_path)


def tamper(dsn: str, *statements: tuple[str, tuple[object, ...]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SET session_replication_role = replica")  # superuser only: ordinary triggers stay off
        for statement, parameters in statements:
            connection.execute(statement, parameters)


def stored_bytes(dsn: str, seq: int) -> bytes:
    with psycopg.connect(dsn) as connection:
        row = connection.execute("SELECT canonical FROM proof_records WHERE seq = %s", (seq,)).fetchone()
    assert row is not None
    return bytes(row[0])


def fixed_clock() -> Callable[[], int]:
    clock = iter(range(1_700_000_000_000_000_000, 1_800_000_000_000_000_000, 1_000_000))
    return lambda: next(clock)


def everything_stored(store: ProofLogStore) -> tuple[object, ...]:
    levels = range(1, store.highest_node_level() + 1)
    return (
        store.record_count(),
        list(store.records()),
        list(store.records(17)),
        store.record(39),
        store.record(40),
        [list(store.interior_nodes(level)) for level in levels],
        store.checkpoints(),
        store.latest_checkpoint(),
        store.node_hashes([NodeKey(0, 5), NodeKey(3, 2), NodeKey(5, 0), NodeKey(1, 19)]),
    )


# --- the same behaviour as SQLite ---


@pytest.mark.parametrize("page_rows", [5, 7, 1000])
def test_postgresql_stores_exactly_what_sqlite_stores_for_the_same_appends(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page_rows: int
) -> None:
    # 40 records: 20 nodes on level 1 (a multiple of 5, so a scan ends on an empty page), 7 rows is a ragged page
    monkeypatch.setattr(postgres_store, "PAGE_ROWS", page_rows)
    key = load_or_create_signing_key(tmp_path / "key")  # Ed25519 signatures are deterministic: same checkpoints
    for store in (SqliteStore(tmp_path / "log.db"), PostgresStore(pg_dsn)):
        with ProofLog(store, key, CheckpointPolicy(every_records=EVERY), clock_ns=fixed_clock()) as log:
            for number in range(RECORDS):
                log.append("decision", decision(number))

    sqlite, postgres = SqliteStore(tmp_path / "log.db", read_only=True), PostgresStore(pg_dsn, read_only=True)

    assert everything_stored(postgres) == everything_stored(sqlite)
    assert postgres.highest_node_level() == sqlite.highest_node_level() == 5
    sqlite.close()
    postgres.close()


def test_a_new_postgresql_log_is_empty(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn)

    assert store.record_count() == 0
    assert list(store.records()) == []
    assert store.highest_node_level() == 0
    assert store.checkpoints() == []
    assert store.latest_checkpoint() is None
    assert store.node_hashes([]) == []
    store.close()


def test_a_log_written_to_postgresql_verifies(pg_log: PgLog) -> None:
    report = pg_log.verify()

    assert report.ok, report.failure
    assert report.records == RECORDS
    assert report.checkpoints == RECORDS // EVERY
    assert report.unsigned_records == 0


def test_a_reopened_postgresql_log_continues_the_same_tree(pg_log: PgLog) -> None:
    with open_log(pg_log.dsn, pg_log.key_path) as log:
        seqs = log.append_many([("rule_change", {"who": "risk officer", "hash": "ab"}), ("kill_switch", {})])

    assert list(seqs) == [RECORDS, RECORDS + 1]
    assert pg_log.verify().records == RECORDS + 2


def test_proofs_served_from_postgresql_verify_against_signed_roots(pg_dsn: str, tmp_path: Path) -> None:
    with open_log(pg_dsn, tmp_path / "key", CheckpointPolicy(every_records=7)) as log:
        log.append_many([("decision", decision(n)) for n in range(50)])
        old = log.store.checkpoints()[2]
        new = log.checkpoint()

        for seq in (0, 20, 49):
            proof = log.inclusion_proof(seq, new.tree_size)
            assert verify_inclusion(seq, new.tree_size, proof.leaf_hash, proof.audit_path, new.root_hash)
        consistency = log.consistency_proof(old.tree_size, new.tree_size)
        assert verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, consistency.path)


def test_open_store_picks_postgresql_for_either_uri_scheme_and_sqlite_for_anything_else(
    pg_dsn: str, tmp_path: Path
) -> None:
    stores = [
        open_store(pg_dsn),
        open_store(pg_dsn.replace("postgresql://", "postgres://", 1)),
        open_store(tmp_path / "log.db"),
    ]

    assert [type(store) for store in stores] == [PostgresStore, PostgresStore, SqliteStore]
    for store in stores:
        store.close()


# --- the database itself refuses changes ---


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE proof_records SET kind = 'kill_switch' WHERE seq = 3",
        "DELETE FROM proof_records WHERE seq >= 37",
        "UPDATE proof_tree_nodes SET hash = hash",
        "DELETE FROM proof_checkpoints",
        "UPDATE proof_checkpoints SET signed_at = 'x'",
        "TRUNCATE proof_records",
        "TRUNCATE proof_tree_nodes",
        "TRUNCATE proof_checkpoints",
    ],
)
def test_the_database_refuses_updates_deletes_and_truncation(pg_log: PgLog, statement: str) -> None:
    connection = psycopg.connect(pg_log.dsn, autocommit=True)  # the superuser, triggers on

    with pytest.raises(psycopg.IntegrityError, match="append-only"):
        connection.execute(statement)
    connection.close()

    assert pg_log.verify().ok


# --- tampering is detected and the first bad record named ---


def test_flipping_a_byte_of_a_record_names_that_record(pg_log: PgLog) -> None:
    original = stored_bytes(pg_log.dsn, 13)
    for position in range(0, len(original), 9):
        altered = bytearray(original)
        altered[position] ^= 0x01
        tamper(pg_log.dsn, ("UPDATE proof_records SET canonical = %s WHERE seq = 13", (bytes(altered),)))

        failure = pg_log.verify().failure

        assert failure is not None, f"byte {position} flipped went unnoticed"
        assert failure.sequence == 13
        assert "altered" in failure.problem
    tamper(pg_log.dsn, ("UPDATE proof_records SET canonical = %s WHERE seq = 13", (original,)))
    assert pg_log.verify().ok


def test_rewriting_a_record_and_its_leaf_hash_is_caught_by_the_tree(pg_log: PgLog) -> None:
    forged = stored_bytes(pg_log.dsn, 20).replace(b'"admit"', b'"deny!"')
    tamper(
        pg_log.dsn,
        ("UPDATE proof_records SET canonical = %s, leaf_hash = %s WHERE seq = 20", (forged, leaf_hash(forged))),
    )

    failure = pg_log.verify().failure

    assert failure is not None
    assert failure.sequence == 20
    assert "records 20–21" in failure.problem


def test_deleting_a_record_names_it(pg_log: PgLog) -> None:
    tamper(pg_log.dsn, ("DELETE FROM proof_records WHERE seq = 17", ()))

    failure = pg_log.verify().failure

    assert failure is not None
    assert failure.sequence == 17
    assert "missing" in failure.problem


def test_deleting_the_last_records_is_caught_by_the_last_checkpoint(pg_log: PgLog) -> None:
    tamper(pg_log.dsn, ("DELETE FROM proof_records WHERE seq >= 37", ()))

    failure = pg_log.verify().failure

    assert failure is not None
    assert failure.sequence == 37
    assert failure.checkpoint_size == RECORDS


def test_zeroing_a_checkpoint_signature_is_detected(pg_log: PgLog) -> None:
    tamper(
        pg_log.dsn,
        ("UPDATE proof_checkpoints SET signature = decode(repeat('00', 64), 'hex') WHERE tree_size = 24", ()),
    )

    failure = pg_log.verify().failure

    assert failure is not None
    assert failure.checkpoint_size == 24
    assert "signature" in failure.problem


# --- writers: all or nothing, one at a time ---


def test_a_second_writer_is_detected_and_writes_nothing(pg_dsn: str, tmp_path: Path) -> None:
    policy = CheckpointPolicy(on_close=False)
    first = open_log(pg_dsn, tmp_path / "key", policy)
    second = open_log(pg_dsn, tmp_path / "key", policy)
    first.append("decision", decision(0))

    with pytest.raises(StoreError, match="another writer"):
        second.append_many([("decision", decision(1)), ("decision", decision(2))])

    assert first.store.record_count() == 1
    first.close()
    second.close()


def test_two_writers_racing_one_fails_and_nothing_partial_is_stored(pg_dsn: str, tmp_path: Path) -> None:
    load_or_create_signing_key(tmp_path / "key")  # two threads creating the key file at once is another race
    both_open = threading.Barrier(2, timeout=60)  # only a guard against a hang should a thread die
    outcomes: dict[str, range | Exception] = {}

    def write(name: str) -> None:
        try:
            log = open_log(pg_dsn, tmp_path / "key", CheckpointPolicy(every_records=50))  # both create the schema
        except Exception as exc:
            outcomes[name] = exc
            both_open.abort()
            raise
        both_open.wait()
        try:
            outcomes[name] = log.append_many([("decision", decision(n) | {"writer": name}) for n in range(200)])
        except StoreError as exc:
            outcomes[name] = exc
        log.close()

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [name for name, outcome in outcomes.items() if isinstance(outcome, range)]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, StoreError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert "another writer" in str(losers[0])
    store = PostgresStore(pg_dsn, read_only=True)
    writers = {record.canonical.split(b'"writer":"')[1][:1] for record in store.records()}
    assert writers == {winners[0].encode()}
    assert verify(store, load_public_key(public_key_path(tmp_path / "key"))).records == 200
    store.close()


def test_a_batch_the_database_refuses_is_not_written_at_all(pg_dsn: str, tmp_path: Path) -> None:
    with open_log(pg_dsn, tmp_path / "key", CheckpointPolicy(every_records=3, on_close=False)) as log:
        log.append_many([("decision", decision(n)) for n in range(3)])
        store = log.store
        duplicate = store.checkpoints()[0]  # tree size 3 is signed already: the primary key refuses it again
        records = [StoredRecord(3, "decision", "t", b"{}", leaf_hash(b"{}"))]

        with pytest.raises(StoreError, match="nothing was written"):
            store.append(records, [], [duplicate], expected_count=3)

        assert store.record_count() == 3
        assert store.checkpoints() == [duplicate]


def test_a_read_only_store_refuses_to_append(pg_log: PgLog) -> None:
    store = PostgresStore(pg_log.dsn, read_only=True)
    checkpoint = Checkpoint(RECORDS + 1, b"\0" * 32, "t", "k", b"\0" * 64)

    with pytest.raises(StoreError, match="read-only"):
        store.append([], [], [checkpoint], expected_count=RECORDS)
    store.close()


# --- opening ---


def test_a_database_without_a_log_is_refused_for_reading(pg_dsn: str) -> None:
    with pytest.raises(StoreError, match="no proof log database there"):
        PostgresStore(pg_dsn, read_only=True)


def test_a_log_of_another_schema_version_is_refused(pg_log: PgLog) -> None:
    tamper(pg_log.dsn, ("UPDATE proof_meta SET value = '2' WHERE name = 'schema_version'", ()))

    with pytest.raises(StoreError, match="schema version 2, this code reads 1"):
        PostgresStore(pg_log.dsn)


def test_a_role_with_only_select_and_insert_appends_to_a_log_a_dba_created(
    pg_log: PgLog, postgres_server: TemporaryPostgres
) -> None:
    dbname = pg_log.dsn.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(pg_log.dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(dbname + "_app"), sql.Literal(PASSWORD))
        )
        connection.execute(
            sql.SQL("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(dbname + "_app"))
        )
    app_dsn = postgres_server.dsn_for(dbname, user=dbname + "_app", password=PASSWORD)

    with open_log(app_dsn, pg_log.key_path) as log:
        log.append("kill_switch", {"by": "risk officer"})

    assert pg_log.verify().records == RECORDS + 1


# --- `cryptoscalp proof verify --db DSN` ---


def test_cli_verify_accepts_a_dsn_and_prints_a_summary(pg_log: PgLog) -> None:
    pubkey = str(public_key_path(pg_log.key_path))

    result = CliRunner().invoke(proof_app, ["verify", "--db", pg_log.dsn, "--pubkey", pubkey])

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ok: {redact_dsn(pg_log.dsn)}: 40 records, 5 checkpoints verified")


def test_cli_verify_names_the_first_bad_record_of_a_postgresql_log(pg_log: PgLog) -> None:
    tamper(pg_log.dsn, ("DELETE FROM proof_records WHERE seq = 11", ()))
    pubkey = str(public_key_path(pg_log.key_path))

    result = CliRunner().invoke(proof_app, ["verify", "--db", pg_log.dsn, "--pubkey", pubkey])

    assert result.exit_code == 1
    assert result.output.strip().startswith("error:")
    assert "record 11" in result.output


def test_cli_verify_of_a_dsn_reads_the_public_key_from_the_home_directory_by_default(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with open_log(pg_dsn) as log:
        log.append("decision", decision(0))

    result = CliRunner().invoke(proof_app, ["verify", "--db", pg_dsn])

    assert (tmp_path / ".cryptoscalp" / "prooflog.key.pub").exists()
    assert result.exit_code == 0, result.output
    assert "1 records, 1 checkpoints verified" in result.output


# --- the DSN's password never appears in an error ---


@pytest.fixture()
def trader_dsn(pg_dsn: str, postgres_server: TemporaryPostgres) -> str:
    """The DSN of a role `trader_<db>` whose password is PASSWORD, owning the test's database."""
    dbname = pg_dsn.split("?")[0].rsplit("/", 1)[1]
    role = f"trader_{dbname}"
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD))
        )
        connection.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(role))
        )
    return postgres_server.dsn_for(dbname, user=role, password=PASSWORD)


def test_a_role_with_a_password_writes_and_verifies_its_log(trader_dsn: str, tmp_path: Path) -> None:
    with open_log(trader_dsn, tmp_path / "key") as log:
        log.append_many([("decision", decision(n)) for n in range(5)])

    result = CliRunner().invoke(proof_app, ["verify", "--db", trader_dsn, "--pubkey", str(tmp_path / "key.pub")])

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda dsn: dsn.replace(PASSWORD, PASSWORD[::-1]), "password authentication failed"),
        (lambda dsn: dsn.replace("/db_", "/no_such_db_"), "does not exist"),
        (lambda dsn: dsn, "no proof log database there"),  # an empty database, opened for reading
        (lambda dsn: dsn.replace("@/", "@[::1/"), "not a valid PostgreSQL DSN"),
    ],
    ids=["wrong password", "no such database", "no log", "unparsable DSN"],
)
def test_an_error_never_shows_the_password(
    trader_dsn: str, tmp_path: Path, change: Callable[[str], str], expected: str
) -> None:
    dsn = change(trader_dsn)
    secrets = (PASSWORD, PASSWORD[::-1])
    load_or_create_signing_key(tmp_path / "key")

    with pytest.raises(StoreError, match=expected) as raised:
        PostgresStore(dsn, read_only=True)
    result = CliRunner().invoke(proof_app, ["verify", "--db", dsn, "--pubkey", str(tmp_path / "key.pub")])

    assert not any(secret in str(raised.value) for secret in secrets)
    assert result.exit_code == 2
    assert not any(secret in result.output for secret in secrets)


def test_a_role_that_may_not_create_the_tables_is_told_so_without_its_password(
    pg_dsn: str, postgres_server: TemporaryPostgres
) -> None:
    dbname = pg_dsn.split("?")[0].rsplit("/", 1)[1]
    role = f"reader_{dbname}"
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD))
        )

    with pytest.raises(StoreError, match="cannot create the proof log tables") as raised:
        PostgresStore(postgres_server.dsn_for(dbname, user=role, password=PASSWORD))

    assert "permission denied" in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (f"postgresql://trader:{PASSWORD}@db.internal:5433/prooflog", "postgresql://trader@db.internal:5433/prooflog"),
        (f"postgres://trader@/prooflog?host=/run/pg&password={PASSWORD}", "postgresql://trader@/prooflog?host=/run/pg"),
        (
            f"host=db.internal user=trader password={PASSWORD} dbname=prooflog",
            "postgresql://trader@db.internal/prooflog",
        ),
        (f"postgresql://trader:{PASSWORD}@[::1/prooflog", "postgresql://(unparsable DSN)"),
    ],
)
def test_a_dsn_is_named_without_its_password(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown
