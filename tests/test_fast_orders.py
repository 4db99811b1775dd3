"""The fast path of batch validation against the careful one, side by side.

`fast_orders` may only accept what `order_file.py` + `OrderRequest` accept, with the very same
request body; anything else must come back as None (and then go the careful way, which
words and places the problems). Every case here runs both paths and compares.
"""

from __future__ import annotations

import copy
import itertools
import json
from decimal import Decimal
from typing import Any

import pytest

from kalixo_cli.domain.errors import InputError
from kalixo_cli.inputs.fast_orders import csv_layout, fast_csv_order, fast_json_order, fast_order
from kalixo_cli.inputs.json_order import JsonState
from kalixo_cli.inputs.order_file import parse_batch_csv_order, parse_batch_json_order

LINE = {"productId": 6, "price": 839, "sku": "GB-EN-4251604133182", "quantity": 2}
BASE: dict[str, Any] = {"externalOrderCode": "O-1", "currency": "GBP", "orderProducts": [LINE]}

ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "x",
    " x",
    "x ",
    "GBP",
    "gbp",
    "EUR",
    "€",
    0,
    1,
    -1,
    2**63 - 1,
    2**63,
    10**40,
    True,
    False,
    1.0,
    8.39,
    Decimal("839"),
    Decimal("8.39"),
    [],
    {},
    [LINE],
    "a\x00b",
    "a\x1bb",
    "a\u202eb",
    "a\u200bb",
    'a"b',
    "a\\b",
    "a\x85b",
    "839",
    "x" * 101,
    "x" * 201,
    "\ufeffx",
    "\u2028",
]


def careful(body: Any, currency: str | None) -> tuple[str, str] | None:
    """The careful path's answer for a decoded body: (code, body JSON), or None if refused."""
    text = json.dumps(body, ensure_ascii=False, default=str)
    state = JsonState()
    try:
        request = parse_batch_json_order(
            text,
            name="o.jsonl",
            line=1,
            column=1,
            state=state,
            value=copy.deepcopy(body),
            currency=currency,
        )
    except InputError:
        return None
    return request.externalOrderCode, request.model_dump_json()


def variants() -> list[Any]:
    """The base order, then every field of it (and of its line) set to every odd value,
    removed, and joined by an unknown field."""
    found: list[Any] = [copy.deepcopy(BASE)]
    for key in [*BASE, "price"]:
        for value in ODD_VALUES:
            body = copy.deepcopy(BASE)
            body[key] = value
            found.append(body)
        body = copy.deepcopy(BASE)
        body.pop(key, None)
        found.append(body)
    for key in [*LINE, "currency"]:
        for value in ODD_VALUES:
            body = copy.deepcopy(BASE)
            body["orderProducts"][0][key] = value
            found.append(body)
        body = copy.deepcopy(BASE)
        body["orderProducts"][0].pop(key, None)
        found.append(body)
    for extra in ({"note": 1}, {"$schema": "x"}, {"price": 1678}, {"price": 1679}):
        body = copy.deepcopy(BASE)
        body.update(extra)
        found.append(body)
    two = copy.deepcopy(BASE)
    two["orderProducts"] = [dict(LINE), dict(LINE, productId=7, price=100, quantity=3)]
    found.append(two)
    for first, second in itertools.product([None, "GBP", "EUR", "usd", 5], repeat=2):
        body = copy.deepcopy(two)
        body.pop("currency")
        for line, currency in zip(body["orderProducts"], (first, second), strict=True):
            if currency is not None:
                line["currency"] = currency
        found.append(body)
    found.append(dict(BASE, externalOrderCode="Bestellung Nº 7 — ü"))
    found.append(dict(BASE, orderProducts=[dict(LINE, sku=" padded ", price=0)]))
    found.append(dict(BASE, orderProducts=[dict(LINE, quantity=2**62, price=2)]))
    found.append(dict(BASE, orderProducts=[]))
    found.extend([[BASE], "text", 5, None])
    return found


@pytest.mark.parametrize("currency", [None, "GBP", "EUR", "gbp"])
def test_fast_order_accepts_only_what_the_model_accepts_with_the_same_body(
    currency: str | None,
) -> None:
    accepted = 0
    for body in variants():
        before = copy.deepcopy(body)
        fast = fast_order(body, currency)
        assert body == before  # not changed: the careful path may still need it
        if fast is not None:
            assert fast == careful(body, currency), body
            accepted += 1
    # The fast path is taken at all (a currency in small letters is never an order's).
    assert accepted >= 5 if currency != "gbp" else accepted == 0


@pytest.mark.parametrize("currency", [None, "GBP"])
def test_fast_json_order_matches_the_careful_path_on_text(currency: str | None) -> None:
    for body in variants():
        try:
            text = json.dumps(body, ensure_ascii=False)
        except TypeError:
            continue  # Decimal: not JSON text
        fast = fast_json_order(text, currency)
        if fast is not None:
            assert fast == careful(json.loads(text), currency), text


