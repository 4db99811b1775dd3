"""Isolation for every test, a live sandbox on 127.0.0.1, and a CLI runner."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from kalixo_cli.cli import app
from kalixo_cli.sandbox import SANDBOX_TOKEN
from kalixo_cli.sandbox.server import RunningSandbox, running_sandbox
from tests.faultserver import FaultServer, fault_server
from tests.pgserver import ENV_BIN as PG_BIN_ENV
from tests.pgserver import PostgresServer, missing_reason, running_postgres

TEST_TOKEN_ENV = "KALIXO_TOKEN"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Own config and data folders per test; no KALIXO_* from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith(("KALIXO_", "PG")) and name != PG_BIN_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))  # not the developer's
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("KALIXO_RETRIES", "2")
    monkeypatch.setenv("KALIXO_NO_KEYRING", "1")  # never touch the developer's keyring
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@dataclass
class Clock:
    """The sandbox's time, which tests move forward instead of sleeping."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class FakeClock:
    """A sandbox's time standing still at `start` until a test moves it."""

    def __init__(self, start: float) -> None:
        self.start = self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def at(self, seconds_after_start: float) -> None:
        self.now = self.start + seconds_after_start


@pytest.fixture(scope="session")
def sandbox_clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def _sandbox_server(
    tmp_path_factory: pytest.TempPathFactory, sandbox_clock: Clock
) -> Iterator[RunningSandbox]:
    db = tmp_path_factory.mktemp("sandbox") / "sandbox.sqlite3"
    with running_sandbox(db, clock=sandbox_clock) as running:
        yield running


@pytest.fixture
def sandbox(
    _sandbox_server: RunningSandbox, sandbox_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> RunningSandbox:
    """The live sandbox, with KALIXO_API_URL and KALIXO_TOKEN pointing kalixo at it."""
    sandbox_clock.offset = 0.0
    _sandbox_server.faults.clear()
    _sandbox_server.reset_counts()
    monkeypatch.setenv("KALIXO_API_URL", _sandbox_server.v1_url)
    monkeypatch.setenv(TEST_TOKEN_ENV, SANDBOX_TOKEN)
    return _sandbox_server


@pytest.fixture
def v2(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> RunningSandbox:
    """The live sandbox, with kalixo pointed at its API v2 by the environment."""
    from kalixo_cli.sandbox import SANDBOX_API_KEY

    monkeypatch.setenv("KALIXO_API_URL", sandbox.v2_url)
    monkeypatch.setenv("KALIXO_API_KEY", SANDBOX_API_KEY)
    monkeypatch.setenv("KALIXO_API_VERSION", "v2")
    monkeypatch.delenv("KALIXO_TOKEN")
    return sandbox


@pytest.fixture
def faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    """A scriptable server for faults, with kalixo pointed at it."""
    with fault_server() as server:
        monkeypatch.setenv("KALIXO_API_URL", f"{server.url}/v1")
        monkeypatch.setenv(TEST_TOKEN_ENV, "fault-server-token-0123456789")
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL of the tests' own (tests/pgserver.py), for the whole session.

    Skipped with the reason when this machine has no PostgreSQL binaries; under CI=true
    (where .ci/run installs them) their absence fails instead, so CI never skips it.
    """
    import os

    reason = missing_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}", pytrace=False)
        pytest.skip(reason)
    with running_postgres() as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty database for one test; its URL (no password: PGPASSWORD holds it)."""
    import secrets

    name = f"t_{secrets.token_hex(6)}"
    url = postgres_server.create_database(name)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    yield url
    postgres_server.drop_database(name)


@dataclass
class JournalBackend:
    """One journal backend under test: its `journal_url`, and fresh handles on it (each one
    is what another process, or another machine, would have)."""

    kind: str
    url: str

    def open(self, *, readonly: bool = False) -> Any:
        from kalixo_cli.store.journal_url import locate, open_journal

        return open_journal(locate(self.url), readonly=readonly)

    def sql(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Change rows behind kalixo's back (`{orders}` names the table, `?` a value)."""
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.url.removeprefix("sqlite://")) as db:
                db.execute(statement.format(orders="orders"), params)
        else:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as db:
                db.execute(statement.format(orders="kalixo_orders").replace("?", "%s"), params)


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_backend(request: pytest.FixtureRequest, tmp_path: Path) -> JournalBackend:
    """Each journal test runs on both backends: the local SQLite file and a shared
    PostgreSQL (a fresh, migrated database of the tests' own server)."""
    if request.param == "sqlite":
        return JournalBackend("sqlite", f"sqlite://{tmp_path / 'data' / 'journal.sqlite3'}")
    url = request.getfixturevalue("pg_url")
    from kalixo_cli.store.journal_pg import PostgresJournal

    with PostgresJournal(url, check_schema=False) as fresh:
        fresh.migrate()
    return JournalBackend("postgresql", url)


_runner = CliRunner()

# Every exit code a test saw kalixo end with; tests/test_zz_exit_codes.py checks that each
# code of the README's table is among them once the whole suite has run.
EXIT_CODES_SEEN: set[int] = set()


def record_exit(code: int | None) -> int | None:
    """Note the exit code of a kalixo run in a subprocess (`run` notes its own)."""
    if code is not None:
        EXIT_CODES_SEEN.add(code)
    return code


def run(args: Sequence[str], *, input: str | bytes | None = None) -> Result:
    """Run kalixo in-process, as a user would type it."""
    result = _runner.invoke(app, list(args), input=input, catch_exceptions=False)
    record_exit(result.exit_code)
    return result


def kill_repeatedly(command: Sequence[str], env: dict[str, str], *, seed: int, kills: int = 3,
                    tries: int = 8) -> int:
    """Start `command` and SIGKILL it at a random moment, until it has been killed `kills`
    times (or `tries` runs went by); returns how many runs were killed."""
    import random
    import signal
    import subprocess

    rng = random.Random(seed)
    killed = 0
    for _ in range(tries):
        process = subprocess.Popen(list(command), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.2))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
        if killed == kills:
            break
    return killed
