"""A throwaway PostgreSQL server for tests and benchmarks: `with TemporaryPostgres() as server: server.dsn`.

The PostgreSQL store is tested against a real server, never a mock, and the benchmark measures one; neither may
depend on a server someone configured. This runs `initdb` into a new temporary directory and `pg_ctl start` with
a Unix socket in that directory and no TCP listener (no port to collide, nothing reachable from outside), then
`pg_ctl stop -m immediate` and deletes the directory.

initdb refuses to run as root, so as root the server runs as the `postgres` system user (the Debian package
creates it), or as a `cryptoscalp-pg` system user created with useradd when there is none. Binaries are looked up
in /usr/lib/postgresql/<version>/bin (Debian's layout, newest version first) and then on PATH.

Authentication: the superuser `postgres` is trusted on the socket; every other role must give its password
(scram-sha-256), so password handling can be exercised. With `durable=False` (the default) fsync is off: the data
dies with the server anyway.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import psycopg
from psycopg import sql

from core.errors import CryptoScalpError

SUPERUSER = "postgres"
DEDICATED_USER = "cryptoscalp-pg"
PORT = 5432  # only names the socket file (.s.PGSQL.5432) inside the private directory
START_TIMEOUT_S = 60

HBA = f"""local all {SUPERUSER} trust
local all all scram-sha-256
"""


class PostgresServerError(CryptoScalpError):
    """The temporary PostgreSQL server could not be set up, started or stopped."""


def find_server_binaries() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`, or None when the server is not installed."""

    def version(directory: Path) -> float:
        try:
            return float(directory.parent.name)
        except ValueError:
            return -1.0

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _server_user() -> str | None:
    """The user to run the server as, None for the current one; root is refused by initdb."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, DEDICATED_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    _run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", DEDICATED_USER])
    return DEDICATED_USER


def _run(command: list[str], cwd: Path | None = None) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise PostgresServerError(f"cannot run {command[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip()
        raise PostgresServerError(f"{shlex.join(command)} exited with {done.returncode}: {output}")


class TemporaryPostgres:
    """A private PostgreSQL server in a temporary directory; `dsn` reaches its `postgres` database as superuser."""

    def __init__(self, bin_dir: Path | None = None, *, durable: bool = False) -> None:
        """`bin_dir` defaults to `find_server_binaries()`; `durable=True` keeps fsync on, so a benchmark's commits
        cost what they cost in production (compare with SQLite's synchronous=FULL)."""
        found = bin_dir or find_server_binaries()
        if found is None:
            raise PostgresServerError(
                "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin or on PATH; "
                "install them with `apt-get install postgresql-15`"
            )
        self.bin_dir = found
        self.durable = durable
        self._root: Path | None = None
        self._as_user: list[str] = []
        self._database_numbers = itertools.count()

    @property
    def root(self) -> Path:
        if self._root is None:
            raise PostgresServerError("the temporary PostgreSQL server is not running; use it inside `with`")
        return self._root

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"postgresql://{credentials}@/{quote(dbname, safe='')}?host={quote(str(self.socket_dir), safe='/')}"

    def create_database(self) -> str:
        """A new, empty database (`db_0`, `db_1`, …); returns its superuser DSN."""
        name = f"db_{next(self._database_numbers)}"
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn_for(name)

    def start(self) -> None:
        user = _server_user()
        self._as_user = [] if user is None else ["runuser", "-u", user, "--"]
        self._root = Path(tempfile.mkdtemp(prefix="cryptoscalp-pg-"))
        try:
            self.socket_dir.mkdir()
            if user is not None:
                entry = pwd.getpwnam(user)
                for path in (self.root, self.socket_dir):
                    os.chown(path, entry.pw_uid, entry.pw_gid)
            self._initdb()
            self._pg_ctl("start", "-l", str(self.log_file), "-w", "-t", str(START_TIMEOUT_S), "-o", self._options())
        except PostgresServerError as exc:
            message = f"{exc}{self._abandon()}"
            raise PostgresServerError(message) from None
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> str:
        """Stop whatever a failed start left running, delete the directory; returns the server log's tail."""
        log = f"\nserver log ({self.log_file}):\n{self.log_file.read_text()[-2000:]}" if self.log_file.exists() else ""
        if (self.root / "data" / "postmaster.pid").exists():
            try:
                self._pg_ctl("stop", "-m", "immediate", "-w")
            except PostgresServerError as exc:
                log += f"\nand stopping it failed: {exc}"
        self._remove()
        return log

    def _initdb(self) -> None:
        data = str(self.root / "data")
        command = [str(self.bin_dir / "initdb"), "-D", data, "-U", SUPERUSER, "--auth=trust", "--no-locale"]
        _run([*self._as_user, *command, "--encoding=UTF8", "--no-sync"], cwd=self.root)
        (self.root / "data" / "pg_hba.conf").write_text(HBA)  # owner and mode stay as initdb made them

    def _options(self) -> str:
        options = ["-c", "listen_addresses=''", "-k", shlex.quote(str(self.socket_dir)), "-p", str(PORT)]
        if not self.durable:
            options = ["-c", "fsync=off", *options]
        return " ".join(options)

    def _pg_ctl(self, *arguments: str) -> None:
        _run([*self._as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), *arguments], cwd=self.root)

    def stop(self) -> None:
        if self._root is None:
            return
        try:
            self._pg_ctl("stop", "-m", "immediate", "-w")
        finally:
            self._remove()

    def _remove(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
