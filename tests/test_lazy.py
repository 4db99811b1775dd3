"""Lazy commands: `--help` lists every command without importing one, a command imports only
its own module, and what the user sees is the same as if every command had been built.

The import lists below are pinned on purpose: a new module-level import on the start-up
path of `retrieve-order` or `--help` fails here, not months later in a benchmark. If an
import is really needed there, add it to the list and say why in the commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import typer.main
from typer._click import Context
from typer.testing import CliRunner

from kalixo_cli.cli import COMMANDS, KalixoGroup, app
from tests.faultserver import FaultServer, Reply

PROBE = """
import atexit, sys
def report():
    names = set(sys.modules)
    import json
    json.dump({"kalixo": sorted(n for n in names if n.split(".")[0] == "kalixo_cli"),
               "top": sorted({n.split(".")[0] for n in names}),
               "stdlib": sorted(sys.stdlib_module_names)}, sys.__stderr__)
    sys.__stderr__.write("\\n")
atexit.register(report)
sys.argv = ["kalixo", *%r]
from kalixo_cli.cli import main
main()
"""


def loaded_modules(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """The modules a real `kalixo ARGS` process has imported when it exits."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE % (args,)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    report: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    stdlib = set(report.pop("stdlib"))
    top = set(report.pop("top"))
    report["third_party"] = sorted(
        name for name in top - stdlib - {"kalixo_cli", "__main__"} if not name.startswith("_")
    )
    report["stdlib"] = top & stdlib
    report["exit"] = result.returncode
    return report


# What typer itself brings (with its vendored click), and requests with what it imports
# while sending (urllib3 looks for optional decoders such as backports.zstd at request time).
TYPER = {"typer", "shellingham", "annotated_doc"}
REQUESTS = {
    "requests",
    "urllib3",
    "idna",
    "certifi",
    "charset_normalizer",
    "backports",
    "cython_runtime",
}

HELP_MODULES = [
    "kalixo_cli",
    "kalixo_cli.cli",
    "kalixo_cli.domain",
    "kalixo_cli.domain.errors",
    "kalixo_cli.lazy",
]
RETRIEVE_MODULES = sorted(
    [
        *HELP_MODULES,
        "kalixo_cli.api",
        "kalixo_cli.api.base",
        "kalixo_cli.api.http",
        "kalixo_cli.api.v1",
        # every request is bounded in time and size, and every output is sanitised
        "kalixo_cli.api.limits",
        "kalixo_cli.domain.sanitize",
        "kalixo_cli.commands",
        "kalixo_cli.commands.order",
        "kalixo_cli.commands.context",
        "kalixo_cli.commands.options",
        "kalixo_cli.store",
        "kalixo_cli.store.config",
        "kalixo_cli.domain.api_version",
        "kalixo_cli.domain.normalize",
        "kalixo_cli.domain.order",
        "kalixo_cli.domain.redact",
        "kalixo_cli.terminal",
        "kalixo_cli.terminal.output",
        "kalixo_cli.api.retry",
        "kalixo_cli.workflows",
        "kalixo_cli.workflows.session",
    ]
)
# Standard modules that only some branches need: never on these paths. (requests brings csv
# and zipfile through importlib.metadata, so those count only for --help.)
BRANCH_ONLY = {
    "tomllib",
    "sqlite3",
    "decimal",
    "asyncio",
    "concurrent",
    "zoneinfo",
    "xml",
    "multiprocessing",
    "sysconfig",
}


def test_help_imports_no_command_module() -> None:
    report = loaded_modules(["--help"])
    assert report["exit"] == 0
    assert report["kalixo"] == HELP_MODULES
    assert set(report["third_party"]) <= TYPER
    assert not report["stdlib"] & (BRANCH_ONLY | {"logging", "json", "csv"})


def test_retrieve_order_imports_its_own_module_only(faults: FaultServer) -> None:
    faults.on("/v1/orders/retrieve-order", Reply(200, {"orderId": 7, "products": []}))
    report = loaded_modules(["retrieve-order", "7", "-o", "json"])
    assert report["exit"] == 0
    assert report["kalixo"] == RETRIEVE_MODULES
    # platformdirs finds the config file; nothing else beyond typer and requests
    assert set(report["third_party"]) <= TYPER | REQUESTS | {"platformdirs"}
    assert "requests" in report["third_party"]
    assert not report["stdlib"] & BRANCH_ONLY


def test_every_summary_is_the_first_paragraph_of_the_commands_help() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, KalixoGroup)
    for name, entry in COMMANDS.items():
        command = group.commands[name]
        first_paragraph = (command.help or "").split("\n\n")[0]
        assert entry.summary.split() == first_paragraph.split(), (
            f"COMMANDS[{name!r}].summary differs from the command's help: {first_paragraph!r}"
        )
        for limit in (20, 45, 70, 120):
            assert group.lazy.peek(name).get_short_help_str(limit) == command.get_short_help_str(
                limit
            )


@pytest.mark.parametrize("width", [50, 80, 100, 160])
def test_root_help_is_the_same_whether_commands_are_loaded_or_not(width: int) -> None:
    def root_help(load_all: bool) -> str:
        group = typer.main.get_command(app)
        assert isinstance(group, KalixoGroup)
        if load_all:
            for name in COMMANDS:
                group.commands[name]  # builds it
            assert group.lazy.loaded() == list(COMMANDS)
        ctx = Context(group, info_name="kalixo", terminal_width=width, max_content_width=width)
        text = group.get_help(ctx)
        if not load_all:
            assert group.lazy.loaded() == [], "--help built a command"
        return text

    assert root_help(load_all=False) == root_help(load_all=True)


def test_commands_and_groups_are_registered_as_typer_would() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, KalixoGroup)
    assert list(group.commands) == list(COMMANDS)
    orders = group.commands["orders"]
    assert isinstance(orders, typer.core.TyperGroup)
    assert isinstance(group.commands["retrieve-order"], typer.core.TyperCommand)
    assert "list" in orders.commands


def test_a_mistyped_command_is_suggested_without_loading_commands() -> None:
    result = CliRunner().invoke(app, ["retrive-order", "1"])
    assert result.exit_code == 2
    assert "Did you mean 'retrieve-order'?" in result.output
