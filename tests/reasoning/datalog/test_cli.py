"""`cryptoscalp datalog eval|explain`, run as a user would: a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

POLICY = """edge(/a, /b). edge(/b, /c).
path(X, Y) :- edge(X, Y).
path(X, Z) :- edge(X, Y), path(Y, Z).
deny(I, /L7.restricted_symbol) :- intent(I, S), restricted(S).
"""


def cryptoscalp(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from trader.cli import main; main()", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_eval_prints_sorted_facts_per_predicate_as_json(tmp_path: Path):
    (tmp_path / "p.mg").write_text(POLICY)
    (tmp_path / "f.json").write_text(
        json.dumps({"intent": [["/i1", "/doge"]], "restricted": [["/doge"]], "n": [[2.5, "s"]]})
    )
    run = cryptoscalp("datalog", "eval", "p.mg", "--facts", "f.json", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["path"] == [["/a", "/b"], ["/a", "/c"], ["/b", "/c"]]
    assert document["deny"] == [["/i1", "/L7.restricted_symbol"]]
    assert document["n"] == [[2.5, "s"]]


def test_eval_query_prints_one_predicate(tmp_path: Path):
    (tmp_path / "p.mg").write_text(POLICY)
    run = cryptoscalp("datalog", "eval", "p.mg", "--query", "edge", "--json", cwd=tmp_path)
    assert json.loads(run.stdout) == {"edge": [["/a", "/b"], ["/b", "/c"]]}


def test_explain_prints_the_derivation(tmp_path: Path):
    (tmp_path / "p.mg").write_text(POLICY + "intent(/i1, /doge).\nrestricted(/doge).\n")
    run = cryptoscalp("datalog", "explain", "p.mg", "deny(/i1, R)", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    (tree,) = json.loads(run.stdout)
    assert tree["rule"] == "p.mg:4:1" and tree["bindings"] == {"I": "/i1", "S": "/doge"}


def test_a_bad_rule_file_is_one_line_with_its_location_and_a_nonzero_exit(tmp_path: Path):
    (tmp_path / "bad.mg").write_text("edge(/a, /b).\npath(X, Y) :- edge(X, Z).\n")
    run = cryptoscalp("datalog", "eval", "bad.mg", "--json", cwd=tmp_path)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: bad.mg:2:1: unsafe: head variable Y of path(X, Y) is not bound by the body"
    ]


def test_explain_without_a_matching_fact_fails(tmp_path: Path):
    (tmp_path / "p.mg").write_text(POLICY)
    run = cryptoscalp("datalog", "explain", "p.mg", "deny(/i9, R)", cwd=tmp_path)
    assert run.returncode != 0 and "no fact matches deny(/i9, R)" in run.stderr
