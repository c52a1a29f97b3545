"""Four-eyes rule changes: proposals checked like `rules check` and `rules test`, approved by someone else.

Every test works on a copy of rules/ in tmp_path; the repository's rules/ is never written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.prooflog.canonical import JsonObject
from reasoning.prooflog.errors import StoreError
from reasoning.prooflog.log import ProofLog
from reasoning.prooflog.records import RecordKind
from reasoning.proposals import (
    FourEyesError,
    ProposalError,
    ProposalInputError,
    ProposalNotFoundError,
    ProposalService,
    ProposalStateError,
    StaleProposalError,
)
from reasoning.rule_tests import default_context
from reasoning.rules import RULE_FILES, RULES_DIR, combined_hash, file_hashes
from reasoning.strategy_rules import PrologEngine
from tests.reasoning.prooflog.helpers import verify_file

MARKET_MAKER_LIMIT_ONLY = "precondition(market_making, order_type_in([limit]), 'L5.strategy_order_type_mismatch').\n"


@pytest.fixture()
def rules_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(RULES_DIR, directory)
    return directory


@pytest.fixture()
def service(tmp_path: Path, rules_dir: Path) -> ProposalService:
    return ProposalService(rules_dir, tmp_path / "state.sqlite3", None)


def with_comment(rules_dir: Path, name: str, comment: str = "a reviewed change") -> str:
    marker = {"policy.mg": "#", "expert.clp": ";", "strategies.pl": "%", "limits.toml": "#"}[name]
    return (rules_dir / name).read_text(encoding="utf-8") + f"\n{marker} {comment}\n"


def contents(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()
    }


def test_a_valid_proposal_is_pending_with_its_diff_and_both_hashes(service: ProposalService, rules_dir: Path) -> None:
    active_hash = combined_hash(file_hashes(rules_dir))

    proposal = service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "alice", "explain the rule")

    assert proposal.status == "pending"
    assert (proposal.check_errors, proposal.test_failures) == ((), ())
    assert proposal.base_hash == active_hash
    assert proposal.ruleset_hash not in (active_hash, "")
    assert proposal.diff.startswith("--- a/policy.mg\n+++ b/policy.mg\n")
    assert "+# a reviewed change\n" in proposal.diff
    assert proposal.files_changed == ("policy.mg",)
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", proposal.id)
    assert service.get(proposal.id) == proposal


def test_the_proposed_set_is_identified_by_the_hash_its_files_would_have(
    service: ProposalService, rules_dir: Path, tmp_path: Path
) -> None:
    new_text = with_comment(rules_dir, "expert.clp")
    expected_dir = tmp_path / "expected"
    shutil.copytree(rules_dir, expected_dir)
    (expected_dir / "expert.clp").write_text(new_text, encoding="utf-8")

    proposal = service.propose({"expert.clp": new_text}, "alice", "")

    assert proposal.ruleset_hash == combined_hash(file_hashes(expected_dir))


@pytest.mark.parametrize(
    ("file_name", "broken", "column"),
    [
        ("policy.mg", "deny(I, R) :- intent(I, _, _, _).\n", 1),
        ("expert.clp", "(defrule broken (intent (id ?i)) => (assert (deny (reason \n", 1),
        ("strategies.pl", "precondition(foo, bar\n", 22),
        ("limits.toml", '[limits.x]\nlayer = "L9"\n', 1),
    ],
)
def test_a_broken_rule_file_makes_the_proposal_invalid_with_its_file_line_and_column(
    service: ProposalService, rules_dir: Path, file_name: str, broken: str, column: int
) -> None:
    text = (rules_dir / file_name).read_text(encoding="utf-8")
    broken_line = len(text.splitlines()) + 2  # after the file's last line and the blank line added before it

    proposal = service.propose({file_name: text + "\n" + broken}, "alice", "a typo")

    assert proposal.status == "invalid"
    (error,) = proposal.check_errors
    assert error.startswith(f"{file_name}:{broken_line}:{column}: ")
    assert proposal.test_failures == ()


def test_a_change_that_breaks_a_rule_test_case_is_invalid_and_names_the_case(
    service: ProposalService, rules_dir: Path
) -> None:
    text = (rules_dir / "strategies.pl").read_text(encoding="utf-8")
    assert MARKET_MAKER_LIMIT_ONLY in text

    proposal = service.propose({"strategies.pl": text.replace(MARKET_MAKER_LIMIT_ONLY, "")}, "alice", "")

    assert proposal.status == "invalid"
    assert proposal.check_errors == ()
    assert proposal.test_failures == (
        "tests/strategies.yaml: market making quotes with limit orders only: "
        "expected deny L5.strategy_order_type_mismatch, got admit",
    )


def test_a_broken_test_case_file_makes_the_proposal_invalid_with_its_location(
    service: ProposalService, rules_dir: Path
) -> None:
    text = (rules_dir / "tests" / "policy.yaml").read_text(encoding="utf-8")

    tabbed_line = len(text.splitlines()) + 3  # after the blank line and the case's first line

    proposal = service.propose({"tests/policy.yaml": text + "\n- name: tabbed\n\texpect: {}\n"}, "alice", "")

    assert proposal.status == "invalid"
    (error,) = proposal.check_errors
    assert error.startswith(f"tests/policy.yaml:{tabbed_line}:1: not valid YAML")


def test_a_rule_that_can_never_fire_is_a_warning_not_a_reason_to_refuse(
    service: ProposalService, rules_dir: Path
) -> None:
    text = (rules_dir / "policy.mg").read_text(encoding="utf-8")

    proposal = service.propose({"policy.mg": text + "\nnever(X) :- nothing_provides_this(X).\n"}, "alice", "")

    assert proposal.status == "pending"
    (warning,) = proposal.warnings
    assert warning.startswith(f"policy.mg:{len(text.splitlines()) + 2}:13: rule never can never fire")


def test_a_new_test_case_file_can_be_proposed(service: ProposalService, rules_dir: Path) -> None:
    case = (
        "- name: a restricted symbol cannot be sold short either\n"
        '  intent: {symbol: "LUNA/USDT:USDT", side: sell, notional: 500, stop_loss: 0.51}\n'
        "  context:\n"
        '    market: {symbol: "LUNA/USDT:USDT", mark_price: 0.5, atr: 0.002}\n'
        "  expect: {verdict: deny, reasons: [L7.restricted_symbol]}\n"
    )

    proposal = service.propose({"tests/restricted.yaml": case}, "alice", "one more case")

    assert proposal.status == "pending", proposal.test_failures
    assert proposal.ruleset_hash == proposal.base_hash  # the cases are not part of the rule set's identity
    assert proposal.diff.startswith("--- a/tests/restricted.yaml\n+++ b/tests/restricted.yaml\n")


def test_the_proposer_cannot_approve_their_own_proposal(service: ProposalService, rules_dir: Path) -> None:
    proposal = service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "alice", "")
    before = contents(rules_dir)

    with pytest.raises(FourEyesError, match="alice proposed it"):
        service.approve(proposal.id, " Alice ")

    assert contents(rules_dir) == before
    assert service.get(proposal.id) == proposal


def test_approval_by_another_risk_officer_activates_the_files_and_logs_the_change(
    tmp_path: Path, rules_dir: Path
) -> None:
    log_path = tmp_path / "log.sqlite3"
    new_policy, new_limits = with_comment(rules_dir, "policy.mg"), with_comment(rules_dir, "limits.toml")
    with ProofLog.open(log_path) as log:
        service = ProposalService(rules_dir, tmp_path / "state.sqlite3", log)
        proposal = service.propose({"policy.mg": new_policy, "limits.toml": new_limits}, "alice", "comments")

        approved = service.approve(proposal.id, "bob")

    assert (rules_dir / "policy.mg").read_text(encoding="utf-8") == new_policy
    assert (rules_dir / "limits.toml").read_text(encoding="utf-8") == new_limits
    assert combined_hash(file_hashes(rules_dir)) == proposal.ruleset_hash == service.current().ruleset_hash
    assert (approved.status, approved.approved_by) == ("approved", "bob")
    assert approved.decided_at is not None and approved.decided_at >= approved.created_at
    assert service.get(proposal.id) == approved
    assert list(rules_dir.glob(".*.tmp")) == []
    report = verify_file(log_path)
    assert report.ok and report.records == 1, report.failure
    with ProofLog.open(log_path) as log:
        (stored,) = list(log.store.records())
    envelope = json.loads(stored.canonical)
    assert envelope["kind"] == "rule_change"
    assert envelope["record"] == {
        "accepted": True,
        "proposal_id": proposal.id,
        "proposed_by": "alice",
        "approved_by": "bob",
        "description": "comments",
        "previous_hash": proposal.base_hash,
        "ruleset_hash": proposal.ruleset_hash,
        "active_hash": proposal.ruleset_hash,
        "files_changed": ["limits.toml", "policy.mg"],
        "diff": proposal.diff,
        "error": "",
        "source": "proposal",
    }


def test_a_proposal_cannot_be_approved_twice(service: ProposalService, rules_dir: Path) -> None:
    proposal = service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "alice", "")
    service.approve(proposal.id, "bob")

    with pytest.raises(ProposalStateError, match=r"already approved \(by bob"):
        service.approve(proposal.id, "carol")


def test_an_invalid_proposal_can_never_be_approved(service: ProposalService, rules_dir: Path) -> None:
    proposal = service.propose({"strategies.pl": "precondition(foo, bar\n"}, "alice", "")
    before = contents(rules_dir)

    with pytest.raises(ProposalStateError, match="is invalid, not pending"):
        service.approve(proposal.id, "bob")

    assert contents(rules_dir) == before


def test_two_racing_approvals_activate_the_proposal_once(service: ProposalService, rules_dir: Path) -> None:
    proposal = service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "alice", "")

    def approve(approver: str) -> str:
        try:
            return service.approve(proposal.id, approver).approved_by or ""
        except ProposalStateError:
            return "refused"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(approve, ["bob", "carol"]))

    assert sorted(outcomes) in (["bob", "refused"], ["carol", "refused"])
    stored = service.get(proposal.id)
    assert stored is not None and stored.approved_by in outcomes
    assert service.current().ruleset_hash == proposal.ruleset_hash


def test_a_proposal_made_before_someone_changed_the_rules_is_stale(service: ProposalService, rules_dir: Path) -> None:
    proposal = service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "alice", "")
    (rules_dir / "expert.clp").write_text(with_comment(rules_dir, "expert.clp", "edited meanwhile"), encoding="utf-8")
    before = contents(rules_dir)

    with pytest.raises(StaleProposalError, match=f"made against rule set {proposal.base_hash[:12]}"):
        service.approve(proposal.id, "bob")

    assert contents(rules_dir) == before
    assert service.get(proposal.id) == proposal


def test_a_proposal_is_stale_once_another_approved_change_rewrote_the_same_test_file(
    service: ProposalService, rules_dir: Path
) -> None:
    cases = (rules_dir / "tests" / "policy.yaml").read_text(encoding="utf-8")
    first = service.propose({"tests/policy.yaml": cases + "\n# first\n"}, "alice", "")
    second = service.propose({"tests/policy.yaml": cases + "\n# second\n"}, "carol", "")
    service.approve(first.id, "bob")

    with pytest.raises(StaleProposalError, match=r"tests/policy\.yaml changed since it was proposed"):
        service.approve(second.id, "bob")

    assert (rules_dir / "tests" / "policy.yaml").read_text(encoding="utf-8").endswith("# first\n")


@pytest.mark.parametrize("failing_calls", ["the second only", "the second and every later one"])
def test_a_failure_while_activating_leaves_the_original_files_byte_identical(
    tmp_path: Path, rules_dir: Path, monkeypatch: pytest.MonkeyPatch, failing_calls: str
) -> None:
    log_path = tmp_path / "log.sqlite3"
    with ProofLog.open(log_path) as log:
        service = ProposalService(rules_dir, tmp_path / "state.sqlite3", log)
        files = {name: with_comment(rules_dir, name) for name in ("expert.clp", "policy.mg")}
        proposal = service.propose(files, "alice", "")
        before = contents(rules_dir)
        real_replace = os.replace
        calls = 0

        def replace_failing(source: Any, target: Any) -> None:
            nonlocal calls
            calls += 1
            if calls == 2 or (calls > 2 and failing_calls != "the second only"):
                raise OSError(28, "No space left on device", str(target))
            real_replace(source, target)

        monkeypatch.setattr(os, "replace", replace_failing)

        with pytest.raises(ProposalError, match=r"No space left on device.*previous rule files are back"):
            service.approve(proposal.id, "bob")

        assert log.size == 0
    monkeypatch.undo()
    assert contents(rules_dir) == before
    assert service.get(proposal.id) == proposal
    assert service.current().ruleset_hash == proposal.base_hash


def test_a_proof_log_that_cannot_record_the_change_leaves_the_original_files(tmp_path: Path, rules_dir: Path) -> None:
    class FullLog:
        def append(self, kind: RecordKind, record: JsonObject) -> int:
            raise StoreError("the proof log's disk is full")

    service = ProposalService(rules_dir, tmp_path / "state.sqlite3", FullLog())
    proposal = service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "alice", "")
    before = contents(rules_dir)

    with pytest.raises(StoreError):
        service.approve(proposal.id, "bob")

    assert contents(rules_dir) == before
    assert service.get(proposal.id) == proposal


def test_every_rule_set_active_or_proposed_has_a_snapshot_under_its_hash(
    service: ProposalService, rules_dir: Path
) -> None:
    original = service.current()
    new_policy = with_comment(rules_dir, "policy.mg")
    proposal = service.propose({"policy.mg": new_policy}, "alice", "")
    service.approve(proposal.id, "bob")

    proposed = service.snapshot(proposal.ruleset_hash)

    assert original.ruleset_hash == proposal.base_hash
    assert original.files["policy.mg"] != new_policy
    assert service.snapshot(original.ruleset_hash) == original
    assert proposed is not None and proposed == service.current()
    assert proposed.files["policy.mg"] == new_policy
    assert set(proposed.files) == set(proposed.file_hashes) == set(RULE_FILES.values())
    assert combined_hash(proposed.file_hashes) == proposed.ruleset_hash
    assert service.snapshot("0" * 64) is None


def test_an_invalid_proposals_rule_set_is_kept_too(service: ProposalService) -> None:
    proposal = service.propose({"policy.mg": "deny(I, R) :- intent(I, _, _, _).\n"}, "alice", "")

    snapshot = service.snapshot(proposal.ruleset_hash)

    assert snapshot is not None and snapshot.files["policy.mg"] == "deny(I, R) :- intent(I, _, _, _).\n"


def test_proposals_are_listed_newest_first_and_by_status(service: ProposalService, rules_dir: Path) -> None:
    first = service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "alice", "")
    second = service.propose({"strategies.pl": "precondition(foo, bar\n"}, "alice", "")
    third = service.propose({"expert.clp": with_comment(rules_dir, "expert.clp")}, "alice", "")

    assert [proposal.id for proposal in service.list()] == [third.id, second.id, first.id]
    assert [proposal.id for proposal in service.list("pending")] == [third.id, first.id]
    assert service.list("approved") == []
    with pytest.raises(ProposalInputError, match="status: 'rejected' is not one of"):
        service.list("rejected")


def test_an_unknown_proposal_is_absent_and_cannot_be_approved(service: ProposalService) -> None:
    assert service.get("no-such-id") is None
    with pytest.raises(ProposalNotFoundError, match="no-such-id"):
        service.approve("no-such-id", "bob")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "at least one file"),
        ({"rules.py": "x"}, r"files\['rules.py'\]: not a rule file"),
        ({"../x": "x"}, r"files\['../x'\]: not a rule file"),
        ({"tests/../policy.mg": "x"}, "not a rule file"),
        ({"/etc/passwd": "x"}, "not a rule file"),
        ({"tests/policy.yml": "x"}, "not a rule file"),
        ({"policy.mg": b"bytes"}, "expected the file's full content as text"),
        ({"policy.mg": "x" * 1_000_001}, "1000001 bytes, over the limit"),
        ({"policy.mg": "\ud800"}, "not valid UTF-8"),
    ],
)
def test_a_malformed_proposal_is_refused_before_anything_is_checked(
    service: ProposalService, rules_dir: Path, files: dict[str, Any], message: str
) -> None:
    before = contents(rules_dir)

    with pytest.raises(ProposalInputError, match=message):
        service.propose(files, "alice", "")

    assert service.list() == []
    assert contents(rules_dir) == before


def test_a_proposal_needs_a_named_proposer(service: ProposalService, rules_dir: Path) -> None:
    with pytest.raises(ProposalInputError, match="proposed_by: expected the risk officer's name"):
        service.propose({"policy.mg": with_comment(rules_dir, "policy.mg")}, "  ", "")


def test_a_proposal_that_changes_nothing_is_refused(service: ProposalService, rules_dir: Path) -> None:
    same = (rules_dir / "policy.mg").read_text(encoding="utf-8")

    with pytest.raises(ProposalInputError, match="changes nothing"):
        service.propose({"policy.mg": same}, "alice", "")


@pytest.mark.parametrize(
    ("directive", "error"),
    [
        (":- halt.", "directives (:- Goal) are not allowed"),
        (":- abolish(cryptoscalp_bridge:decide/4).", None),  # would cut the active guard off from Prolog in-process
    ],
)
def test_a_prolog_file_that_attacks_its_host_fails_in_the_check_and_the_active_engine_keeps_answering(
    service: ProposalService, rules_dir: Path, directive: str, error: str | None
) -> None:
    active = PrologEngine(rules_dir / "strategies.pl")
    intent = Intent(
        ts=0,
        symbol="BTC/USDT:USDT",
        side=Side.BUY,
        strategy_id="market_making",
        notional=600.0,
        order_type=OrderType.MARKET,
    )

    proposal = service.propose(
        {"strategies.pl": (rules_dir / "strategies.pl").read_text(encoding="utf-8") + f"\n{directive}\n"}, "alice", ""
    )

    assert proposal.status == "invalid"
    if error is not None:
        assert error in proposal.check_errors[0]
    assert active.evaluate(intent, default_context(), 0.01).denials == ("L5.strategy_order_type_mismatch",)


def test_a_rule_file_that_loops_when_loaded_fails_the_check_at_its_time_limit(tmp_path: Path, rules_dir: Path) -> None:
    service = ProposalService(rules_dir, tmp_path / "state.sqlite3", None, validation_timeout_s=1.0)
    text = (rules_dir / "expert.clp").read_text(encoding="utf-8")
    # CLIPS evaluates a defglobal's value while building it, and a loop is no call the check refuses
    looping = "\n(deffunction spin () (while TRUE do))\n(defglobal ?*spin* = (spin))\n"

    proposal = service.propose({"expert.clp": text + looping}, "alice", "")

    assert proposal.status == "invalid"
    assert proposal.check_errors == (
        "the rule check did not finish within 1 s: does a rule file loop or block when loaded?",
    )


def test_the_proof_log_cannot_share_the_proposals_database(tmp_path: Path, rules_dir: Path) -> None:
    with ProofLog.open(tmp_path / "state.sqlite3") as log, pytest.raises(ProposalError, match="a database file of"):
        ProposalService(rules_dir, tmp_path / "state.sqlite3", log)


def test_proposals_live_beside_other_components_tables_in_a_wal_database(tmp_path: Path, rules_dir: Path) -> None:
    import sqlite3

    state_db = tmp_path / "state.sqlite3"
    other = sqlite3.connect(state_db)
    other.execute("CREATE TABLE api_sessions (token TEXT PRIMARY KEY)")
    other.commit()
    other.close()

    ProposalService(rules_dir, state_db, None)

    other = sqlite3.connect(state_db)
    tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    (mode,) = other.execute("PRAGMA journal_mode").fetchone()
    other.close()
    assert {"api_sessions", "rule_proposals", "ruleset_snapshots"} <= tables
    assert mode == "wal"
