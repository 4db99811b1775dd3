"""Batches of orders, streamed: formats, located problems mid-file, the end of the readable
text, and the promises that any bytes give only orders or `InputError`s and that memory
does not grow with the file."""

from __future__ import annotations

import gc
import io
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalixo_cli.domain.errors import InputError, UsageError
from kalixo_cli.domain.models import OrderRequest
from kalixo_cli.inputs.bulk_file import (
    MAX_LINE_CHARS,
    MAX_ORDER_ROWS,
    BulkFormat,
    BulkOrder,
    detect_bulk_format,
    iter_bulk_orders,
)
from kalixo_cli.inputs.fields import CODE_REQUIRED
from kalixo_cli.inputs.jsonpos import index_json, position
from kalixo_cli.inputs.order_file import parse_order

CSV_HEADER = "externalOrderCode,productId,quantity,price,sku,currency\n"


def line(**fields: Any) -> dict[str, Any]:
    return {"productId": 2, "price": 3299, "sku": "GB-EN-1", "quantity": 1, **fields}


def order(code: str | None = "O-1", *lines: dict[str, Any], **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {} if code is None else {"externalOrderCode": code}
    body.update(currency="GBP", orderProducts=list(lines) or [line()])
    body.update(top)
    return body


def items(
    data: str | bytes, fmt: BulkFormat, name: str | None = None, **options: Any
) -> list[BulkOrder | InputError]:
    raw = data.encode() if isinstance(data, str) else data
    return list(iter_bulk_orders(io.BytesIO(raw), name=name or f"o.{fmt}", fmt=fmt, **options))


def valid(data: str | bytes, fmt: BulkFormat, **options: Any) -> list[BulkOrder]:
    found = items(data, fmt, **options)
    assert all(isinstance(item, BulkOrder) for item in found), [
        item.lines() for item in found if isinstance(item, InputError)
    ]
    return [item for item in found if isinstance(item, BulkOrder)]


def errors(found: list[BulkOrder | InputError]) -> list[InputError]:
    return [item for item in found if isinstance(item, InputError)]


def jsonl(*orders: dict[str, Any]) -> str:
    return "".join(json.dumps(body) + "\n" for body in orders)


# ----------------------------------------------------------------------------------------
# detect_bulk_format


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders.json", "json"),
        ("a/ORDERS.JSONL", "jsonl"),
        ("x.ndjson", "jsonl"),
        ("batch.Csv", "csv"),
    ],
)
def test_the_format_follows_the_extension(name: str, expected: str) -> None:
    assert detect_bulk_format(name, None) == expected


def test_an_explicit_format_beats_the_extension() -> None:
    assert detect_bulk_format("orders.json", "jsonl") == "jsonl"
    assert detect_bulk_format("-", "csv") == "csv"


