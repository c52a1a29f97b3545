"""Errors of the Z3 limits engine.

A bad `limits.toml` raises `LimitsFileError` as `file:line:col: message`; the caller keeps its last good
rule set. Evaluation errors (`LimitsContextError`, `LimitsSolverError`) mean the engine cannot prove
anything about this decision: the guard must deny (fail closed), never admit.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import CryptoScalpError


@dataclass(frozen=True, slots=True)
class SourceLocation:
    path: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class LimitsError(CryptoScalpError):
    """Base of every error of the limits engine."""


class LimitsFileError(LimitsError):
    """`limits.toml` was rejected: syntax, unknown name or function, unit/type mistake, bad value."""

    def __init__(self, location: SourceLocation, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


class LimitsContextError(LimitsError):
    """A fact the vocabulary needs is missing or meaningless (NaN, a non-positive price, equity or ATR)."""


class LimitsSolverError(LimitsError):
    """Z3 timed out, answered `unknown`, or contradicted the engine's own bound: nothing is proven."""
