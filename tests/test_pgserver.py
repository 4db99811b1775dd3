"""The tests' own PostgreSQL: it serves on loopback with password authentication."""

from __future__ import annotations

import pytest

from tests.pgserver import PostgresServer


def test_each_test_gets_an_empty_database_of_its_own(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url) as first:  # the password comes from PGPASSWORD
        first.execute("CREATE TABLE mine (x int)")
        first.commit()
        tables = first.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (1,)
    assert pg_url.startswith("postgresql://") and ":" not in pg_url.split("@")[0][13:]


def test_a_wrong_password_is_refused(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres_server.url(), connect_timeout=30)
