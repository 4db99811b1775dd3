"""Order files -> validated requests: formats, sources, defaults, and located problems.

Pure functions only: no network, no CLI. The hypothesis properties at the end hold the
module to its promise that any bytes give a valid request or an `InputError`, never a crash.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kalixo_cli.domain.errors import InputError, Problem, UsageError
from kalixo_cli.domain.models import INT64_MAX, OrderRequest
from kalixo_cli.inputs import order_file as inputs
from kalixo_cli.inputs.completion import _describe  # the private ones test the model's net
from kalixo_cli.inputs.fields import MAX_PROBLEMS, OrderFormat
from kalixo_cli.inputs.jsonpos import deepest_nesting, index_json
from kalixo_cli.inputs.order_file import (
    MAX_INPUT_BYTES,
    ParsedOrder,
    detect_format,
    generate_order_code,
    parse_order,
    read_source,
)
from kalixo_cli.inputs.problems import _JsonSource

API_EXAMPLE = """{
  "externalOrderCode": "O-12345",
  "price": 4398,
  "currency": "GBP",
  "orderProducts": [
    {"productId": 2, "price": 3299, "sku": "GB-EN-4251604177278", "currency": "GBP", "quantity": 1},
    {"productId": 6, "price": 839,  "sku": "GB-EN-4251604133182", "currency": "GBP", "quantity": 1}
  ]
}
"""

GOOD_JSON = API_EXAMPLE.replace("4398", "4138")

GOOD_CSV = """productId,quantity,price,sku,currency
2,1,3299,GB-EN-4251604177278,GBP
6,2,839,GB-EN-4251604133182,GBP
"""


def parse(
    text: str | bytes, fmt: OrderFormat = "json", name: str | None = None, **options: Any
) -> ParsedOrder:
    data = text.encode() if isinstance(text, str) else text
    options.setdefault("code_factory", lambda: "KX-TEST")
    return parse_order(data, name=name or f"order.{fmt}", fmt=fmt, **options)


def problems(text: str | bytes, fmt: OrderFormat = "json", **options: Any) -> list[Problem]:
    with pytest.raises(InputError) as caught:
        parse(text, fmt, **options)
    assert caught.value.problems
    return caught.value.problems


def only(text: str | bytes, fmt: OrderFormat = "json", **options: Any) -> Problem:
    found = problems(text, fmt, **options)
    assert len(found) == 1, [p.describe() for p in found]
    return found[0]


def order(*lines: dict[str, Any], **top: Any) -> str:
    return json.dumps({**top, "orderProducts": list(lines)})


def line(**fields: Any) -> dict[str, Any]:
    return {"productId": 2, "price": 3299, "sku": "GB-EN-1", "quantity": 1, **fields}


# ----------------------------------------------------------------------------------------
# detect_format


@pytest.mark.parametrize(
    ("name", "expected"),
    [("order.json", "json"), ("ORDER.JSON", "json"), ("a/b.csv", "csv"), ("x.Csv", "csv")],
)
def test_the_format_follows_the_extension_whatever_its_case(name: str, expected: str) -> None:
    assert detect_format(name, None) == expected


def test_an_explicit_format_beats_the_extension() -> None:
    assert detect_format("order.json", "csv") == "csv"
    assert detect_format("-", "json") == "json"


@pytest.mark.parametrize("name", ["-", "<stdin>"])
def test_stdin_without_a_format_is_a_usage_error_with_the_flag_to_use(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        detect_format(name, None)
    assert "stdin" in caught.value.message
    assert caught.value.hint is not None and "--format json|csv" in caught.value.hint


def test_an_unknown_extension_names_the_file() -> None:
    with pytest.raises(UsageError) as caught:
        detect_format("orders.txt", None)
    assert "orders.txt" in caught.value.message
    assert caught.value.hint is not None and "--format json|csv" in caught.value.hint


# ----------------------------------------------------------------------------------------
# read_source


class UntouchableStdin(io.BytesIO):
    def read(self, size: int | None = -1, /) -> bytes:
        raise AssertionError("stdin must only be read for -")


def test_a_file_is_read_with_its_path_as_name(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_bytes(b"{}")
    assert read_source(str(path), UntouchableStdin()) == (b"{}", str(path))


def test_dash_reads_stdin_and_calls_it_stdin() -> None:
    assert read_source("-", io.BytesIO(b"abc")) == (b"abc", "<stdin>")


def test_a_missing_file_is_a_usage_error_with_the_path_and_a_hint(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")
    with pytest.raises(UsageError) as caught:
        read_source(missing, UntouchableStdin())
    assert missing in caught.value.message
    assert caught.value.hint


def test_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        read_source(str(tmp_path), UntouchableStdin())
    assert "directory" in caught.value.message and str(tmp_path) in caught.value.message
    assert caught.value.hint


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_an_unreadable_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_bytes(b"{}")
    path.chmod(0)
    try:
        with pytest.raises(UsageError) as caught:
            read_source(str(path), UntouchableStdin())
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert "permission denied" in caught.value.message and str(path) in caught.value.message
    assert caught.value.hint


def test_permission_denied_is_a_usage_error_even_for_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inputs, "open", refuse, raising=False)
    with pytest.raises(UsageError) as caught:
        read_source("order.json", UntouchableStdin())
    assert caught.value.message == "permission denied reading order.json"
    assert caught.value.hint


def test_a_file_over_16_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)
    with pytest.raises(UsageError) as caught:
        read_source(str(path), UntouchableStdin())
    assert str(path) in caught.value.message and "16 MiB" in caught.value.message


def test_a_file_of_exactly_16_mib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES)
    assert len(read_source(str(path), UntouchableStdin())[0]) == MAX_INPUT_BYTES


def test_stdin_over_16_mib_is_refused() -> None:
    with pytest.raises(UsageError) as caught:
        read_source("-", io.BytesIO(b" " * (MAX_INPUT_BYTES + 1)))
    assert "16 MiB" in caught.value.message


def test_a_path_with_a_nul_byte_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        read_source("bad\x00name.json", UntouchableStdin())


# ----------------------------------------------------------------------------------------
# generate_order_code


def test_generated_codes_are_readable_and_unique() -> None:
    codes = {generate_order_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(r"KX-\d{8}-\d{6}-[0-9A-F]{15}", code)


# ----------------------------------------------------------------------------------------
# JSON: the happy path and defaults


def test_the_api_example_with_a_correct_total_parses_as_is() -> None:
    parsed = parse(GOOD_JSON)
    assert parsed.generated_code is False
    assert parsed.request.body() == json.loads(GOOD_JSON)


def test_the_price_is_computed_when_absent() -> None:
    parsed = parse(order(line(price=100, quantity=3), line(price=5), currency="GBP"))
    assert parsed.request.price == 305


def test_the_currency_comes_from_the_argument_and_fills_the_lines() -> None:
    parsed = parse(order(line(), line(productId=3)), currency="eur")
    assert parsed.request.currency == "EUR"
    assert {item.currency for item in parsed.request.orderProducts} == {"EUR"}


def test_the_currency_comes_from_the_lines_when_they_agree() -> None:
    parsed = parse(order(line(currency="USD"), line(productId=3)))
    assert parsed.request.currency == "USD"
    assert parsed.request.orderProducts[1].currency == "USD"


def test_a_line_without_currency_takes_the_orders() -> None:
    parsed = parse(order(line(), currency="GBP"))
    assert parsed.request.orderProducts[0].currency == "GBP"


def test_null_counts_as_absent_for_the_optional_fields() -> None:
    text = order(line(currency=None), currency=None, price=None, externalOrderCode=None)
    parsed = parse(text, currency="GBP")
    assert parsed.request.price == 3299 and parsed.request.currency == "GBP"
    assert parsed.generated_code is True


def test_the_order_code_is_generated_when_neither_file_nor_argument_has_one() -> None:
    parsed = parse(order(line(), currency="GBP"), code_factory=lambda: "KX-20260101-000000-ABCDEF")
    assert parsed.generated_code is True
    assert parsed.request.externalOrderCode == "KX-20260101-000000-ABCDEF"


def test_the_default_code_factory_makes_a_valid_code() -> None:
    parsed = parse_order(order(line(), currency="GBP").encode(), name="o.json", fmt="json")
    assert parsed.generated_code and parsed.request.externalOrderCode.startswith("KX-")


def test_the_order_code_argument_fills_a_file_without_one() -> None:
    parsed = parse(order(line(), currency="GBP"), external_order_code="MINE-1")
    assert parsed.request.externalOrderCode == "MINE-1" and not parsed.generated_code


def test_the_order_code_argument_may_repeat_the_files() -> None:
    text = order(line(), currency="GBP", externalOrderCode="SAME")
    assert parse(text, external_order_code="SAME").request.externalOrderCode == "SAME"


def test_a_file_code_and_a_different_argument_code_are_refused() -> None:
    text = order(line(), currency="GBP", externalOrderCode="FILE-1")
    problem = only(text, external_order_code="ARG-1")
    assert problem.field == "externalOrderCode"
    assert "'FILE-1'" in problem.message and "'ARG-1'" in problem.message


def test_a_currency_argument_that_differs_from_the_file_is_refused_at_the_files_currency() -> None:
    text = (
        '{\n  "currency": "GBP",\n'
        '  "orderProducts": [{"productId": 2, "price": 1, "sku": "S", "quantity": 1}]\n}'
    )
    problem = only(text, currency="EUR")
    assert problem.field == "currency"
    assert problem.where == "order.json:2:15"
    assert "'GBP'" in problem.message and "'EUR'" in problem.message


# ----------------------------------------------------------------------------------------
# JSON: located problems


def test_a_wrong_total_names_the_expected_one_at_the_top_level_price() -> None:
    problem = only(API_EXAMPLE)
    assert problem.field == "price"
    assert "expected 4138" in problem.message
    assert problem.where == "order.json:3:12"


def test_a_decimal_price_is_refused_with_the_minor_units_hint() -> None:
    text = GOOD_JSON.replace('"price": 3299', '"price": 32.99')
    problem = only(text)
    assert problem.field == "orderProducts[0].price"
    assert "prices are in minor units: 3299" in problem.message
    assert problem.where == "order.json:6:31"


def test_a_decimal_amount_also_gets_a_general_hint() -> None:
    with pytest.raises(InputError) as caught:
        parse(order(line(price=1), currency="GBP").replace('"price": 1', '"price": 1.5'))
    assert caught.value.hint is not None and "minor units" in caught.value.hint


def test_model_level_errors_point_at_the_field_they_are_about() -> None:
    """The model's own consistency errors (a safety net behind the pre-checks) are placed."""
    text = order(line(), line(currency="EUR"), price=1, currency="GBP", externalOrderCode="X")
    source = _JsonSource("order.json", text)
    body = json.loads(text)
    body["orderProducts"][0]["currency"] = "GBP"
    with pytest.raises(ValidationError) as currency_error:
        OrderRequest.model_validate(body)
    path, message, _ = _describe(currency_error.value.errors()[0], source)
    assert path == ("orderProducts", 1, "currency") and "'EUR'" in message
    body["orderProducts"][1]["currency"] = "GBP"
    with pytest.raises(ValidationError) as price_error:
        OrderRequest.model_validate(body)
    path, message, _ = _describe(price_error.value.errors()[0], source)
    assert path == ("price",) and "expected 6598" in message
    assert source.locate(path, "value")[1] == "order.json:1:" + str(text.index('1, "currency"') + 1)