@pytest.mark.parametrize("name", ["-", "orders.txt", "orders", "orders.json.gz"])
def test_stdin_or_an_unknown_extension_needs_the_format_flag(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        detect_bulk_format(name, None)
    assert caught.value.hint is not None and "--format json|jsonl|csv" in caught.value.hint
    assert ("stdin" if name == "-" else name) in caught.value.message


def test_an_unknown_explicit_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        detect_bulk_format("orders.json", "xml")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        iter_bulk_orders(io.BytesIO(b""), name="o", fmt="xml")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------
# JSON Lines


def test_jsonl_orders_come_in_file_order_with_where_and_index() -> None:
    text = jsonl(order("A"), order("B", line(price=100, quantity=3))) + "\n  \n" + jsonl(order("C"))
    found = valid(text, "jsonl")
    assert [(o.request.externalOrderCode, o.where, o.index) for o in found] == [
        ("A", "o.jsonl:1", 0),
        ("B", "o.jsonl:2", 1),
        ("C", "o.jsonl:5", 2),
    ]
    assert found[1].request.price == 300  # computed, as for one order
    assert found[1].request.orderProducts[0].currency == "GBP"  # inherited


def test_jsonl_an_invalid_order_mid_file_is_located_and_the_rest_still_read() -> None:
    bodies = [order(f"O-{i}") for i in range(3000)]
    bodies[1500] = order("O-1500", line(), line(price=32.99))
    text = jsonl(*bodies)
    found = items(text, "jsonl")
    assert len(found) == 3000
    (bad,) = errors(found)
    assert found[1500] is bad
    problem = bad.problems[0]
    assert problem.field == "orderProducts[1].price"
    assert "prices are in minor units: 3299" in problem.message
    row = text.splitlines()[1500]
    assert problem.where == f"o.jsonl:1501:{row.index('32.99') + 1}"
    assert isinstance(found[1501], BulkOrder) and found[1501].index == 1501


def test_jsonl_every_problem_of_an_order_is_in_its_error() -> None:
    text = jsonl(order("A", line(quantity=True, productId=0), prise=1))
    (bad,) = items(text, "jsonl")
    assert isinstance(bad, InputError)
    assert [p.field for p in bad.problems] == [  # in file order
        "orderProducts[0].productId",
        "orderProducts[0].quantity",
        "prise",
    ]
    assert "did you mean 'price'?" in bad.problems[2].message


def test_jsonl_an_order_without_a_code_is_refused() -> None:
    (bad,) = items(jsonl(order(None)), "jsonl")
    assert isinstance(bad, InputError)
    assert [(p.field, p.message, p.where) for p in bad.problems] == [
        ("externalOrderCode", CODE_REQUIRED, "o.jsonl:1:1")
    ]


def test_jsonl_a_null_code_counts_as_absent() -> None:
    (bad,) = items(jsonl(order(None, externalOrderCode=None)), "jsonl")
    assert isinstance(bad, InputError) and bad.problems[0].message == CODE_REQUIRED


def test_jsonl_a_syntax_error_is_one_orders_problem_and_reading_goes_on() -> None:
    text = jsonl(order("A")) + '{"externalOrderCode": "B",\n' + jsonl(order("C"))
    found = items(text, "jsonl")
    assert isinstance(found[0], BulkOrder) and isinstance(found[2], BulkOrder)
    assert isinstance(found[1], InputError)
    assert found[1].problems[0].message.startswith("invalid JSON")
    assert found[1].problems[0].where == "o.jsonl:2:27"  # the end of line 2, not line 3


def test_jsonl_bom_crlf_and_blank_lines() -> None:
    text = "\ufeff" + jsonl(order("A")).replace("\n", "\r\n") + "\r\n\r\n" + jsonl(order("B"))
    found = valid(text, "jsonl")
    assert [o.where for o in found] == ["o.jsonl:1", "o.jsonl:4"]


def test_jsonl_a_json_array_gets_a_hint() -> None:
    bad = items(json.dumps([order("A")]), "jsonl")[0]
    assert isinstance(bad, InputError) and bad.hint is not None and "--format json" in bad.hint


def test_jsonl_a_line_that_is_not_an_object_is_refused() -> None:
    (bad,) = items("42\n", "jsonl")
    assert isinstance(bad, InputError)
    assert "must be a JSON object, not 42" in bad.problems[0].message


def test_jsonl_nan_and_duplicate_keys_are_refused_as_for_one_order() -> None:
    text = (
        jsonl(order("A")).replace("3299", "NaN")
        + '{"externalOrderCode": "B", '
        + ('"externalOrderCode": "B", "currency": "GBP", "orderProducts": [' + json.dumps(line()))
        + "]}\n"
    )
    first, second = items(text, "jsonl")
    assert isinstance(first, InputError) and first.problems[0].message == "NaN is not a number"
    assert isinstance(second, InputError) and "duplicate field" in second.problems[0].message
    assert second.problems[0].where == "o.jsonl:2:28"


# ----------------------------------------------------------------------------------------
# A JSON array


def pretty_array(bodies: list[dict[str, Any]]) -> str:
    return json.dumps(bodies, indent=2)


def where_in(text: str, needle: str, name: str = "o.json") -> str:
    line_no, col = position(text, text.index(needle))
    return f"{name}:{line_no}:{col}"


def element_wheres(text: str) -> list[str]:
    """Where the whole-document index (an independent reference) puts each element."""
    values = index_json(text).values
    return [
        "o.json:{}:{}".format(*position(text, offset))
        for path, offset in values.items()
        if len(path) == 1
    ]


def test_json_orders_are_read_one_by_one_with_line_and_column() -> None:
    text = pretty_array([order("A"), order("B")])
    found = valid(text, "json")
    assert [(o.request.externalOrderCode, o.where, o.index) for o in found] == [
        ("A", "o.json:2:3", 0),
        ("B", element_wheres(text)[1], 1),
    ]


def test_json_an_invalid_order_mid_file_is_located_by_line_and_column() -> None:
    """Far past the first read chunk, so positions must survive the sliding buffer."""
    bodies = [order(f"O-{i}") for i in range(2000)]
    bodies[1500] = order("O-1500", line(), line(price=32.99, sku="SKU-1500"))
    bodies[1999] = order("O-1999", line(qty=1))
    text = pretty_array(bodies)
    assert len(text) > 5 * 64 * 1024
    found = items(text, "json")
    assert len(found) == 2000
    first, last = errors(found)
    assert found[1500] is first and found[1999] is last
    assert first.problems[0].field == "orderProducts[1].price"
    assert first.problems[0].where == where_in(text, "32.99")
    assert last.problems[0].field == "orderProducts[0].qty"
    assert last.problems[0].where == where_in(text, '"qty"')
    starts = element_wheres(text)
    assert [item.where for item in found if isinstance(item, BulkOrder)] == [
        where for i, where in enumerate(starts) if i not in (1500, 1999)
    ]


def test_json_a_compact_array_locates_columns_on_one_long_line() -> None:
    bodies = [order(f"O-{i}") for i in range(2000)]
    bodies[1700] = order("O-1700", line(productId="7"))
    text = json.dumps(bodies)
    (bad,) = errors(items(text, "json"))
    assert bad.problems[0].where == where_in(text, '"7"')
    assert "remove the quotes" in bad.problems[0].message


def test_json_an_order_without_a_code_is_refused_at_its_object() -> None:
    text = pretty_array([order("A"), order(None)])
    bad = items(text, "json")[1]
    assert isinstance(bad, InputError)
    assert bad.problems[0].message == CODE_REQUIRED
    assert bad.problems[0].where == element_wheres(text)[1]


def test_json_numbers_split_across_reads_are_read_whole() -> None:
    numbers = list(range(10**6, 10**6 + 9_000))
    text = json.dumps(numbers)
    chunk = 64 * 1024  # the reader's chunk size, in characters
    assert text[chunk - 1].isdigit() and text[chunk].isdigit()  # a number straddles it
    found = items(text, "json")
    shown = [item.problems[0].message.rsplit(" ", 1)[1] for item in errors(found)]
    assert shown == [str(n) for n in numbers]


def test_json_a_bare_string_with_a_broken_escape_is_an_input_error() -> None:
    """Found by the fuzzer: `parse_order` itself crashed on the document "\\ud800"."""
    found = items('["\\ud800", 1]', "json")
    assert [type(item) for item in found] == [InputError, InputError]
    assert isinstance(found[0], InputError) and "not valid text" in found[0].problems[0].message
    with pytest.raises(InputError):
        parse_order(b'"\\ud800"', name="o.json", fmt="json")


def test_json_with_bom_and_crlf() -> None:
    text = pretty_array([order("A"), order("B")])
    crlf = "\ufeff" + text.replace("\n", "\r\n")
    assert [o.where for o in valid(crlf, "json")] == ["o.json:2:3", element_wheres(text)[1]]


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("", "the file is empty", "o.json"),
        (" \n\t", "the file is blank", "o.json"),
        ("[]", "no orders: the array is empty", "o.json:1:2"),
        ("[\n]", "no orders: the array is empty", "o.json:2:1"),
        ('{"externalOrderCode": "A"}', "not a single object", "o.json:1:1"),
        ("productId,sku\n", "array of orders", "o.json:1:1"),
    ],
)
def test_json_files_without_orders_are_one_error(text: str, message: str, where: str) -> None:
    (bad,) = items(text, "json")
    assert isinstance(bad, InputError)
    assert message in bad.problems[0].message and bad.problems[0].where == where


