"""Z3 limits engine speed: compile time, per-decision `evaluate` and `prove_order` p50/p99, as JSON.

Contexts come from the property tests' generator (every limit sometimes binding), so the figures cover
admissions, reductions and denials in realistic proportions. Run: `python bench/limits.py`.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reasoning.limits.compiler import compile_ruleset  # noqa: E402
from reasoning.limits.parser import load_ruleset  # noqa: E402
from reasoning.limits.prover import LimitsEngine  # noqa: E402
from tests.reasoning.limits.cases import random_case  # noqa: E402

LIMITS_FILE = ROOT / "rules" / "limits.toml"
DECISIONS = 3_000


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def micros(samples: list[float]) -> dict[str, float]:
    return {
        "p50_us": round(percentile(samples, 0.50) * 1e6, 1),
        "p99_us": round(percentile(samples, 0.99) * 1e6, 1),
        "mean_us": round(statistics.fmean(samples) * 1e6, 1),
    }


def main() -> None:
    started = time.perf_counter()
    ruleset = load_ruleset(LIMITS_FILE)
    parsed = time.perf_counter()
    compile_ruleset(ruleset)
    compiled = time.perf_counter()
    engine = LimitsEngine(LIMITS_FILE)
    rng = random.Random(11)
    cases = [random_case(rng) for _ in range(DECISIONS)]
    for case in cases[:200]:  # warm-up: numeral cache, generated evaluators
        engine.evaluate(case.intent, case.context, case.qty)
    evaluate_times: list[float] = []
    prove_times: list[float] = []
    verdicts = {"admit": 0, "reduce": 0, "deny": 0}
    for case in cases:
        start = time.perf_counter()
        result = engine.evaluate(case.intent, case.context, case.qty)
        evaluate_times.append(time.perf_counter() - start)
        if result.denials:
            verdicts["deny"] += 1
            continue
        sized = min(case.qty, result.max_qty or case.qty)
        verdicts["admit" if sized == case.qty else "reduce"] += 1
        start = time.perf_counter()
        engine.prove_order(case.intent, case.context, sized)
        prove_times.append(time.perf_counter() - start)
    report = {
        "limits": len(ruleset.limits),
        "parse_and_check_ms": round((parsed - started) * 1e3, 2),
        "compile_ms": round((compiled - parsed) * 1e3, 2),
        "decisions": DECISIONS,
        "verdicts": verdicts,
        "evaluate": micros(evaluate_times),
        "prove_order": micros(prove_times),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
