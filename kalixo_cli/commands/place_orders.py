"""place-orders: many orders from one file, each placed exactly once, resumable."""

import os
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from kalixo_cli.commands.context import AppState, get_state
from kalixo_cli.commands.options import JqOption
from kalixo_cli.domain.errors import ExitCode, KalixoError, PinsNotSaved, UsageError
from kalixo_cli.terminal.output import Output, OutputFormat

if TYPE_CHECKING:
    from kalixo_cli.api.base import OrderClient
    from kalixo_cli.api.pacing import Pace, RatePacer
    from kalixo_cli.workflows.bulk import Plan, Result, Summary

DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 32


class BulkFormat(StrEnum):
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


class BulkOutput(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


class BatchStopped(KalixoError):
    """The run ended early or with failures; carries the worst outcome's exit code."""

    kind = "batch"

    def __init__(self, message: str, exit_code: ExitCode, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def pace_note(pace: "Pace") -> str:
    """Why the run goes at the speed it does: "paced to 60/min by the server"."""
    if not pace.paced or pace.per_minute is None:
        return ""
    limit = f" (limit {pace.limit})" if pace.limit is not None else ""
    return f"paced to {pace.per_minute:.0f}/min by the server{limit}"


def _summary_view(summary: "Summary", plain: bool) -> Any:
    from kalixo_cli.terminal.views import bulk_summary_view

    return bulk_summary_view(summary.counts, summary.not_sent, plain)


class _Progress:
    """A rich progress bar on stderr at a terminal; nothing otherwise.

    Its rate and ETA follow what was sent lately, so under a rate limit they are the
    server's pace, and a note says so ("paced to 60/min by the server").
    """

    def __init__(self, out: Output, total: int, pacer: "RatePacer") -> None:
        self.bar: Any = None
        self.failures = 0
        if sys.stderr.isatty() and not out.quiet and total:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                ProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.text import Text

            class PaceColumn(ProgressColumn):
                def render(self, task: Any) -> Text:
                    return Text(pace_note(pacer.pace()), style="progress.remaining")

            self.bar = Progress(
                TextColumn("placing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[failures]} failed"),
                PaceColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )
            self.task = self.bar.add_task("placing", total=total, rate="", failures=0)
            self.bar.start()

    def advance(self, result: "Result") -> None:
        if self.bar is None:
            return
        self.failures += result.outcome not in ("placed", "skipped")
        task = self.bar.tasks[0]
        speed = task.speed  # over rich's recent window, like the ETA: the pace, once paced
        rate = "" if not speed else (f"{speed:.1f}/s" if speed >= 1 else f"{speed * 60:.1f}/min")
        self.bar.update(self.task, advance=1, failures=self.failures, rate=rate)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def place_orders(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE",
            help="Orders: a JSON array, JSON Lines, or CSV with an "
            "externalOrderCode column; - reads stdin.",
        ),
    ],
    input_format: Annotated[
        BulkFormat | None,
        typer.Option("--format", help="Input format when the extension does not say."),
    ] = None,
    currency: Annotated[
        str | None,
        typer.Option("--currency", metavar="CODE", help="Currency for CSV rows without one."),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", "-c", min=1, max=MAX_CONCURRENCY, help="Orders in flight at once."
        ),
    ] = DEFAULT_CONCURRENCY,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate everything and say what would be sent.")
    ] = False,
    max_errors: Annotated[
        int, typer.Option("--max-errors", min=1, help="Problems listed before stopping.")
    ] = 50,
    output: Annotated[
        BulkOutput | None,
        typer.Option(
            "--output",
            "-o",
            show_default=False,
            help="table: a summary (default at a terminal); jsonl: one result per "
            "order (default when piped); json: the summary as JSON.",
        ),
    ] = None,
    jq: JqOption = None,
    results_file: Annotated[
        Path | None,
        typer.Option(
            "--results",
            metavar="FILE",
            dir_okay=False,
            help="Also write one result per order, with its PINs, to FILE (JSON "
            "Lines, mode 0600, never over an existing file).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Let --results replace an existing file."),
    ] = False,
    no_lookup: Annotated[
        bool,
        typer.Option(
            "--no-lookup",
            help="Do not look up orders placed by an earlier run: "
            "their result lines then carry no PINs.",
        ),
    ] = False,
) -> None:
    """Place many orders from one file, each exactly once; re-runs resume.

    Everything is validated before anything is sent. Every order needs its own
    externalOrderCode: it is how a re-run, after Ctrl-C or a crash, knows what was placed.
    Orders whose outcome is unknown are never re-sent; `kalixo orders list --state unknown`
    lists them.

    Example: kalixo place-orders orders.csv --concurrency 8 -o jsonl > results.jsonl
    """
    from kalixo_cli.inputs.bulk_file import detect_bulk_format, iter_bulk_orders
    from kalixo_cli.workflows.bulk import plan_batch

    state = get_state(ctx)
    out = state.out
    fmt: OutputFormat = (
        ("table" if sys.stdout.isatty() else "jsonl") if output is None else output.value
    )
    fmt = out.use(fmt, explicit=output is not None)
    state.json_errors = output is not None and fmt != "table"
    source_format = detect_bulk_format(file, input_format.value if input_format else None)
    if results_file is not None:
        _check_results_target(results_file, force=force)
    api = state.journal_key()
    journal = state.journal()
    stream = _open(file)
    try:
        plan = plan_batch(
            iter_bulk_orders(
                stream,
                name="<stdin>" if file == "-" else file,
                fmt=source_format,
                currency=currency,
            ),
            journal=journal,
            api=api,
            max_problems=max_errors,
            can_look_up=state.settings().version.finds_orders_by_code,
        )
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    try:
        _announce(out, plan, dry_run=dry_run)
        if dry_run:
            out.result(
                {
                    "valid": plan.total,
                    "toSend": plan.to_send,
                    "skipped": plan.skipped,
                    "skippedUnknown": plan.skipped_unknown,
                    "skippedBusy": plan.skipped_busy,
                },
                jsonl=(),
            )
            return
        with _Results(results_file, force=force) as results:
            summary = _send(
                state,
                plan,
                api=api,
                fmt=fmt,
                concurrency=concurrency,
                results=results,
                look_up=not no_lookup,
            )
    finally:
        plan.close()
    _finish(out, summary, results=results)


