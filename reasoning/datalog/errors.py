"""Errors of the Datalog engine. Each one names the rule file, line and column, as `file:line:col: message`.

They live beside the engine rather than in `core.errors` because only the reasoning layer raises them;
they still derive from `CryptoScalpError`, so the CLI prints them as one line.
"""

from __future__ import annotations

from core.errors import CryptoScalpError
from reasoning.datalog.ast import Location


class DatalogError(CryptoScalpError):
    """A rule file or fact set was rejected, or evaluation failed, at `location`."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


class DatalogSyntaxError(DatalogError):
    """The text is not Mangle syntax."""


class DatalogAnalysisError(DatalogError):
    """The program parses but is unsafe, inconsistent with a `Decl`, or not stratifiable."""


class DatalogEvaluationError(DatalogError):
    """A built-in function failed on the values it met (division by zero, a name where a number belongs)."""
