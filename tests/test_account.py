"""wallet, ping and doctor against the live sandbox (v1 and v2), and doctor's rules."""

from __future__ import annotations

import ast
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from kalixo_cli.api.probe import Probe
from kalixo_cli.commands.account import Check, doctor_exit_code, network_checks
from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.errors import AuthRejected, ExitCode, TransportError
from kalixo_cli.sandbox import SANDBOX_TOKEN
from kalixo_cli.sandbox.server import RunningSandbox
from tests.helpers import Clock, run

CHECK_NAMES = [
    "config file",
    "journal",
    "profile",
    "api version",
    "credential",
    "connectivity",
    "credential accepted",
    "clock",
]


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def checks_of(result: Result) -> dict[str, dict[str, Any]]:
    data = json.loads(result.stdout)
    assert [check["check"] for check in data] == CHECK_NAMES or data[0]["status"] == "fail"
    return {check["check"]: check for check in data}


def statuses(result: Result) -> dict[str, str]:
    return {name: check["status"] for name, check in checks_of(result).items()}


# --------------------------------------------------------------------------------------
# wallet


def test_wallet_shows_the_balances_in_major_units(v2: RunningSandbox) -> None:
    result = run(["wallet", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    wallet = json.loads(result.stdout)
    assert wallet == {
        "balances": {c: amount / 100 for c, amount in v2.balances().items()},
        "lowBalance": False,
        "threshold": v2.wallet.threshold / 100,
    }
    assert result.stderr == ""


@pytest.fixture
def low_gbp(v2: RunningSandbox) -> Iterator[RunningSandbox]:
    before = v2.balances()["GBP"]
    v2.set_balance("GBP", 4_321)
    try:
        yield v2
    finally:
        v2.set_balance("GBP", before)


def test_a_low_wallet_is_flagged_in_the_table_and_warned_about(low_gbp: RunningSandbox) -> None:
    result = run(["wallet", "-o", "table"])
    assert result.exit_code == 0
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert any(line.split() == ["GBP", "43.21"] for line in lines)
    assert "Low balance  yes (alert threshold 100)" in lines
    assert "warning: the wallet balance is low" in result.stderr
    assert json.loads(run(["wallet", "-o", "json"]).stdout)["lowBalance"] is True


def test_a_healthy_wallet_says_so(v2: RunningSandbox) -> None:
    result = run(["wallet", "-o", "table"])
    assert "Low balance  no (alert threshold 100)" in result.stdout
    assert any(line.split()[:1] == ["GBP"] for line in result.stdout.splitlines())


def test_wallet_on_v1_says_v1_has_none_and_exits_2(sandbox: RunningSandbox) -> None:
    result = run(["wallet"])
    assert result.exit_code == ExitCode.USAGE and result.stdout == ""
    assert "API v1 has no wallet endpoint" in result.stderr
    assert "KALIXO_API_VERSION=v2" in result.stderr
    assert sandbox.request_count() == 0


def test_wallet_with_a_refused_key_exits_4(
    v2: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_API_KEY", "kal_test_not-the-sandbox-key-0000")
    assert run(["wallet"]).exit_code == ExitCode.AUTH


# --------------------------------------------------------------------------------------
# ping


def test_ping_gives_status_server_time_and_round_trip(v2: RunningSandbox) -> None:
    result = run(["ping", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "ok" and answer["timestamp"].endswith("Z")
    assert 0 <= answer["roundTripMs"] < 5000 and abs(answer["clockSkewSeconds"]) < 5
    table = run(["ping", "-o", "table"]).stdout
    assert "Status" in table and "Round trip" in table and " ms" in table
    assert v2.request_count("GET", "/v2/ping") == 2


def test_ping_warns_of_a_clock_far_off(v2: RunningSandbox, sandbox_clock: Clock) -> None:
    sandbox_clock.advance(600)
    result = run(["ping", "-o", "json"])
    assert result.exit_code == 0 and 590 < json.loads(result.stdout)["clockSkewSeconds"] < 610
    assert "clock is 600 s behind the server's" in result.stderr


def test_ping_on_v1_exits_2_and_points_to_doctor(sandbox: RunningSandbox) -> None:
    result = run(["ping"])
    assert result.exit_code == ExitCode.USAGE and "API v1 has no ping" in result.stderr
    assert "kalixo doctor" in result.stderr and sandbox.request_count() == 0


def test_ping_unreachable_exits_5(
    v2: RunningSandbox, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("KALIXO_API_URL", f"http://127.0.0.1:{closed_port}/v2")
    assert run(["ping"]).exit_code == ExitCode.TEMPORARY


# --------------------------------------------------------------------------------------
# doctor


def test_doctor_on_a_healthy_v1_setup_is_all_ok(sandbox: RunningSandbox) -> None:
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert set(statuses(result).values()) == {"ok"}
    checks = checks_of(result)
    assert "API v1" in checks["profile"]["detail"]
    assert "catalog/products" in checks["connectivity"]["detail"]
    assert SANDBOX_TOKEN not in result.stdout + result.stderr
    assert (
        "(" in checks["credential"]["detail"]
        and "env KALIXO_TOKEN" in checks["credential"]["detail"]
    )
    assert sandbox.request_count("GET", "/v1/catalog/products") == 1


def test_doctor_on_a_healthy_v2_setup_pings(v2: RunningSandbox) -> None:
    from kalixo_cli.sandbox import SANDBOX_API_KEY

    result = run(["doctor", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert set(statuses(result).values()) == {"ok"}
    assert SANDBOX_API_KEY not in result.stdout + result.stderr
    assert v2.request_count("GET", "/v2/ping") == 1


def test_doctor_table_has_a_line_a_check(sandbox: RunningSandbox) -> None:
    result = run(["doctor", "-o", "table"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * len(CHECK_NAMES)
    assert "8 ok" in result.stderr


def test_doctor_with_a_refused_token_exits_4(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_TOKEN", "not-a-valid-token-0123456789")
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == ExitCode.AUTH
    got = statuses(result)
    assert got["connectivity"] == "ok" and got["credential accepted"] == "fail"
    assert "HTTP 401" in checks_of(result)["credential accepted"]["detail"]
    assert "not-a-valid-token-0123456789" not in result.stdout + result.stderr


def test_doctor_with_a_refused_key_exits_4(
    v2: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_API_KEY", "kal_test_not-the-sandbox-key-0000")
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == ExitCode.AUTH
    assert statuses(result)["credential accepted"] == "fail"


def test_doctor_without_a_credential_exits_4_and_skips_the_network(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALIXO_TOKEN")
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == ExitCode.AUTH
    got = statuses(result)
    assert got["credential"] == "fail"
    assert [got[name] for name in CHECK_NAMES[5:]] == ["skip"] * 3
    assert sandbox.request_count() == 0


def test_doctor_with_an_unreachable_url_exits_5(
    sandbox: RunningSandbox, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_API_URL", f"http://127.0.0.1:{closed_port}/v1")
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == ExitCode.TEMPORARY
    checks = checks_of(result)
    assert checks["connectivity"]["status"] == "fail"
    assert "connection refused" in checks["connectivity"]["detail"]
    assert checks["credential accepted"]["status"] == "skip"


def test_doctor_warns_of_clock_skew_beyond_30_seconds(
    v2: RunningSandbox, sandbox_clock: Clock
) -> None:
    sandbox_clock.advance(-45)
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == 0
    clock = checks_of(result)["clock"]
    assert clock["status"] == "warn" and "45 s ahead of the server's" in clock["detail"]


def test_doctor_fails_a_version_that_contradicts_the_url(
    v2: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_API_URL", v2.v1_url)
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == ExitCode.USAGE
    assert statuses(result)["api version"] == "fail"


def test_doctor_warns_of_a_url_without_a_version(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_API_URL", sandbox.base_url)
    result = run(["doctor", "-o", "json"])
    assert statuses(result)["api version"] == "warn"
    assert statuses(result)["credential accepted"] == "fail"  # 404: not an API base URL
    assert result.exit_code == ExitCode.USAGE


def config_file(isolated: Path, mode: int, text: str = "retries = 2\n") -> Path:
    path = isolated / "xdg-config" / "kalixo" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_doctor_accepts_a_0600_config_file(sandbox: RunningSandbox, isolated: Path) -> None:
    path = config_file(isolated, 0o600)
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == 0
    assert checks_of(result)["config file"]["detail"] == f"{path} (mode 0600)"


def test_doctor_warns_of_a_config_file_others_can_read(
    sandbox: RunningSandbox, isolated: Path
) -> None:
    path = config_file(isolated, 0o644)
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == 0
    check = checks_of(result)["config file"]
    assert check["status"] == "warn" and "0644" in check["detail"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_doctor_fails_an_unparsable_config_file(sandbox: RunningSandbox, isolated: Path) -> None:
    config_file(isolated, 0o600, "retries = [\n")
    result = run(["doctor", "-o", "json"])
    assert result.exit_code == ExitCode.USAGE
    (only,) = json.loads(result.stdout)
    assert only["check"] == "config file" and only["status"] == "fail"


def test_doctor_names_the_profile_and_where_the_version_comes_from(sandbox: RunningSandbox) -> None:
    detail = checks_of(run(["doctor", "-o", "json"]))["profile"]["detail"]
    assert detail.startswith("profile default (default); API v1 (the path of ")


# --------------------------------------------------------------------------------------
# doctor's rules, without a server.


def probe(**changes: Any) -> Probe:
    base: dict[str, Any] = dict(
        url="https://api.kalixo.io/v2/ping",
        status=200,
        round_trip_ms=40.0,
        server_time=1000.0,
        received_at=1000.02,
        data={"status": "ok"},
        error=None,
    )
    return Probe(**{**base, **changes})


def test_skew_is_measured_from_the_middle_of_the_round_trip() -> None:
    assert probe().clock_skew == pytest.approx(0.0)
    assert probe(server_time=1031.0).clock_skew == pytest.approx(31.0)
    assert probe(server_time=None).clock_skew is None


def test_network_checks_read_one_probe() -> None:
    ok = network_checks(probe(), ApiVersion.V2)
    assert [(c.name, c.status) for c in ok] == [
        ("connectivity", "ok"),
        ("credential accepted", "ok"),
        ("clock", "ok"),
    ]
    skewed = network_checks(probe(server_time=1031.0), ApiVersion.V2)
    assert skewed[2].status == "warn" and "31 s behind" in skewed[2].detail
    refused = network_checks(probe(status=401, error=AuthRejected("no", status=401)), ApiVersion.V1)
    assert [c.status for c in refused] == ["ok", "fail", "ok"]
    assert refused[1].exit_code == ExitCode.AUTH
    down = network_checks(
        probe(status=None, error=TransportError("cannot reach it")), ApiVersion.V1
    )
    assert [c.status for c in down] == ["fail", "skip", "skip"]
    busy = network_checks(probe(status=503, error=None, server_time=None), ApiVersion.V2)
    assert [c.status for c in busy] == ["fail", "skip", "warn"]


def test_unreachable_wins_over_refused_wins_over_other_failures() -> None:
    def fail(code: ExitCode | None) -> Check:
        return Check("x", "fail", "", exit_code=code)

    assert doctor_exit_code([Check("x", "ok", ""), Check("y", "warn", "")]) == ExitCode.OK
    assert doctor_exit_code([fail(None)]) == ExitCode.USAGE
    assert doctor_exit_code([fail(ExitCode.USAGE), fail(ExitCode.AUTH)]) == ExitCode.AUTH
    assert doctor_exit_code([fail(ExitCode.AUTH), fail(ExitCode.TEMPORARY)]) == ExitCode.TEMPORARY


# --------------------------------------------------------------------------------------
# Start-up cost: help for the new commands loads nothing heavy.

HEAVY = ("requests", "urllib3", "pydantic", "rich")
PROBE = """
import atexit, sys
atexit.register(lambda: print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}),
                              file=sys.__stderr__))
sys.argv = ["kalixo", *{args!r}]
from kalixo_cli.cli import main
main()
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["catalog", "--help"],
        ["catalog", "list", "-h"],
        ["wallet", "--help"],
        ["doctor", "--help"],
    ],
)
def test_help_of_the_new_commands_loads_nothing_heavy(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY), args=args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ast.literal_eval(result.stderr.strip().splitlines()[-1]) == []
