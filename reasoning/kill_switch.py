"""The kill switch as a file: the API (or an operator) engages it, the trading loop polls `state()` and halts.

A file, not a database row, because the loop must see it even when every database is unreachable, and because
it is the simplest thing a second process can watch. The file is JSON `{engaged, reason, by, at_ms, flatten}`,
replaced atomically (write a temporary file in the same directory, fsync, rename), so a reader sees the old state
or the new one, never half of one. No file means never engaged. A file that cannot be read or parsed reads as
engaged: the switch fails closed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class KillSwitchState:
    engaged: bool
    reason: str
    by: str  # who engaged or released it: a token's name and role, never the token
    at_ms: int
    flatten: bool  # close every position, not only stop opening new ones


class KillSwitch:
    def __init__(self, path: Path) -> None:
        self.path = path

    def engage(self, reason: str, by: str, flatten: bool = False) -> KillSwitchState:
        if not reason.strip():
            raise ValueError("a kill switch needs a reason")
        state = KillSwitchState(engaged=True, reason=reason, by=by, at_ms=_now_ms(), flatten=flatten)
        self._write(state)
        return state

    def release(self, by: str, reason: str = "released") -> KillSwitchState:
        state = KillSwitchState(engaged=False, reason=reason, by=by, at_ms=_now_ms(), flatten=False)
        self._write(state)
        return state

    def state(self) -> KillSwitchState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return KillSwitchState(engaged=False, reason="", by="", at_ms=0, flatten=False)
        except OSError as exc:
            return _unreadable(f"{self.path}: cannot read the kill switch file ({exc.strerror})")
        try:
            raw = json.loads(text)
            return KillSwitchState(
                engaged=_field(raw, "engaged", bool),
                reason=_field(raw, "reason", str),
                by=_field(raw, "by", str),
                at_ms=_field(raw, "at_ms", int),
                flatten=_field(raw, "flatten", bool),
            )
        except (ValueError, TypeError) as exc:
            return _unreadable(f"{self.path}: not a kill switch file ({exc})")

    def _write(self, state: KillSwitchState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            with temporary.open("w", encoding="utf-8") as handle:
                json.dump(asdict(state), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(self.path.parent)


def _field(raw: object, name: str, kind: type[_T]) -> _T:
    if not isinstance(raw, dict):
        raise TypeError("expected a JSON object")
    value = raw.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"field {name!r} should be {kind.__name__}, found {value!r}")
    return value


def _unreadable(problem: str) -> KillSwitchState:
    return KillSwitchState(
        engaged=True, reason=f"fail closed: {problem}", by="kill switch", at_ms=_now_ms(), flatten=False
    )


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the directory's own blocks)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
