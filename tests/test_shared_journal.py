"""The shared journal on PostgreSQL, from the command line (issue 15): journal_url, migrate,
import, doctor, orders list, failures that send nothing, and two machines on one batch.

Every test runs against the tests' own PostgreSQL (tests/pgserver.py) and real HTTP: the
sandbox, or a server that would place a reused code (tests/test_exactly_once.LaxServer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.journal_pg import SCHEMA_VERSION, PostgresJournal
from kalixo_cli.store.journal_url import mask_url, parse_journal_url
from tests.helpers import run
from tests.pgserver import PostgresServer, free_port
from tests.test_exactly_once import LaxServer, order, wait_until, write_jsonl


@pytest.fixture
def shared(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated shared journal, and kalixo pointed at it by KALIXO_JOURNAL_URL."""
    with PostgresJournal(pg_url, check_schema=False) as journal:
        journal.migrate()
    monkeypatch.setenv("KALIXO_JOURNAL_URL", pg_url)
    return pg_url


def database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def order_file(tmp_path: Path, code: str) -> str:
    path = tmp_path / f"{code}.json"
    path.write_text(json.dumps(order(code)))
    return str(path)


def kalixo(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kalixo_cli", *args],
        env=env if env is not None else dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- journal_url --------------------------------------------------------------------------


def test_journal_url_accepts_sqlite_and_postgresql_and_refuses_passwords() -> None:
    assert (
        parse_journal_url("sqlite:///var/lib/kalixo/j.sqlite3")
        == "sqlite:///var/lib/kalixo/j.sqlite3"
    )
    assert (
        parse_journal_url(" postgresql://ops@db:5432/kalixo ") == "postgresql://ops@db:5432/kalixo"
    )
    for bad, why in [
        ("sqlite://relative/j.sqlite3", "absolute"),
        ("mysql://db/kalixo", "sqlite:///"),
        ("postgresql://ops:hunter22@db/kalixo", "must not carry a password"),
        ("postgresql://ops@db/kalixo?password=hunter22", "password"),
        ("postgresql://ops@db:99999/kalixo", "port"),
        ("postgresql://ops@db", "name the database"),
    ]:
        with pytest.raises(ValueError, match=why) as caught:
            parse_journal_url(bad)
        assert "hunter22" not in str(caught.value)
    assert (
        mask_url("postgresql://ops:hunter22@db/k?password=x&sslmode=require")
        == "postgresql://ops:***@db/k?password=***&sslmode=require"
    )


def test_config_set_journal_url_per_profile_and_never_a_password(isolated: Path) -> None:
    result = run(["config", "set", "journal_url", "postgresql://ops:hunter22@db/kalixo"])
    assert result.exit_code == ExitCode.USAGE
    assert "hunter22" not in result.output and "~/.pgpass" in result.output
    assert (
        run(
            ["--profile", "team", "config", "set", "journal_url", "postgresql://ops@db:5432/kalixo"]
        ).exit_code
        == 0
    )
    shown = json.loads(run(["--profile", "team", "config", "show", "-o", "json"]).stdout)
    assert shown["journal_url"]["value"] == "postgresql://ops@db:5432/kalixo"
    default = json.loads(run(["config", "show", "-o", "json"]).stdout)["journal_url"]
    assert default["source"] == "default" and default["value"].startswith("sqlite:///")
    assert default["value"].endswith("journal.sqlite3")


def test_a_sqlite_journal_url_moves_the_local_journal(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere" / "team.sqlite3"
    monkeypatch.setenv("KALIXO_JOURNAL_URL", f"sqlite://{target}")
    result = run(["place-order", order_file(tmp_path, "URL-1"), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert target.exists()
    listed = json.loads(run(["orders", "list", "-o", "json"]).stdout)
    assert [row["externalOrderCode"] for row in listed] == ["URL-1"]


# -- migrate, doctor ----------------------------------------------------------------------


def test_migrate_creates_then_is_idempotent_and_commands_wait_for_it(
    pg_url: str, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_JOURNAL_URL", pg_url)
    before = run(["place-order", order_file(tmp_path, "MIG-1"), "-o", "json"])
    assert before.exit_code == ExitCode.JOURNAL_UNUSABLE
    assert "no kalixo tables yet" in before.output and "kalixo journal migrate" in before.output
    assert sandbox.place_attempts() == {}  # nothing sent without a journal
    doctor = run(["doctor", "-o", "json"])
    checks = {c["check"]: c for c in json.loads(doctor.stdout)}
    assert checks["journal"]["status"] == "fail" and doctor.exit_code != 0
    first = json.loads(run(["journal", "migrate", "-o", "json"]).stdout)
    assert first["schemaBefore"] is None and first["schema"] == SCHEMA_VERSION
    again = run(["journal", "migrate"])
    assert again.exit_code == 0 and "up to date" in again.output
    assert run(["place-order", order_file(tmp_path, "MIG-1")]).exit_code == 0
    doctor = run(["doctor", "-o", "json"])
    checks = {c["check"]: c for c in json.loads(doctor.stdout)}
    assert checks["journal"]["status"] == "ok", checks["journal"]
    assert f"1 entries, schema {SCHEMA_VERSION}" in checks["journal"]["detail"]
    assert doctor.exit_code == 0


def test_a_newer_schema_is_refused_not_downgraded(shared: str) -> None:
    import psycopg

    with psycopg.connect(shared, autocommit=True) as db:
        db.execute("UPDATE kalixo_meta SET value = '99' WHERE name = 'schema'")
    result = run(["journal", "migrate"])
    assert result.exit_code == ExitCode.JOURNAL_UNUSABLE and "newer" in result.output
    assert run(["orders", "list"]).exit_code == ExitCode.JOURNAL_UNUSABLE


def test_journal_commands_need_a_shared_journal(isolated: Path) -> None:
    result = run(["journal", "migrate"])
    assert result.exit_code == ExitCode.USAGE and "local journal" in result.output


# -- failures: nothing sent without a claim ----------------------------------------------


def test_an_unreachable_shared_journal_sends_nothing_and_never_falls_back(
    postgres_server: PostgresServer,
    sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    isolated: Path,
) -> None:
    url = f"postgresql://{postgres_server.user}@127.0.0.1:{free_port()}/nowhere"
    monkeypatch.setenv("KALIXO_JOURNAL_URL", url)
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    result = run(["place-order", order_file(tmp_path, "DOWN-1")])
    assert result.exit_code == ExitCode.TEMPORARY, result.output
    assert url in result.output and "nothing was sent" in result.output
    assert postgres_server.password not in result.output
    assert sandbox.place_attempts() == {}
    assert not list(isolated.rglob("journal.sqlite3"))  # no silent local journal
    batch = write_jsonl(tmp_path / "batch.jsonl", ["DOWN-2", "DOWN-3"])
    assert run(["place-orders", batch]).exit_code == ExitCode.TEMPORARY
    assert sandbox.place_attempts() == {}


def test_refused_credentials_send_nothing_and_show_no_password(
    shared: str, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "wrong-password-771")
    result = run(["place-order", order_file(tmp_path, "PW-1"), "-o", "json"])
    assert result.exit_code == ExitCode.TEMPORARY
    assert "refused the credentials" in result.output and shared in result.output
    assert "wrong-password-771" not in result.output
    assert sandbox.place_attempts() == {}


def test_the_password_comes_from_a_pgpass_file(
    shared: str,
    postgres_server: PostgresServer,
    sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(
        f"127.0.0.1:{postgres_server.port}:*:{postgres_server.user}:{postgres_server.password}\n"
    )
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    result = run(["place-order", order_file(tmp_path, "PGPASS-1")])
    assert result.exit_code == 0, result.output
    assert sandbox.place_attempts() == {"PGPASS-1": 1}


def test_a_connection_lost_after_the_post_keeps_the_answer_and_says_unknown(
    shared: str, postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.faultserver import fault_server

    lax = LaxServer("v1")

    def cut_connections() -> None:
        postgres_server.terminate_clients(database(shared))

    lax.on_post = cut_connections
    lax.gate.set()
    with fault_server() as faults:
        faults.respond("/v1/orders/place-order", lax)
        monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/v1")
        monkeypatch.setenv("KALIXO_TOKEN", "lax-server-token-0123456789")
        process = kalixo("place-order", order_file(tmp_path, "LOST-1"), "-o", "json")
        out, err = process.communicate(timeout=120)
    assert process.returncode == ExitCode.PLACED_NOT_RECORDED, err
    placed = json.loads(out)
    assert placed["externalOrderCode"] == "LOST-1" and placed["orderId"]  # the answer, kept
    assert "lost the connection to the shared journal" in err and shared in err
    assert "orders resolve LOST-1" in err
    # The claim is all the shared journal knows: with its process gone, unknown to all.
    shown = json.loads(run(["orders", "show", "LOST-1", "-o", "json"]).stdout)
    assert shown["state"] == "unknown"
    assert dict(lax.counts) == {"LOST-1": 1}
    again = run(["place-order", order_file(tmp_path, "LOST-1")])
    assert again.exit_code == ExitCode.OUTCOME_UNKNOWN and dict(lax.counts) == {"LOST-1": 1}


# -- orders list / show / resolve, import -------------------------------------------------


def test_orders_list_show_and_resolve_on_the_shared_journal_with_the_host(
    shared: str, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    assert run(["place-order", order_file(tmp_path, "LIST-1")]).exit_code == 0
    table = run(["orders", "list", "-o", "table"])
    assert "Host" in table.output and "LIST-1" in table.output
    import socket

    assert socket.gethostname() in table.output
    shown = json.loads(run(["orders", "show", "LIST-1", "-o", "json"]).stdout)
    assert shown["state"] == "placed" and shown["sentBy"]["host"] == socket.gethostname()
    assert shown["sentBy"]["user"]
    with PostgresJournal(shared) as journal:
        assert journal.claim(sandbox.v1_url, "LIST-2", {"n": 2}).won
        journal.abandon_in_flight(sandbox.v1_url, ["LIST-2"], "killed")
    assert run(["orders", "resolve", "LIST-2", "--order-id", "77"]).exit_code == 0
    listed = {
        row["externalOrderCode"]: row
        for row in json.loads(run(["orders", "list", "-o", "json"]).stdout)
    }
    assert listed["LIST-2"]["orderId"] == 77 and listed["LIST-2"]["state"] == "placed"


def test_import_copies_a_local_journal_and_never_overwrites(
    shared: str, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local" / "journal.sqlite3"
    monkeypatch.setenv("KALIXO_JOURNAL_URL", f"sqlite://{local}")
    for code in ("IMP-1", "IMP-2"):
        assert run(["place-order", order_file(tmp_path, code)]).exit_code == 0
    monkeypatch.setenv("KALIXO_JOURNAL_URL", shared)
    first = json.loads(run(["journal", "import", str(local), "-o", "json"]).stdout)
    assert (first["added"], first["present"], first["conflicts"]) == (2, 0, [])
    again = run(["journal", "import", str(local), "-o", "json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["present"] == 2
    import psycopg

    with psycopg.connect(shared, autocommit=True) as db:  # the team's record says otherwise
        db.execute("UPDATE kalixo_orders SET order_id = 4242 WHERE code = 'IMP-2'")
    clash = run(["journal", "import", str(local), "-o", "json"])
    assert clash.exit_code == ExitCode.REJECTED
    report = json.loads(clash.stdout)
    assert [c["externalOrderCode"] for c in report["conflicts"]] == ["IMP-2"]
    assert "conflict: IMP-2" in clash.stderr
    shown = json.loads(run(["orders", "show", "IMP-2", "-o", "json"]).stdout)
    assert shown["orderId"] == 4242  # not overwritten
    assert run(["journal", "import", str(tmp_path / "nope.sqlite3")]).exit_code == ExitCode.USAGE


# -- two machines, one batch ---------------------------------------------------------------


def machine(tmp_path: Path, name: str, url: str, server: PostgresServer) -> dict[str, str]:
    """A machine of its own: config and data folders, and its own ~/.pgpass."""
    env = dict(os.environ)
    env.pop("PGPASSWORD", None)
    home = tmp_path / name
    home.mkdir()
    env.update(
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(home / "cache"),
        PGPASSFILE=str(home / "pgpass"),
        KALIXO_TIMEOUT="300",
    )  # POSTs are held until both machines have started
    env.pop("KALIXO_JOURNAL_URL", None)
    (home / "pgpass").write_text(f"*:{server.port}:*:{server.user}:{server.password}\n")
    (home / "pgpass").chmod(0o600)
    done = subprocess.run(
        [sys.executable, "-m", "kalixo_cli", "config", "set", "journal_url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return env


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_two_machines_on_one_batch_post_every_order_exactly_once(
    version: str,
    shared: str,
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.faultserver import fault_server

    lax = LaxServer(version)
    codes = [f"TEAM-{i:02d}" for i in range(12)]
    batch = write_jsonl(tmp_path / "batch.jsonl", codes)
    with fault_server() as faults:
        faults.respond("/v1/orders/place-order" if version == "v1" else "/v2/orders", lax)
        monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/{version}")
        if version == "v1":
            monkeypatch.setenv("KALIXO_TOKEN", "lax-server-token-0123456789")
        else:
            monkeypatch.setenv("KALIXO_API_VERSION", "v2")
            monkeypatch.setenv("KALIXO_API_KEY", "lax-server-key-0123456789")
        a = machine(tmp_path, "machine-a", shared, postgres_server)
        b = machine(tmp_path, "machine-b", shared, postgres_server)
        try:
            lax.free = 1  # A's first POST is answered: its pacer then lets three go
            first = kalixo("place-orders", batch, "-c", "3", "-o", "jsonl", env=a)
            wait_until(lambda: lax.in_flight == 3, "machine A's three POSTs in flight", timeout=240)
            lax.free = 1  # and so is B's first
            second = kalixo("place-orders", batch, "-c", "3", "-o", "jsonl", env=b)
            wait_until(
                lambda: lax.in_flight == 6 or second.poll() is not None,
                "machine B's POSTs",
                timeout=240,
            )
        finally:
            lax.gate.set()
        out_a, err_a = first.communicate(timeout=180)
        out_b, err_b = second.communicate(timeout=180)
    assert dict(lax.counts) == dict.fromkeys(codes, 1), (err_a, err_b)
    lines = [json.loads(line) for line in (out_a + out_b).splitlines()]
    placed = sorted(line["externalOrderCode"] for line in lines if line["outcome"] == "placed")
    assert placed == codes, (out_a, out_b, err_a, err_b)  # each placed by one machine
    for env in (a, b):
        listed = subprocess.run(
            [sys.executable, "-m", "kalixo_cli", "orders", "list", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert sorted(row["externalOrderCode"] for row in rows) == codes
        assert {row["state"] for row in rows} == {"placed"}
    assert not (tmp_path / "machine-a" / "data" / "kalixo" / "journal.sqlite3").exists()


def test_the_password_can_live_in_the_os_keyring(
    shared: str,
    postgres_server: PostgresServer,
    sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_keyring import MemoryKeyring

    no_keyring = run(["journal", "set-password", "--with-password"], input="x\n")
    assert no_keyring.exit_code == ExitCode.USAGE and "~/.pgpass" in no_keyring.output
    import keyring

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.delenv("KALIXO_NO_KEYRING")
    monkeypatch.delenv("PGPASSWORD")
    try:
        stored = run(
            ["journal", "set-password", "--with-password"], input=postgres_server.password + "\n"
        )
        assert stored.exit_code == 0, stored.output
        assert postgres_server.password not in stored.output
        assert backend.secrets == {("kalixo", "default:journal_password"): postgres_server.password}
        result = run(["place-order", order_file(tmp_path, "KEYRING-1")])
        assert result.exit_code == 0, result.output
        assert sandbox.place_attempts() == {"KEYRING-1": 1}
    finally:
        keyring.set_keyring(previous)


def test_orders_sync_settles_the_shared_journal(
    shared: str, v2: RunningSandbox, tmp_path: Path
) -> None:
    placed = run(["place-order", order_file(tmp_path, "SYNC-1"), "-o", "json"])
    assert placed.exit_code == 0, placed.output
    order_id = json.loads(placed.stdout)["orderId"]
    import psycopg

    with psycopg.connect(shared, autocommit=True) as db:  # as if the answer had been lost
        db.execute(
            "UPDATE kalixo_orders SET state = 'unknown', order_id = NULL, "
            "owner_token = 'gone', owner_host = 'machine-b', lease_until = NULL "
            "WHERE code = 'SYNC-1'"
        )
    synced = run(["orders", "sync", "-o", "json"])
    assert synced.exit_code == 0, synced.output
    shown = json.loads(run(["orders", "show", "SYNC-1", "-o", "json"]).stdout)
    assert shown["state"] == "placed" and shown["orderId"] == order_id
    assert v2.place_attempts() == {"SYNC-1": 1}  # sync asked; it never sends