def test_json_a_truncated_array_yields_its_orders_then_a_final_error() -> None:
    text = pretty_array([order("A"), order("B"), order("C")])
    cut = text[: text.index('"C"') + 10]
    found = items(cut, "json")
    assert [o.request.externalOrderCode for o in found[:2] if isinstance(o, BulkOrder)] == [
        "A",
        "B",
    ]
    assert len(found) == 3 and isinstance(found[2], InputError)
    assert "ends inside an order" in found[2].problems[0].message
    assert found[2].hint is not None and "truncated" in found[2].hint


def test_json_an_array_that_is_never_closed_is_an_error_after_its_orders() -> None:
    text = pretty_array([order("A")])[:-1]
    found = items(text, "json")
    assert isinstance(found[0], BulkOrder)
    assert isinstance(found[1], InputError)
    assert "before the array is closed" in found[1].problems[0].message


def test_json_text_after_the_array_is_an_error_after_its_orders() -> None:
    text = pretty_array([order("A")]) + "\n[]"
    found = items(text, "json")
    assert isinstance(found[0], BulkOrder)
    assert isinstance(found[1], InputError)
    assert found[1].problems[0].message == "invalid JSON: unexpected text after the array"
    assert found[1].problems[0].where == f"o.json:{text.count(chr(10)) + 1}:1"