def _check_results_target(path: Path, *, force: bool) -> None:
    """Before anything is sent: a results file that could not be written is exit 2."""
    if path.is_symlink() and not path.exists():
        raise UsageError(f"--results {path} is a symbolic link to a file that does not exist")
    if path.is_dir():
        raise UsageError(f"--results {path} is a directory", hint="name a file")
    if path.exists() and not force:
        raise UsageError(
            f"--results {path} already exists; refusing to overwrite results",
            hint="choose another file, or add --force to replace it",
        )
    if not path.parent.is_dir():
        raise UsageError(f"--results {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UsageError(f"--results {path}: folder {path.parent} is not writable")


class _Results:
    """--results FILE: every result line, PINs included, in a file only the user can read.
    A write that fails mid-run stops the file, never the run (exit 13 at the end)."""

    def __init__(self, path: Path | None, *, force: bool) -> None:
        self.path = path
        self.force = force
        self.file: IO[str] | None = None
        self.failure: str | None = None
        self.written = 0

    def __enter__(self) -> "_Results":
        if self.path is not None:
            flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self.force else os.O_EXCL)
            try:
                descriptor = os.open(self.path, flags, 0o600)
                os.fchmod(descriptor, 0o600)
            except FileExistsError:
                raise UsageError(
                    f"--results {self.path} already exists; refusing to overwrite results",
                    hint="add --force to replace it",
                ) from None
            except OSError as exc:
                raise UsageError(f"--results {self.path}: {exc.strerror}") from None
            self.file = os.fdopen(descriptor, "w", encoding="utf-8")
        return self

    def write(self, line: str) -> None:
        if self.file is None:
            return
        try:
            self.file.write(line + "\n")
            self.file.flush()
            self.written += 1
        except OSError as exc:
            self.failure = exc.strerror or str(exc)
            self._close()

    def _close(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError as exc:
                self.failure = self.failure or exc.strerror or str(exc)
            self.file = None

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            try:
                os.fsync(self.file.fileno())
            except OSError as error:
                self.failure = self.failure or error.strerror or str(error)
        self._close()


def _open(file: str) -> Any:
    if file == "-":
        return sys.stdin.buffer
    try:
        return open(file, "rb")  # closed by the caller once streamed
    except FileNotFoundError:
        raise UsageError(
            f"orders file not found: {file}", hint="check the path, or pass - to read stdin"
        ) from None
    except IsADirectoryError:
        raise UsageError(f"{file} is a directory, not an orders file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None


def _announce(out: Output, plan: "Plan", *, dry_run: bool) -> None:
    verb = "would send" if dry_run else "sending"
    out.note(
        f"{plan.total} valid orders: {verb} {plan.to_send}, skipping {plan.skipped} "
        f"already placed"
        + (f" and {plan.skipped_unknown} with an unknown outcome" if plan.skipped_unknown else "")
        + (
            f" and {plan.skipped_busy} being sent by another kalixo run"
            if plan.skipped_busy
            else ""
        )
    )
    if dry_run:
        out.note("dry run: nothing was sent")


def _send(
    state: AppState,
    plan: "Plan",
    *,
    api: str,
    fmt: str,
    concurrency: int,
    results: _Results,
    look_up: bool,
) -> "Summary":
    """Send the plan with workers sharing one pacer and one retry budget."""
    from kalixo_cli.api.pacing import RatePacer
    from kalixo_cli.api.retry import RetryBudget
    from kalixo_cli.workflows.bulk import Summary, send_plan, skipped_results

    budget = RetryBudget()
    stop = threading.Event()  # also cancels the requests still waiting for their turn
    pacer = RatePacer(stop=stop)
    if plan.to_send or (look_up and plan.skipped):
        state.endpoint()  # no credentials: fail before any worker starts

    def client() -> "OrderClient":
        return state.new_client(pacer=pacer, budget=budget)

    def emit(result: "Result") -> None:
        record = result.to_json()
        if fmt == "jsonl":
            state.out.jsonl([record])
        if results.file is not None:
            import json

            results.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))

    skipped = Summary()
    for result in skipped_results(
        plan,
        journal=state.journal(),
        api=api,
        client_factory=client,
        look_up=look_up,
        concurrency=concurrency,
    ):
        skipped.add(result)
        emit(result)
    progress = _Progress(state.out, plan.to_send, pacer)
    reported = [0]

    def on_result(result: "Result") -> None:
        reported[0] += 1
        progress.advance(result)
        emit(result)

    try:
        summary = send_plan(
            plan,
            journal=state.journal(),
            api=api,
            client_factory=client,
            concurrency=concurrency,
            on_result=on_result,
            stop=stop,
            can_look_up=state.settings().version.finds_orders_by_code,
        )
    finally:
        progress.stop()
    summary.not_sent = max(0, plan.to_send - reported[0])
    summary.merge(skipped)
    return summary


