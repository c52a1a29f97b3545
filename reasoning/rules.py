"""The rule set in `rules/`: loading it into the four engines, identifying it, hot-reloading it.

A rule set is the four files risk officers edit — `policy.mg` (Datalog), `expert.clp`
(CLIPS), `strategies.pl` (Prolog), `limits.toml` (Z3) — identified by the SHA-256 of
their contents (`ruleset_hash`, over each file's own hash). Loading validates every
file; a bad one raises a `RuleSetError` whose message starts `file:line:col:`.

`RuleWatcher` checks the files at the loop's pace and swaps a changed, valid set into
the guard in one step; a bad set is refused and the last good one stays active. Each
reload, accepted or refused, is returned as a `RuleChange` for the proof log.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import CryptoScalpError
from reasoning.engine import Engine, close_engines
from reasoning.guard import Guard

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
RULE_FILES = {"datalog": "policy.mg", "clips": "expert.clp", "prolog": "strategies.pl", "z3": "limits.toml"}


class RuleSetError(CryptoScalpError):
    """A rule file is missing or invalid; the message names the file, line and column."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    directory: Path
    engines: tuple[Engine, ...]
    file_hashes: dict[str, str]  # file name → SHA-256 of its bytes
    ruleset_hash: str
    isolate_limits: bool = False
    texts: dict[str, str] = field(default_factory=dict)  # file name → contents as loaded (diffs of changes)

    def close(self) -> None:
        """Release what the engines hold outside this process (an isolated Z3 child)."""
        close_engines(self.engines)


@dataclass(frozen=True, slots=True)
class RuleChange:
    accepted: bool
    ruleset_hash: str  # the new set's hash (accepted) or the refused set's (refused)
    active_hash: str  # the set active after the change
    files_changed: tuple[str, ...]
    error: str = ""
    previous_hash: str = ""  # the set active before the change
    diff: str = ""  # unified diff of the changed files against the active set


def file_hashes(directory: Path) -> dict[str, str]:
    hashes = {}
    for file_name in RULE_FILES.values():
        path = directory / file_name
        if not path.is_file():
            raise RuleSetError(f"{path}:1:1: rule file missing (a rule set needs {', '.join(RULE_FILES.values())})")
        hashes[file_name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def combined_hash(hashes: dict[str, str]) -> str:
    lines = "".join(f"{name}:{digest}\n" for name, digest in sorted(hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def load_ruleset(directory: Path = RULES_DIR, *, isolate_limits: bool = False) -> RuleSet:
    """Validate and compile every rule file; raises `RuleSetError` naming the first bad one.
    `isolate_limits` runs the Z3 limits in a child process beside the other engines (the trading
    loop's setting; `RuleSet.close` stops it)."""
    from reasoning.expert import ClipsEngine
    from reasoning.limits import LimitsEngine
    from reasoning.policy import PolicyEngine
    from reasoning.strategy_rules import PrologEngine

    hashes = file_hashes(directory)
    try:
        engines: tuple[Engine, ...] = (
            PolicyEngine(directory / RULE_FILES["datalog"]),
            ClipsEngine(directory / RULE_FILES["clips"]),
            PrologEngine(directory / RULE_FILES["prolog"]),
            LimitsEngine(directory / RULE_FILES["z3"], isolated=isolate_limits),
        )
    except CryptoScalpError as exc:
        raise RuleSetError(str(exc)) from exc
    return RuleSet(directory, engines, hashes, combined_hash(hashes), isolate_limits, read_texts(directory))


def unreachable_rules(ruleset: RuleSet) -> list[str]:
    """Rules that can never fire, from the engines that can tell (`rules check` warns of them)."""
    warnings: list[str] = []
    for engine in ruleset.engines:
        unreachable = getattr(engine, "unreachable_rules", None)
        if callable(unreachable):
            warnings.extend(unreachable())
    return warnings


def read_texts(directory: Path) -> dict[str, str]:
    return {
        name: (directory / name).read_text(encoding="utf-8", errors="replace")
        for name in RULE_FILES.values()
        if (directory / name).is_file()
    }


def unified_diff(before: dict[str, str], after: dict[str, str], names: tuple[str, ...]) -> str:
    """One unified diff over the named files, `a/<name>` before and `b/<name>` after."""
    return "".join(
        "".join(
            difflib.unified_diff(
                before.get(name, "").splitlines(keepends=True),
                after.get(name, "").splitlines(keepends=True),
                fromfile=f"a/{name}",
                tofile=f"b/{name}",
            )
        )
        for name in names
    )


class RuleWatcher:
    """Hot reload: `poll()` between decisions swaps in a changed, valid rule set."""

    def __init__(self, guard: Guard, active: RuleSet) -> None:
        self.guard = guard
        self.active = active
        self._seen = active.file_hashes

    def poll(self) -> RuleChange | None:
        directory = self.active.directory
        try:
            hashes = file_hashes(directory)
        except RuleSetError as exc:
            return self._refuse(self._seen, str(exc))
        if hashes == self._seen:
            return None
        changed = tuple(sorted(name for name in hashes if hashes[name] != self._seen.get(name)))
        self._seen = hashes
        try:
            candidate = load_ruleset(directory, isolate_limits=self.active.isolate_limits)
        except RuleSetError as exc:
            return self._refuse(hashes, str(exc), changed)
        previous, self.active = self.active, candidate
        self.guard.replace_engines(candidate.engines, candidate.ruleset_hash)
        previous.close()
        diff = unified_diff(previous.texts, candidate.texts, changed)
        return RuleChange(
            True, candidate.ruleset_hash, candidate.ruleset_hash, changed, "", previous.ruleset_hash, diff
        )

    def _refuse(self, hashes: dict[str, str], error: str, changed: tuple[str, ...] = ()) -> RuleChange:
        active = self.active.ruleset_hash
        diff = unified_diff(self.active.texts, read_texts(self.active.directory), changed)
        return RuleChange(False, combined_hash(hashes), active, changed, error, active, diff)
