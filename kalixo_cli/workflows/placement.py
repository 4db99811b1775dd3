"""Exactly-once placement: a claim on the journal before, and the outcome after, every POST.

`place` wraps one POST so that the journal holds this process's claim before the request
leaves (taken after any pacing wait, right before the request: an order still waiting for
its turn was never sent) and the outcome after, whatever the outcome is, Ctrl-C included;
`order_difference` is the pure rule that tells a replay (the API's order under this code is
this request) from a conflict (it is another order, whose PINs are not ours to show).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kalixo_cli.domain.errors import (
    AlreadyPlaced,
    AuthRejected,
    CodeBusy,
    CodeTaken,
    JournalUnusable,
    KalixoError,
    OutcomeUnknown,
    PlacedNotRecorded,
    RequestRejected,
    SendCancelled,
    ServiceUnavailable,
    TransportError,
    UsageError,
)
from kalixo_cli.store.journal import request_hash
from kalixo_cli.store.verdict import Verdict, VerdictKind, verdict

if TYPE_CHECKING:
    from kalixo_cli.api.base import OrderClient, OrderResult
    from kalixo_cli.domain.catalog import Product
    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.domain.order import Order
    from kalixo_cli.store.journal import JournalState, JournalStore

__all__ = [
    "Refused",
    "Verdict",
    "VerdictKind",
    "check",
    "order_difference",
    "place",
    "place_or_replay",
    "refusal",
    "replay",
    "resolution_hint",
    "verdict",
]


def check(
    journal: JournalStore, api: str, request: OrderRequest, *, can_look_up: bool = False
) -> Verdict:
    """What the journal says of this request now (a read; `place` claims atomically)."""
    return verdict(
        journal.get(api, request.externalOrderCode),
        request_hash(request.body()),
        can_look_up=can_look_up,
    )


def order_difference(order: Order, request: OrderRequest) -> str | None:
    """How the API's order under this code differs from the request; None when it is the
    same order (a replay). Only what the API states is compared: v2 omits some fields."""
    if order.currency is not None and order.currency != request.currency:
        return f"it is in {order.currency}, this order in {request.currency}"
    if order.price is not None and order.price != request.price:
        return f"its total is {order.price}, this order's {request.price}"
    if not order.products:
        return None
    theirs = sorted((p.productId or 0, p.quantity or 0, p.price) for p in order.products)
    ours = sorted((line.productId, line.quantity, line.price) for line in request.orderProducts)
    same = len(theirs) == len(ours) and all(
        (t_id, t_qty) == (o_id, o_qty) and (t_price is None or t_price == o_price)
        for (t_id, t_qty, t_price), (o_id, o_qty, o_price) in zip(theirs, ours, strict=True)
    )
    if same:
        return None

    def lines(items: Sequence[tuple[int, int, int | None]]) -> str:
        return ", ".join(f"{qty} x product {pid}" for pid, qty, _ in items)

    return f"it holds {lines(theirs)}; this order is {lines(ours)}"


class Refused(Exception):
    """The claim was not won: the code is placed, unknown, taken or busy. Not an error in
    itself: place-order turns it into one (`refusal`), a bulk run into a skipped line."""

    def __init__(self, known: Verdict) -> None:
        super().__init__(known.kind)
        self.verdict = known


def _error_kind(error: KalixoError) -> str:
    return type(error).__name__


def refusal(known: Verdict, code: str) -> KalixoError:
    """The error for a code the claim did not win: placed, unknown, taken or busy."""
    entry = known.entry
    assert entry is not None
    when = entry.to_json()["createdAt"]
    if known.kind == "busy":
        return CodeBusy(
            f"order {code} is being sent by another kalixo process ({entry.owner_text}); "
            "it was not sent again",
            hint=f"wait for that run to finish; `kalixo orders show {code}` then says how it ended",
        )
    if known.kind == "conflict":
        return UsageError(
            f"externalOrderCode {code} was already sent on {when} with a different order "
            f"({entry.effective_state}); nothing was sent",
            hint="give this order a new --external-order-code",
        )
    if known.kind == "placed":
        return AlreadyPlaced(
            f"order {code} was already placed on {when} as order {entry.order_id}; "
            "it was not sent again",
            hint=f"see it with `kalixo retrieve-order {entry.order_id}`; give a new "
            "--external-order-code to buy the same again",
        )
    return OutcomeUnknown(
        f"order {code} was sent on {when} and its outcome is unknown "
        f"({entry.error or 'no answer'}); it was not sent again",
        hint=resolution_hint(code),
    )


def _record(
    journal: JournalStore,
    api: str,
    code: str,
    state: JournalState,
    *,
    error_kind: str | None,
    error: str | None,
) -> None:
    """Record a failed attempt's outcome; if the journal cannot, the claim stays `sending`,
    which reads as unknown once this process ends: never sent again unchecked."""
    with contextlib.suppress(JournalUnusable):
        journal.finish(api, code, state, error_kind=error_kind, error=error)


def _placed(
    journal: JournalStore,
    api: str,
    result: OrderResult,
    request: OrderRequest,
    error_kind: str | None = None,
    defer: list[Callable[[], None]] | None = None,
) -> OrderResult:
    """Record an order in hand. If the journal cannot, the answer is not lost: it travels
    in `PlacedNotRecorded`, for the caller to print before it exits 10.

    With `defer`, the record is queued and the function that waits for it to be durable
    (raising `PlacedNotRecorded` the same way) is appended there instead: the caller must
    call it before it reports the order."""
    code = request.externalOrderCode
    order = result.order

    def failed(exc: JournalUnusable) -> PlacedNotRecorded:
        error = PlacedNotRecorded(code, order.orderId, exc.message, where=exc.where)
        error.result = result
        return error

    try:
        durable = journal.finish_soon(
            api, code, "placed", order_id=order.orderId, status=order.status, error_kind=error_kind
        )
        if defer is None:
            durable()
    except JournalUnusable as exc:
        raise failed(exc) from exc
    if defer is not None:

        def settle() -> None:
            try:
                durable()
            except JournalUnusable as exc:
                raise failed(exc) from exc

        defer.append(settle)
    return result


def _check_same(
    journal: JournalStore, api: str, result: OrderResult, request: OrderRequest, where: str | None
) -> None:
    code = request.externalOrderCode
    difference = order_difference(result.order, request)
    if difference is not None:
        error = CodeTaken(code, result.order.orderId, difference, where=where)
        _record(journal, api, code, "rejected", error_kind=_error_kind(error), error=error.message)
        raise error


def place(
    journal: JournalStore,
    api: str,
    client: OrderClient,
    request: OrderRequest,
    *,
    defer: list[Callable[[], None]] | None = None,
) -> OrderResult:
    """Claim the code, POST once, record the outcome whatever it is.

    The claim is taken right before the request is written (after any pacing wait); a code
    it does not win raises `Refused`, and nothing is sent. A code whose earlier outcome is
    unknown, on an API that can look codes up (v2), is claimed and looked up first, and only
    sent when the API has no order under it. An order the API holds under this code is this
    order's only when it is the same order (`order_difference`): else `CodeTaken`, exit 3,
    without its PINs.

    `defer` (a bulk worker's): the outcome of a POST that placed the order is queued, not
    waited for, and the function that waits for it is appended to `defer`; the caller
    calls it before reporting the order, and meanwhile may take its next order.
    """
    code = request.externalOrderCode
    claimed = False

    def take() -> None:
        nonlocal claimed
        if claimed:  # a repeat after a token refresh is the same attempt
            return
        claim = journal.claim(api, code, request.body(), can_look_up=client.can_look_up)
        if not claim.won:
            raise Refused(claim.verdict)
        claimed = True

    known = check(journal, api, request, can_look_up=client.can_look_up)
    if not known.may_send:
        raise Refused(known)
    if known.kind == "reconcile" and client.can_look_up:
        take()
        try:
            found = client.look_up(code)
        except KalixoError as exc:  # could not ask: the outcome stays unknown
            _record(journal, api, code, "unknown", error_kind=_error_kind(exc), error=exc.message)
            raise OutcomeUnknown(
                f"could not look order {code} up to settle its unknown outcome: {exc.message}",
                hint="run the same command again later: it looks the code up first",
            ) from exc
        except BaseException:
            _record(
                journal,
                api,
                code,
                "unknown",
                error_kind="interrupted",
                error="interrupted while looking the code up",
            )
            raise
        if found is not None:
            _check_same(journal, api, found, request, where=None)
            return _placed(journal, api, found, request, error_kind="reconciled by look-up")
    try:
        result = client.place_order(request, on_send=take)
    except Refused:
        raise
    except BaseException as exc:
        if not claimed:  # it never left: Ctrl-C while waiting for its turn, nothing to record
            raise
        _record_failure(journal, api, code, exc)
        if isinstance(exc, SendCancelled):  # a repeat cancelled after an attempt went out
            raise OutcomeUnknown(
                f"order {code} was interrupted between two attempts", hint=resolution_hint(code)
            ) from exc
        raise
    _check_same(journal, api, result, request, where=None)
    result = _placed(journal, api, result, request, defer=defer)
    confirmed = client.confirm_status(result)  # v1 states no status when placing: asks once
    if confirmed is not result:
        result = confirmed
        with contextlib.suppress(JournalUnusable):  # the order is recorded; only its status
            journal.record_status(api, code, result.order.status)
    if result.notes:
        from kalixo_cli.terminal.output import current

        for note in result.notes:
            current().warn(note)
    return result


def _record_failure(journal: JournalStore, api: str, code: str, exc: BaseException) -> None:
    """The outcome of a POST that ended without an order, by what the failure says."""
    if isinstance(exc, OutcomeUnknown):
        _record(journal, api, code, "unknown", error_kind=_error_kind(exc), error=exc.message)
    elif isinstance(exc, (RequestRejected, AuthRejected)):
        _record(
            journal,
            api,
            code,
            "rejected",
            error_kind=_error_kind(exc),
            error=exc.server_message or exc.message,
        )
    elif isinstance(exc, (TransportError, ServiceUnavailable)):
        _record(journal, api, code, "failed", error_kind=_error_kind(exc), error=exc.message)
    else:  # Ctrl-C or a bug mid-request: nobody knows
        _record(
            journal,
            api,
            code,
            "unknown",
            error_kind="interrupted",
            error=f"{type(exc).__name__} while sending",
        )


def resolution_hint(code: str) -> str:
    """How to settle an unknown outcome on an API that cannot look orders up by code (v1)."""
    return (
        f"check whether {code} was placed: find its orderId (Kalixo support, or your "
        f"records) and `kalixo retrieve-order ORDER_ID`; then record it with "
        f"`kalixo orders resolve {code} --order-id ORDER_ID`. If it was not placed, "
        f"`kalixo orders resolve {code} --not-placed` lets it be sent again"
    )


def place_or_replay(
    journal: JournalStore,
    api: str,
    client: OrderClient,
    request: OrderRequest,
    *,
    note: Callable[[str], None],
) -> tuple[OrderResult, bool]:
    """`place`, except that a code the journal knows as placed is an idempotent replay
    (the order as the API has it now; nothing is sent). Any other refusal raises its
    error. Returns the result and whether it was a replay."""
    try:
        return place(journal, api, client, request), False
    except Refused as refused:
        if refused.verdict.kind != "placed":
            raise refusal(refused.verdict, request.externalOrderCode) from None
        return replay(client, refused.verdict, request.externalOrderCode, note=note), True


def replay(
    client: OrderClient, known: Verdict, code: str, *, note: Callable[[str], None]
) -> OrderResult:
    """An idempotent replay, as a Stripe idempotency key gives: the order placed earlier
    under this code, fresh from the API with its PINs; nothing is sent."""
    entry = known.entry
    assert entry is not None
    when = entry.to_json()["createdAt"]
    reference: int | str | None = entry.order_id
    if reference is None and client.can_look_up:
        reference = code
    if reference is None:
        raise OutcomeUnknown(
            f"order {code} was placed on {when} but the journal has no orderId for it; "
            "it was not sent again",
            hint=f"find its orderId with Kalixo support and record it with `kalixo orders "
            f"resolve {code} --order-id ORDER_ID --force`",
        )
    note(
        f"order {code} was placed on {when} as order {reference}; not sent again "
        "(shown as the API has it now)"
    )
    return client.retrieve_order(reference)


def complete_retrieved(journal: JournalStore, api: str, client: OrderClient, order: Order) -> None:
    """Fill what a v2 answer leaves out (currency, total, SKUs; a failed order's lines)
    from the request this machine sent, else from the catalog, and journal the status.
    (v1's retrieve answer states them all, and its retrieve-order loads no SQLite.)"""
    from kalixo_cli.domain.normalize import (
        complete_from_catalog,
        complete_from_request,
        request_of,
    )

    entry = None
    if order.externalOrderCode is not None:
        entry = journal.get(api, order.externalOrderCode)
    elif order.orderId is not None:
        entry = journal.by_order_id(api, order.orderId)
    if entry is not None and entry.state == "placed" and entry.order_id in (None, order.orderId):
        request = request_of(entry.body)
        if request is not None:
            complete_from_request(order, request)
        journal.record_status(api, entry.code, order.status)
    if order.currency is None or any(p.sku is None for p in order.products):

        def lookup(product_id: int) -> Product | None:
            try:
                return client.catalog_product(product_id)
            except KalixoError:
                return None

        complete_from_catalog(order, lookup)


def record_final(
    journal: JournalStore,
    api: str,
    request: OrderRequest,
    order: Order,
    *,
    warn: Callable[[str], None],
) -> None:
    """Fill what the API's answer leaves out from the request sent, and journal the order's
    status now. The order is recorded as placed already: a journal that cannot take the
    status is a warning, never a reason to lose the order in hand."""
    from kalixo_cli.domain.normalize import complete_from_request

    complete_from_request(order, request)
    try:
        journal.record_status(api, request.externalOrderCode, order.status)
    except JournalUnusable as exc:
        warn(f"could not record order {order.orderId}'s final status: {exc.message}")
