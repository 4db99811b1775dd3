"""Server order bodies -> the one `Order` shape scripts rely on.

Kalixo spells the same things several ways (`orderId` as string or number, `pin: [{PIN}]`,
`pin: [{pin}]`, `codes: [{code}]`, `orderStatus` or `status`); this is the only place that
knows. Pure: dicts in, models out. A body that is not an order raises `ValueError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kalixo_cli.domain.order import Order, OrderProduct

if TYPE_CHECKING:
    from kalixo_cli.domain.catalog import Product
    from kalixo_cli.domain.models import OrderRequest

_PIN_LISTS = ("pins", "pin", "codes", "PIN", "PINs")
_PIN_KEYS = ("PIN", "pin", "code", "Pin")


def as_int(value: Any) -> int | None:
    """A whole number however the server spelled it (3299, 3299.0, "3299"); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _as_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _pins(product: dict[str, Any]) -> list[str]:
    for key in _PIN_LISTS:
        entries = product.get(key)
        if entries is None:
            continue
        if isinstance(entries, (str, dict)):
            entries = [entries]
        if not isinstance(entries, list):
            continue
        pins: list[str] = []
        for entry in entries:
            if isinstance(entry, str):
                pins.append(entry)
            elif isinstance(entry, dict):
                pin = next((entry[k] for k in _PIN_KEYS if isinstance(entry.get(k), str)), None)
                if pin is not None:
                    pins.append(pin)
        return pins
    return []


def _product(raw: Any) -> OrderProduct:
    if not isinstance(raw, dict):
        raise ValueError("an order product is not an object")
    return OrderProduct(
        productId=as_int(raw.get("productId")),
        sku=_as_str(raw.get("sku")),
        price=as_int(raw.get("price")),
        quantity=as_int(raw.get("quantity")),
        pins=_pins(raw),
    )


def _status(body: dict[str, Any]) -> str | None:
    for key in ("status", "orderStatus"):
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    return None


def normalize_order(body: Any) -> Order:
    """A retrieve-order body as the server sent it: what it did not send stays null."""
    if not isinstance(body, dict):
        raise ValueError("the answer is not a JSON object")
    if "orderId" not in body and "products" not in body:
        raise ValueError("the answer has neither orderId nor products")
    products = body.get("products") or []
    if not isinstance(products, list):
        raise ValueError("products is not a list")
    return Order(
        orderId=as_int(body.get("orderId")),
        externalOrderCode=_as_str(body.get("externalOrderCode")),
        status=_status(body),
        currency=_as_str(body.get("currency") or body.get("currencyCode")),
        price=as_int(body.get("price")),
        products=[_product(item) for item in products],
        estimatedReadyAt=_as_str(body.get("estimatedReadyAt")),
        delivered=as_int(body.get("delivered")),
        total=as_int(body.get("total")),
        reason=_as_str(body.get("reason")),
    )


def delivery_status(order: Order) -> str:
    """v1 place-order states no status: complete when every ordered unit has its PIN."""
    if order.products and all(
        product.quantity is not None and len(product.pins) >= product.quantity
        for product in order.products
    ):
        return "completed"
    return "processing"


def normalize_placed_order(body: Any, request: OrderRequest) -> Order:
    """A place-order answer, completed with what the accepted request already says.

    The v1 answer omits the code, currency, total and SKUs; they are the request's, which
    the server has just accepted, so a script gets them without a second call.
    """
    order = normalize_order(body)
    if order.orderId is None:
        raise ValueError("the answer has no orderId")
    complete_from_request(order, request)
    order.status = order.status or delivery_status(order)
    return order


def complete_from_request(order: Order, request: OrderRequest) -> Order:
    """Fill what the answer left out (code, currency, total, SKUs) from the request the API
    accepted; v1's place-order answer and v2's order status omit them. An answer with no
    lines (v2 while processing, or failed) gets the lines ordered, without PINs, so a
    script sees what did not arrive."""
    if not order.products:
        order.products = [
            OrderProduct(
                productId=line.productId, sku=line.sku, price=line.price, quantity=line.quantity
            )
            for line in request.orderProducts
        ]
    skus = {line.productId: line.sku for line in request.orderProducts}
    for product in order.products:
        if product.sku is None and product.productId in skus:
            product.sku = skus[product.productId]
    order.externalOrderCode = order.externalOrderCode or request.externalOrderCode
    order.currency = order.currency or request.currency
    order.price = order.price if order.price is not None else request.price
    return order


def request_of(body: str) -> OrderRequest | None:
    """The request a journal row keeps, or None when it no longer parses."""
    from pydantic import ValidationError

    from kalixo_cli.domain.models import OrderRequest

    try:
        return OrderRequest.model_validate_json(body)
    except (ValidationError, ValueError):
        return None


def complete_from_catalog(order: Order, lookup: Callable[[int], Product | None]) -> Order:
    """For an order this machine did not send (no journal row): SKUs and the currency from
    the catalog, and the total from the lines the answer has."""
    for product in order.products:
        if product.productId is None or (product.sku is not None and order.currency):
            continue
        found = lookup(product.productId)
        if found is None:
            continue
        product.sku = product.sku or found.sku
        order.currency = order.currency or found.currency
    if (
        order.price is None
        and order.products
        and all(p.price is not None and p.quantity is not None for p in order.products)
    ):
        order.price = sum((p.price or 0) * (p.quantity or 0) for p in order.products)
    return order
