"""`cryptoscalp rules check | test | what-if`: the risk officers' tools for the files in `rules/`.

* `check` validates every file (syntax, safety, unknown vocabulary, types and units,
  rules that can never fire) and prints the rule set's hash;
* `test` runs the cases in `rules/tests/*.yaml` and fails when one fails or when a
  reason code has no case;
* `what-if` replays a past run's intents, in the contexts they were decided in, under
  another rule set and lists every intent whose verdict or reasons would change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core.errors import CryptoScalpError
from core.intent import Intent
from core.orders import OrderType, Side
from reasoning.context import context_from_dict
from reasoning.guard import Guard, GuardConfig
from reasoning.rule_tests import load_cases, run_rule_tests
from reasoning.rules import RULES_DIR, load_ruleset, unreachable_rules
from trader.decision_log import DECISIONS_FILE, read_decisions

rules_app = typer.Typer(no_args_is_help=True, help="Check, test and replay the rule files risk officers edit.")
console = Console()

RulesDir = Annotated[Path, typer.Argument(help="Rule set: policy.mg, expert.clp, strategies.pl, limits.toml.")]


@rules_app.command("check")
def check_command(directory: RulesDir = RULES_DIR) -> None:
    """Validate every rule file; errors are `file:line:col: message`."""
    ruleset = load_ruleset(directory)
    for warning in unreachable_rules(ruleset):
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    console.print(f"ok: {directory} rule set {ruleset.ruleset_hash}", highlight=False, soft_wrap=True)
    for name, digest in sorted(ruleset.file_hashes.items()):
        console.print(f"  {name}  sha256 {digest}", highlight=False, soft_wrap=True)


@rules_app.command("test")
def test_command(directory: RulesDir = RULES_DIR) -> None:
    """Run rules/tests/*.yaml: each case's context and intent against its expected verdict and reasons."""
    ruleset = load_ruleset(directory)
    cases = load_cases(directory)
    report = run_rule_tests(ruleset, cases)
    table = Table(title=f"rule tests ({len(cases)} cases, rule set {ruleset.ruleset_hash[:12]})")
    for column in ("", "case", "expected", "got"):
        table.add_column(column, overflow="fold")
    for outcome in report.outcomes:
        case, decision = outcome.case, outcome.decision
        expected = f"{case.verdict.value} {', '.join(sorted(case.reasons))}"
        got = f"{decision.verdict.value} {', '.join(sorted(decision.reasons))}"
        mark = "[green]pass[/green]" if outcome.passed else "[red]FAIL[/red]"
        if not outcome.passed:
            table.add_row(mark, f"{case.file.name}: {case.name}", expected, got)
    failed = sum(1 for outcome in report.outcomes if not outcome.passed)
    if failed:
        console.print(table)
    for reason in report.uncovered:
        console.print(f"[red]uncovered:[/red] no case expects reason code {reason}", highlight=False)
    console.print(f"{len(cases) - failed} passed, {failed} failed, {len(report.uncovered)} reason codes uncovered")
    if not report.passed:
        raise typer.Exit(1)


@rules_app.command("what-if")
def what_if_command(
    rules: Annotated[Path, typer.Option(help="The changed rule set directory.")],
    run: Annotated[Path, typer.Option(help="A past run's directory, e.g. runs/<id>.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the changes as JSON.")] = False,
) -> None:
    """Replay a past run's intents under a changed rule set; list every verdict that would change."""
    path = run / DECISIONS_FILE
    if not path.is_file():
        raise CryptoScalpError(f"{path}: no decision log (runs made without the guard have none)")
    ruleset = load_ruleset(rules)
    guard = Guard(ruleset.engines, ruleset.ruleset_hash, GuardConfig())
    changes: list[dict[str, Any]] = []
    replayed = 0
    for record in read_decisions(path):
        if record.get("context") is None or record.get("requested_qty") is None:
            continue
        intent = intent_from_record(record["intent"])
        context = context_from_dict(record["context"])
        guard.set_state(context.guard_state, "what-if replay")
        decision = guard.decide(intent, context, float(record["requested_qty"]))
        replayed += 1
        before = (record["verdict"], sorted(set(record["reasons"]) & _guard_reasons(record)))
        after = (decision.verdict.value, sorted(decision.reasons))
        if before != after:
            changes.append(
                {
                    "intent_id": intent.intent_id,
                    "ts": intent.ts,
                    "symbol": intent.symbol,
                    "side": intent.side.value,
                    "before": {"verdict": before[0], "reasons": before[1]},
                    "after": {"verdict": after[0], "reasons": after[1], "max_qty": decision.max_qty},
                }
            )
    summary = {"run": str(run), "ruleset_hash": ruleset.ruleset_hash, "replayed": replayed, "changed": len(changes)}
    if as_json:
        console.print_json(json.dumps(summary | {"changes": changes}))
        return
    table = Table(title=f"{len(changes)} of {replayed} decisions would change under {rules}")
    for column in ("time", "symbol", "side", "before", "after"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            str(change["ts"]),
            str(change["symbol"]),
            str(change["side"]),
            _verdict_text(change["before"]),
            _verdict_text(change["after"]),
        )
    console.print(table)


def _guard_reasons(record: dict[str, object]) -> set[str]:
    """Reasons the guard gave (the exchange's own `EX.` codes are not the rule set's)."""
    reasons = record.get("reasons") or []
    assert isinstance(reasons, list)
    return {str(reason) for reason in reasons if not str(reason).startswith("EX.")}


def _verdict_text(verdict: dict[str, Any]) -> str:
    reasons = verdict.get("reasons") or []
    assert isinstance(reasons, list)
    return f"{verdict['verdict']} {', '.join(str(r) for r in reasons)}".strip()


def intent_from_record(values: dict[str, object]) -> Intent:
    fields_ = dict(values)
    fields_.pop("intent_id", None)
    fields_["side"] = Side(str(fields_["side"]))
    fields_["order_type"] = OrderType(str(fields_["order_type"]))
    rationale = fields_.get("rationale") or []
    assert isinstance(rationale, list)
    fields_["rationale"] = tuple((str(name), float(value)) for name, value in rationale)
    return Intent(**fields_)  # type: ignore[arg-type]
