"""`/metrics` in the Prometheus text format, computed when scraped from the decision index and the log.

- `cryptoscalp_decisions_total{verdict}` and `cryptoscalp_decision_reasons_total{reason,layer}`: every decision
  in the log, by verdict and by reason code (from the index, so they survive restarts and cover the whole log);
- `cryptoscalp_guard_engine_latency_seconds{engine}`: a histogram of each engine's time per decision, from the
  `timings_ms` of the guard's proof, observed as records are indexed;
- `cryptoscalp_prooflog_records`, `cryptoscalp_prooflog_signed_records`, `cryptoscalp_prooflog_checkpoint_age_seconds`:
  log size, records covered by the latest signed checkpoint, and seconds since it was signed (-1: none yet);
- `cryptoscalp_kill_switch_engaged`: 1 while the halt file says engaged.

Each app has its own registry (no process-global state), so several apps in one process do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from api.index import LATENCY_BUCKETS_MS
from api.services import Services
from reasoning.engine import layer_of


class ApiCollector(Collector):
    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        services = self._services
        services.index.catch_up()
        yield from self._decisions()
        yield from self._latency()
        yield from self._log()
        kill_switch = GaugeMetricFamily("cryptoscalp_kill_switch_engaged", "1 while the kill switch is engaged.")
        kill_switch.add_metric([], 1.0 if services.kill_switch.state().engaged else 0.0)
        yield kill_switch

    def _decisions(self) -> Iterator[Metric]:
        index = self._services.index
        verdicts = CounterMetricFamily(
            "cryptoscalp_decisions", "Decisions in the proof log, by verdict.", labels=["verdict"]
        )
        for verdict, count in index.counts("verdict").items():
            verdicts.add_metric([verdict], count)
        yield verdicts
        reasons = CounterMetricFamily(
            "cryptoscalp_decision_reasons", "Reason codes given in decisions, by code.", labels=["reason", "layer"]
        )
        for reason, count in index.counts("reason").items():
            reasons.add_metric([reason, layer_of(reason)], count)
        yield reasons

    def _latency(self) -> Iterator[Metric]:
        histogram = HistogramMetricFamily(
            "cryptoscalp_guard_engine_latency_seconds",
            "Time each guard engine took per decision (from the guard's proof).",
            labels=["engine"],
        )
        bounds = [f"{bound / 1000:g}" for bound in LATENCY_BUCKETS_MS] + ["+Inf"]
        for engine in self._services.index.latency_histograms():
            cumulative = 0
            buckets = []
            for bound, count in zip(bounds, engine.bucket_counts, strict=True):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            histogram.add_metric([engine.engine], buckets, sum_value=engine.sum_ms / 1000)
        yield histogram

    def _log(self) -> Iterator[Metric]:
        store = self._services.log.store()
        records = GaugeMetricFamily("cryptoscalp_prooflog_records", "Records in the proof log.")
        records.add_metric([], float(store.record_count()))
        yield records
        latest = store.latest_checkpoint()
        signed = GaugeMetricFamily(
            "cryptoscalp_prooflog_signed_records", "Records covered by the latest signed checkpoint."
        )
        signed.add_metric([], float(latest.tree_size) if latest is not None else 0.0)
        yield signed
        age = GaugeMetricFamily(
            "cryptoscalp_prooflog_checkpoint_age_seconds", "Seconds since the latest checkpoint was signed (-1: none)."
        )
        age.add_metric([], _age_seconds(latest.signed_at) if latest is not None else -1.0)
        yield age


def registry_for(services: Services) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ApiCollector(services))
    return registry


def _age_seconds(signed_at: str) -> float:
    signed = datetime.strptime(signed_at, "%Y-%m-%dT%H:%M:%S.%f%z")
    return max(time.time() - signed.timestamp(), 0.0)
