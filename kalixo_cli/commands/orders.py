"""orders: what this machine has sent, from the local journal, and settling unknown outcomes."""

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

import typer

from kalixo_cli.commands.context import get_state
from kalixo_cli.commands.options import JqOption, OrderOutputOption
from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.errors import ExitCode, UsageError
from kalixo_cli.terminal.output import Output

app = typer.Typer(
    help="What was sent: the journal of placed orders (this machine's, or the shared one "
    "journal_url names).\n\n"
    "Example: kalixo orders list --state unknown",
    no_args_is_help=True,
)

STATE_NAMES = ("placed", "rejected", "failed", "unknown", "sending")
FIELDS = (
    "externalOrderCode",
    "state",
    "orderId",
    "status",
    "errorKind",
    "error",
    "attempts",
    "createdAt",
    "updatedAt",
)


def _timestamp(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{flag} {text!r} is not a date", hint="use ISO 8601: 2026-11-27 or 2026-11-27T10:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _journal_view(records: list[dict[str, Any]], plain: bool) -> Any:
    from kalixo_cli.terminal.views import journal_view

    return journal_view(records, plain)


def _sync_view(records: list[dict[str, Any]], plain: bool) -> Any:
    from kalixo_cli.terminal.views import sync_view

    return sync_view(records, plain)


TABLE_PAGE = 30  # rows a table shows at a terminal unless --all or --limit (as gh's --limit)
TABLE_CHUNK = 500  # rows rendered at a time when a table streams


def _print_table_stream(out: Output, records: Iterable[dict[str, Any]]) -> int:
    """A table of any length, printed a chunk at a time with the columns the first chunk
    fixed (a rich table would hold and measure every row before printing one)."""
    from kalixo_cli.terminal.views import JOURNAL_COLUMNS, journal_cells, journal_view

    widths: list[int] | None = None
    count = 0
    for chunk in _chunks(records, TABLE_CHUNK):
        if widths is None:
            widths = [
                max(len(name), *(len(cells[i]) for cells in map(journal_cells, chunk)))
                for i, name in enumerate(JOURNAL_COLUMNS)
            ]
            widths[-1] = min(widths[-1], 60)  # long errors fold instead of widening the table
        out.view(partial(_view_of, journal_view, chunk, widths, count == 0))
        count += len(chunk)
    return count


def _view_of(
    view: Any, rows: list[dict[str, Any]], widths: list[int], header: bool, plain: bool, _width: int
) -> Any:
    return view(rows, plain, widths, header)


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@app.command("list")
def list_orders(
    ctx: typer.Context,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", metavar="STATE", help=f"Only this state: {', '.join(STATE_NAMES)}."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DATE", help="Sent at or after (UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="DATE", help="Sent before (UTC).")
    ] = None,
    code: Annotated[
        str | None,
        typer.Option("--code", metavar="PATTERN", help="Codes matching a glob, e.g. 'batch-7-*'."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most N, oldest first.")
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help=f"Every order, even in a table at a terminal (which "
            f"otherwise shows the newest {TABLE_PAGE}). JSON, JSONL and CSV always "
            "list every order.",
        ),
    ] = False,
    output: OrderOutputOption = None,
    jq: JqOption = None,
) -> None:
    """List the orders this machine has sent to the current API, oldest first.

    Rows are written as the journal yields them, so a listing of any length starts at once
    and takes little memory.

    Example: kalixo orders list --state unknown --since 2026-11-01
    """
    app_state = get_state(ctx)
    out = app_state.out
    fmt = app_state.choose_output(output)
    if state is not None and state not in STATE_NAMES:
        raise UsageError(f"unknown state {state!r}", hint=f"states: {', '.join(STATE_NAMES)}")
    if show_all and limit is not None:
        raise UsageError("--all and --limit cannot be used together", hint="drop one of them")
    entries = app_state.journal(readonly=True).entries(
        app_state.journal_key(),
        state=state,
        since=_timestamp(since, "--since"),
        until=_timestamp(until, "--until"),
        code_like=_glob_to_like(code) if code else None,
        limit=limit,
    )
    records = (entry.to_json() for entry in entries)
    if fmt != "table":  # the CSV columns are FIELDS: no api or requestHash
        out.result(
            records,
            array=True,
            csv=(FIELDS, ({key: record[key] for key in FIELDS} for record in records)),
        )
    elif show_all or limit is not None or not sys.stdout.isatty():
        if not _print_table_stream(out, records):
            out.note("no orders in the journal for this API")
    else:
        _print_newest_page(out, records)


