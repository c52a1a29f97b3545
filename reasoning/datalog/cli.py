"""`cryptoscalp datalog`: evaluate a rule file, or explain how a fact was derived.

Registered on the main `cryptoscalp` app; errors propagate as `DatalogError`s, which the app prints as
one `file:line:col: message` line with a non-zero exit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from core.errors import CryptoScalpError

datalog_app = typer.Typer(no_args_is_help=True, help="Evaluate and explain Mangle-style Datalog rule files.")


@datalog_app.command("eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help="Rule file (Mangle syntax).")],
    facts: Annotated[Path | None, typer.Option(help="JSON facts: {predicate: [[arg, ...], ...]}.")] = None,
    query: Annotated[str | None, typer.Option(help="Print only this predicate.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object instead of Mangle facts.")] = False,
) -> None:
    """Evaluate FILE (plus --facts) and print every predicate's facts, sorted."""
    from reasoning.datalog.loading import load_engine, load_facts
    from reasoning.datalog.provenance import json_value

    engine = load_engine(_existing(file))
    model = engine.evaluate(load_facts(_existing(facts)) if facts else None, source=str(facts or "<facts>"))
    predicates = model.predicates()
    if query is not None:
        if query not in predicates:
            raise CryptoScalpError(f"{file}: no predicate {query}")
        predicates = [query]
    if as_json:
        document = {name: [[json_value(arg) for arg in row] for row in model.facts(name)] for name in predicates}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for name in predicates:
        for row in model.facts(name):
            typer.echo(f"{name}({', '.join(map(str, row))}).")


@datalog_app.command("explain")
def explain_command(
    file: Annotated[Path, typer.Argument(help="Rule file (Mangle syntax).")],
    pattern: Annotated[str, typer.Argument(help="A fact or pattern, e.g. 'deny(/i1, R)'.")],
    facts: Annotated[Path | None, typer.Option(help="JSON facts: {predicate: [[arg, ...], ...]}.")] = None,
) -> None:
    """Print, as a JSON array, the derivation tree of every fact matching PATTERN."""
    from reasoning.datalog.loading import load_engine, load_facts
    from reasoning.datalog.parser import parse_atom
    from reasoning.datalog.provenance import explain

    engine = load_engine(_existing(file))
    atom = parse_atom(pattern)
    model = engine.evaluate(load_facts(_existing(facts)) if facts else None, provenance=True, source=str(facts))
    trees = [explain(model, atom.predicate, row) for row in model.matching(atom)]
    if not trees:
        raise CryptoScalpError(f"{file}: no fact matches {atom}")
    typer.echo(json.dumps(trees, indent=2, ensure_ascii=False))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise CryptoScalpError(f"{path}: no such file")
    return path
