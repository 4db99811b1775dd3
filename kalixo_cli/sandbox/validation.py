"""What the v1 and v2 emulations share: Kalixo's error shape, the place-order body's
validation (class-validator-like messages, every shape problem in one 400), and pricing an
order against the catalog with the business messages of Kalixo's error catalogue.

v2 words a few of those messages differently (an unknown product "was not found in your
catalog", a currency mismatch without the "Currency mismatch:" prefix); `price_order` takes
the generation whose wording to use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from fastapi import Request
from fastapi.responses import JSONResponse

from .catalog import PRODUCTS_BY_ID, Product, buying_price
from .store import NewLine, NewOrder, StoredOrder

INT64_MAX = 2**63 - 1
MAX_BODY_BYTES = 1 << 20
MAX_CODE_LENGTH = 100
MAX_LINES = 100
MAX_UNITS = 1000
"""Units per order above which the sandbox answers Kalixo's 422 'order limit exceeded'."""
ORDER_LIMIT_EXCEEDED = "Your account order limit has been exceeded. Contact support for assistance."
NOT_NUMERIC = "Validation failed (numeric string is expected)"

_CURRENCY = re.compile(r"[A-Z]{3}")
_ERROR_LABELS = {413: "Payload Too Large"}

ApiVersion = Literal[1, 2]