def test_a_decimal_stays_exact() -> None:
    text = order(line(price=1), currency="GBP").replace('"price": 1', '"price": 0.29')
    assert "prices are in minor units: 29" in only(text).message


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_numbers_are_refused_where_they_stand(literal: str) -> None:
    text = (
        '{"currency": "GBP",\n'
        ' "orderProducts": [{"productId": 2, "price": %s, "sku": "S", "quantity": 1}]}'
    )
    problem = only(text % literal)
    assert problem.message == f"{literal} is not a number"
    assert problem.field == "orderProducts[0].price"
    assert problem.where == "order.json:2:46"


def test_a_duplicate_key_is_refused_at_its_second_occurrence() -> None:
    text = (
        '{"currency": "GBP", "currency": "GBP",\n'
        ' "orderProducts": [{"productId": 2, "price": 1, "sku": "S", "quantity": 1}]}'
    )
    problem = only(text)
    assert "duplicate field 'currency'" in problem.message
    assert problem.where == "order.json:1:21"


def test_a_syntax_error_gives_line_and_column() -> None:
    problem = only('{\n  "currency": "GBP"\n  "orderProducts": []\n}')
    assert problem.message.startswith("invalid JSON: Expecting ',' delimiter")
    assert problem.where == "order.json:3:3"