@pytest.mark.parametrize(
    "text",
    [
        # A key given twice: a plain decoder keeps the last, the careful path refuses.
        '{"externalOrderCode":"O-1","currency":"GBP","currency":"GBP",'
        '"orderProducts":[{"productId":6,"price":839,"sku":"S","quantity":1}]}',
        '{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        '[{"productId":6,"price":1,"price":839,"sku":"S","quantity":1}]}',
        '{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        '[{"productId":6,"price":839,"sku":"S","quantity":1}],'
        '"orderProducts":[{"productId":6,"price":839,"sku":"S","quantity":1}]}',
        # The same key spelled with an escape.
        '{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        '[{"productId":6,"pric\\u0065":839,"price":839,"sku":"S","quantity":1}]}',
        # Numbers the careful decoder reads as decimals, NaN, or refuses as too large.
        '{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        '[{"productId":6,"price":839.0,"sku":"S","quantity":1}]}',
        '{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        '[{"productId":6,"price":NaN,"sku":"S","quantity":1}]}',
        '{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        f'[{{"productId":6,"price":{"9" * 5000},"sku":"S","quantity":1}}]}}',
        # Not one object, or more than one.
        '{"externalOrderCode":"O-1"} {}',
        '[{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        '[{"productId":6,"price":839,"sku":"S","quantity":1}]}]',
        '{"externalOrderCode":"O-1","currency":"GBP","orderProducts":'
        '[{"productId":6,"price":839,"sku":"S","quantity":1}]',
    ],
)
def test_fast_json_order_leaves_odd_text_to_the_careful_path(text: str) -> None:
    assert fast_json_order(text, None) is None


def test_fast_json_order_takes_the_usual_line() -> None:
    text = json.dumps(BASE)
    assert fast_json_order(text, None) == careful(BASE, None)
    assert fast_json_order(json.dumps(BASE, indent=1).replace("\n", " "), None) == careful(
        BASE, None
    )


CSV_HEADERS = [
    ["externalOrderCode", "productId", "quantity", "price", "sku", "currency"],
    ["sku", "price", "quantity", "productId", "externalOrderCode"],
]
CELLS = [
    "",
    "0",
    "1",
    "007",
    "+5",
    "-1",
    "1.0",
    "8.39",
    "1e3",
    "x",
    "GBP",
    "gbp",
    "EUR",
    "9" * 19,
    "9" * 31,
    "\u0661",
    "a\u202eb",
    'a"b',
    "a\\b",
    "S-1",
]


def _careful_csv(
    rows: list[tuple[int, int, list[str]]],
    columns: list[str | None],
    code: str,
    currency: str | None,
) -> tuple[str, str] | None:
    try:
        request = parse_batch_csv_order(rows, columns, name="o.csv", code=code, currency=currency)
    except InputError:
        return None
    return request.externalOrderCode, request.model_dump_json()


@pytest.mark.parametrize("header", CSV_HEADERS)
@pytest.mark.parametrize("currency", [None, "GBP"])
def test_fast_csv_order_matches_the_careful_path(header: list[str], currency: str | None) -> None:
    code_at = header.index("externalOrderCode")
    columns: list[str | None] = [None if at == code_at else c for at, c in enumerate(header)]
    layout = csv_layout(columns)
    assert layout is not None
    usual = {
        "externalOrderCode": "O-1",
        "productId": "6",
        "quantity": "2",
        "price": "839",
        "sku": "S-1",
        "currency": "GBP",
    }
    cases: list[list[dict[str, str]]] = [[usual], [usual, dict(usual, productId="7")]]
    for column in usual:
        for cell in CELLS:
            cases.append([dict(usual, **{column: cell})])
            cases.append([usual, dict(usual, **{column: cell})])
    accepted = 0
    for case in cases:
        code = case[0]["externalOrderCode"]
        rows = [
            (number, number + 1, [line.get(name, "") for name in header])
            for number, line in enumerate(case, start=1)
        ]
        fast = fast_csv_order(rows, layout, code, currency)
        if fast is not None:
            assert fast == _careful_csv(rows, columns, code, currency), case
            accepted += 1
    short = [(1, 2, ["O-1", "6"])]
    assert fast_csv_order(short, layout, "O-1", currency) is None
    assert accepted >= 3 if "currency" in header or currency else accepted == 0


def test_csv_layout_needs_the_line_columns() -> None:
    assert csv_layout([None, "productId", "quantity", "price"]) is None
    assert csv_layout(["productId", "quantity", "price", "sku"]) is None
    assert csv_layout([None, "productId", "quantity", "price", "sku"]) == (1, 2, 3, 4, -1, 5)
