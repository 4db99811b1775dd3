"""`--product ID:QTY[:AMOUNT]`: an order built from catalog products, checked locally."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kalixo_cli.domain.errors import InputError, Problem, RequestRejected, UsageError

if TYPE_CHECKING:
    from kalixo_cli.domain.models import OrderRequest
from kalixo_cli.domain.catalog import Product
from kalixo_cli.domain.money import format_amount

log = logging.getLogger("kalixo.catalog")


# --------------------------------------------------------------------------------------
# Orders from the command line: --product productId:quantity[:amount].

SPEC_FLAG = "--product"
_SPEC_SHAPE = "productId:quantity, or productId:quantity:amount for an open-denomination product"


@dataclass(frozen=True)
class ProductSpec:
    text: str
    product_id: int
    quantity: int
    amount: int | None


def _spec_number(text: str, what: str) -> int:
    value = text.strip()
    if not value.isdigit() or not value.isascii():
        if re.fullmatch(r"\d*\.\d+", value):
            raise ValueError(
                f"the {what} {value} is not a whole number: amounts are in "
                f"minor units (5050 is 50.50)"
            )
        raise ValueError(f"the {what} {value!r} is not a whole number")
    return int(value)


def parse_product_spec(text: str) -> ProductSpec:
    """`814:2` or `814:1:5050` -> ProductSpec; ValueError saying what is wrong."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"expected {_SPEC_SHAPE}")
    product_id = _spec_number(parts[0], "productId")
    quantity = _spec_number(parts[1], "quantity")
    if product_id < 1:
        raise ValueError("the productId must be 1 or more")
    if quantity < 1:
        raise ValueError("the quantity must be 1 or more")
    amount = _spec_number(parts[2], "amount") if len(parts) == 3 else None
    return ProductSpec(text, product_id, quantity, amount)


def _range_text(product: Product) -> str:
    low = format_amount(product.denominationMin, product.currency)
    high = format_amount(product.denominationMax, product.currency)
    step = format_amount(product.denominationStep, product.currency)
    return f"{low} to {high} in steps of {step}"


def _unit_price(spec: ProductSpec, product: Product) -> int:
    """The line's unit price from the catalog, checked as Kalixo checks it; else ValueError."""
    if not product.is_open:
        if spec.amount is not None:
            raise ValueError(
                f"product {product.id} has a fixed price "
                f"({format_amount(product.price, product.currency)}); give "
                f"{spec.product_id}:{spec.quantity} without an amount"
            )
        if product.price is None:
            raise ValueError(f"the catalog gives product {product.id} no price")
        return product.price
    low, high, step = product.denominationMin, product.denominationMax, product.denominationStep
    if low is None or high is None:
        raise ValueError(f"the catalog gives open-denomination product {product.id} no range")
    bounds = f"range {low}-{high}"
    if spec.amount is None:
        raise ValueError(
            f"product {product.id} is open-denomination ({_range_text(product)}): give the "
            f"amount in minor units, such as {spec.product_id}:{spec.quantity}:{low}"
        )
    if not low <= spec.amount <= high:
        raise ValueError(
            f"{spec.amount} is outside the {bounds}"
            f"{f', step {step}' if step else ''} of product {product.id}"
        )
    if step and spec.amount % step:
        raise ValueError(f"{spec.amount} is not a multiple of the step {step} ({bounds})")
    return spec.amount


def request_from_products(
    specs: list[str], *, lookup: Callable[[int], Product], currency: str | None, code: str
) -> OrderRequest:
    """An order from `--product` specs, priced and labelled from the catalog.

    Each spec is `productId:quantity`, or `productId:quantity:amount` (minor units) for an
    open-denomination product. Price, SKU and currency come from `lookup` (a catalog
    product by id; a `RequestRejected` 404 means "not in the catalog"); the amount of an
    open product is checked against its range and step here, before anything is sent.
    `currency`, when given, is the currency every product must be priced in; without it the
    products' own currency is the order's, and they must agree. Every problem is reported
    at once as an `InputError` whose fields name the specs (`--product 814:1:5050`).
    """
    from pydantic import ValidationError

    from kalixo_cli.domain.models import OrderLine, OrderRequest

    if not specs:
        raise UsageError(f"no products: give {SPEC_FLAG} {_SPEC_SHAPE.split(',')[0]} at least once")
    wanted = currency.strip().upper() if currency else None
    problems: list[Problem] = []
    lines: list[tuple[ProductSpec, Product, int]] = []
    for text in specs:
        where = f"{SPEC_FLAG} {text}"
        try:
            spec = parse_product_spec(text)
        except ValueError as exc:
            problems.append(Problem(str(exc), field=where))
            continue
        try:
            product = lookup(spec.product_id)
        except RequestRejected as exc:
            if exc.status != 404:
                raise
            problems.append(
                Problem(f"product {spec.product_id} is not in the catalog", field=where)
            )
            continue
        try:
            price = _unit_price(spec, product)
            if not product.sku:
                raise ValueError(f"the catalog gives product {product.id} no SKU")
            if not product.currency:
                raise ValueError(f"the catalog gives product {product.id} no currency")
            if wanted is not None and product.currency != wanted:
                raise ValueError(
                    f"product {product.id} is priced in {product.currency}, "
                    f"not {wanted} (--currency)"
                )
        except ValueError as exc:
            problems.append(Problem(str(exc), field=where))
            continue
        lines.append((spec, product, price))
    currencies = list(
        dict.fromkeys(product.currency for _, product, _ in lines if product.currency)
    )
    if not problems and len(currencies) > 1:
        by_currency = "; ".join(
            f"{c}: {', '.join(s.text for s, p, _ in lines if p.currency == c)}" for c in currencies
        )
        problems.append(
            Problem(
                f"the products are priced in {' and '.join(currencies)} ({by_currency}); one "
                "order holds one currency",
                field=SPEC_FLAG,
            )
        )
    if problems:
        raise InputError(
            problems,
            hint=f"{SPEC_FLAG} takes {_SPEC_SHAPE}; "
            "`kalixo catalog show ID` shows a product's price or range",
        )
    order_currency = wanted or currencies[0]
    try:
        order_lines = [
            OrderLine(
                productId=product.id,
                price=price,
                sku=product.sku or "",
                currency=order_currency,
                quantity=spec.quantity,
            )
            for spec, product, price in lines
        ]
        return OrderRequest(
            externalOrderCode=code,
            currency=order_currency,
            price=sum(line.total for line in order_lines),
            orderProducts=order_lines,
        )
    except ValidationError as exc:
        raise InputError(
            [
                Problem(error["msg"], field=_field_name(error["loc"], lines))
                for error in exc.errors()
            ]
        ) from None


def _field_name(loc: tuple[int | str, ...], lines: list[tuple[ProductSpec, Product, int]]) -> str:
    """Where pydantic found a problem, in the user's words: the spec, or the order code."""
    if (
        len(loc) >= 2
        and loc[0] == "orderProducts"
        and isinstance(loc[1], int)
        and loc[1] < len(lines)
    ):
        return f"{SPEC_FLAG} {lines[loc[1]][0].text}"
    if loc and loc[0] == "externalOrderCode":
        return "--external-order-code"
    return ".".join(str(part) for part in loc) or "order"
