"""Exactly-once placement: the journal consulted before, and written around, every POST.

`verdict` is the pure rule (may this code be sent now?); `place` wraps one POST so that the
journal holds the intent before the request leaves (written after any pacing wait, right
before the request: an order still waiting for its turn was never sent) and the outcome
after, whatever the outcome is, Ctrl-C included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kalixo_cli.errors import (
    AuthRejected,
    KalixoError,
    OutcomeUnknown,
    RequestRejected,
    ServiceUnavailable,
    TransportError,
)
from kalixo_cli.journal import Entry, Journal, request_hash

if TYPE_CHECKING:
    from kalixo_cli.api.v1 import OrderResult
    from kalixo_cli.context import ApiClient
    from kalixo_cli.models import OrderRequest

VerdictKind = Literal["send", "placed", "unknown", "conflict", "reconcile"]


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    entry: Entry | None = None

    @property
    def may_send(self) -> bool:
        return self.kind in ("send", "reconcile")


def verdict(entry: Entry | None, body_hash: str, *, can_look_up: bool = False) -> Verdict:
    """Send only what nobody has placed and nobody might have placed.

    - never sent, or sent and refused (4xx) or not placed (refused connection, 429): send;
    - placed: never again;
    - unknown (or left `sending` by a process that died): never again until resolved, by
      a person (v1) or by looking the code up first (v2: "reconcile");
    - placed or unknown under a different payload: the code is taken; refuse.
    """
    if entry is None or entry.effective_state in ("rejected", "failed"):
        return Verdict("send", entry)
    if entry.hash != body_hash:
        return Verdict("conflict", entry)
    if entry.effective_state == "placed":
        return Verdict("placed", entry)
    # Unknown: an API that can look the code up (v2) settles it before anything is sent.
    return Verdict("reconcile" if can_look_up else "unknown", entry)


def check(journal: Journal, api: str, request: OrderRequest, *,
          can_look_up: bool = False) -> Verdict:
    return verdict(journal.get(api, request.externalOrderCode), request_hash(request.body()),
                   can_look_up=can_look_up)


def _error_kind(error: KalixoError) -> str:
    return type(error).__name__


def place(journal: Journal, api: str, client: ApiClient, request: OrderRequest, *,
          reconcile: bool = False) -> OrderResult:
    """POST one order with its intent journaled first; the outcome is journaled whatever it is.

    With `reconcile` (an unknown outcome on an API that can look codes up), the code is
    looked up first and only sent when the API has no order under it.
    """
    code = request.externalOrderCode
    if reconcile and client.can_look_up:
        try:
            found = client.look_up(code)  # type: ignore[union-attr]
        except KalixoError as exc:  # could not ask: the outcome stays unknown
            raise OutcomeUnknown(
                f"could not look order {code} up to settle its unknown outcome: {exc.message}",
                hint="run the same command again later: it looks the code up first",
            ) from exc
        if found is not None:
            journal.finish(api, code, "placed", order_id=found.order.orderId,
                           status=found.order.status, error_kind="reconciled by look-up")
            return found
    begun = False

    def claim() -> None:  # after any pacing wait, right before the request is written
        nonlocal begun
        if not begun:  # a repeat after a token refresh is the same attempt
            journal.begin(api, code, request.body())
            begun = True

    try:
        result = client.place_order(request, on_send=claim)
    except OutcomeUnknown as exc:
        journal.finish(api, code, "unknown", error_kind=_error_kind(exc), error=exc.message)
        raise
    except (RequestRejected, AuthRejected) as exc:
        journal.finish(api, code, "rejected", error_kind=_error_kind(exc),
                       error=exc.server_message or exc.message)
        raise
    except (TransportError, ServiceUnavailable) as exc:
        journal.finish(api, code, "failed", error_kind=_error_kind(exc), error=exc.message)
        raise
    except BaseException as exc:  # Ctrl-C or a bug mid-request: nobody knows
        if begun:  # else it never left: Ctrl-C while waiting for its turn, nothing to record
            journal.finish(api, code, "unknown", error_kind="interrupted",
                           error=f"{type(exc).__name__} while sending")
        raise
    order = result.order
    journal.finish(api, code, "placed", order_id=order.orderId, status=order.status)
    return result


def resolution_hint(code: str) -> str:
    """How to settle an unknown outcome on an API that cannot look orders up by code (v1)."""
    return (
        f"check whether {code} was placed: find its orderId (Kalixo support, or your "
        f"records) and `kalixo retrieve-order ORDER_ID`; then record it with "
        f"`kalixo orders resolve {code} --order-id ORDER_ID`. If it was not placed, "
        f"`kalixo orders resolve {code} --not-placed` lets it be sent again"
    )
