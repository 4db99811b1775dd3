"""Completing an order body (price, currencies) and validating it against the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from kalixo_cli.domain.models import INT64_MAX, OrderRequest
from kalixo_cli.inputs.fields import _CURRENCY, _INT_CELL, CODE_REQUIRED, LINE_FIELDS, ORDER_FIELDS
from kalixo_cli.inputs.jsonpos import Path
from kalixo_cli.inputs.problems import (
    At,
    _CsvSource,
    _did_you_mean,
    _is_int,
    _number,
    _quote,
    _Report,
    _shown,
    _Source,
    _suggest,
    _total_overflow,
)

# Completing and validating the body


@dataclass
class _Fill:
    """What `_complete` filled in or left out, to word (or silence) the model's complaints."""

    from_argument: dict[Path, str] = field(default_factory=dict)
    optional_missing: set[Path] = field(default_factory=set)
    follows_currency: set[Path] = field(default_factory=set)
    derived_currency: bool = False
    currency_conflict: bool = False


def _complete(
    body: dict[str, Any],
    source: _Source,
    report: _Report,
    *,
    external_order_code: str | None,
    currency: str | None,
    code_factory: Callable[[], str] | None,
) -> tuple[OrderRequest, bool]:
    """Fill in the optional parts, validate, and report every problem at its place.

    Returns the request and whether its code was generated. `body` is freshly parsed and
    is completed in place. Without a `code_factory` the body must carry its own
    externalOrderCode (a batch).
    """
    raw_lines = body.get("orderProducts")
    lines: list[tuple[int, dict[str, Any]]] = []
    if isinstance(raw_lines, list):
        lines = [(i, line) for i, line in enumerate(raw_lines) if isinstance(line, dict)]
    fill = _Fill()
    checks: list[tuple[Path, str]] = []  # reported after the model's field errors

    for key in ("externalOrderCode", "price", "currency"):
        if key in body and body[key] is None:
            del body[key]
    generated = False
    if "externalOrderCode" in body:
        code = body["externalOrderCode"]
        if external_order_code is not None and code != external_order_code:
            checks.append(
                (
                    ("externalOrderCode",),
                    f"{_shown(code, source)} in the file differs from "
                    f"{_quote(external_order_code)} given on the command line",
                )
            )
    elif external_order_code is not None:
        body["externalOrderCode"] = external_order_code
        fill.from_argument[("externalOrderCode",)] = "the order code given on the command line"
    elif code_factory is None:
        report.issue(("externalOrderCode",), CODE_REQUIRED, at="object")
    else:
        body["externalOrderCode"] = code_factory()
        generated = True

    _complete_currency(body, lines, source, report, currency, fill, checks)
    _complete_price(body, raw_lines, report, fill, checks)

    try:
        request = OrderRequest.model_validate(body)
    except ValidationError as exc:
        _report_validation(exc, report, fill, checks)
        raise report.fail() from None
    for path, message in checks:  # disagreements with the command line pass the model
        report.issue(path, message)
    report.raise_if_any()
    return request, generated


def _complete_currency(
    body: dict[str, Any],
    lines: list[tuple[int, dict[str, Any]]],
    source: _Source,
    report: _Report,
    currency: str | None,
    fill: _Fill,
    checks: list[tuple[Path, str]],
) -> None:
    order = body.get("currency")
    if order is not None:
        if currency is not None and order != currency:
            checks.append(
                (
                    ("currency",),
                    f"{_shown(order, source)} in the file differs from {_quote(currency)} "
                    "given on the command line",
                )
            )
    elif currency is not None:
        order = body["currency"] = currency
        fill.from_argument[("currency",)] = "the currency given on the command line"
    else:
        stated = [
            (i, line["currency"]) for i, line in lines if isinstance(line.get("currency"), str)
        ]
        if len({code for _, code in stated}) == 1:
            order = body["currency"] = stated[0][1]
            fill.derived_currency = True
        elif stated:
            fill.currency_conflict = True
            first_index, first = stated[0]
            for i, code in stated:
                if code != first:
                    report.issue(
                        ("orderProducts", i, "currency"),
                        f"currency {_quote(code)} differs from {_quote(first)} on "
                        f"{source.line_ref(first_index)}; one order holds one currency",
                    )
        else:
            where = "a currency column" if isinstance(source, _CsvSource) else '"currency"'
            report.issue(
                ("currency",),
                f"missing: add {where} or give the currency on the command line",
                at="object",
            )
    for i, line in lines:
        path: Path = ("orderProducts", i, "currency")
        if line.get("currency") is None:
            line.pop("currency", None)
            fill.follows_currency.add(path)
            if isinstance(order, str):
                line["currency"] = order
        elif (
            isinstance(order, str)
            and _CURRENCY.fullmatch(order)
            and isinstance(line["currency"], str)
            and line["currency"] != order
        ):
            origin = " (given on the command line)" if ("currency",) in fill.from_argument else ""
            checks.append(
                (
                    path,
                    f"line currency {_quote(line['currency'])} differs from the order currency "
                    f"{_quote(order)}{origin}; one order holds one currency",
                )
            )


