"""The CLI as a whole: exit codes for bugs and interrupts, help, docs that stay true."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer

from kalixo_cli.cli import app, hoist_global_options
from kalixo_cli.domain.errors import EXIT_CODE_MEANINGS, ExitCode
from tests.faultserver import FaultServer, Reply
from tests.helpers import record_exit, run

ROOT = Path(__file__).parent.parent


def test_a_bug_exits_1_without_a_traceback(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults.on("/v1/orders/retrieve-order", Reply(200, {"orderId": 1, "products": []}))

    def broken(body: object) -> None:
        raise ZeroDivisionError("a planted bug")

    monkeypatch.setattr("kalixo_cli.api.v1.normalize_order", broken)
    result = run(["retrieve-order", "1"])
    assert result.exit_code == ExitCode.UNEXPECTED
    assert "unexpected error: ZeroDivisionError: a planted bug" in result.stderr
    assert "Traceback" not in result.stderr
    verbose = run(["--verbose", "retrieve-order", "1"])
    assert verbose.exit_code == ExitCode.UNEXPECTED
    assert "Traceback" in verbose.stderr


def test_ctrl_c_exits_130(faults: FaultServer, isolated: Path) -> None:
    faults.on("/v1/orders/retrieve-order", Reply(action="hang"))
    env = {**os.environ, "KALIXO_API_URL": f"{faults.url}/v1", "KALIXO_TOKEN": "t" * 24}
    process = subprocess.Popen(
        [sys.executable, "-m", "kalixo_cli", "retrieve-order", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # waits for the event (the request arrived), not a time
    while faults.count() == 0:
        assert time.monotonic() < deadline, "the request never reached the server"
        time.sleep(0.05)
    assert faults.count() == 1
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=20)
    assert record_exit(process.returncode) == ExitCode.INTERRUPTED
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert stdout == ""


def test_usage_errors_exit_2() -> None:
    assert run(["place-order"]).exit_code == ExitCode.USAGE
    assert run(["no-such-command"]).exit_code == ExitCode.USAGE
    assert run(["retrieve-order", "1", "-o", "yaml"]).exit_code == ExitCode.USAGE


def test_global_options_move_before_the_command() -> None:
    assert hoist_global_options(["retrieve-order", "1", "--sandbox", "-o", "json"]) == [
        "--sandbox",
        "retrieve-order",
        "1",
        "-o",
        "json",
    ]
    assert hoist_global_options(
        ["--api-url", "http://x/v1", "retrieve-order", "1", "--verbose"]
    ) == ["--api-url", "http://x/v1", "--verbose", "retrieve-order", "1"]
    assert hoist_global_options(["place-order", "--", "--sandbox"]) == [
        "place-order",
        "--",
        "--sandbox",
    ]


def _leaf_commands(group: object, prefix: list[str]) -> list[list[str]]:
    found: list[list[str]] = []
    for name, sub in getattr(group, "commands", {}).items():
        path = [*prefix, name]
        found.extend(_leaf_commands(sub, path) if getattr(sub, "commands", None) else [path])
    return found


def test_every_command_has_a_summary_and_an_example() -> None:
    commands = _leaf_commands(typer.main.get_command(app), [])
    assert ["place-order"] in commands and ["sandbox", "serve"] in commands
    for path in commands:
        result = run([*path, "--help"])
        assert result.exit_code == 0, path
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        assert lines[0].startswith("Usage: kalixo"), path
        assert lines[1][0].isupper() and lines[1].endswith("."), (path, lines[1])
        assert re.search(r"Example: kalixo ", result.stdout), path


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", readme)[:2]


def test_readme_opens_with_the_two_commands() -> None:
    first, second = _readme_commands()
    assert first.endswith("kalixo --sandbox place-order examples/order.json")
    assert "pip install" in first and "pip install" in second and "pytest" in second


def test_ci_runs_the_readme_test_command_word_for_word() -> None:
    _, test_command = _readme_commands()
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_documents_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} | " in readme
    assert set(EXIT_CODE_MEANINGS) == set(ExitCode)


def test_readme_usage_blocks_are_fresh() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_readme", ROOT / "scripts" / "gen_readme.py")
    assert spec and spec.loader
    gen_readme = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_readme)
    text = (ROOT / "README.md").read_text()
    assert "<!-- usage: place-order -->" in text
    assert gen_readme.render(text) == text, "run .venv/bin/python scripts/gen_readme.py"


HEAVY = ("requests", "urllib3", "pydantic", "rich", "fastapi", "uvicorn", "starlette")
PROBE = """
import atexit, sys
heavy = {heavy!r}
atexit.register(lambda: print(sorted({{m.split('.')[0] for m in sys.modules}} & set(heavy)),
                              file=sys.__stderr__))
sys.argv = ["kalixo", *{args!r}]
from kalixo_cli.cli import main
main()
"""


def _heavy_modules_loaded(args: list[str], env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY, args=args)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )
    return list(ast.literal_eval(result.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["config", "path"], ["place-order", "--help"]]
)
def test_help_version_and_config_load_nothing_heavy(args: list[str]) -> None:
    assert _heavy_modules_loaded(args, {}) == []


def test_retrieve_order_json_loads_requests_only(faults: FaultServer) -> None:
    faults.on("/v1/orders/retrieve-order", Reply(200, {"orderId": 1, "products": []}))
    env = {"KALIXO_API_URL": f"{faults.url}/v1", "KALIXO_TOKEN": "t" * 24}
    assert _heavy_modules_loaded(["retrieve-order", "1", "-o", "json"], env) == [
        "requests",
        "urllib3",
    ]