def test_json_broken_syntax_between_orders_stops_the_reading() -> None:
    text = json.dumps([order("A"), order("B"), order("C")]).replace(
        '}, {"externalOrderCode": "B"', '} {"externalOrderCode": "B"'
    )
    found = items(text, "json")
    assert len(found) == 2 and isinstance(found[0], BulkOrder)
    assert isinstance(found[1], InputError) and "','" in found[1].problems[0].message


def test_json_a_syntax_error_inside_an_order_stops_the_reading_at_its_place() -> None:
    text = '[\n  {"externalOrderCode": "A",, "x": 1},\n  {}\n]'
    (bad,) = items(text, "json")
    assert isinstance(bad, InputError)
    assert bad.problems[0].where == "o.json:2:29"


def test_json_a_trailing_comma_is_named() -> None:
    found = items(json.dumps([order("A")])[:-1] + ",]", "json")
    assert isinstance(found[1], InputError) and "trailing comma" in (found[1].hint or "")


def test_json_deep_nesting_is_an_error_not_a_crash() -> None:
    (bad,) = items("[" + "[" * 100_000, "json")
    assert isinstance(bad, InputError) and "nested too deeply" in bad.problems[0].message


def test_json_an_order_longer_than_the_limit_is_refused_and_reading_goes_on() -> None:
    huge = json.dumps([order("A", line(sku="S" * (MAX_LINE_CHARS - 10))), order("B")])
    bad, ok = items(huge, "json")
    assert isinstance(bad, InputError) and "longer than" in bad.problems[0].message
    assert bad.problems[0].where == "o.json:1:2"
    assert isinstance(ok, BulkOrder)


def test_json_an_order_that_never_ends_is_a_final_error() -> None:
    endless = '[{"externalOrderCode": "A", "sku": "' + "S" * (3 * MAX_LINE_CHARS)
    (bad,) = items(endless, "json")
    assert isinstance(bad, InputError) and "longer than" in bad.problems[0].message


# ----------------------------------------------------------------------------------------
# CSV


