"""A throw-away PostgreSQL for the tests and benchmarks: its own cluster, its own port.

`initdb` makes a cluster in a temporary folder, `pg_ctl start -w` serves it on a free port of
127.0.0.1 only (no Unix socket) and returns once it accepts connections; leaving the context
stops it (`-m immediate`: nothing in it is worth keeping) and removes the folder. Password
authentication (scram-sha-256) is on, so the tests exercise what users run: a password from
PGPASSWORD or a pgpass file, and a refused one.

PostgreSQL refuses to run as root; as root, every server command runs as the `postgres` user
that Debian's package creates, on a folder handed to that user.

The binaries are found from KALIXO_TEST_PG_BIN, then Debian's /usr/lib/postgresql/N/bin
(newest first), then PATH. `missing_reason()` says why they cannot be used, or None.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_BIN = "KALIXO_TEST_PG_BIN"
SUPERUSER = "kalixo_test"
_TOOLS = ("initdb", "pg_ctl")


def bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    candidates: list[Path] = []
    if os.environ.get(ENV_BIN):
        candidates.append(Path(os.environ[ENV_BIN]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: -int(p.name))]
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in _TOOLS):
            return folder
    return None


def missing_reason() -> str | None:
    """Why no test server can be started here, or None when one can."""
    if bin_dir() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
            f"(Debian: apt-get install postgresql) or set {ENV_BIN}"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install 'kalixo[postgres]'"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """A running cluster: where it listens, and its superuser's name and password."""

    host: str
    port: int
    user: str
    password: str
    folder: Path

    def url(self, database: str = "postgres", *, user: str | None = None) -> str:
        """A libpq URL without the password (which comes from PGPASSWORD or a pgpass)."""
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **options: Any) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            autocommit=True,
            **options,
        )

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        with self.connect() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def terminate_clients(self, database: str) -> int:
        """Cut every connection to `database` (what a restart or a network cut does)."""
        with self.connect() as admin:
            row = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        return int(row[0]) if row else 0


def _as_server_user(command: list[str], folder: Path, **options: Any) -> None:
    """Run a PostgreSQL server command, as `postgres` when we are root."""
    kwargs: dict[str, Any] = {}
    if os.geteuid() == 0:
        kwargs = {"user": "postgres", "group": "postgres", "extra_groups": []}
    subprocess.run(
        command,
        check=True,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
        **options,
    )


@contextlib.contextmanager
def running_postgres(*, durable: bool = False, tries: int = 5) -> Iterator[PostgresServer]:
    """A fresh cluster for the duration of the block.

    `durable=False` (tests) turns fsync off; benchmarks ask for `durable=True`, a server
    that flushes every commit to disk like a production one.
    """
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    binaries = bin_dir()
    assert binaries is not None
    folder = Path(tempfile.mkdtemp(prefix="kalixo-pg-"))
    data = folder / "data"
    password = secrets.token_urlsafe(18)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o700)
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    started = False
    try:
        _as_server_user(
            [
                str(binaries / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            folder,
        )
        pwfile.unlink()
        last_error = ""
        for _ in range(tries):
            port = free_port()
            settings = {
                "port": str(port),
                "listen_addresses": "'127.0.0.1'",
                "unix_socket_directories": "''",
                "fsync": "on" if durable else "off",
                "synchronous_commit": "on" if durable else "off",
                "full_page_writes": "on" if durable else "off",
                "max_connections": "100",
            }
            conf = data / "postgresql.auto.conf"
            conf.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
            try:
                _as_server_user(
                    [
                        str(binaries / "pg_ctl"),
                        "-D",
                        str(data),
                        "-l",
                        str(folder / "server.log"),
                        "-w",
                        "-t",
                        "120",
                        "start",
                    ],
                    folder,
                )
            except subprocess.CalledProcessError as exc:  # the port was taken meanwhile
                last_error = exc.stdout.decode(errors="replace") if exc.stdout else str(exc)
                continue
            started = True
            break
        if not started:
            log = folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"the test PostgreSQL did not start: {last_error}\n{tail}")
        yield PostgresServer("127.0.0.1", port, SUPERUSER, password, folder)
    finally:
        if started:
            with contextlib.suppress(subprocess.CalledProcessError):
                _as_server_user(
                    [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                    folder,
                )
        shutil.rmtree(folder, ignore_errors=True)