def test_a_trailing_comma_gets_a_hint() -> None:
    with pytest.raises(InputError) as caught:
        parse('{"currency": "GBP",}')
    assert caught.value.hint is not None and "trailing comma" in caught.value.hint


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    problem = only("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in problem.message
    assert problem.where is not None and problem.where.startswith("order.json:1:")


def test_a_huge_integer_literal_is_refused() -> None:
    text = order(line(), currency="GBP").replace('"price": 3299', '"price": ' + "9" * 5000)
    problem = only(text)
    assert "too large" in problem.message and problem.field == "orderProducts[0].price"


def test_a_huge_exponent_is_refused_quickly() -> None:
    text = order(line(), currency="GBP").replace('"price": 3299', '"price": 1e999999999')
    assert "too large" in only(text).message


def test_an_amount_beyond_int64_is_refused() -> None:
    text = order(line(price=INT64_MAX + 1), currency="GBP")
    assert str(INT64_MAX) in only(text).message


def test_a_total_beyond_int64_is_refused_at_the_price() -> None:
    problem = only(order(line(price=INT64_MAX, quantity=2), currency="GBP"))
    assert problem.field == "price" and "signed 64-bit" in problem.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[]", "not an array"), ('"order"', "not the string 'order'"), ("42", "not 42")],
)
def test_the_top_level_must_be_an_object(text: str, expected: str) -> None:
    problem = only(text)
    assert "must be a JSON object" in problem.message and expected in problem.message


