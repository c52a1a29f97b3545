"""Four-eyes changes to the rule set: one risk officer proposes, a different one approves.

A proposal is the full new content of the files it changes — `policy.mg`, `expert.clp`,
`strategies.pl`, `limits.toml`, or rule test cases `tests/<name>.yaml`. It is checked as
`cryptoscalp rules check` and `rules test` check a directory, on a copy of the active rules with
the change applied: one that fails is stored `invalid` with every error and failing case and can
never be approved; one that passes is `pending`. Approval by another risk officer re-checks it,
writes the files into the rules directory (each atomically; when one fails, those already replaced
are put back, so the last good set stays active), records the new set's snapshot and appends a
`rule_change` record to the proof log. A running loop's `RuleWatcher` then hot-reloads it.

Every rule set ever active or proposed is kept as a snapshot under its `ruleset_hash`.

The check runs in a child process because loading a rule file executes it: a Prolog directive
(`:- halt.`, `:- abolish(...)`, a loop) or a CLIPS `defglobal` initialiser runs at load time, and
every `PrologEngine` of a process shares one worker thread with the active guard. In the service's
process an unapproved proposal could end it, delete the bridge the active Prolog program is called
through, or hang the worker so that every decision times out; in a child it only fails its own
check. The child gets no credentials from the environment and a time limit. It is not a sandbox:
a rule file can still run commands when loaded, so the approver must read the diff.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from core.errors import CryptoScalpError
from reasoning.prooflog.canonical import JsonObject
from reasoning.prooflog.records import RecordKind
from reasoning.rules import RULE_FILES, RuleSetError, combined_hash, unified_diff, unreachable_rules

if TYPE_CHECKING:
    from reasoning.rule_tests import CaseOutcome

ProposalStatus = Literal["invalid", "pending", "approved"]
STATUSES: tuple[ProposalStatus, ...] = ("invalid", "pending", "approved")
MAX_FILE_BYTES = 1_000_000  # the shipped rule files are 2–30 kB
MAX_FILES = 32
MAX_PERSON_CHARS = 200
MAX_DESCRIPTION_CHARS = 10_000
# a check takes ~1 s; the Prolog engine itself gives up loading a file after 10 s
DEFAULT_VALIDATION_TIMEOUT_S = 60.0

_TEST_FILE = re.compile(r"tests/[A-Za-z0-9_-]+\.yaml")
_PROJECT_ROOT = Path(__file__).resolve().parents[1]
# what the child needs to find Python, SWI-Prolog and the project; nothing else (API keys stay here)
_CHILD_ENVIRONMENT = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "TZ",
    "LD_LIBRARY_PATH",
    "SWI_HOME_DIR",
    "LIBSWIPL_PATH",
    "VIRTUAL_ENV",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_proposals (
    id               TEXT PRIMARY KEY,
    status           TEXT NOT NULL CHECK (status IN ('invalid', 'pending', 'approved')),
    proposed_by      TEXT NOT NULL,
    approved_by      TEXT,
    description      TEXT NOT NULL,
    base_hash        TEXT NOT NULL,  -- ruleset_hash of the active set the proposal was made against
    ruleset_hash     TEXT NOT NULL,  -- ruleset_hash of the set it would activate
    files            TEXT NOT NULL,  -- JSON: file name -> full new content, changed files only
    base_file_hashes TEXT NOT NULL,  -- JSON: file name -> SHA-256 before the change (null: a new file)
    diff             TEXT NOT NULL,
    check_errors     TEXT NOT NULL,  -- JSON lists of strings
    warnings         TEXT NOT NULL,
    test_failures    TEXT NOT NULL,
    created_at       TEXT NOT NULL,  -- UTC, e.g. 2025-06-01T12:00:00.123456Z
    decided_at       TEXT
);
CREATE INDEX IF NOT EXISTS rule_proposals_by_status ON rule_proposals (status, created_at);
CREATE TABLE IF NOT EXISTS ruleset_snapshots (
    ruleset_hash TEXT PRIMARY KEY,
    files        TEXT NOT NULL,  -- JSON: rule file name -> content
    file_hashes  TEXT NOT NULL,  -- JSON: rule file name -> SHA-256 of its bytes
    recorded_at  TEXT NOT NULL
);
"""


class ProposalError(CryptoScalpError):
    """A rule-change proposal could not be made or decided; the message says which and why."""


