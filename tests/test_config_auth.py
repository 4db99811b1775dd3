"""Settings precedence, the 0600 config file, and tokens that never show."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.store.config import config_path
from tests.helpers import run

TOKEN = "tok_live_5f1e2d3c4b5a69788796a5b4c3d2e1f0"


@pytest.fixture
def umask_000() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def set_token(token: str = TOKEN) -> Result:
    return run(["auth", "set-token", "--with-token"], input=token + "\n")


def test_config_path_follows_xdg_config_home(isolated: Path) -> None:
    result = run(["config", "path"])
    assert result.stdout.strip() == str(isolated / "xdg-config" / "kalixo" / "config.toml")


def test_set_token_writes_a_0600_file_in_a_0700_folder_under_umask_000(umask_000: None) -> None:
    result = set_token()
    assert result.exit_code == 0, result.stderr
    assert mode(config_path()) == 0o600
    assert mode(config_path().parent) == 0o700
    assert TOKEN not in result.stdout + result.stderr


def test_config_set_keeps_0600_under_umask_000(umask_000: None) -> None:
    assert run(["config", "set", "timeout", "12"]).exit_code == 0
    assert mode(config_path()) == 0o600


def test_auth_status_shows_source_and_masked_token_never_the_whole() -> None:
    set_token()
    result = run(["auth", "status", "-o", "json"])
    status = json.loads(result.stdout)
    assert status["authenticated"] is True
    assert status["source"].startswith("config ")
    assert TOKEN not in result.stdout
    assert status["masked"].startswith(TOKEN[:4]) and TOKEN[-4:] in status["masked"]
    table = run(["auth", "status", "-o", "table"])
    assert TOKEN not in table.stdout


def test_env_token_wins_over_the_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    set_token()
    monkeypatch.setenv("KALIXO_TOKEN", "env-token-abcdefghijklmnopqrstuvwxyz")
    status = json.loads(run(["auth", "status", "-o", "json"]).stdout)
    assert status["source"] == "env KALIXO_TOKEN"


def test_logout_removes_the_token_and_warns_about_env(monkeypatch: pytest.MonkeyPatch) -> None:
    set_token()
    assert run(["auth", "logout"]).exit_code == 0
    assert "token" not in config_path().read_text()
    assert json.loads(run(["auth", "status", "-o", "json"]).stdout)["authenticated"] is False
    monkeypatch.setenv("KALIXO_TOKEN", "env-token-abcdefghijklmnopqrstuvwxyz")
    assert "KALIXO_TOKEN is set" in run(["auth", "logout"]).stderr


def test_set_token_refuses_empty_and_multi_word_input() -> None:
    assert set_token("").exit_code == ExitCode.USAGE
    assert set_token("two words").exit_code == ExitCode.USAGE
    assert not config_path().exists()


def test_set_token_without_terminal_or_flag_says_how() -> None:
    result = run(["auth", "set-token"], input="")
    assert result.exit_code == ExitCode.USAGE
    assert "--with-token" in result.stderr


def test_a_token_is_never_a_command_line_argument() -> None:
    result = run(["config", "set", "token", TOKEN])
    assert result.exit_code == ExitCode.USAGE
    assert "kalixo auth set-token" in result.stderr
    assert TOKEN not in result.stderr
    assert not config_path().exists()
    assert run(["auth", "set-token", TOKEN]).exit_code == ExitCode.USAGE


def test_api_url_precedence_flag_over_env_over_file(monkeypatch: pytest.MonkeyPatch) -> None:
    def shown() -> dict[str, str]:
        return (
            dict(
                json.loads(run(["--api-url", flag, "config", "show", "-o", "json"]).stdout)[
                    "api_url"
                ]
            )
            if flag
            else dict(json.loads(run(["config", "show", "-o", "json"]).stdout)["api_url"])
        )

    flag = ""
    assert shown() == {"value": "https://api.kalixo.io/v1", "source": "default"}
    run(["config", "set", "api_url", "https://file.example/v1/"])
    assert shown()["value"] == "https://file.example/v1"
    assert shown()["source"].startswith("config ")
    monkeypatch.setenv("KALIXO_API_URL", "https://env.example/v1")
    assert shown() == {"value": "https://env.example/v1", "source": "env KALIXO_API_URL"}
    flag = "https://flag.example/v1"
    assert shown() == {"value": "https://flag.example/v1", "source": "--api-url"}


def test_config_show_masks_the_token() -> None:
    set_token()
    result = run(["config", "show", "-o", "json"])
    assert TOKEN not in result.stdout
    assert json.loads(result.stdout)["token"]["value"].endswith(f"({len(TOKEN)} chars)")
    assert TOKEN not in run(["config", "show", "-o", "table"]).stdout


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api_url", "ftp://x"),
        ("api_url", "https://u:p@host/v1"),
        ("timeout", "0"),
        ("timeout", "nan"),
        ("retries", "99"),
        ("nope", "1"),
    ],
)
def test_config_set_validates(key: str, value: str) -> None:
    result = run(["config", "set", key, value])
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("kalixo: error: ")


def test_config_unset_restores_the_default() -> None:
    run(["config", "set", "timeout", "12"])
    assert run(["config", "unset", "timeout"]).exit_code == 0
    shown = json.loads(run(["config", "show", "-o", "json"]).stdout)
    assert shown["timeout"]["source"] == "default"


def test_a_config_file_others_can_read_is_repaired_with_a_warning() -> None:
    set_token()
    os.chmod(config_path(), 0o644)
    result = run(["auth", "status", "-o", "json"])
    assert result.exit_code == 0
    assert "readable by others" in result.stderr
    assert mode(config_path()) == 0o600


def test_invalid_toml_is_a_clear_error() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text("api_url = \n")
    os.chmod(path, 0o600)
    result = run(["config", "show"])
    assert result.exit_code == ExitCode.USAGE
    assert "not valid TOML" in result.stderr
    assert str(path) in result.stderr


def test_unknown_key_in_the_file_is_named() -> None:
    path = config_path()
    path.parent.mkdir(parents=True)
    path.write_text('api_ulr = "https://x/v1"\n')
    os.chmod(path, 0o600)
    result = run(["config", "show"])
    assert result.exit_code == ExitCode.USAGE
    assert "api_ulr" in result.stderr


def test_invalid_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_TIMEOUT", "soon")
    result = run(["config", "show"])
    assert result.exit_code == ExitCode.USAGE
    assert "KALIXO_TIMEOUT" in result.stderr


def test_version_and_help_list_exit_codes() -> None:
    assert run(["--version"]).stdout.startswith("kalixo ")
    help_text = run(["--help"]).stdout
    for code in (0, 1, 2, 3, 4, 5, 6, 7, 130):
        assert f"{code:>3}  " in help_text
