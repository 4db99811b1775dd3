"""Fixtures: isolation for every test, a live sandbox on 127.0.0.1, fault and PostgreSQL servers.

Helpers that tests import (`run`, clocks, `JournalBackend`, ...) live in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kalixo_cli.sandbox import SANDBOX_TOKEN
from kalixo_cli.sandbox.server import RunningSandbox, running_sandbox
from tests.faultserver import FaultServer, fault_server
from tests.helpers import Clock, JournalBackend
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


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JournalBackend]:
    """Each journal test runs on both backends: the local SQLite file and a shared
    PostgreSQL (a fresh, migrated database of the tests' own server). Every handle the test
    opened is closed after it."""
    if request.param == "sqlite":
        backend = JournalBackend("sqlite", f"sqlite://{tmp_path / 'data' / 'journal.sqlite3'}")
    else:
        url = request.getfixturevalue("pg_url")
        from kalixo_cli.store.journal_pg import PostgresJournal

        with PostgresJournal(url, check_schema=False) as fresh:
            fresh.migrate()
        backend = JournalBackend("postgresql", url)
    yield backend
    backend.close()
