"""The order request we send and the normalized order we print.

Request models are strict (pydantic v2): an int is an int, never a bool, a float or a
numeric string, and unknown fields are refused because in an order file they are typos.
`kalixo_cli/inputs/` turns files into these; this module holds only the rules themselves.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kalixo_cli.domain.sanitize import invisible_characters

INT64_MAX = 2**63 - 1

Amount = Annotated[int, Field(ge=0, le=INT64_MAX)]
Quantity = Annotated[int, Field(ge=1, le=INT64_MAX)]
ProductId = Annotated[int, Field(ge=1, le=INT64_MAX)]
# Checked by `_check_currency` (its own message); the pattern is for `kalixo schema` only.
Currency = Annotated[str, Field(json_schema_extra={"pattern": "^[A-Z]{3}$"})]

_CURRENCY = re.compile(r"[A-Z]{3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
PRICE_FIELDS = ("price",)

SCHEMA_KEY = "$schema"  # ignored at the top of an order: editors read it, the API never sees it


def minor_units_hint(value: Any) -> str | None:
    """For a decimal amount such as 32.99, the integer the user most likely meant."""
    if isinstance(value, bool) or not isinstance(value, (float, Decimal)):
        return None
    try:
        decimal = Decimal(str(value))
    except ArithmeticError:
        return None
    if not decimal.is_finite():
        return None
    if decimal and not -30 <= decimal.adjusted() <= 30:
        # No amount is that large or that small; converting it could overflow or hang.
        return None
    if decimal == decimal.to_integral_value():
        return f"write it as the integer {int(decimal)}"
    scaled = decimal * 100
    if scaled == scaled.to_integral_value():
        return f"prices are in minor units: {int(scaled)}"
    return None


def _strict_amount(value: Any) -> Any:
    """Reject non-integers with a message that says how to write the amount."""
    if isinstance(value, (float, Decimal)) and not isinstance(value, bool):
        hint = minor_units_hint(value)
        if hint is not None:
            raise PydanticCustomError(
                "minor_units", "must be an integer in minor units ({hint})", {"hint": hint}
            )
        raise PydanticCustomError("not_integer", "must be an integer in minor units")
    return value


def _check_currency(value: str) -> str:
    if not _CURRENCY.fullmatch(value):
        raise PydanticCustomError(
            "currency", "must be a 3-letter currency code in capitals, such as GBP"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class OrderLine(_Strict):
    productId: ProductId
    price: Amount
    sku: Annotated[str, Field(min_length=1, max_length=200)]
    currency: Currency
    quantity: Quantity

    _amount = field_validator("price", mode="before")(_strict_amount)
    _currency = field_validator("currency")(_check_currency)

    @field_validator("sku")
    @classmethod
    def _sku_printable(cls, value: str) -> str:
        if not value.strip() or _CONTROL.search(value):
            raise PydanticCustomError("sku", "must be a non-blank SKU without control characters")
        return value

    @property
    def total(self) -> int:
        return self.price * self.quantity


class OrderRequest(_Strict):
    """The body of ``POST /orders/place-order`` (v1), complete and self-consistent."""

    externalOrderCode: Annotated[str, Field(min_length=1, max_length=100)]
    price: Amount
    currency: Currency
    orderProducts: Annotated[list[OrderLine], Field(min_length=1)]

    _amount = field_validator("price", mode="before")(_strict_amount)
    _currency = field_validator("currency")(_check_currency)

    @field_validator("externalOrderCode")
    @classmethod
    def _code_printable(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        if _CONTROL.search(value):
            raise PydanticCustomError("control", "must not contain control characters")
        invisible = invisible_characters(value)
        if invisible:
            # Two codes that look the same must not be two orders (or two journal rows).
            raise PydanticCustomError(
                "invisible",
                "must not contain invisible or text-direction characters ({chars}): a code "
                "that reads like another must be the same code",
                {"chars": ", ".join(dict.fromkeys(invisible))},
            )
        if value != value.strip():
            raise PydanticCustomError("spaces", "must not start or end with white space")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for index, line in enumerate(self.orderProducts):
            if line.currency != self.currency:
                raise PydanticCustomError(
                    "currency_mismatch",
                    "line currency {line} differs from the order currency {order} "
                    "(orderProducts[{index}].currency); one order holds one currency",
                    {"line": line.currency, "order": self.currency, "index": index},
                )
        expected = self.lines_total
        if expected > INT64_MAX:
            raise PydanticCustomError(
                "total_overflow", "the lines' total does not fit a signed 64-bit integer"
            )
        if self.price != expected:
            raise PydanticCustomError(
                "price_mismatch",
                "price {price} does not equal the lines' total: expected {expected}",
                {"price": self.price, "expected": expected},
            )
        return self

    @property
    def lines_total(self) -> int:
        return sum(line.total for line in self.orderProducts)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
