"""`cryptoscalp proof`: check a proof log offline.

`verify` recomputes every leaf, the tree and every checkpoint signature of a SQLite log, or of a PostgreSQL log
when `--db` is a postgresql:// DSN (public key default: ~/.cryptoscalp/prooflog.key.pub), and prints a summary,
or one `error:` line naming the first bad record and exits 1. A database or key that cannot be read is an
`error:` line with exit 2.
"""

from __future__ import annotations

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
) -> None:
    """Recompute every record hash, the Merkle tree and every checkpoint signature; name the first bad record."""
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