def test_csv_consecutive_rows_with_one_code_are_one_order() -> None:
    text = CSV_HEADER + (
        "A,1,1,100,S-1,GBP\n"
        "A,2,2,50,S-2,GBP\n"
        "B,3,1,7,S-3,GBP\n"
        "A,4,1,1,S-4,GBP\n"  # back again: a second order "A", for the caller to refuse
    )
    found = valid(text, "csv")
    assert [(o.request.externalOrderCode, o.where, o.index) for o in found] == [
        ("A", "o.csv:2, row 1", 0),
        ("B", "o.csv:4, row 3", 1),
        ("A", "o.csv:5, row 4", 2),
    ]
    assert found[0].request.price == 200
    assert [item.productId for item in found[0].request.orderProducts] == [1, 2]


def test_csv_columns_in_any_order_case_and_spacing_with_bom_and_crlf() -> None:
    text = "\ufeff SKU ,Currency,PRICE, quantity ,productid,EXTERNALORDERCODE\r\n\r\n"
    text += "S-1 , GBP , 500 , 2 , 7 , X-1\r\nS-2,GBP,1,1,8,X-1\r\n"
    (parsed,) = valid(text, "csv")
    assert parsed.where == "o.csv:3, row 1"
    assert parsed.request.body() == {
        "externalOrderCode": "X-1",
        "price": 1001,
        "currency": "GBP",
        "orderProducts": [
            {"productId": 7, "price": 500, "sku": "S-1", "currency": "GBP", "quantity": 2},
            {"productId": 8, "price": 1, "sku": "S-2", "currency": "GBP", "quantity": 1},
        ],
    }


def test_csv_currency_per_row_and_inherited_within_an_order() -> None:
    text = CSV_HEADER + "A,1,1,1,S,EUR\nA,2,1,1,S,\nB,1,1,1,S,USD\n"
    found = valid(text, "csv")
    assert [o.request.currency for o in found] == ["EUR", "USD"]
    assert found[0].request.orderProducts[1].currency == "EUR"


def test_csv_mixed_currencies_in_one_order_name_the_row() -> None:
    text = CSV_HEADER + "A,1,1,1,S,GBP\nA,2,1,1,S,EUR\n"
    (bad,) = items(text, "csv")
    assert isinstance(bad, InputError)
    assert bad.problems[0].where == "o.csv:3, row 2" and "row 1" in bad.problems[0].message


def test_csv_the_currency_argument_fills_and_checks() -> None:
    header = "externalOrderCode,productId,quantity,price,sku\n"
    (parsed,) = valid(header + "A,1,1,1,S\n", "csv", currency=" gbp ")
    assert parsed.request.currency == "GBP"
    bad = items(CSV_HEADER + "A,1,1,1,S,EUR\n", "csv", currency="GBP")[0]
    assert isinstance(bad, InputError) and "command line" in bad.problems[0].message


def test_csv_no_currency_column_and_no_argument_is_a_header_error() -> None:
    (bad,) = items("externalOrderCode,productId,quantity,price,sku\nA,1,1,1,S\n", "csv")
    assert isinstance(bad, InputError)
    assert bad.problems[0].where == "o.csv:1" and "currency" in bad.problems[0].message


def test_csv_an_empty_code_cell_is_refused_with_the_grouping_hint() -> None:
    text = CSV_HEADER + "A,1,1,1,S,GBP\n,2,1,1,S,GBP\n,3,1,1,S,GBP\n"
    first, second = items(text, "csv")
    assert isinstance(first, BulkOrder)
    assert isinstance(second, InputError)
    assert [(p.field, p.message, p.where) for p in second.problems] == [
        ("externalOrderCode", CODE_REQUIRED, "o.csv:3, row 2")
    ]
    assert second.hint is not None and "every one of its rows" in second.hint


