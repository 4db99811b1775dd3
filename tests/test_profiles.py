"""Profiles, API versions from settings, and the guard rails on keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kalixo_cli.domain.errors import ExitCode
from tests.faultserver import FaultServer
from tests.helpers import run

LIVE_KEY = "kal_live_0123456789abcdef0123"
TEST_KEY = "kal_test_0123456789abcdef0123"


def shown(*args: str) -> dict[str, dict[str, Any]]:
    return dict(json.loads(run([*args, "config", "show", "-o", "json"]).stdout))


def test_profiles_hold_their_own_settings_and_credentials() -> None:
    assert (
        run(
            ["--profile", "v2", "config", "set", "api_url", "https://sandbox.kalixo.io/v2"]
        ).exit_code
        == 0
    )
    assert run(["--profile", "v2", "auth", "set-key", "--with-key"], input=TEST_KEY).exit_code == 0
    run(["auth", "set-token", "--with-token"], input="v1-token-0123456789abcdef")
    v2 = shown("--profile", "v2")
    assert v2["profile"]["value"] == "v2"
    assert v2["api_version"] == {"value": "v2", "source": v2["api_version"]["source"]}
    assert v2["api_key"]["value"].startswith("kal_") and TEST_KEY not in json.dumps(v2)
    default = shown()
    assert default["api_url"]["value"] == "https://api.kalixo.io/v1"
    assert default["api_key"]["value"] is None
    listed = run(["config", "profiles", "-o", "json"])
    assert [p["profile"] for p in json.loads(listed.stdout)] == ["default", "v2"]
    assert TEST_KEY not in listed.stdout and "v1-token-0123456789abcdef" not in listed.stdout


def test_kalixo_profile_selects_and_unknown_profiles_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run(["--profile", "other", "config", "set", "timeout", "9"])
    monkeypatch.setenv("KALIXO_PROFILE", "other")
    assert shown()["timeout"]["value"] == 9.0
    monkeypatch.setenv("KALIXO_PROFILE", "nope")
    result = run(["config", "show"])
    assert result.exit_code == ExitCode.USAGE
    assert "no profile 'nope'" in result.stderr and "other" in result.stderr


def test_env_vars_work_without_any_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_API_VERSION", "v2")
    assert shown()["api_url"]["value"] == "https://api.kalixo.io/v2"
    monkeypatch.delenv("KALIXO_API_VERSION")
    monkeypatch.setenv("KALIXO_API_URL", "https://sandbox.kalixo.io/v2")
    assert shown()["api_version"]["value"] == "v2"


@pytest.mark.parametrize(
    ("key", "url", "word"),
    [
        (LIVE_KEY, "sandbox", "live key"),
        (TEST_KEY, "https://api.kalixo.io/v2", "test key"),
    ],
)
def test_keys_never_go_to_the_wrong_kind_of_server(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch, key: str, url: str, word: str
) -> None:
    monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/v2" if url == "sandbox" else url)
    monkeypatch.setenv("KALIXO_API_KEY", key)
    result = run(["retrieve-order", "1"])
    assert result.exit_code == ExitCode.USAGE
    assert f"refusing to send a {word}" in result.stderr
    assert key not in result.stderr
    assert faults.count() == 0


def test_every_error_names_the_profile_and_url(faults: FaultServer) -> None:
    faults.on(
        "/v1/orders/retrieve-order",
    )
    result = run(["retrieve-order", "1", "-o", "json"])
    assert f"(profile default, {faults.url}/v1)" in result.stderr
    error = json.loads(result.stderr.strip().splitlines()[-1])["error"]
    assert error["profile"] == "default" and error["apiUrl"] == f"{faults.url}/v1"


def test_an_error_under_sandbox_never_names_the_configured_production_url() -> None:
    """Before the sandbox has started, the URL in force is not the configured one."""
    result = run(["--sandbox", "wallet", "-o", "json"])
    assert result.exit_code == ExitCode.USAGE
    assert "(profile default, the offline sandbox)" in result.stderr
    assert "api.kalixo.io" not in result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1])["error"]["apiUrl"] is None