class ProposalInputError(ProposalError):
    """The proposal itself is malformed: unknown file, oversized content, no change, no name."""


class ProposalNotFoundError(ProposalError):
    """No proposal has that id."""


class FourEyesError(ProposalError):
    """The risk officer who proposed a change tried to approve it."""


class ProposalStateError(ProposalError):
    """The proposal is not pending (invalid, or already approved)."""


class StaleProposalError(ProposalError):
    """The active rules changed since the proposal was made; it must be proposed again."""


class ProposalValidationError(ProposalError):
    """A pending proposal no longer passes the checks when approved."""


@dataclass(frozen=True, slots=True)
class Proposal:
    id: str
    status: ProposalStatus
    proposed_by: str
    approved_by: str | None
    description: str
    base_hash: str
    ruleset_hash: str
    files: dict[str, str]  # the files it changes: name -> full new content
    diff: str  # unified diff of the changed files against the set it was proposed on
    check_errors: tuple[str, ...]  # `file:line:col: message`, as `rules check` reports them
    test_failures: tuple[str, ...]  # failing cases and uncovered reason codes, as `rules test` reports them
    created_at: str
    decided_at: str | None
    warnings: tuple[str, ...] = ()  # rules that can never fire; they do not make a proposal invalid
    base_file_hashes: dict[str, str | None] = field(default_factory=dict)  # name -> SHA-256 before (None: new)

    @property
    def files_changed(self) -> tuple[str, ...]:
        return tuple(sorted(self.files))


@dataclass(frozen=True, slots=True)
class RuleSetSnapshot:
    ruleset_hash: str
    files: dict[str, str]  # rule file name -> content
    file_hashes: dict[str, str]  # rule file name -> SHA-256 of its bytes


@dataclass(frozen=True, slots=True)
class Validation:
    check_errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    test_failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.check_errors and not self.test_failures


class RuleChangeLog(Protocol):
    """Where approvals are recorded: a `ProofLog`, or anything with its `append` (a writer opened per call)."""

    def append(self, kind: RecordKind, record: JsonObject) -> int: ...