def test_csv_without_a_code_column_is_a_header_error() -> None:
    (bad,) = items("productId,quantity,price,sku,currency\n1,1,1,A,GBP\n", "csv")
    assert isinstance(bad, InputError)
    assert bad.problems[0].message == "missing column: externalOrderCode"
    assert bad.hint is not None and "re-run" in bad.hint


def test_csv_header_problems_stop_the_reading() -> None:
    (bad,) = items("externalOrderCode,productId,qty,price,sku,currency\nA,1,1,1,S,GBP\n", "csv")
    assert isinstance(bad, InputError)
    assert [p.message for p in bad.problems] == [
        "unknown column 'qty' (did you mean 'quantity'?)",
        "missing column: quantity",
    ]


def test_csv_an_invalid_order_mid_file_is_located_by_line_and_row() -> None:
    rows = [f"O-{i},{i + 1},1,100,S-{i},GBP\n" for i in range(20_000)]
    rows[15_000] = "O-15000,1,two,1.5,S,GBP\n"
    text = CSV_HEADER + "\n" + "".join(rows)  # a blank line: lines and rows differ
    found = items(text, "csv")
    assert len(found) == 20_000
    (bad,) = errors(found)
    assert found[15_000] is bad
    assert [(p.field, p.where) for p in bad.problems] == [
        ("price", "o.csv:15003, row 15001"),
        ("quantity", "o.csv:15003, row 15001"),
    ]
    assert "prices are in minor units: 150" in bad.problems[0].message


def test_csv_blank_lines_are_skipped_and_rows_count_data_rows() -> None:
    text = "\n\n" + CSV_HEADER + "\n  \nA,1,1,1,S,GBP\n\n,,,,,\nB,1,0,1,S,GBP\n"
    first, second = items(text, "csv")
    assert isinstance(first, BulkOrder) and first.where == "o.csv:6, row 1"
    assert isinstance(second, InputError)
    assert second.problems[0].where == "o.csv:9, row 2"


def test_csv_a_row_with_the_wrong_cell_count_is_its_orders_problem() -> None:
    text = CSV_HEADER + "A,1,1,1,S,GBP\nA,2,1,1\nB,1,1,1,S,GBP\n"
    first, second = items(text, "csv")
    assert isinstance(first, InputError)
    assert first.problems[0].message == "has 4 cells but the header names 6 columns"
    assert isinstance(second, BulkOrder)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("\n \n", "the file is blank"),
        (CSV_HEADER + "\n\n", "no orders: the header is not followed by any rows"),
        (",,,\n , ,\n", "no header row"),
    ],
)
def test_csv_files_without_orders_are_one_error(text: str, message: str) -> None:
    (bad,) = items(text, "csv")
    assert isinstance(bad, InputError) and message in bad.problems[0].message


def test_csv_malformed_csv_stops_the_reading_and_drops_the_order_it_cut() -> None:
    text = CSV_HEADER + 'A,1,1,1,S,GBP\nB,1,1,1,S,GBP\nB,2,1,1,"' + "x" * 200_000 + '",GBP\n'
    found = items(text, "csv")
    assert len(found) == 2 and isinstance(found[0], BulkOrder)
    assert isinstance(found[1], InputError)
    assert found[1].problems[0].message.startswith("malformed CSV")


def test_csv_an_order_with_too_many_rows_is_refused_in_constant_memory() -> None:
    text = CSV_HEADER + "A,1,1,1,S,GBP\n" * (MAX_ORDER_ROWS + 5) + "B,1,1,1,S,GBP\n"
    first, second = items(text, "csv")
    assert isinstance(first, InputError)
    assert f"{MAX_ORDER_ROWS + 5} rows" in first.problems[0].message
    assert isinstance(second, BulkOrder)


def test_csv_given_json_gets_a_hint() -> None:
    (bad,) = items(jsonl(order("A")), "csv")
    assert isinstance(bad, InputError) and "--format json" in (bad.hint or "")


