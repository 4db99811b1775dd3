"""Many orders, each placed exactly once: plan everything, then send with a few workers.

Two passes, both in constant memory:

1. plan: stream the input, validate every order, and file it in a temporary SQLite table
   (which also catches a code used twice in one file) beside the journal's verdict for it:
   send, skip (already placed), skip (outcome unknown), or conflict (code reused for another
   order). Any invalid order stops the run here: nothing has been sent.
2. send: workers take the orders to send in file order; each POST is journaled before and
   after (`placement.place`), paced from the server's X-RateLimit-* headers
   (`kalixo_cli.api.pacing`), and bounded by a shared retry budget.

Ctrl-C stops handing out orders; requests in flight finish (or are journaled unknown).
A kill -9 leaves at most the in-flight rows in `sending`, which the next run reads as unknown.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kalixo_cli.domain.errors import (
    AuthRejected,
    CodeTaken,
    ExitCode,
    InputError,
    JournalUnusable,
    KalixoError,
    OutcomeUnknown,
    PlacedNotRecorded,
    Problem,
    RequestRejected,
    SendCancelled,
)
from kalixo_cli.store.journal import JournalStore, request_hash
from kalixo_cli.store.verdict import verdict

if TYPE_CHECKING:
    from kalixo_cli.api.base import OrderClient
    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.domain.order import Order
    from kalixo_cli.inputs.bulk_file import BulkOrder
    from kalixo_cli.store.journal import Entry

OutcomeKind = Literal[
    "placed", "rejected", "failed", "unknown", "skipped", "skipped_unknown", "skipped_busy"
]

# Worst first: the exit code of a run is that of its worst outcome.
EXIT_FOR = {
    "unknown": ExitCode.OUTCOME_UNKNOWN,
    "skipped_unknown": ExitCode.OUTCOME_UNKNOWN,
    "skipped_busy": ExitCode.OUTCOME_UNKNOWN,  # another live run is sending it right now
    "failed": ExitCode.TEMPORARY,
    "rejected": ExitCode.REJECTED,
    "placed": ExitCode.OK,
    "skipped": ExitCode.OK,
}
SEVERITY = [
    ExitCode.INTERRUPTED,
    ExitCode.PLACED_NOT_RECORDED,
    ExitCode.JOURNAL_UNUSABLE,
    ExitCode.OUTCOME_UNKNOWN,
    ExitCode.TEMPORARY,
    ExitCode.AUTH,
    ExitCode.REJECTED,
    ExitCode.OK,
]


# ------------------------------------------------------------------------------------------
# Pass 1: plan.


@dataclass
class Plan:
    """The validated batch, on disk: what to send, what to skip, and why."""

    path: str
    db: sqlite3.Connection
    total: int = 0
    to_send: int = 0
    reconcile: int = 0
    skipped: int = 0
    skipped_unknown: int = 0
    skipped_busy: int = 0

    def orders_to_send(self) -> Iterator[tuple[int, str, str, bool]]:
        """(index, code, body, reconcile first) in file order."""
        cursor = self.db.execute(
            "SELECT idx, code, body, verdict = 'reconcile' FROM batch "
            "WHERE verdict IN ('send', 'reconcile') ORDER BY idx"
        )
        while rows := cursor.fetchmany(500):
            yield from rows

    def skipped_rows(self) -> Iterator[tuple[str, str, int | None, str | None]]:
        cursor = self.db.execute(
            "SELECT code, verdict, order_id, error FROM batch "
            "WHERE verdict NOT IN ('send', 'reconcile') "
            "ORDER BY idx"
        )
        while rows := cursor.fetchmany(500):
            yield from rows

    def close(self) -> None:
        self.db.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


PLAN_BATCH = 2000  # orders judged together: one journal query, one insert


@dataclass
class Settled:
    """The plan rows of one batch: the usual ones (to send, never sent before) and the
    others, with their kinds."""

    sends: list[tuple[int, str, str, str]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


def _planned(db: sqlite3.Connection, codes: list[str]) -> dict[str, str]:
    """Which of `codes` earlier batches planned, and where they were in the file."""
    found: dict[str, str] = {}
    for start in range(0, len(codes), 500):
        part = codes[start : start + 500]
        marks = ", ".join("?" * len(part))
        found.update(
            db.execute(f"SELECT code, where_ FROM batch WHERE code IN ({marks})", part).fetchall()
        )
    return found


PLAN_PREFIX = "batch_"
STALE_PLAN_SECONDS = 7 * 24 * 3600
"""A plan file from another host is removed once it is this old (its run is long over)."""


def plan_folder() -> Path:
    from kalixo_cli.store.config import data_dir

    return data_dir() / "plans"


def _plan_name_prefix() -> str:
    """batch_HOST_PID_START_: whose plan it is, so a later run can tell it is stale."""
    from kalixo_cli.store.journal import process_start

    host = socket.gethostname().replace("_", "-")
    return f"{PLAN_PREFIX}{host}_{os.getpid()}_{process_start(os.getpid()) or 0}_"


def clean_stale_plans(folder: Path, *, now: float | None = None) -> list[Path]:
    """Remove the plan files of runs that are over (killed ones leave theirs behind).

    A plan of this host is stale when its process is gone (or its pid now belongs to a
    process that started later); one of another host, when it is a week old.
    """
    from kalixo_cli.store.journal import pid_alive, process_start

    host = socket.gethostname().replace("_", "-")
    removed: list[Path] = []
    try:
        candidates = list(folder.glob(f"{PLAN_PREFIX}*.sqlite3"))
    except OSError:
        return removed
    for path in candidates:
        parts = path.name.split("_")
        try:
            owner, pid, start = parts[1], int(parts[2]), parts[3]
            age = (now or time.time()) - path.stat().st_mtime
        except (IndexError, ValueError, OSError):
            continue
        if owner == host:
            alive = pid_alive(pid) and start in ("0", process_start(pid) or start)
            stale = not alive
        else:
            stale = age > STALE_PLAN_SECONDS
        if stale:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def _new_plan_file(folder: Path) -> str:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        clean_stale_plans(folder)
        descriptor, path = tempfile.mkstemp(
            prefix=_plan_name_prefix(), suffix=".sqlite3", dir=folder
        )
    except OSError as exc:
        raise JournalUnusable(
            f"cannot create the batch's plan file in {folder}: {exc.strerror or exc}",
            hint=f"make {folder} writable by this user, or free space on its disk "
            "(XDG_DATA_HOME moves the data folder)",
        ) from None
    os.close(descriptor)
    return path


def plan_batch(
    orders: Iterable[BulkOrder | InputError],
    *,
    journal: JournalStore,
    api: str,
    max_problems: int = 50,
    can_look_up: bool = False,
    folder: Path | None = None,
) -> Plan:
    """Validate everything before anything is sent; raise InputError listing the problems.

    The plan (order bodies) is a private file in the data folder's `plans/`, removed when
    the run ends; a killed run's is removed by the next run.
    """
    path = _new_plan_file(folder or plan_folder())
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.executescript(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
        "CREATE TABLE batch (idx INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, "
        "where_ TEXT, body TEXT, verdict TEXT, order_id INTEGER, error TEXT);"
    )
    plan = Plan(path, db)
    problems: list[Problem] = []
    invalid = 0

    def problem(item: Problem) -> None:
        nonlocal invalid
        invalid += 1
        if len(problems) < max_problems:
            problems.append(item)

    def judge(
        items: list[BulkOrder | InputError],
        known_entries: dict[str, Entry],
        earlier: dict[str, str],
    ) -> tuple[list[Problem], Settled]:
        """The problems and the rows of a batch of items, in file order; `earlier` maps
        the codes of earlier batches to where they were (and gains this batch's)."""
        found: list[Problem] = []
        settled = Settled()
        for item in items:
            if isinstance(item, InputError):
                found.extend(item.problems)
                continue
            code = item.code
            if code in earlier:
                found.append(
                    Problem(
                        f"appears twice in the file (first at {earlier[code]}); "
                        "rows of one order must be together, codes unique",
                        where=item.where,
                        field=f"externalOrderCode {code}",
                    )
                )
                continue
            entry = known_entries.get(code)
            if entry is None:  # the usual case: never sent
                earlier[code] = item.where
                settled.sends.append((item.index, code, item.where, item.body))
                continue
            # Hashing is only needed to compare with what was sent before.
            known = verdict(entry, request_hash(json.loads(item.body)), can_look_up=can_look_up)
            if known.kind == "conflict":
                found.append(
                    Problem(
                        f"was already sent with a different order "
                        f"({known.entry.effective_state if known.entry else '?'}); "
                        "give this order a new code",
                        where=item.where,
                        field=f"externalOrderCode {code}",
                    )
                )
                continue
            kind = {
                "send": "send",
                "reconcile": "reconcile",
                "placed": "skipped",
                "unknown": "skipped_unknown",
                "busy": "skipped_busy",
            }[known.kind]
            detail = entry.error
            if kind == "skipped_busy":
                detail = f"being sent by another kalixo process ({entry.owner_text})"
            earlier[code] = item.where
            settled.rows.append(
                (
                    item.index,
                    code,
                    item.where,
                    item.body if kind in ("send", "reconcile") else None,
                    kind,
                    entry.order_id,
                    detail if kind not in ("send", "reconcile") else None,
                )
            )
            settled.kinds.append(kind)
        return found, settled

    def insert(settled: Settled) -> bool:
        """Insert the rows; False if a code was already planned (that row is left out)."""
        before = db.total_changes
        db.executemany(
            "INSERT INTO batch (idx, code, where_, body, verdict) "
            "VALUES (?, ?, ?, ?, 'send') ON CONFLICT (code) DO NOTHING",
            settled.sends,
        )
        db.executemany(
            "INSERT INTO batch VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
            settled.rows,
        )
        return db.total_changes - before == len(settled.sends) + len(settled.rows)

    def settle(items: list[BulkOrder | InputError]) -> None:
        """Judge a batch of items in file order: one journal query and one insert for all.

        A code of an earlier batch is caught by the table's UNIQUE index: only then are
        the earlier batches looked up, and the batch judged and inserted again knowing
        them (its rows come after every earlier batch's: idx grows in file order)."""
        codes = [item.code for item in items if not isinstance(item, InputError)]
        known_entries = journal.get_many(api, codes) if codes else {}
        found, settled = judge(items, known_entries, {})
        if not insert(settled):
            first = min(row[0] for row in (*settled.sends, *settled.rows))
            db.execute("DELETE FROM batch WHERE idx >= ?", (first,))
            found, settled = judge(items, known_entries, _planned(db, codes))
            if not insert(settled):
                raise RuntimeError("the plan's table refused a code it was checked for")
        for item in found:
            problem(item)
        plan.total += len(settled.sends) + len(settled.kinds)
        plan.to_send += len(settled.sends)
        for kind in settled.kinds:
            plan.to_send += kind in ("send", "reconcile")
            plan.reconcile += kind == "reconcile"
            plan.skipped += kind == "skipped"
            plan.skipped_unknown += kind == "skipped_unknown"
            plan.skipped_busy += kind == "skipped_busy"

    db.execute("BEGIN")
    try:
        items = iter(orders)
        while pending := list(itertools.islice(items, PLAN_BATCH)):
            settle(pending)
        db.execute("COMMIT")
    except BaseException:
        plan.close()
        raise
    if problems:
        plan.close()
        more = (
            f"; {invalid - len(problems)} more problems not shown"
            if invalid > len(problems)
            else ""
        )
        raise InputError(problems, hint=f"{invalid} problems in all{more}; nothing was sent")
    if plan.total == 0 and invalid == 0:
        plan.close()
        raise InputError([Problem("no orders in the input")])
    return plan


# ------------------------------------------------------------------------------------------
# Pass 2: send.


@dataclass
class Result:
    code: str
    outcome: OutcomeKind
    order: Order | None = None
    order_id: int | None = None
    status: str | None = None
    error: KalixoError | None = None
    detail: str | None = None
    settle: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    """Waits until the journal holds this result (a placed order's outcome is queued);
    called before the result is reported. Raises `PlacedNotRecorded` if it cannot."""

    def settled(self) -> Result:
        """This result once the journal holds it, or with the error that it cannot."""
        settle, self.settle = self.settle, None
        if settle is not None:
            try:
                settle()
            except PlacedNotRecorded as exc:
                self.error = exc
        return self

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] | None = None
        if self.error is not None:
            error = {
                "kind": self.error.kind,
                "exitCode": int(self.error.exit_code),
                "message": self.error.message,
                "serverMessage": getattr(self.error, "server_message", None),
                "correlationKey": getattr(self.error, "correlation_key", None),
            }
        elif self.detail:
            error = {"kind": self.outcome, "message": self.detail}
        return {
            "externalOrderCode": self.code,
            "outcome": self.outcome,
            "orderId": self.order.orderId if self.order else self.order_id,
            "status": self.order.status if self.order else self.status,
            "error": error,
            "order": self.order.to_json() if self.order else None,
        }


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EXIT_FOR, 0))
    worst: ExitCode = ExitCode.OK
    stopped: str | None = None
    send_seconds: float = 0.0
    not_recorded: int = 0  # placed, but the journal could not record them
    not_sent: int = 0  # orders to send that a stopped run (Ctrl-C, refused credentials) left

    def add(self, result: Result) -> None:
        self.counts[result.outcome] += 1
        code = EXIT_FOR[result.outcome]
        if isinstance(result.error, (AuthRejected, PlacedNotRecorded, JournalUnusable)):
            code = result.error.exit_code
        self.not_recorded += isinstance(result.error, PlacedNotRecorded)
        if SEVERITY.index(code) < SEVERITY.index(self.worst):
            self.worst = code

    def merge(self, other: Summary) -> None:
        """Fold in another part of the same run (the orders skipped before sending)."""
        for key, count in other.counts.items():
            self.counts[key] += count
        self.not_recorded += other.not_recorded
        if SEVERITY.index(other.worst) < SEVERITY.index(self.worst):
            self.worst = other.worst

    def to_json(self) -> dict[str, Any]:
        return {
            **self.counts,
            "notRecorded": self.not_recorded,
            "notSent": self.not_sent,
            "exitCode": int(self.worst),
            "stopped": self.stopped,
            "sendSeconds": round(self.send_seconds, 3),
        }


