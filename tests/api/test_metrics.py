"""`/metrics`: decisions by verdict and reason, guard engine latencies, log size and checkpoint age."""

from __future__ import annotations

from collections import Counter

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ApiEnv


def scrape(api: ApiEnv) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_decisions_are_counted_by_verdict_and_by_reason(api: ApiEnv) -> None:
    verdicts = Counter(d.verdict for d in api.decisions)
    reasons = Counter(reason for d in api.decisions for reason in d.record["reasons"])

    samples = scrape(api)

    assert samples["cryptoscalp_decisions_total"] == {(("verdict", v),): float(n) for v, n in verdicts.items()}
    drawdown = samples["cryptoscalp_decision_reasons_total"][(("layer", "L3"), ("reason", "L3.max_drawdown"))]
    assert drawdown == reasons["L3.max_drawdown"]


def test_guard_latency_is_a_histogram_per_engine_over_every_decision(api: ApiEnv) -> None:
    samples = scrape(api)

    counts = samples["cryptoscalp_guard_engine_latency_seconds_count"]
    assert {dict(labels)["engine"] for labels in counts} == {"datalog", "clips", "prolog", "z3"}
    assert all(count == len(api.decisions) for count in counts.values())
    infinite = samples["cryptoscalp_guard_engine_latency_seconds_bucket"][(("engine", "z3"), ("le", "+Inf"))]
    assert infinite == len(api.decisions)


def test_log_size_signed_size_and_checkpoint_age_are_reported(api: ApiEnv) -> None:
    samples = scrape(api)

    assert samples["cryptoscalp_prooflog_records"][()] == 144
    assert samples["cryptoscalp_prooflog_signed_records"][()] == 144
    assert 0 <= samples["cryptoscalp_prooflog_checkpoint_age_seconds"][()] < 3600
    assert samples["cryptoscalp_kill_switch_engaged"][()] == 0
