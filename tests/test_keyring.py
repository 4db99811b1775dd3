"""Credentials in the OS keyring when one is there: the config file keeps only a marker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.store.config import config_path
from tests.helpers import run

TOKEN = "keyring-token-0123456789abcdefghij"


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring leaves it unannotated
        self.secrets: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        del self.secrets[(service, username)]


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.delenv("KALIXO_NO_KEYRING")
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_a_token_goes_to_the_keyring_and_only_a_marker_to_the_file(
    memory_keyring: MemoryKeyring,
) -> None:
    assert run(["auth", "set-token", "--with-token"], input=TOKEN).exit_code == 0
    assert memory_keyring.secrets == {("kalixo", "default:token"): TOKEN}
    assert TOKEN not in config_path().read_text()
    assert "@keyring" in config_path().read_text()
    status = json.loads(run(["auth", "status", "-o", "json"]).stdout)
    assert status["store"] == "OS keyring (MemoryKeyring)"
    assert status["source"] == "OS keyring (profile default)"
    assert TOKEN[-4:] in status["masked"]
    assert run(["auth", "logout"]).exit_code == 0
    assert memory_keyring.secrets == {}


def test_without_a_keyring_the_file_holds_it_0600(isolated: Path) -> None:
    run(["auth", "set-token", "--with-token"], input=TOKEN)
    assert TOKEN in config_path().read_text()
    status = json.loads(run(["auth", "status", "-o", "json"]).stdout)
    assert status["store"] == "config file (mode 0600)"


def test_a_marker_whose_keyring_is_gone_is_a_clear_error(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(["auth", "set-token", "--with-token"], input=TOKEN)
    monkeypatch.setenv("KALIXO_NO_KEYRING", "1")
    result = run(["auth", "status"])
    assert result.exit_code == ExitCode.USAGE
    assert "OS keyring" in result.stderr and "store it again" in result.stderr