def _place_one(
    journal: JournalStore, api: str, client: OrderClient, request: OrderRequest
) -> Result | None:
    """The order's result line; None for one the run stopped before it was sent."""
    from kalixo_cli.workflows.placement import Refused, place, refusal

    code = request.externalOrderCode
    deferred: list[Callable[[], None]] = []
    try:
        result = place(journal, api, client, request, defer=deferred)
    except SendCancelled:  # never left and never journaled: counted as not sent
        return None
    except Refused as refused:  # another run got there between the plan and now
        known = refused.verdict
        entry = known.entry
        order_id = entry.order_id if entry else None
        if known.kind == "placed":
            return Result(code, "skipped", order_id=order_id)
        if known.kind == "busy":
            return Result(code, "skipped_busy", detail=refusal(known, code).message)
        if known.kind == "conflict":
            return Result(code, "rejected", error=refusal(known, code))
        return Result(
            code, "skipped_unknown", order_id=order_id, detail=entry.error if entry else None
        )
    except PlacedNotRecorded as exc:  # placed: the line is written, with its PINs
        return Result(
            code,
            "placed",
            order=exc.result.order if exc.result else None,
            order_id=exc.order_id,
            error=exc,
        )
    except OutcomeUnknown as exc:
        return Result(code, "unknown", error=exc)
    except (RequestRejected, AuthRejected, CodeTaken) as exc:
        return Result(code, "rejected", error=exc)
    except KalixoError as exc:  # nothing was placed (refused connection, 429 after waits)
        return Result(code, "failed", error=exc)
    return Result(code, "placed", order=result.order, settle=deferred[0] if deferred else None)


