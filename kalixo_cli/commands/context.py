"""Per-invocation state shared by the commands: settings, the client, output choices.

Everything is built lazily: `kalixo config path` never loads requests, and a place-order
with an invalid file fails before any credential is looked up or sandbox started.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from kalixo_cli.domain.errors import (
    UsageError,
)
from kalixo_cli.terminal.output import OutputFormat, resolve_format, warn
from kalixo_cli.terminal.output import configure as configure_output
from kalixo_cli.workflows.session import Session

ENV_DEBUG = "KALIXO_DEBUG"

if TYPE_CHECKING:
    pass



class OutputChoice(StrEnum):
    table = "table"
    json = "json"


class OrderOutputChoice(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


OutputOption = Annotated[
    OutputChoice | None,
    typer.Option(
        "--output", "-o",
        help="Output format: table (default at a terminal) or json (default when piped).",
        show_default=False,
    ),
]
OrderOutputOption = Annotated[
    OrderOutputChoice | None,
    typer.Option(
        "--output", "-o",
        help="Output format: table (default at a terminal), json (default when piped), "
        "jsonl (one line per order) or csv (one row per PIN).",
        show_default=False,
    ),
]


def _set_jq(value: str | None) -> str | None:
    """Compiled while the command line is parsed: a bad expression ends the command (exit 2)
    before anything is read, looked up or sent."""
    if value is not None:
        from kalixo_cli.terminal.jqfilter import compile_jq
        from kalixo_cli.terminal.output import settings as output_settings

        output_settings.jq = compile_jq(value)
    return value


JqOption = Annotated[
    str | None,
    typer.Option(
        "--jq", metavar="EXPR", callback=_set_jq, show_default=False,
        help="Filter the JSON output (what -o json prints; each line with -o jsonl) with a jq "
        "expression: strings print raw, other values as compact JSON, one a line.",
    ),
]
RawOption = Annotated[
    bool,
    typer.Option("--raw", help="Print the server's JSON body unchanged (implies -o json)."),
]


@dataclass
class AppState(Session):
    """A command's run: the session (settings, client, journal) and the output choices."""

    verbose: bool = False
    quiet: bool = False
    no_color: bool = False
    output_format: OutputFormat | None = None
    json_errors: bool = False
    on_warning: Callable[[str], None] = warn

    def start(self) -> None:
        if self.sandbox and self.api_url_flag:
            raise UsageError("--sandbox and --api-url cannot be used together",
                             hint="drop one of them")
        configure_output(quiet=self.quiet, no_color=self.no_color)
        if self.verbose or os.environ.get(ENV_DEBUG, "").strip() not in ("", "0"):
            from kalixo_cli.terminal import verbose

            self.verbose = True
            self.stack.callback(verbose.enable(self.redactor))

    def choose_output(
        self, requested: OutputChoice | OrderOutputChoice | None, raw: bool = False
    ) -> OutputFormat:
        allowed = [choice.value for choice in type(requested)] if requested else ["table"]
        self.output_format = resolve_format(
            requested.value if requested else None, raw, allowed
        )
        self.output_format = filtered_format(self.output_format, explicit=requested is not None)
        # Asked for by name only: a person piping to jq should not get JSON on their screen.
        explicit = requested is not None and self.output_format in ("json", "jsonl")
        self.json_errors = raw or explicit
        return self.output_format

def filtered_format(fmt: OutputFormat, *, explicit: bool) -> OutputFormat:
    """--jq reads JSON: -o json unless -o jsonl was asked for (then each line is filtered)."""
    from kalixo_cli.terminal.output import settings as output_settings

    if output_settings.jq is None:
        return fmt
    if explicit and fmt not in ("json", "jsonl"):
        raise UsageError(f"--jq filters JSON, so it cannot go with -o {fmt}",
                         hint="drop -o, or use -o json (or -o jsonl: the filter runs on "
                         "each line)")
    return "jsonl" if explicit and fmt == "jsonl" else "json"


def get_state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