def test_booleans_are_not_numbers() -> None:
    problem = only(order(line(quantity=True), currency="GBP"))
    assert problem.field == "orderProducts[0].quantity"
    assert problem.message == "must be an integer, not true (booleans are not numbers)"


def test_a_quoted_number_says_to_remove_the_quotes() -> None:
    problem = only(order(line(productId="2"), currency="GBP"))
    assert "remove the quotes" in problem.message


def test_an_unknown_field_suggests_the_known_one() -> None:
    item = line()
    del item["quantity"]
    item["qty"] = 1
    problem = only(order(item, currency="GBP"))
    assert problem.message == "unknown field 'qty' (did you mean 'quantity'?)"
    assert problem.field == "orderProducts[0].qty"
    # the quantity it should have been is then missing: the key explains it, one problem
    assert problem.where == "order.json:1:" + str(order(item, currency="GBP").index('"qty"') + 1)


def test_an_unknown_top_level_field_suggests_by_spelling() -> None:
    text = order(line(), currency="GBP", prise=3299)
    problem = only(text)
    assert problem.message == "unknown field 'prise' (did you mean 'price'?)"


def test_a_missing_field_points_at_the_enclosing_object() -> None:
    text = '{"currency": "GBP", "orderProducts": [\n  {"productId": 2, "price": 1, "quantity": 1}]}'
    problem = only(text)
    assert problem.field == "orderProducts[0].sku"
    assert problem.message == "missing"
    assert problem.where == "order.json:2:3"