RECONCILE_ROUNDS = 3


@contextlib.contextmanager
def _first_ctrl_c_stops(stop: threading.Event) -> Iterator[threading.Event]:
    """While sending, a first SIGINT sets `stop` (and the event yielded) instead of raising
    KeyboardInterrupt wherever the main thread happens to be, which could fall between
    printing a result line and marking it printed; a second one raises as usual."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_sigint(signum: int, frame: object) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def send_plan(
    plan: Plan,
    *,
    journal: JournalStore,
    api: str,
    client_factory: Callable[[], OrderClient],
    concurrency: int,
    on_result: Callable[[Result], None],
    stop: threading.Event,
    can_look_up: bool = False,
) -> Summary:
    """Send what the plan says, `concurrency` at a time, in file order; report each result.

    Where the API can look codes up (v2), orders whose outcome stayed unknown (retries ran
    out, or the retry budget did) get further rounds: each is looked up by code, and sent
    again only if the API has no order under it. Their result is reported once, at the end.
    """
    sender = _Sender(
        journal=journal,
        api=api,
        client_factory=client_factory,
        concurrency=concurrency,
        on_result=on_result,
        stop=stop,
        rounds=RECONCILE_ROUNDS if can_look_up else 0,
    )
    return sender.send(plan)


class _Sender:
    """One run of `send_plan`: the workers' orders in flight, the ones held for the next
    round, and the summary; the main thread alone hands out, collects and reports."""

    def __init__(
        self,
        *,
        journal: JournalStore,
        api: str,
        client_factory: Callable[[], OrderClient],
        concurrency: int,
        on_result: Callable[[Result], None],
        stop: threading.Event,
        rounds: int,
    ) -> None:
        self.journal = journal
        self.api = api
        self.client_factory = client_factory
        self.concurrency = concurrency
        self.on_result = on_result
        self.stop = stop
        self.rounds_left = rounds
        self.summary = Summary()
        self.local = threading.local()  # each worker's own client
        self.in_flight: dict[Future[Result | None], tuple[str, str]] = {}
        self.held: list[tuple[str, str]] = []  # unknown so far, to reconcile next round

    def send(self, plan: Plan) -> Summary:
        started = time.monotonic()
        summary, in_flight, held = self.summary, self.in_flight, self.held
        with (
            ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="kalixo-send"
            ) as pool,
            _first_ctrl_c_stops(self.stop) as interrupted,
        ):
            # A first Ctrl-C only sets `stop`: nothing new starts, requests already on the
            # wire finish (each has its timeout) and are reported once, by the same
            # bookkeeping as ever, since no exception cuts into it. A second Ctrl-C leaves
            # at once.
            try:
                self._round(pool, ((code, body) for _, code, body, _ in plan.orders_to_send()))
                while held and not self.stop.is_set():
                    self.rounds_left -= 1
                    again, held[:] = list(held), []
                    self._round(pool, again)
            except KeyboardInterrupt:
                for future in list(in_flight):
                    future.cancel()
                self.journal.abandon_in_flight(
                    self.api, [c for c, _ in in_flight.values()], "interrupted twice while sending"
                )
                raise
            if interrupted.is_set():
                summary.worst = ExitCode.INTERRUPTED
                summary.stopped = (
                    "interrupted: requests in flight were finished; run the "
                    "same command again to send the rest"
                )
            for code, _ in held:  # interrupted before their round: unknown, as journaled
                result = Result(code, "unknown", detail="not reconciled before the run stopped")
                summary.add(result)
                self.on_result(result)
        summary.send_seconds = time.monotonic() - started
        return summary

    def _work(self, body: str) -> Result | None:
        """In a worker: place one order (None: stopped while it waited in line, never sent)."""
        from kalixo_cli.domain.models import OrderRequest

        if self.stop.is_set():
            return None
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = self.client_factory()
        request = OrderRequest.model_validate_json(body)
        return _place_one(self.journal, self.api, client, request)

    def _round(self, pool: ThreadPoolExecutor, items: Iterable[tuple[str, str]]) -> None:
        in_flight = self.in_flight
        for code, body in items:
            if self.stop.is_set():
                break
            # Twice as many as the workers: one waits in line for each, so a worker that
            # finishes takes its next order at once, not when this thread gets to it.
            while len(in_flight) >= 2 * self.concurrency:
                done, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
                self._collect(done)
            if self.stop.is_set():
                break
            in_flight[pool.submit(self._work, body)] = (code, body)
        while in_flight:
            done, _ = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
            self._collect(done)

    def _collect(self, done: Iterable[Future[Result | None]]) -> None:
        in_flight, summary, stop = self.in_flight, self.summary, self.stop
        finished = set(done)
        # In the order they were handed out (file order), not the set's: with an order
        # waiting in line per worker, several can finish before this thread looks.
        for future in [future for future in in_flight if future in finished]:
            code, body = in_flight[future]
            try:
                result = future.result()
            except BaseException as exc:  # a bug in a worker: the order's fate is unknown
                self.journal.abandon_in_flight(
                    self.api, [code], f"{type(exc).__name__} in a worker"
                )
                result = Result(code, "unknown", detail=f"{type(exc).__name__}: {exc}")
            if result is None:  # stopped while waiting for its turn: not sent
                del in_flight[future]
                continue
            result = result.settled()  # recorded before it is reported
            # Unknown, or not placed for a passing reason (refused connection, 429s past
            # the budget): with look-ups, both are safe to try again in the next round.
            if (
                result.outcome in ("unknown", "failed")
                and self.rounds_left > 0
                and not stop.is_set()
            ):
                self.held.append((code, body))
                del in_flight[future]
                continue
            summary.add(result)
            self.on_result(result)
            del in_flight[future]
            if isinstance(result.error, AuthRejected):
                stop.set()
                summary.stopped = "the API refused the credentials; nothing more was sent"
            elif isinstance(result.error, JournalUnusable) and not stop.is_set():
                stop.set()
                summary.stopped = (
                    f"the journal cannot be written ({result.error.message}); nothing more was sent"
                )


def skipped_results(
    plan: Plan,
    *,
    journal: JournalStore,
    api: str,
    client_factory: Callable[[], OrderClient],
    look_up: bool,
    concurrency: int,
) -> Iterator[Result]:
    """The result lines of orders placed by an earlier run, as that run printed them: the
    order looked up from the API, with its PINs and its status now (a few at a time, a
    chunk of the plan in memory at once). Orders with an unknown outcome are not looked
    up: the journal holds them until they are settled."""
    from concurrent.futures import ThreadPoolExecutor

    from kalixo_cli.domain.normalize import complete_from_request, request_of

    local = threading.local()

    def one(row: tuple[str, str, int | None, str | None]) -> Result:
        code, kind, order_id, error = row
        if kind != "skipped":  # unknown, or busy in another process: not looked up
            outcome = "skipped_busy" if kind == "skipped_busy" else "skipped_unknown"
            return Result(
                code,
                outcome,  # type: ignore[arg-type]
                order_id=order_id,
                detail=error,
            )
        entry = journal.get(api, code)
        status = entry.status if entry is not None else None
        if not look_up:
            return Result(code, "skipped", order_id=order_id, status=status)
        made = getattr(local, "client", None)
        if made is None:
            made = local.client = client_factory()
        reference = order_id if order_id is not None else (code if made.can_look_up else None)
        if reference is None:
            return Result(
                code,
                "skipped",
                status=status,
                detail="placed before; the journal has no orderId to look it up by",
            )
        try:
            order = made.retrieve_order(reference).order
        except KalixoError as exc:
            return Result(
                code,
                "skipped",
                order_id=order_id,
                status=status,
                detail=f"placed before; could not look it up: {exc.message}",
            )
        request = request_of(entry.body) if entry is not None else None
        if request is not None:
            complete_from_request(order, request)
        journal.record_status(api, code, order.status)
        return Result(code, "skipped", order=order)

    rows = plan.skipped_rows()
    with ThreadPoolExecutor(
        max_workers=concurrency if look_up else 1, thread_name_prefix="kalixo-look-up"
    ) as pool:
        while chunk := [row for _, row in zip(range(256), rows, strict=False)]:
            yield from pool.map(one, chunk)
