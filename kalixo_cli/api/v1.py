"""Kalixo API v1: paths and answer shapes, on top of the HTTP seam."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from kalixo_cli.api.base import OrderResult, one_product
from kalixo_cli.api.http import Transport
from kalixo_cli.domain.errors import (
    KalixoError,
    OutcomeUnknown,
    RequestRejected,
    TransportError,
    UsageError,
)
from kalixo_cli.domain.normalize import normalize_order, normalize_placed_order

if TYPE_CHECKING:
    from kalixo_cli.api.probe import Probe
    from kalixo_cli.domain.catalog import CatalogFilters, Product
    from kalixo_cli.domain.models import OrderRequest


class V1Client:
    can_look_up = False  # v1 reads orders by id only: an unknown outcome needs a person

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def place_order(
        self, request: OrderRequest, *, on_send: Callable[[], None] | None = None
    ) -> OrderResult:
        code = request.externalOrderCode
        answer = self.transport.post_order(
            "orders/place-order", request.body(), code=code, on_send=on_send
        )
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
            order.status = None
            return OrderResult(
                order,
                placed.answer,
                notes=(
                    f"order {order.orderId} was placed without every PIN, and its status could "
                    f"not be read ({exc.message}); see it with `kalixo retrieve-order "
                    f"{order.orderId}`",
                ),
            )
        fresh.externalOrderCode = fresh.externalOrderCode or order.externalOrderCode
        fresh.currency = fresh.currency or order.currency
        fresh.price = fresh.price if fresh.price is not None else order.price
        if not fresh.products:
            fresh.products = order.products
        return OrderResult(fresh, placed.answer)

    def look_up(self, code: str) -> OrderResult | None:
        raise UsageError(
            f"API v1 cannot look an order up by its code ({code}): only by its id",
            hint="retrieve it by its orderId",
        )

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

    def catalog_page(
        self, skip: int, take: int, filters: CatalogFilters | None = None
    ) -> tuple[int, list[Product]]:
        """`catalog/products?skip&take` -> (count, products). v1 has no filters: they are
        applied here, so the page may hold fewer products than `take` although `count`
        (the whole catalog's) says there are more; page on by `take`."""
        from kalixo_cli.domain.catalog import normalize_product_list

        path = "catalog/products"
        answer = self.transport.get(path, params={"skip": skip, "take": take})
        try:
            count, products = normalize_product_list(answer.data, skip=skip, take=take)
        except ValueError as exc:
            raise TransportError(
                f"the API's answer is not a product list ({exc})", where=self.transport.url(path)
            ) from exc
        if filters is not None and not filters.empty:
            products = [product for product in products if filters.matches(product)]
        return count, products

    def catalog_product(self, product_id: int) -> Product:
        """v1 has no product-by-id route: walk the product list until it turns up."""
        from kalixo_cli.domain.catalog import CatalogPages

        pages = CatalogPages(self.catalog_page)
        found = next((product for product in pages if product.id == product_id), None)
        if found is None:
            raise RequestRejected(
                f"product {product_id} is not in the catalog",
                status=404,
                where=self.transport.url("catalog/products"),
                hint="`kalixo catalog list` shows the products you can order",
            )
        return found

    def catalog_product_by_code(self, *, ean: str | None = None, sku: str | None = None) -> Product:
        """`catalog/product?ean=` (or `?sku=`, which some v1 pages document instead)."""
        params = {"ean": ean} if ean is not None else {"sku": sku}
        path = "catalog/product"
        answer = self.transport.get(path, params=params)
        return one_product(answer.data, self.transport.url(path))

    # -- diagnosis ---------------------------------------------------------------------

    def probe(self) -> Probe:
        """The cheapest authenticated GET (one catalog product), for `kalixo doctor`."""
        from kalixo_cli.api.probe import probe

        return probe(self.transport, "catalog/products", {"skip": 0, "take": 1})