# ----------------------------------------------------------------------------------------
# Text that cannot be read: the orders before it, then one final error


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_bad_utf8_mid_file_ends_the_reading_at_its_place(fmt: BulkFormat) -> None:
    bodies = [order(f"O-{i}") for i in range(5)]
    if fmt == "json":
        text = pretty_array(bodies)
    elif fmt == "jsonl":
        text = jsonl(*bodies)
    else:
        text = CSV_HEADER + "".join(f"O-{i},1,1,1,S,GBP\n" for i in range(5))
    at = text.index("O-3")
    data = text[:at].encode() + b"\xe9" + text[at:].encode()
    found = items(data, fmt)
    assert all(isinstance(item, BulkOrder) for item in found[:-1])
    assert len(found) in (3, 4)  # a CSV order cut short is not yielded
    final = found[-1]
    assert isinstance(final, InputError)
    assert final.problems[0].message == "not UTF-8 text (byte 0xE9)"
    assert final.problems[0].where == where_in(text, "O-3", f"o.{fmt}")


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_a_nul_byte_means_a_binary_file(fmt: BulkFormat) -> None:
    found = items(b"\x00\x01\x02garbage", fmt)
    assert len(found) == 1 and isinstance(found[0], InputError)
    assert "NUL byte" in found[0].problems[0].message


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_utf16_is_named(fmt: BulkFormat) -> None:
    (bad,) = items(jsonl(order("A")).encode("utf-16"), fmt)
    assert isinstance(bad, InputError) and "UTF-16" in bad.problems[0].message


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_overlong_line_ends_the_reading(fmt: BulkFormat) -> None:
    data = (CSV_HEADER if fmt == "csv" else "") + "x" * (MAX_LINE_CHARS + 1) + "\n"
    found = items(data, fmt)
    assert isinstance(found[-1], InputError) and "longer than" in found[-1].problems[0].message


def test_the_callers_stream_is_left_open() -> None:
    stream = io.BytesIO(jsonl(order("A")).encode())
    assert len(list(iter_bulk_orders(stream, name="o", fmt="jsonl"))) == 1
    assert not stream.closed
    half = iter_bulk_orders(stream, name="o", fmt="jsonl")
    del half
    gc.collect()
    assert not stream.closed


# ----------------------------------------------------------------------------------------
# Memory: nothing accumulates while iterating


def test_a_200k_line_json_array_is_read_in_constant_memory(tmp_path: Path) -> None:
    """tracemalloc sees every allocation, a whole-file buffer included: the peak stays under
    1 MB for a file four times that. (Tracing costs about a microsecond an allocation, so
    the orders are pretty-printed, six lines each: 200k lines, 4.5k orders.)"""
    path = tmp_path / "big.json"
    orders = lines = 0
    with path.open("w") as handle:
        handle.write("[")
        while lines < 200_000:
            extra = [line(productId=n, sku=f"SKU-{orders}-{n}") for n in range(1, 6)]
            body = order(f"O-{orders}", line(sku="S" * 190), *extra)
            text = json.dumps(body, indent=2)
            handle.write(("\n" if orders == 0 else ",\n") + text)
            orders, lines = orders + 1, lines + text.count("\n") + 1
        handle.write("\n]\n")
    size = path.stat().st_size
    assert size > 4_000_000
    count = 0
    with path.open("rb") as stream:
        tracemalloc.start()
        try:
            for item in iter_bulk_orders(stream, name=path.name, fmt="json"):
                assert isinstance(item, BulkOrder)
                count += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert count == orders
    assert peak < 1_000_000, f"peak {peak} bytes for a {size}-byte file"


def test_a_200k_line_csv_keeps_no_orders_alive(tmp_path: Path) -> None:
    """Live Python objects stay flat from the first 500 orders to the last."""
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write(CSV_HEADER)
        for i in range(200_000):  # ten rows an order
            handle.write(f"O-{i // 10},{i % 90 + 1},1,{i % 1000},SKU-{i},GBP\n")
    gc.collect()
    blocks: list[int] = []
    with path.open("rb") as stream:
        for item in iter_bulk_orders(stream, name=path.name, fmt="csv"):
            assert isinstance(item, BulkOrder), item
            if item.index % 500 == 499:
                blocks.append(sys.getallocatedblocks())
    assert len(blocks) == 40
    assert max(blocks[1:]) - blocks[0] < 2_000, blocks  # 19,500 orders later


