"""The order file's shape: formats, fields, column names, aliases, limits."""

from __future__ import annotations

import re
from typing import Literal

OrderFormat = Literal["json", "csv"]
FORMATS: tuple[OrderFormat, ...] = ("json", "csv")

MAX_INPUT_BYTES = 16 * 1024 * 1024
MAX_PROBLEMS = 50
FORMAT_HINT = "--format json|csv"

ORDER_FIELDS = ("externalOrderCode", "price", "currency", "orderProducts")
LINE_FIELDS = ("productId", "price", "sku", "currency", "quantity")
CSV_COLUMNS = ("productId", "quantity", "price", "sku", "currency")
CSV_REQUIRED = ("productId", "quantity", "price", "sku")
_CSV_NUMERIC = frozenset({"productId", "quantity", "price"})

# Names people reach for that difflib would not connect to ours.
_ALIASES = {
    "qty": "quantity",
    "count": "quantity",
    "amount": "price",
    "unitprice": "price",
    "total": "price",
    "ean": "sku",
    "product": "productId",
    "id": "productId",
    "ccy": "currency",
    "products": "orderProducts",
    "lines": "orderProducts",
    "items": "orderProducts",
    "ordercode": "externalOrderCode",
    "reference": "externalOrderCode",
}

# Order-level fields a CSV row cannot carry, and where they come from instead.
_ORDER_LEVEL = {
    "externalordercode": "the order code is given on the command line (or generated)",
    "ordercode": "the order code is given on the command line (or generated)",
    "total": "the order total is computed from the rows",
}

# Batches (`bulk_file`): each order states its own code, and a CSV row names its order.
CODE_REQUIRED = (
    "every order in a batch needs an externalOrderCode, "
    "so that a re-run can recognise what it already placed"
)
BATCH_CSV_COLUMNS = ("externalOrderCode", *CSV_COLUMNS)
BATCH_CSV_REQUIRED = ("externalOrderCode", *CSV_REQUIRED)
_BATCH_ORDER_LEVEL = {"total": _ORDER_LEVEL["total"]}
CSV_CODE_HINT = (
    "give the order's externalOrderCode on every one of its rows: "
    "consecutive rows with the same code form one order"
)

_INT_CELL = re.compile(r"[+-]?[0-9]+")
_DECIMAL_CELL = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)")
_CURRENCY = re.compile(r"[A-Z]{3}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BROKEN_TEXT = "is not valid text (an unpaired \\ud800-\\udfff escape)"
# Numbers from 10**30 up cannot be amounts; refusing them early keeps huge literals such
# as 1e999999999 away from int() and Decimal arithmetic.
_LARGEST_EXPONENT = 29