def _finish(out: Output, summary: "Summary", *, results: _Results) -> None:
    counts = summary.counts
    out.note(
        f"placed {counts['placed']}, skipped {counts['skipped']} already placed, "
        f"rejected {counts['rejected']}, not placed {counts['failed']}, "
        f"unknown {counts['unknown'] + counts['skipped_unknown']}"
        + (f", busy {counts['skipped_busy']}" if counts["skipped_busy"] else "")
        + (f", not sent {summary.not_sent}" if summary.not_sent else "")
    )
    out.result(
        summary.to_json(),
        jsonl=(),  # jsonl: a line an order, as each ended
        view=lambda plain, _: _summary_view(summary, plain),
    )
    if results.path is not None and results.failure is None:
        out.note(
            f"{results.written} results, with their PINs, written to {results.path} (mode 0600)"
        )
    elif out.format == "table" and (counts["placed"] or counts["skipped"]):
        out.note(
            "the order ids and PINs are not printed at a terminal: run the same command "
            "again with --results FILE (nothing is sent again; placed orders are looked up), "
            "or -o jsonl > FILE; `kalixo orders list` and `kalixo retrieve-order ID` show "
            "them one by one"
        )
    if summary.stopped:
        out.warn(summary.stopped)
    if results.failure is not None:
        error = PinsNotSaved(
            f"could not write --results {results.path}: {results.failure}; it holds only the "
            f"first {results.written} results",
            hint="run the same command again with --results FILE on a disk with room: nothing "
            "is sent again, placed orders are looked up",
        )
        if summary.worst == ExitCode.OK:
            raise error
        out.warn(error.message)
    if summary.worst == ExitCode.OK:
        return
    if summary.not_recorded:
        raise BatchStopped(
            f"{summary.not_recorded} orders were placed (their result lines are written) but "
            "the journal could not record them",
            summary.worst,
            hint="fix the journal (see the errors above), then record each with `kalixo "
            "orders resolve CODE --order-id N` from the result lines; do not re-run the "
            "file before that",
        )
    if summary.worst == ExitCode.JOURNAL_UNUSABLE:
        raise BatchStopped(
            "the journal could not be written, so the run stopped before sending more",
            summary.worst,
            hint="fix the journal (see the error above), then run the same command again: "
            "it sends only what is not placed yet",
        )
    if (
        counts["skipped_busy"]
        and summary.worst == ExitCode.OUTCOME_UNKNOWN
        and not counts["unknown"] + counts["skipped_unknown"]
    ):
        raise BatchStopped(
            f"{counts['skipped_busy']} orders are being sent by another kalixo run and were "
            "not sent by this one",
            summary.worst,
            hint="let the other run finish; run the same command again after it to see "
            "how they ended",
        )
    unknown = counts["unknown"] + counts["skipped_unknown"]
    if summary.worst == ExitCode.INTERRUPTED:
        raise BatchStopped(
            f"interrupted: {summary.not_sent} orders not sent"
            + (f", {unknown} with an unknown outcome" if unknown else ""),
            summary.worst,
            hint="run the same command again to send the rest: it skips what was placed"
            + (
                " (settle the unknown ones first: `kalixo orders list --state unknown`)"
                if unknown
                else ""
            )
            + ("; fix the rejected orders too" if counts["rejected"] else ""),
        )
    if unknown:
        raise BatchStopped(
            f"{unknown} orders have an unknown outcome and were not sent again",
            summary.worst,
            hint="`kalixo orders list --state unknown` lists them; settle each with "
            "`kalixo orders resolve CODE --order-id N` or `--not-placed`",
        )
    raise BatchStopped(
        "not every order was placed",
        summary.worst,
        hint="fix what was rejected and run the same command again: it sends only what is "
        "not placed yet",
    )