def _print_newest_page(out: Output, records: Iterable[dict[str, Any]]) -> None:
    """The newest page, and how many more there are: what a person at a terminal wants."""
    from collections import deque

    total = 0
    page: deque[dict[str, Any]] = deque(maxlen=TABLE_PAGE)
    for record in records:
        page.append(record)
        total += 1
    if not total:
        out.note("no orders in the journal for this API")
        return
    _print_table_stream(out, page)
    if total > len(page):
        out.note(
            f"showing the newest {len(page)} of {total} orders; --all for every one, "
            "-o json or -o csv for scripts"
        )


@app.command("show")
def show(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(metavar="CODE", help="The externalOrderCode.")],
    output: OrderOutputOption = None,
    jq: JqOption = None,
) -> None:
    """Show what the journal knows of one order.

    Example: kalixo orders show O-12345 -o json
    """
    app_state = get_state(ctx)
    app_state.redactor.allow(code)
    out = app_state.out
    app_state.choose_output(output)
    entry = app_state.journal(readonly=True).get(app_state.journal_key(), code)
    if entry is None:
        raise UsageError(
            f"no order {code} in the journal for {app_state.journal_key()}",
            hint="`kalixo orders list` shows what this machine has sent",
        )
    record = entry.to_json()
    out.result(
        record,
        csv=(FIELDS, [{key: record[key] for key in FIELDS}]),
        view=lambda plain, _: _journal_view([record], plain),
    )
    if entry.effective_state == "unknown":
        from kalixo_cli.workflows.placement import resolution_hint

        out.note(f"outcome unknown: {resolution_hint(code)}")


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(metavar="CODE", help="The externalOrderCode.")],
    order_id: Annotated[
        int | None,
        typer.Option("--order-id", min=1, help="It was placed: this is its orderId."),
    ] = None,
    not_placed: Annotated[
        bool,
        typer.Option("--not-placed", help="It was not placed: allow sending it again."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace an orderId already recorded for CODE."),
    ] = False,
) -> None:
    """Record how an unknown outcome ended, after checking with Kalixo.

    Example: kalixo orders resolve O-12345 --order-id 59400
    """
    if (order_id is None) == (not not_placed):
        raise UsageError("give exactly one of --order-id N or --not-placed")
    app_state = get_state(ctx)
    app_state.redactor.allow(code)
    journal = app_state.journal()
    api = app_state.journal_key()
    entry = journal.get(api, code)
    if entry is None:
        raise UsageError(f"no order {code} in the journal for {api}")
    if entry.effective_state == "sending":
        raise UsageError(
            f"{code} is being sent right now by another kalixo process "
            f"({entry.owner_text}); nothing was changed",
            hint="wait for that run to finish: it records the outcome itself",
        )
    if entry.effective_state == "placed" and not_placed:
        raise UsageError(
            f"{code} is recorded as placed (order {entry.order_id}); refusing to mark it not placed"
        )
    if (
        order_id is not None
        and entry.effective_state == "placed"
        and entry.order_id not in (None, order_id)
    ):
        if not force:
            raise UsageError(
                f"{code} is recorded as placed as order {entry.order_id}; refusing to record "
                f"it as order {order_id}",
                hint=f"check both with `kalixo retrieve-order`; add --force to replace "
                f"{entry.order_id} with {order_id}",
            )
        app_state.out.warn(
            f"{code} was recorded as order {entry.order_id}; replaced with {order_id} (--force)"
        )
    if order_id is not None:
        journal.resolve(api, code, order_id)
        app_state.out.note(f"{code} recorded as placed: order {order_id}")
    else:
        journal.mark_not_placed(api, code)
        app_state.out.note(f"{code} recorded as not placed; it may be sent again")


