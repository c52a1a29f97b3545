"""`cryptoscalp serve` (the API under uvicorn) and `cryptoscalp tokens` (issue, list and revoke API tokens).

Imports stay light (typer only) until a command runs, so the rest of the CLI does not load FastAPI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.settings import DEFAULT_KILL_SWITCH_FILE, DEFAULT_STATE_DB
from reasoning.rules import RULES_DIR

DEFAULT_DB = "runs/prooflog.sqlite3"

tokens_app = typer.Typer(no_args_is_help=True, help="Issue, list and revoke API tokens.")

StatePath = Annotated[Path, typer.Option("--state", help="The API's state database (tokens, index).")]


def serve(
    db: Annotated[str, typer.Option(help="Proof log: SQLite file or postgresql:// DSN.")] = DEFAULT_DB,
    state: StatePath = DEFAULT_STATE_DB,
    rules: Annotated[Path, typer.Option(help="Rule set directory.")] = RULES_DIR,
    kill_switch: Annotated[Path, typer.Option(help="Halt file the trading loop polls.")] = DEFAULT_KILL_SWITCH_FILE,
    signing_key: Annotated[
        Path | None, typer.Option(help="Key the API signs its appends with; default: the log's key.")
    ] = None,
    pubkey: Annotated[Path | None, typer.Option(help="The log's public key; default: <signing key>.pub.")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
) -> None:
    """Serve the auditors' API (OpenAPI at /docs): decisions, proofs, explanations, rules, kill switch, metrics."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from reasoning.prooflog.opening import describe_target

    settings = ApiSettings(
        proof_log=db,
        state_db=state,
        rules_dir=rules,
        kill_switch_file=kill_switch,
        signing_key=signing_key,
        public_key=pubkey,
    )
    app = create_app(settings)
    typer.echo(f"indexing the decisions of {describe_target(db)} (a new index takes ~2 min per million)", err=True)
    indexed = app.state.services.index.catch_up()
    typer.echo(f"indexed {indexed} records; serving on http://{host}:{port} (OpenAPI: /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")


@tokens_app.callback()
def tokens_callback() -> None:
    """Issue, list and revoke API tokens."""


@tokens_app.command("create")
def create_token(
    role: Annotated[str, typer.Option(help="auditor (read-only), risk_officer or operator.")],
    name: Annotated[str | None, typer.Option(help="Who holds it (default: <role>-<id>).")] = None,
    state: StatePath = DEFAULT_STATE_DB,
) -> None:
    """Issue a token and print it once; only its SHA-256 is stored."""
    from api.state import StateDb
    from api.tokens import TokenStore

    database = StateDb(state)
    try:
        info, token = TokenStore(database).create(role, name)
    finally:
        database.close()
    typer.echo(f"created token {info.token_id} for {info.name} ({info.role.value}); it is shown only now:", err=True)
    typer.echo(token)


@tokens_app.command("list")
def list_tokens(state: StatePath = DEFAULT_STATE_DB) -> None:
    """Tokens issued (never the tokens themselves)."""
    from api.state import StateDb
    from api.tokens import TokenStore

    database = StateDb(state)
    try:
        issued = TokenStore(database).list()
    finally:
        database.close()
    for info in issued:
        revoked = f"  revoked {info.revoked_at}" if info.revoked_at else ""
        typer.echo(f"{info.token_id}  {info.name}  {info.role.value}  created {info.created_at}{revoked}")


@tokens_app.command("revoke")
def revoke_token(
    token: Annotated[str, typer.Argument(help="The token's id or name (not the token).")],
    state: StatePath = DEFAULT_STATE_DB,
) -> None:
    """Revoke a token: the API refuses it from the next request on."""
    from api.state import StateDb
    from api.tokens import TokenStore

    database = StateDb(state)
    try:
        info = TokenStore(database).revoke(token)
    finally:
        database.close()
    typer.echo(f"revoked token {info.token_id} of {info.name} ({info.role.value})")
