"""`cryptoscalp proof`: check a proof log offline.

`verify` recomputes every leaf, the tree and every checkpoint signature of a SQLite log, or of a PostgreSQL log
when `--db` is a postgresql:// DSN (public key default: ~/.cryptoscalp/prooflog.key.pub), and prints a summary,
or one `error:` line naming the first bad record and exits 1. A database or key that cannot be read is an
`error:` line with exit 2. With `--remote URL` it checks a running API instead, without the database
(`reasoning.prooflog.remote`): signed checkpoints, consistency between them and every decision's inclusion proof.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from reasoning.prooflog.errors import ProofLogError
from reasoning.prooflog.keys import load_public_key, public_key_path
from reasoning.prooflog.opening import default_key_path_for, describe_target, open_store
from reasoning.prooflog.verify import verify

DEFAULT_DB = "runs/prooflog.sqlite3"

proof_app = typer.Typer(no_args_is_help=True, help="Verify the tamper-evident proof log.")


@proof_app.callback()
def proof_callback() -> None:
    """Verify the tamper-evident proof log."""


@proof_app.command("verify")
def verify_command(
    db: Annotated[str, typer.Option(help="Proof log: SQLite file or postgresql:// DSN.")] = DEFAULT_DB,
    pubkey: Annotated[
        Path | None, typer.Option(help="Ed25519 public key (PEM or raw base64); default: <db>.key.pub.")
    ] = None,
    remote: Annotated[
        str | None, typer.Option(help="Verify through the API at this URL instead of --db (needs --pubkey).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="API token for --remote; default: $CRYPTOSCALP_API_TOKEN.", show_default=False)
    ] = None,
    sample: Annotated[
        int | None, typer.Option(min=1, help="With --remote: check this many random decisions, not all.")
    ] = None,
) -> None:
    """Recompute every record hash, the Merkle tree and every checkpoint signature; name the first bad record."""
    if remote is not None:
        _verify_remote(remote, pubkey, token, sample)
        return
    key_file = pubkey or public_key_path(default_key_path_for(db))
    try:
        public_key = load_public_key(key_file)
        store = open_store(db, read_only=True)
        try:
            report = verify(store, public_key)
        finally:
            store.close()
    except ProofLogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if report.failure is not None:
        typer.echo(f"error: {describe_target(db)}: {report.failure.message()}", err=True)
        raise typer.Exit(1)
    unsigned = f"; {report.unsigned_records} records after the last checkpoint are not yet signed"
    typer.echo(
        f"ok: {describe_target(db)}: {report.records} records, {report.checkpoints} checkpoints verified, "
        f"root {report.root_hash.hex()}{unsigned if report.unsigned_records else ''}"
    )


def _verify_remote(url: str, pubkey: Path | None, token: str | None, sample: int | None) -> None:
    # imported here: only the remote check needs an HTTP client (httpx)
    from reasoning.prooflog.remote import TOKEN_ENVIRONMENT_VARIABLE, connect, verify_remote

    if pubkey is None:
        typer.echo("error: --remote needs --pubkey: the key must come from the log's owner, not the API", err=True)
        raise typer.Exit(2)
    try:
        public_key = load_public_key(pubkey)
        with connect(url, token or os.environ.get(TOKEN_ENVIRONMENT_VARIABLE)) as client:
            report = verify_remote(client, public_key, sample)
    except ProofLogError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if report.failure is not None:
        typer.echo(f"error: {url}: {report.failure.message()}", err=True)
        raise typer.Exit(1)
    unsigned = f"; {report.decisions_unsigned} decisions after the latest checkpoint are not yet signed"
    typer.echo(
        f"ok: {url}: {report.checkpoints} checkpoints and {report.consistency_proofs} consistency proofs verified, "
        f"{report.decisions_checked} of {report.decisions} decisions proven included in the signed tree of "
        f"{report.signed_size} records, root {report.root_hash.hex()}{unsigned if report.decisions_unsigned else ''}"
    )