SYNC_FIELDS = (
    "externalOrderCode",
    "orderId",
    "stateBefore",
    "statusBefore",
    "state",
    "status",
    "changed",
    "detail",
    "errorKind",
)


@app.command("sync")
def sync(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DATE", help="Only orders sent at or after DATE (UTC, ISO 8601)."
        ),
    ] = None,
    code: Annotated[
        str | None,
        typer.Option(
            "--code", metavar="GLOB", help="Only codes matching a glob, e.g. 'batch-7-*'."
        ),
    ] = None,
    output: OrderOutputOption = None,
    jq: JqOption = None,
) -> None:
    """Ask the API what became of every order that is not final, and record it.

    Not final: an unknown outcome, or an order still processing. API v2 looks each up by
    its code (found: placed, with its status; not found: never placed, may be sent
    again); API v1 by its orderId, where the journal has one. Prints what was looked at
    and what changed; exit 6 while some outcome is still unknown.

    Example: kalixo orders sync --since 2026-11-01 -o json
    """
    from kalixo_cli.workflows.sync import exit_code as sync_exit
    from kalixo_cli.workflows.sync import needs_sync, sync_entries

    app_state = get_state(ctx)
    out = app_state.out
    fmt = app_state.choose_output(output)
    api = app_state.journal_key()
    journal = app_state.journal()
    since_at = _timestamp(since, "--since")
    like = _glob_to_like(code) if code else None
    entries = [
        *journal.entries(api, state="unknown", since=since_at, code_like=like),
        *journal.entries(api, state="placed", since=since_at, code_like=like),
    ]
    entries.sort(key=lambda entry: (entry.created_at, entry.code))
    pending = [entry for entry in entries if needs_sync(entry)]
    if not pending:
        out.result([], jsonl=())
        out.note("nothing to sync: every order in the journal for this API is final")
        return
    settings = app_state.settings()
    client = app_state.client()

    def stream(change: Any) -> None:
        if fmt == "jsonl":
            out.jsonl([change.to_json()])

    changes = sync_entries(
        journal,
        api,
        client,
        pending,
        in_flight_for=settings.timeout.value + settings.deadline.value,
        on_change=stream,
    )
    records = [change.to_json() for change in changes]
    out.result(
        records,
        jsonl=(),
        csv=(SYNC_FIELDS, records),  # jsonl: streamed as they came
        view=lambda plain, _: _sync_view(records, plain),
    )
    unknown = sum(change.unknown for change in changes)
    failed = sum(change.error is not None for change in changes)
    out.note(
        f"looked at {len(changes)}, changed {sum(c.changed for c in changes)}, "
        f"still unknown {unknown}" + (f", could not ask about {failed}" if failed else "")
    )
    code_ = sync_exit(changes)
    if code_ == ExitCode.OUTCOME_UNKNOWN:
        from kalixo_cli.domain.errors import OutcomeUnknown

        raise OutcomeUnknown(
            f"{unknown} order{'s' if unknown != 1 else ''} still "
            f"{'have' if unknown != 1 else 'has'} an unknown outcome",
            hint="on API v1, find each order's id (Kalixo support) and record it with "
            "`kalixo orders resolve CODE --order-id N` (or --not-placed); on v2, sync "
            "again later"
            if settings.version is ApiVersion.V1
            else "sync again later; `kalixo orders list --state unknown` lists them",
        )
    if code_ != ExitCode.OK:
        first = next(change.error for change in changes if change.error is not None)
        assert first is not None
        raise first