def test_a_quantity_below_one_says_what_it_must_be() -> None:
    problem = only(order(line(quantity=0), currency="GBP"))
    assert problem.message == "must be an integer >= 1"


def test_a_line_currency_that_differs_is_refused_at_that_line() -> None:
    text = (
        '{"currency": "GBP", "orderProducts": [\n'
        '{"productId": 2, "price": 1, "sku": "S", "quantity": 1},\n'
        '{"productId": 3, "price": 1, "sku": "S", "currency": "EUR", "quantity": 1}]}'
    )
    problem = only(text)
    assert problem.field == "orderProducts[1].currency"
    assert "'EUR'" in problem.message and "'GBP'" in problem.message
    assert problem.where == "order.json:3:54"


def test_lines_that_disagree_without_an_order_currency_are_refused_at_the_odd_line() -> None:
    problem = only(order(line(currency="GBP"), line(currency="EUR")))
    assert problem.field == "orderProducts[1].currency"
    assert "orderProducts[0]" in problem.message


def test_no_currency_anywhere_is_one_clear_problem() -> None:
    problem = only(order(line(), line()))
    assert problem.field == "currency" and "missing" in problem.message


def test_an_absent_price_is_not_reported_when_the_lines_are_wrong() -> None:
    found = problems(order(line(price="lots"), currency="GBP"))
    assert [p.field for p in found] == ["orderProducts[0].price"]


def test_every_problem_is_listed_in_file_order() -> None:
    text = order(
        line(productId=0, quantity=True),
        line(sku="", price=12.5, currency="gbp"),
        currency="GBP",
        extra=1,
    )
    found = problems(text)
    assert [p.field for p in found] == [
        "extra",
        "orderProducts[0].productId",
        "orderProducts[0].quantity",
        "orderProducts[1].price",
        "orderProducts[1].sku",
        "orderProducts[1].currency",
    ]
    assert all(p.where and p.where.startswith("order.json:1:") for p in found)


def test_problems_are_capped() -> None:
    text = order(*[line(quantity=0) for _ in range(80)], currency="GBP")
    found = problems(text)
    assert len(found) == MAX_PROBLEMS + 1
    assert found[-1].message == "and 30 more problems not shown"


def test_an_unpaired_surrogate_is_refused_not_crashed_on() -> None:
    text = order(line(), currency="GBP").replace('"GB-EN-1"', '"\\ud800"')
    problem = only(text)
    assert problem.field == "orderProducts[0].sku" and "not valid text" in problem.message


def test_csv_given_as_json_gets_a_hint() -> None:
    with pytest.raises(InputError) as caught:
        parse(GOOD_CSV, "json")
    assert caught.value.hint is not None and "--format csv" in caught.value.hint


# ----------------------------------------------------------------------------------------
# Text encoding, common to both formats


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_utf8_bom_is_accepted(fmt: OrderFormat) -> None:
    text = GOOD_JSON if fmt == "json" else GOOD_CSV
    assert parse(b"\xef\xbb\xbf" + text.encode(), fmt).request.price > 0


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_non_utf8_names_the_byte(fmt: OrderFormat) -> None:
    problem = only(b'{"sku": "caf\xe9"}', fmt)
    assert problem.message == "not UTF-8 text (byte 12)"
    assert problem.where == f"order.{fmt}:1:13"


