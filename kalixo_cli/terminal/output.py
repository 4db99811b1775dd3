"""Where output goes: results to stdout, everything else to stderr.

stdout carries only results (a table at a terminal, JSON otherwise), so a script can pipe
it; notes, warnings and errors go to stderr. One `Output` a run holds what the command line
chose (the format, --jq, --quiet, --no-color), made by the root command and reached by
commands as `state.out`:

    fmt = state.choose_output(output)                  # -o, or table/JSON by where stdout goes
    state.out.result(order.to_json(), view=lambda plain, width: order_view(order, ...),
                     csv=(ORDER_CSV_FIELDS, order_csv_rows(order)))
    state.out.note("1 PIN saved to pins.csv")

`result` is the one place that picks JSON, JSON Lines, CSV, a table or --jq; the views are
in `kalixo_cli.terminal.views`. Consoles are made per call because tests and callers swap
sys.stdout. Colour follows rich's rules (NO_COLOR, FORCE_COLOR, a terminal or not) plus
--no-color; nothing is ever paged.

This is also where outside text is made safe (`kalixo_cli.domain.sanitize`): consoles never parse
rich markup or emoji codes and show control characters as escapes, JSON escapes them,
CSV cells are cleaned and defused, and every line on stderr is cleaned.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from kalixo_cli.domain.sanitize import clean, clean_lines, csv_cell, json_safe

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from kalixo_cli.terminal.jqfilter import JqProgram

OutputFormat = Literal["table", "json", "jsonl", "csv"]
PROG = "kalixo"

View = Callable[[bool, int], "RenderableType"]
"""A table for people: built from (plain, width), plain when stdout is not a terminal."""
CsvRows = tuple[Sequence[str], Iterable[Mapping[str, Any]]]
"""-o csv: the header's field names, and the rows."""
LazyCsvRows = CsvRows | Callable[[], CsvRows]
"""The rows, or what makes them when -o csv is chosen (and loads what they need then)."""


