"""Where output goes: results to stdout, everything else to stderr.

stdout carries only results (a table at a terminal, JSON otherwise), so a script can pipe
it; notes, warnings and errors go to stderr. Consoles are made per call because tests and
callers swap sys.stdout.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

OutputFormat = Literal["table", "json"]
PROG = "kalixo"


def resolve_format(requested: str | None, raw: bool) -> OutputFormat:
    """Table for people at a terminal, JSON for pipes, unless asked otherwise."""
    from kalixo_cli.errors import UsageError

    if raw and requested == "table":
        raise UsageError("--raw prints the server's JSON, so it cannot go with -o table")
    if raw:
        return "json"
    if requested is None:
        return "table" if sys.stdout.isatty() else "json"
    if requested not in ("table", "json"):
        raise UsageError(f"unknown output format {requested!r}", hint="use -o table or -o json")
    return requested  # type: ignore[return-value]


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(file=sys.stderr if stderr else sys.stdout, soft_wrap=False,
                   highlight=False)


def print_renderable(renderable: RenderableType) -> None:
    console().print(renderable)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_raw(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")


def warn(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {message}\n")


def error_lines(lines: list[str], hint: str | None) -> None:
    for line in lines:
        sys.stderr.write(f"{PROG}: error: {line}\n")
    if hint:
        sys.stderr.write(f"{PROG}: hint: {hint}\n")
