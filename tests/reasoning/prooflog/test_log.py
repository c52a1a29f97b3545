"""The writer: cadence of checkpoints, batches, reopening, proofs served from the store, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reasoning.prooflog.cli import proof_app
from reasoning.prooflog.errors import CanonicalJsonError, ProofLogError, ProofRequestError, StoreError
from reasoning.prooflog.log import CheckpointPolicy, ProofLog
from reasoning.prooflog.proofs import verify_consistency, verify_inclusion
from tests.reasoning.prooflog.helpers import build_log, decision, tamper, verify_file


def test_checkpoints_are_signed_every_n_records_and_on_close(tmp_path: Path) -> None:
    with ProofLog.open(tmp_path / "log.db", policy=CheckpointPolicy(every_records=10)) as log:
        log.append_many([("decision", decision(n)) for n in range(25)])
        sizes = [c.tree_size for c in log.store.checkpoints()]

    assert sizes == [10, 20]
    assert verify_file(tmp_path / "log.db").checkpoints == 3  # 10, 20 and 25 on close


def test_a_reopened_log_continues_the_same_tree(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    with ProofLog.open(db) as log:
        log.append_many([("decision", decision(n)) for n in range(13)])
    with ProofLog.open(db) as log:
        seqs = log.append_many([("rule_change", {"who": "risk officer", "hash": "ab"}), ("kill_switch", {})])
        assert list(seqs) == [13, 14]

    assert verify_file(db).ok


def test_a_record_that_is_not_json_leaves_the_log_unchanged(tmp_path: Path) -> None:
    with ProofLog.open(tmp_path / "log.db") as log:
        log.append("decision", decision(0))
        with pytest.raises(CanonicalJsonError):
            log.append_many([("decision", decision(1)), ("decision", {"qty": math.nan})])
        assert log.size == 1
        assert log.store.record_count() == 1


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    with ProofLog.open(tmp_path / "log.db") as log, pytest.raises(ProofLogError, match="unknown record kind"):
        log.append("trade_idea", {})


def test_a_second_writer_on_the_same_file_is_detected(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    first = ProofLog.open(db, policy=CheckpointPolicy(on_close=False))
    second = ProofLog.open(db, policy=CheckpointPolicy(on_close=False))
    first.append("decision", decision(0))

    with pytest.raises(StoreError, match="another writer"):
        second.append("decision", decision(1))
    first.close()
    second.close()


def test_proofs_from_the_store_verify_against_signed_roots(tmp_path: Path) -> None:
    with ProofLog.open(tmp_path / "log.db", policy=CheckpointPolicy(every_records=7)) as log:
        log.append_many([("decision", decision(n)) for n in range(50)])
        old = log.store.checkpoints()[2]
        new = log.checkpoint()

        for seq in (0, 20, 49):
            proof = log.inclusion_proof(seq, new.tree_size)
            assert verify_inclusion(seq, new.tree_size, proof.leaf_hash, proof.audit_path, new.root_hash)
        consistency = log.consistency_proof(old.tree_size, new.tree_size)
        assert verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, consistency.path)
        with pytest.raises(ProofRequestError):
            log.inclusion_proof(50)


def test_cli_verify_prints_a_summary_for_a_good_log(tmp_path: Path) -> None:
    db = build_log(tmp_path)

    result = CliRunner().invoke(proof_app, ["verify", "--db", str(db)])

    assert result.exit_code == 0, result.output
    assert "40 records, 5 checkpoints verified" in result.output


def test_cli_verify_names_the_first_bad_record_and_fails(tmp_path: Path) -> None:
    db = build_log(tmp_path)
    tamper(db, ("DELETE FROM proof_records WHERE seq = 11", ()))

    result = CliRunner().invoke(proof_app, ["verify", "--db", str(db), "--pubkey", str(db) + ".key.pub"])

    assert result.exit_code == 1
    assert result.output.strip().startswith("error:")
    assert "record 11" in result.output


def test_cli_verify_reports_a_missing_database(tmp_path: Path) -> None:
    build_log(tmp_path)

    result = CliRunner().invoke(
        proof_app, ["verify", "--db", str(tmp_path / "nope.db"), "--pubkey", str(tmp_path / "proof.db.key.pub")]
    )

    assert result.exit_code == 2
    assert "no proof log database" in result.output