def _complete_price(
    body: dict[str, Any],
    raw_lines: Any,
    report: _Report,
    fill: _Fill,
    checks: list[tuple[Path, str]],
) -> None:
    total = _lines_total(raw_lines)
    price = body.get("price")
    if price is None:
        if total is None:
            fill.optional_missing.add(("price",))  # the lines' own errors say why
            return
        body["price"] = total
        if total > INT64_MAX:
            report.issue(("price",), _total_overflow(total), at="object")
    elif total is not None and _is_int(price) and 0 <= price <= INT64_MAX:
        if total > INT64_MAX:
            checks.append((("price",), _total_overflow(total)))
        elif price != total:
            checks.append(
                (("price",), f"price {price} does not equal the lines' total: expected {total}")
            )


def _lines_total(lines: Any) -> int | None:
    """Sum of price x quantity, when every line has usable integers for both."""
    if not isinstance(lines, list):
        return None
    total = 0
    for line in lines:
        if not isinstance(line, dict):
            return None
        price, quantity = line.get("price"), line.get("quantity")
        if type(price) is not int or type(quantity) is not int:  # bool is not int here
            return None
        if not (0 <= price <= INT64_MAX and 1 <= quantity <= INT64_MAX):
            return None
        total += price * quantity
    return total


def _report_validation(
    exc: ValidationError, report: _Report, fill: _Fill, checks: list[tuple[Path, str]]
) -> None:
    """Word the model's errors for people, place them, and drop the ones that only echo."""
    source = report.source
    field_errors: list[tuple[Path, str, At]] = []
    model_errors: list[tuple[Path, str, At]] = []
    misspelt: set[Path] = set()  # fields whose absence an unknown field already explains
    for error in exc.errors(include_url=False):
        path, message, at = _describe(error, source)
        (model_errors if not error["loc"] else field_errors).append((path, message, at))
        if error["type"] == "minor_units":
            report.hint = "amounts are integers in minor units (pence, cents): 32.99 is 3299"
        if error["type"] == "extra_forbidden":
            meant = _suggest(str(path[-1]), LINE_FIELDS if len(path) > 1 else ORDER_FIELDS)
            if meant is not None:
                misspelt.add((*path[:-1], meant))

    currency_failed = (
        fill.currency_conflict
        or any(path == ("currency",) for path, _, _ in field_errors)
        or ("currency",) in {path for path, _ in report.seen}
    )
    kept: list[tuple[Path, str, At]] = []
    for path, message, at in field_errors:
        if at == "object" and (path in fill.optional_missing or path in misspelt):
            continue
        if path in fill.follows_currency and currency_failed:
            continue
        if path == ("currency",) and (fill.derived_currency or fill.currency_conflict):
            continue  # the lines that state it are reported themselves
        if path in fill.from_argument:
            message = f"{message} ({fill.from_argument[path]})"
        kept.append((path, message, at))

    for path, message, at in kept:
        report.issue(path, message, at)
    for path, message in checks:
        report.issue(path, message)
    for path, message, at in model_errors:
        report.issue(path, message, at)
    if not report.found:
        # Everything was judged an echo; better an echo than an error without a problem.
        for path, message, at in field_errors + model_errors:
            sort_key, where = source.locate(path, at)
            report.add(sort_key, message, where, source.field(path))


def _describe(error: Any, source: _Source) -> tuple[Path, str, At]:
    """One pydantic error as (path, human message, what to point at)."""
    kind: str = error["type"]
    path: Path = tuple(error["loc"])
    value = error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return path, source.missing(path), "object"
    if kind == "extra_forbidden":
        key = str(path[-1])
        known = LINE_FIELDS if len(path) > 1 else ORDER_FIELDS
        return path, f"unknown field {_quote(key)}{_did_you_mean(key, known)}", "key"
    if kind == "int_type":
        return path, _not_integer(value, source), "value"
    if kind == "greater_than_equal":
        return path, f"must be an integer >= {ctx['ge']}", "value"
    if kind == "less_than_equal":
        return path, f"must be at most {ctx['le']} (a signed 64-bit integer)", "value"
    if kind == "string_type":
        return path, f"must be a string (in double quotes), not {source.show(value)}", "value"
    if kind == "string_too_short":
        return path, "must not be empty", "value"
    if kind == "string_too_long":
        return path, f"must be at most {ctx['max_length']} characters long", "value"
    if kind == "list_type":
        return path, f"must be an array of order lines [...], not {source.show(value)}", "value"
    if kind == "too_short":
        return path, "must hold at least one order line", "value"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return path, f"must be an object {{...}}, not {source.show(value)}", "value"
    if kind == "currency_mismatch":
        line_path: Path = ("orderProducts", ctx["index"], "currency")
        return (
            line_path,
            f"line currency {_quote(ctx['line'])} differs from the order currency "
            f"{_quote(ctx['order'])}; one order holds one currency",
            "value",
        )
    if kind in ("price_mismatch", "total_overflow"):
        return ("price",), str(error["msg"]), "value"
    message = str(error["msg"])
    if message.startswith("Input should be"):
        message = "must be" + message[len("Input should be") :]
    return path, message, "value"


def _not_integer(value: Any, source: _Source) -> str:
    if isinstance(value, bool):
        return f"must be an integer, not {source.show(value)} (booleans are not numbers)"
    if (
        isinstance(value, str)
        and _INT_CELL.fullmatch(value.strip())
        and not isinstance(source, _CsvSource)
    ):
        return f"must be an integer, not {source.show(value)} (remove the quotes)"
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return f"must be an integer, not {_number(value)} (write {int(value)})"
    return f"must be an integer, not {source.show(value)}"