def test_utf16_is_named() -> None:
    assert "UTF-16" in only(GOOD_JSON.encode("utf-16")).message


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(("data", "word"), [(b"", "empty"), (b" \r\n\t\n", "blank")])
def test_empty_input_is_a_clear_error(fmt: OrderFormat, data: bytes, word: str) -> None:
    problem = only(data, fmt)
    assert word in problem.message and problem.where == f"order.{fmt}"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_nul_bytes_mean_a_binary_file(fmt: OrderFormat) -> None:
    problem = only(b"productId\x00\x01\x02", fmt)
    assert "NUL byte (byte 9)" in problem.message and "binary" in problem.message


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_binary_garbage_is_a_clear_error(fmt: OrderFormat) -> None:
    problem = only(bytes(range(128, 256)) * 4, fmt)
    assert problem.message.startswith("not UTF-8 text")


# ----------------------------------------------------------------------------------------
# CSV


def test_the_example_csv_parses_with_a_computed_price_and_a_generated_code() -> None:
    parsed = parse(GOOD_CSV, "csv")
    assert parsed.request.price == 3299 + 2 * 839
    assert parsed.request.currency == "GBP"
    assert parsed.generated_code is True
    assert parsed.request.orderProducts[1].sku == "GB-EN-4251604133182"


def test_csv_headers_are_case_and_space_insensitive_in_any_order_with_bom_and_crlf() -> None:
    text = "\ufeff SKU ,Currency, PRICE ,quantity,PRODUCTID\r\n\r\nS-1 , GBP , 500 , 2 , 7\r\n"
    parsed = parse(text.encode(), "csv", external_order_code="CSV-1")
    assert parsed.request.body() == {
        "externalOrderCode": "CSV-1",
        "price": 1000,
        "currency": "GBP",
        "orderProducts": [
            {"productId": 7, "price": 500, "sku": "S-1", "currency": "GBP", "quantity": 2}
        ],
    }
    assert parsed.generated_code is False


def test_blank_lines_are_skipped_and_rows_count_data_rows() -> None:
    text = "productId,quantity,price,sku\n\n1,1,1,A\n   \n2,0,1,B\n"
    problem = only(text, "csv", currency="GBP")
    assert problem.field == "quantity"
    assert problem.where == "order.csv:5, row 2"
    assert problem.message == "must be an integer >= 1"


def test_a_digit_only_sku_stays_text() -> None:
    parsed = parse("productId,quantity,price,sku\n1,1,1,4251604177278\n", "csv", currency="GBP")
    assert parsed.request.orderProducts[0].sku == "4251604177278"


def test_the_currency_column_is_optional_given_the_argument() -> None:
    parsed = parse("productId,quantity,price,sku\n1,1,1,A\n", "csv", currency="GBP")
    assert parsed.request.currency == "GBP"


def test_no_currency_column_and_no_argument_is_one_clear_problem() -> None:
    problem = only("productId,quantity,price,sku\n1,1,1,A\n2,1,1,B\n", "csv")
    assert problem.field == "currency" and "currency column" in problem.message


def test_mixed_currencies_name_the_row() -> None:
    text = "productId,quantity,price,sku,currency\n1,1,1,A,GBP\n2,1,1,B,GBP\n3,1,1,C,EUR\n"
    problem = only(text, "csv")
    assert problem.field == "currency" and problem.where == "order.csv:4, row 3"
    assert "row 1" in problem.message


def test_a_row_currency_that_differs_from_the_argument_names_the_row() -> None:
    text = "productId,quantity,price,sku,currency\n1,1,1,A,EUR\n"
    problem = only(text, "csv", currency="GBP")
    assert problem.field == "currency" and "command line" in problem.message


def test_an_empty_currency_cell_takes_the_orders() -> None:
    text = "productId,quantity,price,sku,currency\n1,1,1,A,GBP\n2,1,1,B,\n"
    assert parse(text, "csv").request.orderProducts[1].currency == "GBP"


def test_missing_columns_are_named() -> None:
    problem = only("productId,sku\n1,A\n", "csv", currency="GBP")
    assert problem.message == "missing columns: quantity, price"
    assert problem.where == "order.csv:1"


