"""Every validation rule, through the CLI against the live sandbox: exit 2, a located
message, and not one request reaching the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.sandbox.server import RunningSandbox
from tests.helpers import run

INT64_MAX = 2**63 - 1
LINE_2 = {
    "productId": 2,
    "price": 3299,
    "sku": "GB-EN-4251604177278",
    "currency": "GBP",
    "quantity": 1,
}
LINE_6 = {
    "productId": 6,
    "price": 839,
    "sku": "GB-EN-4251604133182",
    "currency": "GBP",
    "quantity": 1,
}


def body(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "externalOrderCode": "O-12345",
        "price": 4138,
        "currency": "GBP",
        "orderProducts": [dict(LINE_2), dict(LINE_6)],
    }
    for key, value in changes.items():
        if key.startswith("line0_"):
            order["orderProducts"][0][key[6:]] = value
        else:
            order[key] = value
    return order


JSON_CASES: dict[str, tuple[str, str]] = {
    # name: (document, text the error must contain)
    "unknown field": (json.dumps(body(line0_qty=1)), "did you mean 'quantity'"),
    "blank code": (json.dumps(body(externalOrderCode="   ")), "externalOrderCode"),
    "control character in code": (
        json.dumps(body(externalOrderCode="O-1\u0007")),
        "control characters",
    ),
    "currency not 3 letters": (json.dumps(body(currency="POUNDS")), "currency"),
    "no lines": (json.dumps(body(orderProducts=[], price=0)), "orderProducts"),
    "productId zero": (json.dumps(body(line0_productId=0)), "productId"),
    "productId a string": (json.dumps(body(line0_productId="2")), "productId"),
    "quantity zero": (json.dumps(body(line0_quantity=0, price=839)), "quantity"),
    "negative price": (json.dumps(body(line0_price=-1)), "price"),
    "decimal price": (json.dumps(body(line0_price=32.99)), "prices are in minor units: 3299"),
    "line currency differs": (json.dumps(body(line0_currency="EUR")), "one currency"),
    "boolean quantity": (json.dumps(body(line0_quantity=True)), "quantity"),
    "NaN price": (json.dumps(body()).replace("3299", "NaN"), "NaN"),
    "Infinity quantity": (
        json.dumps(body()).replace('"quantity": 1', '"quantity": Infinity', 1),
        "Infinity",
    ),
    "amount beyond int64": (json.dumps(body(line0_price=INT64_MAX + 1)), "price"),
    "total beyond int64": (json.dumps(body(line0_price=INT64_MAX, line0_quantity=2)), "64-bit"),
    "price mismatch (the seed's example)": (json.dumps(body(price=4398)), "expected 4138"),
    "duplicate key": ('{"currency": "GBP", "currency": "EUR", "orderProducts": []}', "duplicate"),
    "syntax error": ('{"currency": "GBP",, }', "order.json:1:"),
    "not an object": ("[1, 2]", "object"),
    "deeply nested": ("[" * 50_000 + "]" * 50_000, "nested too deeply"),
    "empty file": ("", "empty"),
}


@pytest.mark.parametrize("case", list(JSON_CASES), ids=list(JSON_CASES))
def test_invalid_json_is_refused_located_and_never_sent(
    sandbox: RunningSandbox, tmp_path: Path, case: str
) -> None:
    document, expected = JSON_CASES[case]
    path = tmp_path / "order.json"
    path.write_text(document)
    result = run(["place-order", str(path)])
    assert result.exit_code == ExitCode.USAGE, result.stdout
    assert result.stdout == ""
    assert result.stderr.startswith("kalixo: error: ")
    assert "order.json" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert sandbox.request_count() == 0


CSV_CASES: dict[str, tuple[str, list[str], str]] = {
    "missing column": ("productId,quantity,price\n2,1,3299\n", ["--currency", "GBP"], "sku"),
    "unknown column": ("productId,qty,price,sku,currency\n2,1,3299,A,GBP\n", [], "quantity"),
    "decimal price": (
        "productId,quantity,price,sku,currency\n2,1,32.99,A,GBP\n",
        [],
        "prices are in minor units: 3299",
    ),
    "two currencies": (
        "productId,quantity,price,sku,currency\n2,1,3299,A,GBP\n6,1,839,B,EUR\n",
        [],
        "row 2",
    ),
    "no currency": ("productId,quantity,price,sku\n2,1,3299,A\n", [], "currency"),
    "header only": ("productId,quantity,price,sku,currency\n", [], "no order lines"),
    "binary": ("\x00\x01\x02garbage\x00", ["--currency", "GBP"], "order.csv"),
}


@pytest.mark.parametrize("case", list(CSV_CASES), ids=list(CSV_CASES))
def test_invalid_csv_is_refused_located_and_never_sent(
    sandbox: RunningSandbox, tmp_path: Path, case: str
) -> None:
    document, extra, expected = CSV_CASES[case]
    path = tmp_path / "order.csv"
    path.write_text(document)
    result = run(["place-order", str(path), *extra])
    assert result.exit_code == ExitCode.USAGE, result.stdout
    assert "order.csv" in result.stderr
    assert expected in result.stderr
    assert sandbox.request_count() == 0


def test_csv_errors_name_line_row_and_column(sandbox: RunningSandbox, tmp_path: Path) -> None:
    path = tmp_path / "order.csv"
    path.write_text("productId,quantity,price,sku,currency\n2,1,3299,A,GBP\n6,x,839,B,GBP\n")
    result = run(["place-order", str(path)])
    assert "quantity: must be an integer, not 'x'" in result.stderr
    assert "order.csv:3, row 2" in result.stderr


def test_json_errors_name_line_column_and_field(sandbox: RunningSandbox, tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(body(line0_price=32.99), indent=2))
    result = run(["place-order", str(path)])
    assert "orderProducts[0].price: " in result.stderr
    assert "order.json:8:16)" in result.stderr


def test_currency_flag_conflicting_with_the_file_is_refused(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(body()))
    result = run(["place-order", str(path), "--currency", "EUR"])
    assert result.exit_code == ExitCode.USAGE
    assert sandbox.request_count() == 0


def test_unreadable_path_and_directory(sandbox: RunningSandbox, tmp_path: Path) -> None:
    for target in (tmp_path / "missing.json", tmp_path):
        result = run(["place-order", str(target), "--format", "json"])
        assert result.exit_code == ExitCode.USAGE
        assert result.stderr.startswith("kalixo: error: ")
    assert sandbox.request_count() == 0


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), fmt=st.sampled_from(["json", "csv"]))
def test_any_bytes_are_a_valid_order_or_exit_2_and_nothing_sent(
    sandbox: RunningSandbox, data: bytes, fmt: str
) -> None:
    sandbox.reset_counts()
    result = run(
        [
            "place-order",
            "-",
            "--format",
            fmt,
            "--currency",
            "GBP",
            "--external-order-code",
            "HYP-1",
            "--dry-run",
        ],
        input=data,
    )
    assert "Traceback" not in result.stderr
    assert result.exit_code in (ExitCode.OK, ExitCode.USAGE)
    if result.exit_code == ExitCode.USAGE:
        assert result.stderr.startswith("kalixo: error: ")
        assert result.stdout == ""
    else:
        json.loads(result.stdout)
    assert sandbox.request_count() == 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_mutated_orders_are_sent_only_when_valid(
    sandbox: RunningSandbox, data: st.DataObject
) -> None:
    """Without --dry-run: an invalid mutation never reaches the server; a valid one may."""
    document = bytearray(json.dumps(body(externalOrderCode="MUT")).encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(document) - 1))
        document[at] = data.draw(st.integers(0, 255))
    sandbox.reset_counts()
    result = run(["place-order", "-", "--format", "json", "-o", "json"], input=bytes(document))
    assert "Traceback" not in result.stderr
    if result.exit_code == ExitCode.USAGE:
        assert sandbox.request_count() == 0
    else:
        assert sandbox.request_count("POST", "/v1/orders/place-order") == 1
