"""A real PostgreSQL server for the PostgreSQL store's tests: one per session, a fresh database per test.

Skipped only when the server binaries are not installed (the set-up step installs them); a server that is
installed but fails to start is an error, not a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reasoning.prooflog.pg_server import TemporaryPostgres, find_server_binaries


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TemporaryPostgres]:
    bin_dir = find_server_binaries()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed in /usr/lib/postgresql/*/bin or on PATH; "
            "the set-up step installs them (apt-get install postgresql-15)"
        )
    with TemporaryPostgres(bin_dir) as server:
        yield server


@pytest.fixture()
def pg_dsn(postgres_server: TemporaryPostgres) -> str:
    """Superuser DSN of a new, empty database."""
    return postgres_server.create_database()