class ProposalService:
    """Proposals and snapshots in the SQLite file `state_db`; the active rules in `rules_dir`."""

    def __init__(
        self,
        rules_dir: Path,
        state_db: Path,
        proof_log: RuleChangeLog | None,
        *,
        validation_timeout_s: float = DEFAULT_VALIDATION_TIMEOUT_S,
    ) -> None:
        log_path = getattr(getattr(proof_log, "store", None), "path", None)
        if log_path is not None and Path(log_path).resolve() == state_db.resolve():
            # approval appends to the log while it holds this file's write lock: a second writer would wait forever
            raise ProposalError(f"{state_db}: the proof log needs a database file of its own, not the proposals' one")
        self.rules_dir = rules_dir
        self.state_db = state_db
        self.proof_log = proof_log
        self.validation_timeout_s = validation_timeout_s
        state_db.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def propose(self, files: Mapping[str, str], proposed_by: str, description: str) -> Proposal:
        """Check the change on a copy of the active rules and store it, `pending` or `invalid`."""
        proposer = _person(proposed_by, "proposed_by")
        new_contents = _proposed_files(files)
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS:
            raise ProposalInputError(f"description: expected text of at most {MAX_DESCRIPTION_CHARS} characters")
        base = read_rules_tree(self.rules_dir)
        changed = {name: text for name, text in new_contents.items() if base.get(name) != text.encode()}
        if not changed:
            raise ProposalInputError(
                f"the proposal changes nothing: {', '.join(sorted(new_contents))} equal the active files in "
                f"{self.rules_dir}"
            )
        proposed = base | {name: text.encode() for name, text in changed.items()}
        validation = self._validate(proposed)
        names = tuple(sorted(changed))
        proposal = Proposal(
            id=secrets.token_urlsafe(12),
            status="pending" if validation.passed else "invalid",
            proposed_by=proposer,
            approved_by=None,
            description=description,
            base_hash=ruleset_hash_of(base),
            ruleset_hash=ruleset_hash_of(proposed),
            files=dict(sorted(changed.items())),
            diff=unified_diff(_texts(base, names), _texts(proposed, names), names),
            check_errors=validation.check_errors,
            test_failures=validation.test_failures,
            created_at=_now(),
            decided_at=None,
            warnings=validation.warnings,
            base_file_hashes={name: _sha256(base[name]) if name in base else None for name in names},
        )
        with self._connect() as db, _transaction(db):
            _record_snapshot(db, base)
            _record_snapshot(db, proposed)
            _insert_proposal(db, proposal)
        return proposal

    def get(self, proposal_id: str) -> Proposal | None:
        with self._connect() as db:
            return _select_proposal(db, proposal_id)

    def list(self, status: str | None = None) -> list[Proposal]:
        """Proposals, newest first; only those with `status` when given."""
        if status is not None and status not in STATUSES:
            raise ProposalInputError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        query = "SELECT * FROM rule_proposals"
        parameters: tuple[str, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            parameters = (status,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY created_at DESC, rowid DESC", parameters).fetchall()
        return [_proposal_of(row) for row in rows]

    def approve(self, proposal_id: str, approved_by: str) -> Proposal:
        """Activate a pending proposal: a second risk officer's decision; raises unless it is safe to."""
        approver = _person(approved_by, "approved_by")
        proposal = self._require(proposal_id)
        _check_decidable(proposal, approver)
        active = read_rules_tree(self.rules_dir)
        self._check_not_stale(proposal, active)
        changes = {name: text.encode() for name, text in proposal.files.items()}
        # defence in depth: the checks may have changed (new test cases) since it was proposed
        validation = self._validate(active | changes)
        if not validation.passed:
            problems = "; ".join(validation.check_errors + validation.test_failures)
            raise ProposalValidationError(f"proposal {proposal.id} no longer passes the rule checks: {problems}")
        approved = replace(proposal, status="approved", approved_by=approver, decided_at=_now())
        originals: dict[str, bytes | None] = {}
        with self._connect() as db:
            try:
                with _transaction(db):
                    # a racing approval may have won while this one was checking
                    _check_decidable(self._require(proposal_id, db), approver)
                    if read_rules_tree(self.rules_dir) != active:
                        raise StaleProposalError(
                            f"the rules in {self.rules_dir} changed while proposal {proposal.id} was being "
                            "checked; approve it again"
                        )
                    _record_snapshot(db, active | changes)
                    db.execute(
                        "UPDATE rule_proposals SET status = 'approved', approved_by = ?, decided_at = ? WHERE id = ?",
                        (approver, approved.decided_at, proposal.id),
                    )
                    originals = self._activate(proposal.id, changes)
                    if self.proof_log is not None:
                        self.proof_log.append(RecordKind.RULE_CHANGE, _rule_change_record(approved))
            except BaseException:
                restore_files(self.rules_dir, originals)  # logging or committing failed: the last good set again
                raise
        return approved

    def current(self) -> RuleSetSnapshot:
        """The active rule set in `rules_dir`, recorded as a snapshot if it is new."""
        active = read_rules_tree(self.rules_dir)
        with self._connect() as db:
            _record_snapshot(db, active)
        return snapshot_of(active)

    def snapshot(self, ruleset_hash: str) -> RuleSetSnapshot | None:
        """Any rule set ever active or proposed, by its hash."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM ruleset_snapshots WHERE ruleset_hash = ?", (ruleset_hash,)).fetchone()
        if row is None:
            return None
        return RuleSetSnapshot(row["ruleset_hash"], json.loads(row["files"]), json.loads(row["file_hashes"]))

    def _activate(self, proposal_id: str, changes: dict[str, bytes]) -> dict[str, bytes | None]:
        try:
            return replace_files(self.rules_dir, changes)
        except OSError as exc:
            raise ProposalError(
                f"proposal {proposal_id}: writing {exc.filename or self.rules_dir} failed ({exc.strerror or exc}); "
                "the previous rule files are back in place"
            ) from exc

    def _require(self, proposal_id: str, db: sqlite3.Connection | None = None) -> Proposal:
        found = self.get(proposal_id) if db is None else _select_proposal(db, proposal_id)
        if found is None:
            raise ProposalNotFoundError(f"no rule-change proposal {proposal_id!r} in {self.state_db}")
        return found

    def _check_not_stale(self, proposal: Proposal, active: dict[str, bytes]) -> None:
        active_hash = ruleset_hash_of(active)
        if active_hash != proposal.base_hash:
            raise StaleProposalError(
                f"proposal {proposal.id} was made against rule set {proposal.base_hash[:12]}, but {self.rules_dir} "
                f"now holds {active_hash[:12]}; propose the change again on the current rules"
            )
        for name, before in proposal.base_file_hashes.items():
            now = _sha256(active[name]) if name in active else None
            if now != before:
                raise StaleProposalError(
                    f"proposal {proposal.id}: {self.rules_dir / name} changed since it was proposed; "
                    "propose the change again on the current file"
                )

    def _validate(self, tree: dict[str, bytes]) -> Validation:
        with tempfile.TemporaryDirectory(prefix="cryptoscalp-proposal-") as scratch:
            directory = Path(scratch) / "rules"
            write_rules_tree(directory, tree)
            return validate_in_child(directory, self.validation_timeout_s)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # one connection per call: the service is called from the API's threads, sqlite3 objects are per thread
        db = sqlite3.connect(self.state_db, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()


def read_rules_tree(directory: Path) -> dict[str, bytes]:
    """The four rule files and `tests/*.yaml` of `directory`, by name (`tests/<file>` for the cases)."""
    tree: dict[str, bytes] = {}
    for name in RULE_FILES.values():
        try:
            tree[name] = (directory / name).read_bytes()
        except OSError as exc:
            raise ProposalError(
                f"{directory / name}: cannot read the active rule file ({exc.strerror}); "
                f"the rules directory must hold {', '.join(RULE_FILES.values())}"
            ) from exc
    for path in sorted((directory / "tests").glob("*.yaml")):
        tree[f"tests/{path.name}"] = path.read_bytes()
    return tree


def write_rules_tree(directory: Path, tree: Mapping[str, bytes]) -> None:
    (directory / "tests").mkdir(parents=True)
    for name, content in tree.items():
        (directory / name).write_bytes(content)


def ruleset_hash_of(tree: Mapping[str, bytes]) -> str:
    return combined_hash(_rule_file_hashes(tree))


def snapshot_of(tree: Mapping[str, bytes]) -> RuleSetSnapshot:
    files = {name: tree[name].decode("utf-8", errors="replace") for name in RULE_FILES.values()}
    return RuleSetSnapshot(ruleset_hash_of(tree), files, _rule_file_hashes(tree))


def replace_files(directory: Path, contents: Mapping[str, bytes]) -> dict[str, bytes | None]:
    """Write every file by `os.replace` of a temporary file beside it; returns the previous contents
    (None: the file is new). When any write fails, the files already replaced are restored first."""
    originals = {name: _read_if_present(directory / name) for name in contents}
    staged: dict[str, Path] = {}
    replaced: dict[str, bytes | None] = {}
    try:
        for name, content in contents.items():
            (directory / name).parent.mkdir(exist_ok=True)  # the first case file of a set without tests/
            staged[name] = _stage(directory / name, content)
        for name, temporary in staged.items():
            os.replace(temporary, directory / name)
            replaced[name] = originals[name]
    except BaseException:
        for name, temporary in staged.items():
            if name not in replaced:
                temporary.unlink(missing_ok=True)
        restore_files(directory, replaced)
        raise
    _sync_directories(directory, contents)
    return originals


def restore_files(directory: Path, originals: Mapping[str, bytes | None]) -> None:
    """Put back what `replace_files` returned (None: remove the file it created)."""
    for name, content in originals.items():
        path = directory / name
        if content is None:
            path.unlink(missing_ok=True)
            continue
        temporary = _stage(path, content)
        try:
            os.replace(temporary, path)
        except OSError:
            temporary.unlink(missing_ok=True)
            path.write_bytes(content)  # not atomic, but the last good content back is what matters now
    _sync_directories(directory, originals)


def validate_in_child(directory: Path, timeout_s: float) -> Validation:
    """`check_rule_directory(directory)` in a fresh Python process (see the module docstring for why)."""
    command = [sys.executable, "-m", "reasoning.proposals", str(directory)]
    with subprocess.Popen(
        command,
        cwd=directory.parent,
        env=_child_environment(),
        stdin=subprocess.DEVNULL,  # SWI-Prolog's debugger would wait for an answer on it
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as child:
        try:
            report, errors = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)  # with whatever the rule files started
            child.communicate()
            return Validation(
                check_errors=(
                    f"the rule check did not finish within {timeout_s:g} s: does a rule file loop or block "
                    "when loaded?",
                )
            )
    try:
        return _validation_from_json(report) if child.returncode == 0 else _no_report(child.returncode, errors)
    except (ValueError, KeyError, TypeError):
        return _no_report(child.returncode, errors)


def check_rule_directory(directory: Path) -> Validation:
    """What `rules check` and `rules test` report for `directory`, checked in this process.

    Loading runs code in the rule files in this process's engines; the service calls it in a child."""
    from reasoning.rule_tests import load_cases, run_rule_tests
    from reasoning.rules import load_ruleset

    try:
        ruleset = load_ruleset(directory)
    except RuleSetError as exc:
        return Validation(check_errors=(_relative(str(exc), directory),))
    try:
        warnings = tuple(_relative(warning, directory) for warning in unreachable_rules(ruleset))
        try:
            cases = load_cases(directory)
        except RuleSetError as exc:
            return Validation(check_errors=(_relative(str(exc), directory),), warnings=warnings)
        report = run_rule_tests(ruleset, cases)
    finally:
        ruleset.close()
    failures = [_failure(outcome, directory) for outcome in report.outcomes if not outcome.passed]
    failures += [f"uncovered: no case in tests/ expects reason code {code}" for code in report.uncovered]
    return Validation(warnings=warnings, test_failures=tuple(failures))


def _failure(outcome: CaseOutcome, directory: Path) -> str:
    case, decision = outcome.case, outcome.decision
    expected = _verdict_text(case.verdict.value, case.reasons, case.max_qty)
    got = _verdict_text(
        decision.verdict.value, decision.reasons, decision.max_qty if case.max_qty is not None else None
    )
    return f"{case.file.relative_to(directory)}: {case.name}: expected {expected}, got {got}"


def _verdict_text(verdict: str, reasons: frozenset[str] | tuple[str, ...], max_qty: float | None) -> str:
    text = " ".join([verdict, ", ".join(sorted(reasons))]).strip()
    return text if max_qty is None else f"{text} (max_qty {max_qty:g})"


def _relative(message: str, directory: Path) -> str:
    """The message with the scratch copy's path cut, so it names `policy.mg:3:7`, not `/tmp/…/policy.mg:3:7`."""
    for prefix in {f"{directory.resolve()}{os.sep}", f"{directory}{os.sep}"}:
        message = message.replace(prefix, "")
    return message


def _child_environment() -> dict[str, str]:
    environment = {name: os.environ[name] for name in _CHILD_ENVIRONMENT if name in os.environ}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(_PROJECT_ROOT), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    )
    return environment


def _validation_from_json(report: bytes) -> Validation:
    values = json.loads(report)
    lists = {key: values[key] for key in ("check_errors", "warnings", "test_failures")}
    if not all(isinstance(items, list) and all(isinstance(item, str) for item in items) for items in lists.values()):
        raise ValueError("the check's report is not lists of text")
    return Validation(*(tuple(lists[key]) for key in ("check_errors", "warnings", "test_failures")))


def _no_report(returncode: int, errors: bytes) -> Validation:
    lines = [line for line in errors.decode(errors="replace").splitlines() if line.strip()]
    last = f": {lines[-1].strip()[:300]}" if lines else ""
    return Validation(
        check_errors=(
            f"the rule check stopped without a report (exit status {returncode}{last}); does a rule file end "
            "the process when loaded (e.g. a Prolog `:- halt.` directive)?",
        )
    )


def _proposed_files(files: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(files, Mapping) or not files:
        raise ProposalInputError("files: a proposal changes at least one file (file name -> full new content)")
    if len(files) > MAX_FILES:
        raise ProposalInputError(f"files: {len(files)} files, at most {MAX_FILES} in one proposal")
    allowed = set(RULE_FILES.values())
    checked: dict[str, str] = {}
    for name, content in files.items():
        if not isinstance(name, str) or (name not in allowed and not _TEST_FILE.fullmatch(name)):
            raise ProposalInputError(
                f"files[{name!r}]: not a rule file; a proposal may change {', '.join(sorted(allowed))} "
                "or tests/<name>.yaml (letters, digits, _ and -)"
            )
        if not isinstance(content, str):
            raise ProposalInputError(f"files[{name!r}]: expected the file's full content as text")
        try:
            size = len(content.encode())
        except UnicodeEncodeError as exc:
            raise ProposalInputError(f"files[{name!r}]: not valid UTF-8 text ({exc.reason})") from exc
        if size > MAX_FILE_BYTES:
            raise ProposalInputError(f"files[{name!r}]: {size} bytes, over the limit of {MAX_FILE_BYTES} per file")
        checked[name] = content
    return checked


def _person(name: str, role: str) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_PERSON_CHARS:
        raise ProposalInputError(f"{role}: expected the risk officer's name (1 to {MAX_PERSON_CHARS} characters)")
    return name.strip()


def _check_decidable(proposal: Proposal, approver: str) -> None:
    if approver.casefold() == proposal.proposed_by.casefold():
        raise FourEyesError(
            f"proposal {proposal.id}: {proposal.proposed_by} proposed it and cannot approve it; "
            "another risk officer must"
        )
    if proposal.status == "approved":
        raise ProposalStateError(
            f"proposal {proposal.id} is already approved (by {proposal.approved_by} at {proposal.decided_at})"
        )
    if proposal.status != "pending":
        raise ProposalStateError(
            f"proposal {proposal.id} is {proposal.status}, not pending: it failed the rule checks; "
            "fix it and propose again"
        )


def _rule_change_record(proposal: Proposal) -> dict[str, Any]:
    return {
        "accepted": True,
        "proposal_id": proposal.id,
        "proposed_by": proposal.proposed_by,
        "approved_by": proposal.approved_by,
        "description": proposal.description,
        "previous_hash": proposal.base_hash,
        "ruleset_hash": proposal.ruleset_hash,
        "active_hash": proposal.ruleset_hash,
        "files_changed": list(proposal.files_changed),
        "diff": proposal.diff,
        "error": "",
        "source": "proposal",
    }


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE: takes the write lock first, so a racing approval waits and then sees this one's result."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _record_snapshot(db: sqlite3.Connection, tree: Mapping[str, bytes]) -> None:
    snapshot = snapshot_of(tree)
    db.execute(
        "INSERT OR IGNORE INTO ruleset_snapshots (ruleset_hash, files, file_hashes, recorded_at) VALUES (?, ?, ?, ?)",
        (snapshot.ruleset_hash, json.dumps(snapshot.files), json.dumps(snapshot.file_hashes), _now()),
    )


def _insert_proposal(db: sqlite3.Connection, proposal: Proposal) -> None:
    row = asdict(proposal)
    for key in ("files", "base_file_hashes", "check_errors", "warnings", "test_failures"):
        row[key] = json.dumps(row[key])
    columns = ", ".join(row)
    db.execute(f"INSERT INTO rule_proposals ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def _select_proposal(db: sqlite3.Connection, proposal_id: str) -> Proposal | None:
    row = db.execute("SELECT * FROM rule_proposals WHERE id = ?", (proposal_id,)).fetchone()
    return None if row is None else _proposal_of(row)


def _proposal_of(row: sqlite3.Row) -> Proposal:
    return Proposal(
        id=row["id"],
        status=cast(ProposalStatus, row["status"]),
        proposed_by=row["proposed_by"],
        approved_by=row["approved_by"],
        description=row["description"],
        base_hash=row["base_hash"],
        ruleset_hash=row["ruleset_hash"],
        files=json.loads(row["files"]),
        diff=row["diff"],
        check_errors=tuple(json.loads(row["check_errors"])),
        test_failures=tuple(json.loads(row["test_failures"])),
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        warnings=tuple(json.loads(row["warnings"])),
        base_file_hashes=json.loads(row["base_file_hashes"]),
    )


def _rule_file_hashes(tree: Mapping[str, bytes]) -> dict[str, str]:
    return {name: _sha256(tree[name]) for name in RULE_FILES.values()}


def _texts(tree: Mapping[str, bytes], names: tuple[str, ...]) -> dict[str, str]:
    return {name: tree[name].decode("utf-8", errors="replace") for name in names if name in tree}


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _read_if_present(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _stage(target: Path, content: bytes) -> Path:
    """`content` in a new temporary file beside `target` (same file system, so `os.replace` is atomic), synced,
    with `target`'s permissions; named `.<name>.<random>.tmp` so no rule loader or test glob picks it up."""
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        temporary.chmod(mode)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _sync_directories(directory: Path, names: Iterable[str]) -> None:
    """fsync the directories holding `names`, so the renames survive a power loss."""
    for parent in sorted({(directory / name).parent for name in names}):
        descriptor = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _child_main(arguments: list[str]) -> int:
    """`python -m reasoning.proposals DIRECTORY`: check it, print the `Validation` as JSON on stdout."""
    (directory,) = arguments
    report = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # what rule files print while loading stays out of the report
    validation = check_rule_directory(Path(directory))
    with report:
        json.dump(asdict(validation), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
