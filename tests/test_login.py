"""v1 sign-in against the sandbox's auth routes: login, refresh on 401, expiry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import Result

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.sandbox import SANDBOX_EMAIL, SANDBOX_PASSWORD
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.config import config_path
from tests.helpers import Clock, run

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "order.json")


@pytest.fixture
def signed_out(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> RunningSandbox:
    monkeypatch.delenv("KALIXO_TOKEN")
    return sandbox


def login(password: str = SANDBOX_PASSWORD) -> Result:
    return run(
        ["auth", "login", "--email", SANDBOX_EMAIL, "--password-stdin"], input=password + "\n"
    )


def stored() -> dict[str, str]:
    import tomllib

    return dict(tomllib.loads(config_path().read_text()))


def test_login_stores_tokens_never_the_password(signed_out: RunningSandbox) -> None:
    result = login()
    assert result.exit_code == 0, result.stderr
    values = stored()
    assert values["token"].count(".") == 2 and values["refresh_token"].count(".") == 2
    text = config_path().read_text()
    assert SANDBOX_PASSWORD not in text
    for secret in (SANDBOX_PASSWORD, values["token"], values["refresh_token"]):
        assert secret not in result.stdout + result.stderr
    assert "expires" in result.stderr


def test_status_shows_expiry_not_tokens(signed_out: RunningSandbox) -> None:
    login()
    result = run(["auth", "status", "-o", "json"])
    status = json.loads(result.stdout)
    assert status["accessTokenExpires"] and status["refreshTokenExpires"]
    assert status["accessTokenExpires"] < status["refreshTokenExpires"]
    assert stored()["token"] not in result.stdout


def test_a_wrong_password_is_exit_4_and_stores_nothing(signed_out: RunningSandbox) -> None:
    result = login("not-the-password")
    assert result.exit_code == ExitCode.AUTH
    assert "not-the-password" not in result.stderr
    assert not config_path().exists()


def test_an_expired_access_token_is_refreshed_once_and_the_request_repeated(
    signed_out: RunningSandbox, sandbox_clock: Clock
) -> None:
    login()
    order = json.loads(run(["place-order", EXAMPLE, "-o", "json"]).stdout)
    before = stored()
    sandbox_clock.advance(5 * 3600)  # past the access token's ~4 h, within the refresh's ~8 h
    signed_out.reset_counts()
    result = run(["retrieve-order", str(order["orderId"]), "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert signed_out.request_count("POST", "/v1/auth/refresh") == 1
    assert signed_out.request_count("GET", "/v1/orders/retrieve-order") == 2
    after = stored()
    assert after["token"] != before["token"]
    assert after["refresh_token"] != before["refresh_token"]


def test_an_expired_refresh_token_says_to_log_in_again(
    signed_out: RunningSandbox, sandbox_clock: Clock
) -> None:
    login()
    sandbox_clock.advance(9 * 3600)
    result = run(["retrieve-order", "1"])
    assert result.exit_code == ExitCode.AUTH
    assert "kalixo auth login" in result.stderr


def test_login_is_for_v1_only(signed_out: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_API_VERSION", "v2")
    result = login()
    assert result.exit_code == ExitCode.USAGE
    assert "kalixo auth set-key" in result.stderr
    assert signed_out.request_count() == 0
