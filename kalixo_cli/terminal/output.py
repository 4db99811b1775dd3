"""Where output goes: results to stdout, everything else to stderr.

stdout carries only results (a table at a terminal, JSON otherwise), so a script can pipe
it; notes, warnings and errors go to stderr. Consoles are made per call because tests and
callers swap sys.stdout. Colour follows rich's rules (NO_COLOR, FORCE_COLOR, a terminal or
not) plus --no-color; nothing is ever paged.

This is also where outside text is made safe (`kalixo_cli.domain.sanitize`): consoles never parse
rich markup or emoji codes and show control characters as escapes, JSON escapes them,
CSV cells are cleaned and defused, and every line on stderr is cleaned.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from kalixo_cli.domain.sanitize import clean, clean_lines, csv_cell, json_safe

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from kalixo_cli.terminal.jqfilter import JqProgram

OutputFormat = Literal["table", "json", "jsonl", "csv"]
PROG = "kalixo"


@dataclass
class OutputSettings:
    quiet: bool = False
    no_color: bool = False
    # --jq: every JSON result goes through it (print_json, print_jsonl, print_raw).
    jq: JqProgram | None = None
    # The first error --jq met on a result; the command ends with exit 9 once it has run.
    jq_failure: str | None = None


settings = OutputSettings()


def configure(*, quiet: bool, no_color: bool) -> None:
    """Set once per invocation by the root command."""
    settings.quiet = quiet
    settings.no_color = no_color
    settings.jq = None
    settings.jq_failure = None


def _filtered(data: Any = None, *, text: str | None = None) -> bool:
    """Print what --jq makes of one JSON value; False when there is no --jq or it failed
    on this value (the caller then prints the value unfiltered: an answer is never lost)."""
    program = settings.jq
    if program is None:
        return False
    from kalixo_cli.terminal.jqfilter import describe_jq_error

    try:
        lines = program.apply(data, text=text)
    except ValueError as exc:
        if settings.jq_failure is None:
            settings.jq_failure = describe_jq_error(exc)
        return False
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return True


def resolve_format(
    requested: str | None, raw: bool, allowed: Sequence[str] = ("table", "json")
) -> OutputFormat:
    """Table for people at a terminal, JSON for pipes, unless asked otherwise."""
    from kalixo_cli.domain.errors import UsageError

    if raw and requested not in (None, "json"):
        raise UsageError(f"--raw prints the server's JSON, so it cannot go with -o {requested}")
    if raw:
        return "json"
    if requested is None:
        return "table" if sys.stdout.isatty() else "json"
    if requested not in allowed:
        raise UsageError(f"-o {requested} does not fit this command",
                         hint=f"use one of: {', '.join(allowed)}")
    return requested  # type: ignore[return-value]


_safe_console: type[Console] | None = None


def _console_class() -> type[Console]:
    """A rich Console that never interprets data: no markup, no emoji codes, and no control
    character in any text it writes (kalixo's own styles are Text styles, not markup)."""
    global _safe_console
    if _safe_console is not None:
        return _safe_console
    from rich.console import Console, ConsoleOptions
    from rich.segment import Segment
    from rich.text import Text

    class SafeConsole(Console):
        def render_str(self, text: str, **kwargs: Any) -> Text:
            return super().render_str(clean_lines(text), **kwargs)

        def render(self, renderable: RenderableType,
                   options: ConsoleOptions | None = None) -> Any:
            # The last line of defence: a view that forgot to clean a string still cannot
            # put a control character on the terminal (its columns may just be off).
            for segment in super().render(renderable, options):
                if segment.control is None and segment.text:
                    text = clean_lines(segment.text)
                    if text is not segment.text:
                        segment = Segment(text, segment.style)
                yield segment

        def on_broken_pipe(self) -> None:
            # rich would end the process with exit 1; kalixo ends every command the same
            # way on a closed pipe (quiet, 141), in one place (`cli.KalixoGroup.invoke`).
            raise BrokenPipeError

    _safe_console = SafeConsole
    return SafeConsole


def console(*, stderr: bool = False) -> Console:
    return _console_class()(
        file=sys.stderr if stderr else sys.stdout,
        soft_wrap=False,
        highlight=False,
        markup=False,
        emoji=False,
        no_color=settings.no_color or None,
    )


def print_renderable(renderable: RenderableType) -> None:
    console().print(renderable)


def print_view(build: Callable[[bool, int], RenderableType]) -> None:
    """Render for where stdout goes: rules and colour at a terminal, plain columns otherwise.

    `build` gets (plain, width). Lines are never cropped: a PIN is worth more than a tidy edge.
    """
    target = console()
    target.print(build(not target.is_terminal, target.width), crop=False)


_JSON = json.JSONEncoder(indent=2, ensure_ascii=False)


def json_text(data: Any) -> str:
    """The one JSON form of results: indented, non-ASCII as is (`json.dumps(data, indent=2,
    ensure_ascii=False)`, with one encoder for all), but for the characters a terminal would
    obey, which are escaped (`sanitize.json_safe`)."""
    return json_safe(_JSON.encode(data))


def print_json(data: Any) -> None:
    if _filtered(data):
        return
    sys.stdout.write(json_text(data) + "\n")
    sys.stdout.flush()


def print_json_array(items: Iterable[Any], chunk: int = 256) -> None:
    """A JSON array written as its items come: the same text `print_json` writes for the whole
    list, in the memory of `chunk` items (a journal listing can have any size).

    Each chunk is encoded as a list of its own, whose brackets are then dropped: one encoder
    call per chunk, not per item, and one write (stdout may be unbuffered)."""
    if settings.jq is not None:  # jq reads one whole value (-o jsonl --jq streams instead)
        print_json(list(items))
        return
    out = sys.stdout
    batch: list[Any] = []
    first = True

    def flush() -> None:
        nonlocal first
        text = json_text(batch)  # "[\n  item,\n  item\n]"
        out.write(("[\n" if first else ",\n") + text[2:-2])
        first = False
        batch.clear()

    for item in items:
        batch.append(item)
        if len(batch) == chunk:
            flush()
    if batch:
        flush()
    out.write("[]\n" if first else "\n]\n")
    out.flush()


def print_jsonl(records: Iterable[Any]) -> None:
    for record in records:
        if _filtered(record):
            continue
        sys.stdout.write(
            json_safe(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) + "\n"
        )
    sys.stdout.flush()


def csv_rows(rows: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
    """Rows with every text cell cleaned and defused (`sanitize.csv_cell`)."""
    return ({key: csv_cell(value) for key, value in row.items()} for row in rows)


def print_csv(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str]) -> None:
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=list(fieldnames), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(csv_rows(rows))
    sys.stdout.flush()


def print_raw(text: str) -> None:
    """The server's JSON as it came, but for the escapes that make it safe to show (--raw,
    `kalixo api`); --jq reads it as received, and its results are made safe in turn."""
    if settings.jq is not None and text.strip() and _filtered(text=text):
        return
    text = json_safe(text)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    if not settings.quiet:
        sys.stderr.write(f"{PROG}: {clean(message)}\n")


def warn(message: str) -> None:
    if not settings.quiet:
        sys.stderr.write(f"{PROG}: warning: {clean(message)}\n")


def error_lines(lines: list[str], hint: str | None) -> None:
    for line in lines:
        sys.stderr.write(f"{PROG}: error: {clean(line)}\n")
    if hint:
        sys.stderr.write(f"{PROG}: hint: {clean(hint)}\n")
