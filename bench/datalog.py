"""Speed of the Datalog engine (reasoning.datalog); prints JSON.

- transitive closure of a 1,000-node chain (500,500 path facts) and of a random graph with 2,000 edges,
  this engine against pyDatalog; pyDatalog cannot finish the 1,000-chain in reasonable time, so both
  engines also run a 200-chain (20,100 facts) and the ratio is taken there, on the same input;
- provenance recording on vs off, on the 1,000-chain;
- the incremental per-intent decision on the trading policy of the tests (55 rules, ~3,200 base facts):
  overlay the intent, read its deny reasons, retract; p50/p99 over 5,000 intents, with the garbage
  collector paused as the trading loop runs it, and also with it running.

Run: `python bench/datalog.py` (or `make bench`). pyDatalog comes with the `dev` extra.
"""

from __future__ import annotations

import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyDatalog import pyDatalog

from reasoning.datalog.analysis import analyse
from reasoning.datalog.ast import Constant
from reasoning.datalog.evaluation import Engine
from reasoning.datalog.incremental import Materialized
from reasoning.datalog.loading import load_engine
from reasoning.datalog.parser import parse_program
from tests.reasoning.datalog.policy_world import POLICY, base_facts, intent_facts

CLOSURE = "path(X, Y) :- edge(X, Y).\npath(X, Z) :- edge(X, Y), path(Y, Z).\n"
PYDATALOG_CLOSURE = "path(X, Y) <= edge(X, Y)\npath(X, Z) <= edge(X, Y) & path(Y, Z)\n"
REPEATS = 3
INTENTS = 5_000


def best_of(run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def chain(nodes: int) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(nodes)]


def random_graph(edges: int, nodes: int, seed: int = 7) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    found: set[tuple[int, int]] = set()
    while len(found) < edges:
        found.add((rng.randrange(nodes), rng.randrange(nodes)))
    return sorted(found)


def ours(edges: list[tuple[int, int]], provenance: bool = False) -> tuple[float, int]:
    engine = Engine(analyse(parse_program(CLOSURE, "closure.mg")))
    facts = {"edge": [(Constant("int", a), Constant("int", b)) for a, b in edges]}
    seconds, model = best_of(lambda: engine.evaluate(facts, provenance))
    return seconds, len(model.database["path"].facts)


def pydatalog(edges: list[tuple[int, int]]) -> tuple[float, int]:
    def run() -> int:
        pyDatalog.clear()
        pyDatalog.load("\n".join(f"+ edge({a}, {b})" for a, b in edges) + "\n" + PYDATALOG_CLOSURE)
        answer = pyDatalog.ask("path(X, Y)")
        return len(answer.answers) if answer else 0

    return best_of(run)


def closure_figures() -> dict[str, Any]:
    chain_seconds, chain_facts = ours(chain(1000))
    graph_edges = random_graph(2000, 1000)
    graph_seconds, graph_facts = ours(graph_edges)
    small = chain(200)
    small_ours, small_facts = ours(small)
    small_pydatalog, small_pydatalog_facts = pydatalog(small)
    assert small_facts == small_pydatalog_facts == 20_100
    small_graph = random_graph(200, 400)
    graph_ours_small, graph_small_facts = ours(small_graph)
    graph_pydatalog_small, graph_small_pydatalog_facts = pydatalog(small_graph)
    assert graph_small_facts == graph_small_pydatalog_facts
    prov_seconds, _ = ours(chain(1000), provenance=True)
    return {
        "chain_1000": {"facts": chain_facts, "seconds": round(chain_seconds, 4), "goal_seconds": 1.0},
        "random_graph_2000_edges_1000_nodes": {"facts": graph_facts, "seconds": round(graph_seconds, 4)},
        "chain_200_vs_pydatalog": {
            "facts": small_facts,
            "ours_seconds": round(small_ours, 4),
            "pydatalog_seconds": round(small_pydatalog, 4),
            "speedup": round(small_pydatalog / small_ours, 1),
        },
        "random_graph_200_edges_400_nodes_vs_pydatalog": {
            "facts": graph_small_facts,
            "ours_seconds": round(graph_ours_small, 4),
            "pydatalog_seconds": round(graph_pydatalog_small, 4),
            "speedup": round(graph_pydatalog_small / graph_ours_small, 1),
        },
        "provenance_chain_1000": {
            "off_seconds": round(chain_seconds, 4),
            "on_seconds": round(prov_seconds, 4),
            "ratio": round(prov_seconds / chain_seconds, 2),
            "goal_ratio": 2.0,
        },
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(statistics.median(ordered) * 1e3, 4),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1e3, 4),
        "max_ms": round(ordered[-1] * 1e3, 4),
    }


def incremental_figures() -> dict[str, Any]:
    engine = load_engine(POLICY)
    base = base_facts()
    started = time.perf_counter()
    materialized = Materialized(engine, base)
    materialise_seconds = time.perf_counter() - started
    intents = intent_facts(INTENTS)
    admitted = 0

    def decide(facts: dict[str, Any]) -> float:
        nonlocal admitted
        started = time.perf_counter()
        with materialized.overlay(facts) as model:
            reasons = model.database["deny"].index((0,)).get(engine.interner.ids[("name", facts["intent"][0][0].value)])
            admitted += not reasons
        return time.perf_counter() - started

    for facts in intents[:200]:  # warm up
        decide(facts)
    admitted = 0
    gc.disable()
    paused = [decide(facts) for facts in intents]
    admitted_count = admitted
    gc.enable()
    running = [decide(facts) for facts in intents]
    return {
        "rules": len(engine.rules),
        "strata": len(engine.program.strata),
        "base_facts": sum(len(rows) for rows in base.values()),
        "materialise_seconds": round(materialise_seconds, 4),
        "intents": INTENTS,
        "admitted": admitted_count,
        "gc_paused": percentiles(paused),
        "gc_running": percentiles(running),
        "goal_p99_ms": 0.3,
    }


def main() -> None:
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "transitive_closure": closure_figures(),
        "incremental_decision": incremental_figures(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
