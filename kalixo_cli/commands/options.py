"""The options several commands share (`-o`, `--jq`, `--raw`...), declared once."""

from enum import StrEnum
from typing import Annotated

import typer


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
        "--output",
        "-o",
        help="Output format: table (default at a terminal) or json (default when piped).",
        show_default=False,
    ),
]
OrderOutputOption = Annotated[
    OrderOutputChoice | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format: table (default at a terminal), json (default when piped), "
        "jsonl (one line per order) or csv (one row per PIN).",
        show_default=False,
    ),
]


def _set_jq(ctx: typer.Context, value: str | None) -> str | None:
    """Compiled while the command line is parsed: a bad expression ends the command (exit 2)
    before anything is read, looked up or sent."""
    if value is not None:
        from kalixo_cli.commands.context import get_state
        from kalixo_cli.terminal.jqfilter import compile_jq

        get_state(ctx).out.jq = compile_jq(value)
    return value


JqOption = Annotated[
    str | None,
    typer.Option(
        "--jq",
        metavar="EXPR",
        callback=_set_jq,
        show_default=False,
        help="Filter the JSON output (what -o json prints; each line with -o jsonl) with a jq "
        "expression: strings print raw, other values as compact JSON, one a line.",
    ),
]
RawOption = Annotated[
    bool,
    typer.Option("--raw", help="Print the server's JSON body unchanged (implies -o json)."),
]