class ApiError(Exception):
    """An answer in Kalixo's error shape; raised anywhere in a route, rendered by a handler."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_body(status: int, message: str) -> dict[str, Any]:
    """``{statusCode, error, message}``; like Kalixo, 500s carry no ``error`` label."""
    if status >= 500:
        return {"statusCode": status, "message": message}
    label = _ERROR_LABELS.get(status) or HTTPStatus(status).phrase
    return {"statusCode": status, "error": label, "message": message}


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


# -- body validation, class-validator style -----------------------------------------------


async def json_body(request: Request) -> Any:
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "request entity too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ApiError(400, "Request body must be a JSON object")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def string_field(
    data: dict[str, Any],
    key: str,
    name: str,
    problems: list[str],
    *,
    required: bool = True,
    max_length: int = 200,
) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f"{name} must be a string")
        return None
    if not isinstance(value, str):
        problems.append(f"{name} must be a string")
    elif not value.strip():
        problems.append(f"{name} should not be empty")
    elif len(value) > max_length:
        problems.append(f"{name} must be shorter than or equal to {max_length} characters")
    else:
        return value
    return None


def integer_field(
    data: dict[str, Any],
    key: str,
    name: str,
    problems: list[str],
    *,
    required: bool = True,
    minimum: int = 0,
) -> int | None:
    """An integer as JavaScript sees one: 3299 and 3299.0 are, 32.99, "3299" and true not."""
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f"{name} must be an integer number")
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        problems.append(f"{name} must be an integer number")
    elif value < minimum:
        problems.append(f"{name} must not be less than {minimum}")
    elif value > INT64_MAX:
        problems.append(f"{name} must not be greater than {INT64_MAX}")
    else:
        return int(value)
    return None


def currency_field(
    data: dict[str, Any], key: str, name: str, problems: list[str], *, required: bool = True
) -> str | None:
    value = string_field(data, key, name, problems, required=required)
    if value is not None and not _CURRENCY.fullmatch(value):
        problems.append(f"{name} must be a valid ISO4217 currency code")
        return None
    return value


@dataclass(frozen=True)
class OrderLineBody:
    product_id: int
    price: int | None
    sku: str | None
    currency: str | None
    quantity: int


@dataclass(frozen=True)
class OrderBody:
    """A place-order body that is well-formed; not yet checked against the catalog."""

    external_order_code: str
    price: int | None
    currency: str
    lines: tuple[OrderLineBody, ...]


def parse_order(body: Any) -> OrderBody:
    """Check the shape of a place-order body; every shape problem in one 400 message."""
    data = object_body(body)
    problems: list[str] = []
    code = string_field(
        data, "externalOrderCode", "externalOrderCode", problems, max_length=MAX_CODE_LENGTH
    )
    currency = currency_field(data, "currency", "currency", problems)
    price = integer_field(data, "price", "price", problems, required=False)
    raw_lines = data.get("orderProducts")
    lines: list[OrderLineBody] = []
    if not isinstance(raw_lines, list):
        problems.append("orderProducts must be an array")
    elif not raw_lines:
        problems.append("orderProducts must contain at least 1 elements")
    elif len(raw_lines) > MAX_LINES:
        problems.append(f"orderProducts must contain no more than {MAX_LINES} elements")
    else:
        for index, raw in enumerate(raw_lines):
            where = f"orderProducts.{index}"
            if not isinstance(raw, dict):
                problems.append(f"{where} must be an object")
                continue
            product_id = integer_field(raw, "productId", f"{where}.productId", problems, minimum=1)
            line_price = integer_field(raw, "price", f"{where}.price", problems, required=False)
            sku = string_field(raw, "sku", f"{where}.sku", problems, required=False)
            line_currency = currency_field(
                raw, "currency", f"{where}.currency", problems, required=False
            )
            quantity = integer_field(raw, "quantity", f"{where}.quantity", problems, minimum=1)
            if product_id is not None and quantity is not None:
                lines.append(OrderLineBody(product_id, line_price, sku, line_currency, quantity))
    if problems:
        raise ApiError(400, "; ".join(problems))
    assert code is not None and currency is not None
    return OrderBody(code, price, currency, tuple(lines))


# -- business rules -----------------------------------------------------------------------


def _unit_price(product: Product, price: int | None) -> int:
    if product.open_range is None:
        if price is not None and price != product.price:
            raise ApiError(400, f"Product {product.id} price mismatch: expected {product.price}")
        return product.price
    if price is None:
        raise ApiError(400, f"Product {product.id} is open-denomination and requires a price")
    minimum, maximum, step = product.open_range
    if not minimum <= price <= maximum:
        raise ApiError(
            400,
            f"Product {product.id} price {price} is outside the allowed range {minimum}-{maximum}",
        )
    if price % step:
        raise ApiError(
            400, f"Product {product.id} price {price} is not a multiple of the step {step}"
        )
    return price


def _line_currency(order: OrderBody, index: int, product: Product, api: ApiVersion) -> None:
    """Check a line's currency (its own, else the order's) against the product and order."""
    line_currency = order.lines[index].currency or order.currency
    if api == 2:
        if product.currency != line_currency:
            raise ApiError(
                400, f"Product {product.id} is priced in {product.currency}, not {line_currency}"
            )
        if line_currency != order.currency:
            raise ApiError(
                400,
                f"Product {product.id} is not available for ordering with the supplied "
                "country or currency.",
            )
        return
    if line_currency != order.currency:
        raise ApiError(
            400,
            f"Currency mismatch: orderProducts.{index}.currency is {line_currency} "
            f"but the order currency is {order.currency}",
        )
    if product.currency != line_currency:
        raise ApiError(
            400,
            f"Currency mismatch: Product {product.id} is priced in {product.currency}, "
            f"not {line_currency}",
        )


def price_order(order: OrderBody, now: float, *, api: ApiVersion = 1) -> NewOrder:
    """Check ``order`` against the catalog as Kalixo ``api`` does; the first problem is the
    answer. The result is placed at ``now`` by that generation."""
    lines: list[NewLine] = []
    for index, line in enumerate(order.lines):
        product = PRODUCTS_BY_ID.get(line.product_id)
        if product is None:
            raise ApiError(
                404,
                f"Product {line.product_id} was not found in your catalog"
                if api == 2
                else f"Product {line.product_id} not found",
            )
        if line.sku is not None and line.sku != product.sku:
            raise ApiError(400, f"Product {product.id} sku mismatch: expected {product.sku}")
        _line_currency(order, index, product, api)
        unit_price = _unit_price(product, line.price)
        lines.append(
            NewLine(
                product_id=product.id,
                sku=product.sku,
                price=unit_price,
                buying_price=buying_price(unit_price),
                currency=product.currency,
                quantity=line.quantity,
                outcome=product.outcome.value,
                delivers=product.outcome.delivers,
                delivered=product.outcome.units_delivered(line.quantity),
            )
        )
    if sum(line.quantity for line in lines) > MAX_UNITS:
        raise ApiError(422, ORDER_LIMIT_EXCEEDED)
    total = sum(line.price * line.quantity for line in lines)
    if total > INT64_MAX:
        raise ApiError(400, f"Order total {total} is larger than any order may be")
    if order.price is not None and order.price != total:
        raise ApiError(400, f"Order price mismatch: expected total {total}")
    return NewOrder(order.external_order_code, total, order.currency, now, tuple(lines), api)


def same_order(stored: StoredOrder, body: OrderBody) -> bool:
    """Whether ``body`` asks for the order ``stored`` already is: a retry, not a new order.

    The same currency and the same lines in the same order (product, quantity, unit price);
    a field the body leaves out (unit price, line currency, sku, total) matches what was
    stored, since Kalixo fills it in the same way again.
    """
    if body.currency != stored.currency or len(body.lines) != len(stored.lines):
        return False
    if body.price is not None and body.price != stored.price:
        return False
    return all(
        line.product_id == kept.product_id
        and line.quantity == kept.quantity
        and line.price in (None, kept.price)
        and line.currency in (None, kept.currency)
        and line.sku in (None, kept.sku)
        for line, kept in zip(body.lines, stored.lines, strict=True)
    )


def page_param(raw: str | None, name: str, *, default: int, minimum: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.strip().isdigit():
        raise ApiError(400, f"{name} must be an integer number")
    value = int(raw)
    if value < minimum:
        raise ApiError(400, f"{name} must not be less than {minimum}")
    if value > maximum:
        raise ApiError(400, f"{name} must not be greater than {maximum}")
    return value