# ----------------------------------------------------------------------------------------
# Properties: any bytes give orders and InputErrors, never anything else


def assert_total(data: bytes, fmt: BulkFormat, currency: str | None = None) -> None:
    found = list(iter_bulk_orders(io.BytesIO(data), name="fuzz", fmt=fmt, currency=currency))
    assert found, "every input yields at least an order or an error"
    for number, item in enumerate(found):
        if isinstance(item, BulkOrder):
            assert item.index <= number
            OrderRequest.model_validate(item.request.body())
        else:
            assert isinstance(item, InputError) and item.problems
            for problem in item.problems:
                assert problem.message
                problem.describe().encode("utf-8")


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORMATS: list[BulkFormat] = ["json", "jsonl", "csv"]


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(FORMATS))
def test_any_bytes_give_orders_or_input_errors(data: bytes, fmt: BulkFormat) -> None:
    assert_total(data, fmt)


SEEDS: dict[BulkFormat, bytes] = {
    "json": pretty_array([order("A"), order("B", line(), line(productId=6))]).encode(),
    "jsonl": jsonl(order("A"), order("B", line(), line(productId=6))).encode(),
    "csv": (CSV_HEADER + "A,1,1,100,S,GBP\nB,2,1,1,S,\nB,3,2,2,T,GBP\n").encode(),
}
TOKENS = [
    b"NaN",
    b"1e999999",
    b"9" * 40,
    b"32.99",
    b"true",
    b"null",
    b'"\\ud800"',
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"\n",
    b",",
    b'"',
    b"{",
    b"[",
    b"]",
    b"}",
    b"-1",
]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, BulkFormat]:
    fmt: BulkFormat = draw(st.sampled_from(FORMATS))
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "token", "delete", "nest", "repeat"]))
        if kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "nest":
            data[at:at] = draw(st.sampled_from([b"[", b'{"a":'])) * draw(st.sampled_from([2, 5000]))
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 60))]
    return bytes(data), fmt


@FUZZ
@given(mutated(), st.sampled_from([None, "GBP", "eur"]))
def test_mutated_batches_give_orders_or_input_errors(
    case: tuple[bytes, BulkFormat], currency: str | None
) -> None:
    assert_total(*case, currency=currency)


amounts = st.integers(0, 10**6)
batch_lines = st.lists(
    st.fixed_dictionaries(
        {"productId": st.integers(1, 10**9), "price": amounts, "quantity": st.integers(1, 50)}
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=50, deadline=None)
@given(st.lists(batch_lines, min_size=1, max_size=6), st.sampled_from(FORMATS))
def test_valid_batches_round_trip_in_every_format(
    batch: list[list[dict[str, Any]]], fmt: BulkFormat
) -> None:
    bodies = [
        order(f"O-{n}", *[{**item, "sku": f"S-{n}-{i}"} for i, item in enumerate(lines)])
        for n, lines in enumerate(batch)
    ]
    if fmt == "json":
        data = pretty_array(bodies)
    elif fmt == "jsonl":
        data = jsonl(*bodies)
    else:
        data = CSV_HEADER + "".join(
            f"{body['externalOrderCode']},{item['productId']},{item['quantity']},"
            f"{item['price']},{item['sku']},GBP\n"
            for body in bodies
            for item in body["orderProducts"]
        )
    found = valid(data, fmt)
    assert [o.index for o in found] == list(range(len(bodies)))
    for parsed, body in zip(found, bodies, strict=True):
        assert parsed.request.externalOrderCode == body["externalOrderCode"]
        assert parsed.request.price == sum(
            i["price"] * i["quantity"] for i in body["orderProducts"]
        )
