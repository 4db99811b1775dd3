"""Kalixo API v1: paths and answer shapes, on top of the HTTP seam."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from kalixo_cli.api.http import Answer, Transport
from kalixo_cli.domain.errors import (
    APIError,
    KalixoError,
    OutcomeUnknown,
    RequestRejected,
    TransportError,
    UsageError,
)
from kalixo_cli.domain.normalize import normalize_order, normalize_placed_order
from kalixo_cli.domain.order import Order

if TYPE_CHECKING:
    import requests

    from kalixo_cli.domain.catalog import (
        CatalogFilters,
        Product,
    )
    from kalixo_cli.domain.models import OrderRequest


@dataclass(frozen=True)
class OrderResult:
    order: Order
    answer: Answer


class V1Client:
    can_look_up = False  # v1 reads orders by id only: an unknown outcome needs a person

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def place_order(self, request: OrderRequest, *,
                    on_send: Callable[[], None] | None = None) -> OrderResult:
        code = request.externalOrderCode
        answer = self.transport.post_order("orders/place-order", request.body(), code=code,
                                           on_send=on_send)
        try:
            order = normalize_placed_order(answer.data, request)
        except ValueError as exc:
            raise OutcomeUnknown(
                f"the API accepted the order {code} but its answer is not an order ({exc})",
                where=self.transport.url("orders/place-order"),
                correlation_key=answer.correlation_key,
                hint="find the order's id with Kalixo support before placing it again",
            ) from exc
        return OrderResult(order, answer)

    def confirm_status(self, placed: OrderResult) -> OrderResult:
        """v1's place answer states no status: when it lacks a PIN, one retrieve tells the
        server's status (failed, cancelled, requested...), never a guess. The order is
        placed whatever happens here; a failed look-up leaves the status null."""
        order = placed.order
        if order.orderId is None or not order.short_lines:
            return placed
        try:
            fresh = self.retrieve_order(order.orderId).order
        except KalixoError as exc:
            from kalixo_cli.terminal.output import warn

            warn(f"order {order.orderId} was placed without every PIN, and its status could "
                 f"not be read ({exc.message}); see it with `kalixo retrieve-order "
                 f"{order.orderId}`")
            order.status = None
            return placed
        fresh.externalOrderCode = fresh.externalOrderCode or order.externalOrderCode
        fresh.currency = fresh.currency or order.currency
        fresh.price = fresh.price if fresh.price is not None else order.price
        if not fresh.products:
            fresh.products = order.products
        return OrderResult(fresh, placed.answer)

    def retrieve_order(self, order_id: int | str) -> OrderResult:
        if isinstance(order_id, str) and not order_id.isdigit():
            raise UsageError(f"API v1 finds orders by orderId only, not {order_id!r}")
        answer = self.transport.get("orders/retrieve-order", params={"id": order_id})
        try:
            order = normalize_order(answer.data)
        except ValueError as exc:
            raise TransportError(
                f"the API's answer is not an order ({exc})",
                where=self.transport.url("orders/retrieve-order"),
            ) from exc
        return OrderResult(order, answer)

    # -- catalog -----------------------------------------------------------------------

    def catalog_page(self, skip: int, take: int,
                     filters: CatalogFilters | None = None) -> tuple[int, list[Product]]:
        """`catalog/products?skip&take` -> (count, products). v1 has no filters: they are
        applied here, so the page may hold fewer products than `take` although `count`
        (the whole catalog's) says there are more; page on by `take`."""
        from kalixo_cli.domain.catalog import normalize_product_list

        path = "catalog/products"
        answer = self.transport.get(path, params={"skip": skip, "take": take})
        try:
            count, products = normalize_product_list(answer.data, skip=skip, take=take)
        except ValueError as exc:
            raise TransportError(f"the API's answer is not a product list ({exc})",
                                 where=self.transport.url(path)) from exc
        if filters is not None and not filters.empty:
            products = [product for product in products if filters.matches(product)]
        return count, products

    def catalog_product(self, product_id: int) -> Product:
        """v1 has no product-by-id route: walk the product list until it turns up."""
        from kalixo_cli.domain.catalog import CatalogPages

        pages = CatalogPages(self.catalog_page)
        found = next((product for product in pages if product.id == product_id), None)
        if found is None:
            raise RequestRejected(f"product {product_id} is not in the catalog", status=404,
                                  where=self.transport.url("catalog/products"),
                                  hint="`kalixo catalog list` shows the products you can "
                                  "order")
        return found

    def catalog_product_by_code(self, *, ean: str | None = None,
                                sku: str | None = None) -> Product:
        """`catalog/product?ean=` (or `?sku=`, which some v1 pages document instead)."""
        params = {"ean": ean} if ean is not None else {"sku": sku}
        path = "catalog/product"
        answer = self.transport.get(path, params=params)
        return _one_product(answer.data, self.transport.url(path))

    # -- diagnosis ---------------------------------------------------------------------

    def probe(self) -> Probe:
        """The cheapest authenticated GET (one catalog product), for `kalixo doctor`."""
        return probe(self.transport, "catalog/products", {"skip": 0, "take": 1})


def _one_product(data: Any, where: str) -> Product:
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
