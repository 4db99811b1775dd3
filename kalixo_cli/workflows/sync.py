"""`kalixo orders sync`: ask the API about every journal row that is not final, record the answer.

Not final: an unknown outcome (or a `sending` row nobody finished), and an order placed but
still processing. v2 reads an order by its code, so every unknown settles: found means
placed (with its status), a 404 means it was never placed. v1 reads orders by id only, so
only rows that know their order id can be brought up to date; the other unknowns stay
unknown for a person to settle (`orders resolve`).

A row still `sending` may belong to a process that is sending it now: it is recorded as not
placed only once it is older than any request could take (`in_flight_for`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kalixo_cli.domain.errors import ExitCode, KalixoError

if TYPE_CHECKING:
    from kalixo_cli.api.base import OrderResult
    from kalixo_cli.store.journal import Entry, JournalStore

PENDING_STATUSES = frozenset({"processing", "requested"})
SYNCED = "synced"
NOT_PLACED = "not placed: the API has no order under this code"


class OrderReader(Protocol):
    can_look_up: bool

    def retrieve_order(self, reference: int | str) -> OrderResult: ...


def needs_sync(entry: Entry) -> bool:
    """An outcome nobody knows, or an order the API is still working on."""
    state = entry.effective_state
    return state == "unknown" or (
        state == "placed" and (entry.status or "").lower() in PENDING_STATUSES
    )


@dataclass(frozen=True)
class SyncChange:
    """One row looked at: what the journal said before, what it says now, and why."""

    code: str
    order_id: int | None
    state_before: str
    status_before: str | None
    state: str
    status: str | None
    detail: str | None = None
    error: KalixoError | None = None

    @property
    def changed(self) -> bool:
        return (self.state, self.status) != (self.state_before, self.status_before)

    @property
    def unknown(self) -> bool:
        return self.state == "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "externalOrderCode": self.code,
            "orderId": self.order_id,
            "stateBefore": self.state_before,
            "statusBefore": self.status_before,
            "state": self.state,
            "status": self.status,
            "changed": self.changed,
            "detail": self.detail,
            "errorKind": self.error.kind if self.error is not None else None,
        }


def _look_up(client: OrderReader, code: str) -> OrderResult | None:
    from kalixo_cli.domain.errors import RequestRejected

    try:
        return client.retrieve_order(code)
    except RequestRejected as exc:
        if exc.status == 404:
            return None
        raise


def sync_entry(
    journal: JournalStore,
    api: str,
    client: OrderReader,
    entry: Entry,
    *,
    now: float,
    in_flight_for: float,
) -> SyncChange:
    """Ask the API about one row and record what it says. Never raises a KalixoError: a
    failure to ask is reported on the row, which stays as it was."""
    before = entry.effective_state
    unchanged = SyncChange(entry.code, entry.order_id, before, entry.status, before, entry.status)
    try:
        if client.can_look_up:
            found = _look_up(client, entry.code)
        elif entry.order_id is not None:
            found = client.retrieve_order(entry.order_id)
        else:
            return _with(
                unchanged,
                detail="API v1 cannot look an order up by its code; "
                f"settle it with `kalixo orders resolve {entry.code}`",
            )
    except KalixoError as exc:
        return _with(unchanged, detail=exc.message, error=exc)
    if found is None:
        if before == "placed":
            return _with(unchanged, detail="the API has no order under this code now")
        if entry.state == "sending" and now - entry.updated_at < in_flight_for:
            return _with(
                unchanged,
                detail="being sent right now, or only just stopped; sync again in a minute",
            )
        if not journal.finish(
            api, entry.code, "failed", error_kind=SYNCED, error=NOT_PLACED, expected_rev=entry.rev
        ):
            return _with(
                unchanged,
                detail="another kalixo process took it up meanwhile; sync again in a minute",
            )
        return SyncChange(
            entry.code,
            entry.order_id,
            before,
            entry.status,
            "failed",
            entry.status,
            detail=NOT_PLACED + "; it may be sent again",
        )
    order = found.order
    order_id = order.orderId if order.orderId is not None else entry.order_id
    journal.finish(
        api, entry.code, "placed", order_id=order_id, status=order.status, error_kind=SYNCED
    )
    detail = (
        "placed, as the API says"
        if before != "placed"
        else f"now {order.status}"
        if order.status != entry.status
        else None
    )
    return SyncChange(
        entry.code, order_id, before, entry.status, "placed", order.status, detail=detail
    )


def _with(
    change: SyncChange, *, detail: str | None = None, error: KalixoError | None = None
) -> SyncChange:
    return SyncChange(
        change.code,
        change.order_id,
        change.state_before,
        change.status_before,
        change.state,
        change.status,
        detail=detail,
        error=error,
    )


def sync_entries(
    journal: JournalStore,
    api: str,
    client: OrderReader,
    entries: Iterable[Entry],
    *,
    in_flight_for: float,
    clock: Callable[[], float] = time.time,
    on_change: Callable[[SyncChange], None] | None = None,
) -> list[SyncChange]:
    changes = []
    for entry in entries:
        if not needs_sync(entry):
            continue
        change = sync_entry(journal, api, client, entry, now=clock(), in_flight_for=in_flight_for)
        changes.append(change)
        if on_change is not None:
            on_change(change)
    return changes


def exit_code(changes: list[SyncChange]) -> ExitCode:
    """6 while an outcome stays unknown; else the first failure to ask (5, 4...); else 0."""
    if any(change.unknown for change in changes):
        return ExitCode.OUTCOME_UNKNOWN
    for change in changes:
        if change.error is not None:
            return change.error.exit_code
    return ExitCode.OK
