"""What every API generation's client offers, and the shapes its answers come in.

`OrderClient` is the one interface the workflows and commands use; `api.v1.V1Client` and
`api.v2.V2Client` implement it (v2 adds the wallet). What differs is a capability, never
an isinstance: `can_look_up` says whether an order can be found by its code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol

from kalixo_cli.api.http import Answer, Transport
from kalixo_cli.domain.errors import APIError, KalixoError, TransportError
from kalixo_cli.domain.order import Order

if TYPE_CHECKING:
    import requests

    from kalixo_cli.domain.catalog import CatalogFilters, Product
    from kalixo_cli.domain.models import OrderRequest


@dataclass(frozen=True)
class OrderResult:
    order: Order
    answer: Answer
    # what the caller should tell the user (the order stands whatever they say)
    notes: tuple[str, ...] = ()


class OrderClient(Protocol):
    """An API client: orders, the catalog, and a probe for `ping` and `doctor`."""

    transport: Transport
    can_look_up: bool  # can an order be found by its externalOrderCode (v2), or only by id

    def place_order(self, request: OrderRequest, *,
                    on_send: Callable[[], None] | None = None) -> OrderResult: ...

    def confirm_status(self, placed: OrderResult) -> OrderResult:
        """The placed order with the server's status (v1 asks once; v2's answer has it)."""
        ...

    def retrieve_order(self, reference: int | str) -> OrderResult: ...

    def look_up(self, code: str) -> OrderResult | None:
        """The order placed under `code`, None when there is none; only if `can_look_up`."""
        ...

    def catalog_page(self, skip: int, take: int,
                     filters: CatalogFilters | None = None) -> tuple[int, list[Product]]: ...

    def catalog_product(self, product_id: int) -> Product: ...

    def catalog_product_by_code(self, *, ean: str | None = None,
                                sku: str | None = None) -> Product: ...

    def probe(self) -> Probe: ...


def one_product(data: Any, where: str) -> Product:
    from kalixo_cli.domain.catalog import normalize_product

    try:
        return normalize_product(data)
    except ValueError as exc:
        raise TransportError(f"the API's answer is not a product ({exc})", where=where) from exc


@dataclass(frozen=True)
class Probe:
    """One GET made to see whether the API answers, lets us in, and agrees on the time.

    `status` is the last HTTP status (None when nothing answered); `round_trip_ms` the last
    attempt's time to the answer's headers; `server_time` the server's clock (unix seconds,
    from the Date header, or better when the body carries one) and `received_at` ours when
    the answer came; `error` what the request raised, if anything.
    """

    url: str
    status: int | None
    round_trip_ms: float | None
    server_time: float | None
    received_at: float | None
    data: Any
    error: KalixoError | None

    @property
    def clock_skew(self) -> float | None:
        """Seconds the server's clock is ahead of ours (negative: behind)."""
        if self.server_time is None or self.received_at is None:
            return None
        half_trip = (self.round_trip_ms or 0.0) / 2000
        return self.server_time - (self.received_at - half_trip)


def http_date(value: str | None) -> float | None:
    """An HTTP Date header -> unix seconds; None when absent or not a date."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def probe(transport: Transport, path: str,
          params: Mapping[str, Any] | None = None) -> Probe:
    """GET `path` through the usual seam, watching the raw answers for their headers."""
    seen: list[tuple[requests.Response, float]] = []

    def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((response, time.time()))

    # `Answer` carries no headers; a response hook on the GET session sees them all.
    hooks = transport._get.hooks["response"]
    hooks.append(remember)
    data: Any = None
    error: KalixoError | None = None
    try:
        data = transport.get(path, params).data
    except (APIError, TransportError) as exc:
        error = exc
    finally:
        hooks.remove(remember)
    if not seen:
        return Probe(transport.url(path), None, None, None, None, None, error)
    response, received_at = seen[-1]
    return Probe(
        url=transport.url(path), status=response.status_code,
        round_trip_ms=response.elapsed.total_seconds() * 1000,
        server_time=http_date(response.headers.get("date")), received_at=received_at,
        data=data, error=error,
    )
