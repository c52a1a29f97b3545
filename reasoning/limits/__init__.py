"""The Z3 limits engine: named numeric limits of `rules/limits.toml`, compiled to Z3, proving `max_qty`.

`LimitsEngine` is the guard's engine "z3"; `vocabulary` documents every name a limit may use;
`reference` is an independent plain-Python evaluator that the property tests check the engine against.
"""

from reasoning.limits.errors import LimitsContextError, LimitsError, LimitsFileError, LimitsSolverError
from reasoning.limits.parser import Limit, RuleSet, load_ruleset
from reasoning.limits.prover import LimitsEngine

__all__ = [
    "Limit",
    "LimitsContextError",
    "LimitsEngine",
    "LimitsError",
    "LimitsFileError",
    "LimitsSolverError",
    "RuleSet",
    "load_ruleset",
]
