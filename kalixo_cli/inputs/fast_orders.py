"""The common batch order, checked at the speed of parsing: no pydantic, no error reporting.

`bulk_file.py` tries every order of a batch here first. An order that is complete or
needs only the usual filling in (the order's ``price`` from its lines, the ``currency``
from the command line or the lines, each line's ``currency`` from the order), with plain
integers and plain text, comes back as its code and its request body, exactly as
``OrderRequest(...).model_dump_json()`` writes it. Anything else, valid or not, comes back
as None and goes the whole way through `order_file.py` (completion, the model, located
problems), so every error is worded and placed as before and every valid order unusual
enough to miss this path is still accepted.

The rule of this module: accept only what `OrderRequest` accepts, and give the same body;
when in doubt, None. A subset of the model's rules, never a second set of rules
(tests/test_fast_orders.py holds the two side by side).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeGuard

from kalixo_cli.domain.models import INT64_MAX
from kalixo_cli.domain.sanitize import INVISIBLES

_ORDER_KEYS = frozenset(("externalOrderCode", "price", "currency", "orderProducts"))
_LINE_KEYS = frozenset(("productId", "price", "sku", "currency", "quantity"))
_CSV_FIELDS = ("productId", "quantity", "price", "sku", "currency")

# Text that JSON writes as it is (no quote, backslash or control character) and that the
# model's code and SKU rules accept as far as characters go (no control, invisible or
# text-direction character, no surrogate).
_PLAIN = re.compile(f'[^\x00-\x1f\x7f-\x9f"\\\\\ud800-\udfff{INVISIBLES}]+').fullmatch
_CURRENCY = re.compile(r"[A-Z]{3}").fullmatch
_MAX_CODE = 100
_MAX_SKU = 200
_MAX_DIGITS = 30  # as order_file.py: longer numbers go the careful way
_MAX = INT64_MAX

# The decoder's scanner without its wrapper: one JSON value at an offset, and its end.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _plain_code(code: Any) -> TypeGuard[str]:
    return (
        type(code) is str
        and len(code) <= _MAX_CODE
        and _PLAIN(code) is not None
        and code.strip() == code
    )


def _body(code: str, price: int, currency: str, lines: list[tuple[int, int, str, int]]) -> str:
    """``OrderRequest.model_dump_json()`` of a checked order (its text needs no escapes)."""
    if len(lines) == 1:
        product, amount, sku, quantity = lines[0]
        return (
            f'{{"externalOrderCode":"{code}","price":{price},"currency":"{currency}",'
            f'"orderProducts":[{{"productId":{product},"price":{amount},"sku":"{sku}",'
            f'"currency":"{currency}","quantity":{quantity}}}]}}'
        )
    products = ",".join(
        f'{{"productId":{product},"price":{amount},"sku":"{sku}",'
        f'"currency":"{currency}","quantity":{quantity}}}'
        for product, amount, sku, quantity in lines
    )
    return (
        f'{{"externalOrderCode":"{code}","price":{price},"currency":"{currency}",'
        f'"orderProducts":[{products}]}}'
    )


def _check(body: Any, currency: str | None) -> tuple[str, str, int] | None:
    """(code, body, strings) of a valid order given as decoded JSON, else None; `strings`
    counts its keys and string values (each two quotes in a JSON text without escapes)."""
    if type(body) is not dict or not _ORDER_KEYS.issuperset(body):
        return None
    code = body.get("externalOrderCode")
    lines = body.get("orderProducts")
    if not _plain_code(code) or type(lines) is not list or not lines:
        return None
    strings = len(body) + 1
    order_currency = body.get("currency")
    if order_currency is not None:
        strings += 1
        if currency is not None and order_currency != currency:
            return None
    else:
        order_currency = currency
        if order_currency is None:  # the lines' own currency, when they state one
            for line in lines:
                if type(line) is dict and line.get("currency") is not None:
                    order_currency = line["currency"]
                    break
    if type(order_currency) is not str or _CURRENCY(order_currency) is None:
        return None
    total = 0
    checked: list[tuple[int, int, str, int]] = []
    for line in lines:
        if type(line) is not dict or not _LINE_KEYS.issuperset(line):
            return None
        product = line.get("productId")
        price = line.get("price")
        quantity = line.get("quantity")
        sku = line.get("sku")
        line_currency = line.get("currency")
        if (
            type(product) is not int
            or type(price) is not int
            or type(quantity) is not int
            or not (1 <= product <= _MAX and 0 <= price <= _MAX and 1 <= quantity <= _MAX)
            or type(sku) is not str
            or len(sku) > _MAX_SKU
            or _PLAIN(sku) is None
            or not sku.strip()
        ):
            return None
        strings += len(line) + 1
        if line_currency is not None:
            if line_currency != order_currency:
                return None
            strings += 1
        total += price * quantity
        checked.append((product, price, sku, quantity))
    if total > _MAX:
        return None
    price = body.get("price")
    if price is None:
        price = total
    elif type(price) is not int or price != total:
        return None
    return code, _body(code, price, order_currency, checked), strings


def fast_order(body: Any, currency: str | None) -> tuple[str, str] | None:
    """(code, request body as JSON) of a valid order given as decoded JSON, or None.

    `currency` is the command line's, normalized. `body` is not changed.
    """
    found = _check(body, currency)
    return None if found is None else found[:2]


def fast_json_order(text: str, currency: str | None) -> tuple[str, str] | None:
    """As `fast_order`, for the JSON text of one order (a JSON Lines line).

    Text with a backslash (escapes: a key spelled with one, a surrogate) goes the careful
    way; so does text with more keys and strings than the decoded order holds (a key given
    twice, which a plain decoder silently keeps the last of).
    """
    if text[:1] != "{" or text[-1:] != "}" or "\\" in text:
        return None
    try:
        body, end = _scan(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(text):
        return None
    found = _check(body, currency)
    if found is None or text.count('"') != 2 * found[2]:
        return None
    return found[0], found[1]


CsvLayout = tuple[int, int, int, int, int, int]


def csv_layout(columns: Sequence[str | None]) -> CsvLayout | None:
    """Where a batch CSV's cells are: productId, quantity, price, sku, currency (-1: no such
    column) and the row width; None for a header this path does not take."""
    if None not in columns or any(c is not None and c not in _CSV_FIELDS for c in columns):
        return None
    at = [columns.index(name) if name in columns else -1 for name in _CSV_FIELDS]
    if min(at[:4]) < 0:
        return None
    return at[0], at[1], at[2], at[3], at[4], len(columns)


def fast_csv_order(
    rows: Sequence[tuple[int, int, list[str]]],
    layout: CsvLayout,
    code: str,
    currency: str | None,
) -> tuple[str, str] | None:
    """As `fast_order`, for the rows of one batch CSV order: (row number, line, stripped
    cells), grouped by `code`; `layout` is the header's `csv_layout`."""
    # Cells are stripped already; code and SKUs are checked for plain text together.
    if not code or len(code) > _MAX_CODE or code.strip() != code:
        return None
    plain = code
    product_at, quantity_at, price_at, sku_at, currency_at, width = layout
    order_currency = currency
    total = 0
    checked: list[tuple[int, int, str, int]] = []
    for _, _, cells in rows:
        if len(cells) != width:
            return None
        product_cell = cells[product_at]
        quantity_cell = cells[quantity_at]
        price_cell = cells[price_at]
        sku = cells[sku_at]
        digits = product_cell + quantity_cell + price_cell
        if (
            not (product_cell and quantity_cell and price_cell and sku)
            # ASCII digits only (unsigned integers, the usual cells), none too long
            or len(digits) > _MAX_DIGITS
            or not digits.isdigit()
            or not digits.isascii()
            or len(sku) > _MAX_SKU
        ):
            return None
        plain += sku
        product = int(product_cell)
        quantity = int(quantity_cell)
        price = int(price_cell)
        if not (1 <= product <= _MAX and price <= _MAX and 1 <= quantity <= _MAX):
            return None
        if currency_at >= 0:
            line_currency = cells[currency_at]
            if line_currency:
                if order_currency is None:
                    order_currency = line_currency
                elif line_currency != order_currency:
                    return None
        total += price * quantity
        checked.append((product, price, sku, quantity))
    if (
        order_currency is None
        or _CURRENCY(order_currency) is None
        or total > _MAX
        or _PLAIN(plain) is None
    ):
        return None
    return code, _body(code, total, order_currency, checked)


__all__ = ["CsvLayout", "csv_layout", "fast_csv_order", "fast_json_order", "fast_order"]