class Output:
    """One run's output: the format chosen, --jq, --quiet and --no-color, and every way a
    result or a message leaves kalixo.

    Made once a run by the root command (`AppState.out`); code below the commands that
    has something to say uses `current()`."""

    def __init__(self, *, quiet: bool = False, no_color: bool = False) -> None:
        self.quiet = quiet
        self.no_color = no_color
        self.format: OutputFormat | None = None  # set by choose() or use()
        # --jq: every JSON result goes through it (json, jsonl, raw).
        self.jq: JqProgram | None = None
        # The first error --jq met on a result; the command ends with exit 9 once it has run.
        self.jq_failure: str | None = None

    def activate(self) -> Output:
        """Make this the run's Output, the one `current()` gives."""
        global _current
        _current = self
        return self

    # -- choosing the format ---------------------------------------------------------------

    def choose(
        self, requested: str | None, raw: bool = False, allowed: Sequence[str] = ("table", "json")
    ) -> OutputFormat:
        """-o as asked (one of `allowed`), else a table at a terminal and JSON in a pipe;
        --raw is JSON; --jq makes it JSON (or JSON Lines, asked for by name)."""
        return self.use(resolve_format(requested, raw, allowed), explicit=requested is not None)

    def use(self, fmt: OutputFormat, *, explicit: bool) -> OutputFormat:
        """The format a command chose by its own rule, as --jq allows it: JSON unless -o
        jsonl was asked for (then each line is filtered)."""
        if self.jq is not None:
            if explicit and fmt not in ("json", "jsonl"):
                from kalixo_cli.domain.errors import UsageError

                raise UsageError(
                    f"--jq filters JSON, so it cannot go with -o {fmt}",
                    hint="drop -o, or use -o json (or -o jsonl: the filter runs on each line)",
                )
            fmt = "jsonl" if explicit and fmt == "jsonl" else "json"
        self.format = fmt
        return fmt

    # -- results (stdout) ------------------------------------------------------------------

    def result(
        self,
        data: Any,
        *,
        view: View | None = None,
        csv: LazyCsvRows | None = None,
        jsonl: Iterable[Any] | None = None,
        array: bool = False,
        raw: str | None = None,
    ) -> None:
        """A command's result in the chosen format: `data` as JSON (through --jq); `jsonl`
        a record a line (by default `data` itself, or each item of it with `array`); `csv`
        as (fieldnames, rows), or what makes them; `view` as a table. A form not given
        prints nothing in its format (`jsonl=()`: the lines went out as they came).
        `array`: `data` is an iterable, written as a JSON array as it comes. `raw`: the
        server's JSON as received (--raw), in place of `data`."""
        fmt = self.format
        if raw is not None:
            self.raw(raw)
        elif fmt == "json":
            if array:
                self.json_array(data)
            else:
                self.json(data)
        elif fmt == "jsonl":
            self.jsonl(jsonl if jsonl is not None else (data if array else [data]))
        elif fmt == "csv":
            if csv is not None:
                fieldnames, rows = csv() if callable(csv) else csv
                print_csv(rows, fieldnames)
        elif view is not None:
            self.view(view)

    def json(self, data: Any) -> None:
        if self._filtered(data):
            return
        sys.stdout.write(json_text(data) + "\n")
        sys.stdout.flush()

    def json_array(self, items: Iterable[Any]) -> None:
        """A JSON array written as its items come (`print_json_array`)."""
        if self.jq is not None:  # jq reads one whole value (-o jsonl --jq streams instead)
            self.json(list(items))
            return
        print_json_array(items)

    def jsonl(self, records: Iterable[Any]) -> None:
        for record in records:
            if self._filtered(record):
                continue
            sys.stdout.write(
                json_safe(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) + "\n"
            )
        sys.stdout.flush()

    def raw(self, text: str) -> None:
        """The server's JSON as it came, but for the escapes that make it safe to show
        (--raw, `kalixo api`); --jq reads it as received, and its results are made safe in
        turn."""
        if self.jq is not None and text.strip() and self._filtered(text=text):
            return
        text = json_safe(text)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def view(self, build: View) -> None:
        """Render for where stdout goes: rules and colour at a terminal, plain columns
        otherwise. `build` gets (plain, width). Lines are never cropped: a PIN is worth more
        than a tidy edge."""
        target = self.console()
        target.print(build(not target.is_terminal, target.width), crop=False)

    def console(self, *, stderr: bool = False) -> Console:
        """A console that shows data as text, never as markup (`_console_class`)."""
        return _console_class()(
            file=sys.stderr if stderr else sys.stdout,
            soft_wrap=False,
            highlight=False,
            markup=False,
            emoji=False,
            no_color=self.no_color or None,
        )

    def _filtered(self, data: Any = None, *, text: str | None = None) -> bool:
        """Print what --jq makes of one JSON value; False when there is no --jq or it failed
        on this value (the caller then prints the value unfiltered: an answer is never
        lost)."""
        program = self.jq
        if program is None:
            return False
        from kalixo_cli.terminal.jqfilter import describe_jq_error

        try:
            lines = program.apply(data, text=text)
        except ValueError as exc:
            if self.jq_failure is None:
                self.jq_failure = describe_jq_error(exc)
            return False
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
        return True

    # -- messages (stderr) -----------------------------------------------------------------

    def note(self, message: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"{PROG}: {clean(message)}\n")

    def warn(self, message: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"{PROG}: warning: {clean(message)}\n")

    def error(self, lines: list[str], hint: str | None = None) -> None:
        """Errors and their hint: never silenced by --quiet."""
        for line in lines:
            sys.stderr.write(f"{PROG}: error: {clean(line)}\n")
        if hint:
            sys.stderr.write(f"{PROG}: hint: {clean(hint)}\n")


_current: Output | None = None


def current() -> Output:
    """The run's Output, for code below the commands (a workflow's warnings); a default
    one outside a run."""
    return _current if _current is not None else Output()


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
        raise UsageError(
            f"-o {requested} does not fit this command", hint=f"use one of: {', '.join(allowed)}"
        )
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

        def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Any:
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


_JSON = json.JSONEncoder(indent=2, ensure_ascii=False)


def json_text(data: Any) -> str:
    """The one JSON form of results: indented, non-ASCII as is (`json.dumps(data, indent=2,
    ensure_ascii=False)`, with one encoder for all), but for the characters a terminal would
    obey, which are escaped (`sanitize.json_safe`)."""
    return json_safe(_JSON.encode(data))


def print_json_array(items: Iterable[Any], chunk: int = 256) -> None:
    """A JSON array written as its items come: the same text `Output.json` writes for the
    whole list, in the memory of `chunk` items (a journal listing can have any size).

    Each chunk is encoded as a list of its own, whose brackets are then dropped: one encoder
    call per chunk, not per item, and one write (stdout may be unbuffered)."""
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


def csv_rows(rows: Iterable[Mapping[str, Any]]) -> Iterable[dict[str, Any]]:
    """Rows with every text cell cleaned and defused (`sanitize.csv_cell`)."""
    return ({key: csv_cell(value) for key, value in row.items()} for row in rows)


def print_csv(rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str]) -> None:
    import csv

    writer = csv.DictWriter(
        sys.stdout, fieldnames=list(fieldnames), lineterminator="\n", extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(csv_rows(rows))
    sys.stdout.flush()
