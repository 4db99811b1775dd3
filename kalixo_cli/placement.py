"""Exactly-once placement: the journal consulted before, and written around, every POST.

`verdict` is the pure rule (may this code be sent now?); `place` wraps one POST so that the
journal holds the intent before the request leaves and the outcome after, whatever the
outcome is, Ctrl-C included.
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
    from kalixo_cli.api.v1 import OrderResult, V1Client
    from kalixo_cli.models import OrderRequest

VerdictKind = Literal["send", "placed", "unknown", "conflict"]


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    entry: Entry | None = None

    @property
    def may_send(self) -> bool:
        return self.kind == "send"


def verdict(entry: Entry | None, body_hash: str) -> Verdict:
    """Send only what nobody has placed and nobody might have placed.

    - never sent, or sent and refused (4xx) or not placed (refused connection, 429): send;
    - placed: never again;
    - unknown (or left `sending` by a process that died): never again until resolved;
    - placed or unknown under a different payload: the code is taken; refuse.
    """
    if entry is None or entry.effective_state in ("rejected", "failed"):
        return Verdict("send", entry)
    if entry.hash != body_hash:
        return Verdict("conflict", entry)
    if entry.effective_state == "placed":
        return Verdict("placed", entry)
    return Verdict("unknown", entry)


def check(journal: Journal, api: str, request: OrderRequest) -> Verdict:
    return verdict(journal.get(api, request.externalOrderCode), request_hash(request.body()))


def _error_kind(error: KalixoError) -> str:
    return type(error).__name__


def place(journal: Journal, api: str, client: V1Client, request: OrderRequest) -> OrderResult:
    """POST one order with its intent journaled first; the outcome is journaled whatever it is."""
    code = request.externalOrderCode
    journal.begin(api, code, request.body())
    try:
        result = client.place_order(request)
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
        journal.finish(api, code, "unknown", error_kind="interrupted",
                       error=f"{type(exc).__name__} while sending")
        raise
    order = result.order
    journal.finish(api, code, "placed", order_id=order.orderId, status=order.status)
    return result


def resolution_hint(code: str, entry: Entry | None) -> str:
    """How to settle an unknown outcome on an API that cannot look orders up by code (v1)."""
    return (
        f"check whether {code} was placed: find its orderId (Kalixo support, or your "
        f"records) and `kalixo retrieve-order ORDER_ID`; then record it with "
        f"`kalixo orders resolve {code} --order-id ORDER_ID`. If it was not placed, "
        f"`kalixo orders resolve {code} --not-placed` lets it be sent again"
    )