def test_an_unknown_column_suggests_the_known_one() -> None:
    found = problems("productId,qty,price,sku\n1,1,1,A\n", "csv", currency="GBP")
    assert found[0].message == "unknown column 'qty' (did you mean 'quantity'?)"
    assert found[1].message == "missing column: quantity"


def test_an_order_code_column_says_where_the_code_comes_from() -> None:
    text = "productId,quantity,price,sku,externalOrderCode\n1,1,1,A,X\n"
    assert "command line" in only(text, "csv", currency="GBP").message


def test_a_decimal_cell_gets_the_minor_units_hint() -> None:
    problem = only("productId,quantity,price,sku\n1,1,32.99,A\n", "csv", currency="GBP")
    assert problem.field == "price"
    assert "prices are in minor units: 3299" in problem.message


def test_a_text_cell_must_be_an_integer() -> None:
    problem = only("productId,quantity,price,sku\n1,two,1,A\n", "csv", currency="GBP")
    assert problem.message == "must be an integer, not 'two'"


def test_signed_integer_cells_are_numbers() -> None:
    found = problems("productId,quantity,price,sku\n+1,1,-5,A\n", "csv", currency="GBP")
    assert [(p.field, p.message) for p in found] == [("price", "must be an integer >= 0")]


def test_an_empty_required_cell_is_named() -> None:
    problem = only("productId,quantity,price,sku\n1,1,1,\n", "csv", currency="GBP")
    assert (problem.field, problem.message) == ("sku", "is empty")


def test_a_row_with_the_wrong_cell_count_is_named() -> None:
    text = "productId,quantity,price,sku\n1,1,1,A\n2,1,1\n"
    problem = only(text, "csv", currency="GBP")
    assert problem.where == "order.csv:3, row 2"
    assert problem.message == "has 3 cells but the header names 4 columns"


def test_trailing_empty_cells_from_spreadsheets_are_ignored() -> None:
    text = "productId,quantity,price,sku,,\n1,1,1,A,,\n"
    assert parse(text, "csv", currency="GBP").request.price == 1


def test_a_header_without_rows_has_no_order_lines() -> None:
    problem = only("productId,quantity,price,sku\n\n", "csv", currency="GBP")
    assert "no order lines" in problem.message


def test_semicolon_separated_files_are_read() -> None:
    parsed = parse("productId;quantity;price;sku\n1;2;3;A\n", "csv", currency="GBP")
    assert parsed.request.price == 6


def test_csv_every_problem_is_listed_by_row() -> None:
    text = "productId,quantity,price,sku\n0,1,1,A\n1,x,1,B\n1,1,1.5,C\n"
    found = problems(text, "csv", currency="GBP")
    assert [p.field for p in found] == ["productId", "quantity", "price"]


def test_json_given_as_csv_gets_a_hint() -> None:
    with pytest.raises(InputError) as caught:
        parse(GOOD_JSON, "csv")
    assert caught.value.hint is not None and "--format json" in caught.value.hint


def test_a_huge_cell_is_an_error_not_a_crash() -> None:
    text = "productId,quantity,price,sku\n1,1," + "9" * 5000 + ",A\n"
    assert "too large" in only(text, "csv", currency="GBP").message


def test_a_csv_field_beyond_the_csv_modules_limit_is_an_error() -> None:
    text = 'productId,quantity,price,sku\n1,1,1,"' + "A" * 200_000 + '"\n'
    assert "malformed CSV" in only(text, "csv", currency="GBP").message


# ----------------------------------------------------------------------------------------
# jsonpos


def test_the_index_records_values_keys_and_duplicates() -> None:
    text = '{"a": [1, {"b": "x\\"y", "b": null}], "c": -Infinity}'
    index = index_json(text)
    assert text[index.values[("a", 1, "b")] :].startswith("null")
    assert text[index.keys[("c",)] :].startswith('"c"')
    assert text[index.values[("c",)] :].startswith("-Infinity")
    assert [path for path, _ in index.duplicates] == [("a", 1, "b")]
    assert index.value_offset(("a", 7, "z")) == index.values[("a",)]


