"""Nothing the Z3 engine admits breaks a limit, every denial is real, and weakening any one compiled
constraint is caught (issue 5, point 7)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasoning.limits.prover import LimitsEngine
from reasoning.limits.reference import ReferenceEvaluator
from tests.reasoning.limits.cases import counterexample, random_case
from tests.reasoning.limits.helpers import LIMITS_FILE

CASES_PER_EXAMPLE = 5
EXAMPLES = 2_000  # x 5 cases = 10,000 random intents and contexts

ENGINE = LimitsEngine(LIMITS_FILE)
REFERENCE = ReferenceEvaluator(LIMITS_FILE)


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(seed=st.integers(min_value=0, max_value=2**63))
def test_every_admitted_or_reduced_qty_satisfies_every_limit_and_every_denial_is_real(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(CASES_PER_EXAMPLE):
        case = random_case(rng)
        assert counterexample(ENGINE, REFERENCE, case) is None, case


def test_the_fixed_batch_exercises_admissions_reductions_and_denials() -> None:
    # Arrange
    rng = random.Random(20240501)
    verdicts = {"admit": 0, "reduce": 0, "deny": 0}
    # Act
    for _ in range(400):
        case = random_case(rng)
        result = ENGINE.evaluate(case.intent, case.context, case.qty)
        kind = "deny" if result.denials else "admit" if (result.max_qty or 0) >= case.qty else "reduce"
        verdicts[kind] += 1
    # Assert
    assert min(verdicts.values()) >= 30, verdicts


MUTATION_BATCH = [random_case(random.Random(7_000 + index)) for index in range(4_000)]


@pytest.mark.slow
@pytest.mark.parametrize("limit", [limit.name for limit in ENGINE.ruleset.limits])
def test_weakening_any_one_constraint_is_caught_by_the_property_check(limit: str) -> None:
    # Arrange: the compiler replaces this limit's constraint by True
    mutant = LimitsEngine()
    mutant.load(LIMITS_FILE, weakened=frozenset({limit}))
    # Act
    caught = next((case for case in MUTATION_BATCH if counterexample(mutant, REFERENCE, case) is not None), None)
    # Assert
    assert caught is not None, f"weakening {limit} went unnoticed on {len(MUTATION_BATCH)} cases"