def test_the_index_stops_quietly_on_broken_text() -> None:
    text = '{"a": [1, 2'
    assert index_json(text).values[("a", 1)] == text.index("2")


def test_nesting_depth_ignores_brackets_in_strings() -> None:
    assert deepest_nesting('[["[[[[", {"a": "]]"}]]') == (3, 10)


# ----------------------------------------------------------------------------------------
# Properties: any bytes give a valid request or an InputError, never anything else


def assert_total(data: bytes, fmt: OrderFormat, **options: Any) -> None:
    try:
        parsed = parse_order(data, name="fuzz", fmt=fmt, **options)
    except InputError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.message
            problem.describe().encode("utf-8")  # printable on a UTF-8 terminal
        return
    assert isinstance(parsed.request, OrderRequest)
    OrderRequest.model_validate(parsed.request.body())


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["json", "csv"]))
def test_any_bytes_give_a_request_or_an_input_error(data: bytes, fmt: OrderFormat) -> None:
    assert_total(data, fmt)


SEEDS: dict[OrderFormat, bytes] = {"json": API_EXAMPLE.encode(), "csv": GOOD_CSV.encode()}
TOKENS = [
    b"NaN",
    b"-Infinity",
    b"1e999999999",
    b"9" * 40,
    b"32.99",
    b"true",
    b"null",
    b'"\\ud800"',
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\r\n",
    b",",
    b'"',
    b"{",
    b"[",
    b'"qty": 1,',
    b"-1",
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, OrderFormat]:
    fmt: OrderFormat = draw(st.sampled_from(["json", "csv"]))
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["swap", "insert", "token", "delete", "nest", "repeat"]))
        if kind == "swap" and len(data) > 1:
            other = draw(st.integers(0, len(data) - 1))
            at = min(at, len(data) - 1)
            data[at], data[other] = data[other], data[at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "nest":
            depth = draw(st.sampled_from([2, 40, 5000]))
            data[at:at] = draw(st.sampled_from([b"[", b'{"a":'])) * depth
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 30))]
    return bytes(data), fmt


@FUZZ
@given(mutated(), st.sampled_from([None, "GBP", "eur"]), st.sampled_from([None, "O-12345"]))
def test_mutated_orders_give_a_request_or_an_input_error(
    case: tuple[bytes, OrderFormat], currency: str | None, code: str | None
) -> None:
    data, fmt = case
    assert_total(data, fmt, currency=currency, external_order_code=code)


amounts = st.integers(0, 10**6)
order_lines = st.fixed_dictionaries(
    {
        "productId": st.integers(1, 10**9),
        "price": amounts,
        "sku": st.text(
            st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=',"'),
            min_size=1,
            max_size=20,
        ),
        "quantity": st.integers(1, 50),
    }
)


@settings(max_examples=100, deadline=None)
@given(st.lists(order_lines, min_size=1, max_size=8), st.sampled_from(["json", "csv"]))
def test_valid_orders_round_trip_with_the_computed_total(
    lines: list[dict[str, Any]], fmt: OrderFormat
) -> None:
    if fmt == "json":
        data = json.dumps({"orderProducts": lines}).encode()
    else:
        rows = [
            ",".join(str(item[key]) for key in ("productId", "quantity", "price", "sku"))
            for item in lines
        ]
        data = ("productId,quantity,price,sku\n" + "\n".join(rows) + "\n").encode()
    parsed = parse(data, fmt, currency="GBP")
    assert parsed.request.price == sum(item["price"] * item["quantity"] for item in lines)
    assert [item.model_dump(exclude={"currency"}) for item in parsed.request.orderProducts] == lines
