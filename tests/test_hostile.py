"""A hostile server (and a hostile order file): nothing reaches a terminal or a file raw.

Every test drives kalixo against the fault server and asserts on the exact bytes written to
stdout, stderr and files: escape sequences and invisible characters shown as escapes, JSON
data intact as \\u escapes, rich markup never interpreted, spreadsheet formulas defused.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.domain.sanitize import clean, csv_cell, json_safe
from tests.faultserver import FaultServer, Reply
from tests.helpers import run

RETRIEVE = "/v1/orders/retrieve-order"
PLACE = "/v1/orders/place-order"
ORDER = str(Path(__file__).parent.parent / "examples" / "order.json")

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"  # writes "rm -rf ~" to the clipboard
CLEAR = "\x1b[2J"
RLO = "\u202e"
HOSTILE_SKU = f"GB{OSC52}{CLEAR}-{RLO}NE"
HOSTILE_PIN = f'=HYPERLINK("http://evil.example"){CLEAR}'
SHOWN_SKU = "GB\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b[2J-\\u202eNE"
SHOWN_PIN = '=HYPERLINK("http://evil.example")\\x1b[2J'
CORRELATION = f"corr-{CLEAR}1"


def hostile_order(sku: str = HOSTILE_SKU, pin: str = HOSTILE_PIN) -> dict[str, object]:
    return {
        "orderId": 59400,
        "orderStatus": "completed",
        "externalOrderCode": "O-1",
        "products": [
            {"productId": 2, "sku": sku, "price": 3299, "quantity": 1, "pin": [{"pin": pin}]}
        ],
    }


def raw_bytes(text: str) -> bool:
    """True when `text` holds a control or invisible character that a terminal would obey."""
    return clean(text.replace("\n", "")) != text.replace("\n", "")


# ---------------------------------------------------------------------------------------
# The sanitiser itself


def test_clean_shows_controls_and_invisibles_as_escapes() -> None:
    assert clean(HOSTILE_SKU) == SHOWN_SKU
    assert clean("a\tb\nc\rd\x9be\u200bf\ufeffg\U000e0041") == (
        "a\\tb\\nc\\rd\\x9be\\u200bf\\ufeffg\\U000e0041"
    )
    assert clean("Wertgutschein 25 € — ñ 日本") == "Wertgutschein 25 € — ñ 日本"


def test_json_safe_keeps_the_data_and_the_bytes_safe() -> None:
    data = {"sku": HOSTILE_SKU, "tag": "\U000e0041", "c1": "\x85"}
    text = json_safe(json.dumps(data, ensure_ascii=False))
    assert not raw_bytes(text)
    assert "\\u202e" in text and "\\udb40\\udc41" in text and "\\u0085" in text
    assert json.loads(text) == data


def test_csv_cells_that_start_a_formula_get_a_quote() -> None:
    for start in "=+-@":
        assert csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert csv_cell("\t=1") == "'\\t=1"
    assert csv_cell("\r=1") == "'\\r=1"
    assert csv_cell("\uff1d1+1") == "'\uff1d1+1"
    assert csv_cell("AAAA-BBBB") == "AAAA-BBBB"
    assert csv_cell(-5) == -5 and csv_cell(None) is None


# ---------------------------------------------------------------------------------------
# Escape sequences and formulas, in every output


def test_table_shows_escape_sequences_visibly(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(200, hostile_order()))
    result = run(["retrieve-order", "59400", "-o", "table"])
    assert result.exit_code == 0, result.stderr
    assert not raw_bytes(result.stdout)
    assert SHOWN_SKU in result.stdout
    assert SHOWN_PIN in result.stdout
    assert result.stderr == ""


def test_stacked_table_on_a_narrow_terminal_is_clean(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    faults.on(RETRIEVE, Reply(200, hostile_order()))
    result = run(["retrieve-order", "59400", "-o", "table"])
    assert result.exit_code == 0, result.stderr
    assert not raw_bytes(result.stdout)
    assert f"  {SHOWN_PIN}\n" in result.stdout


def test_json_escapes_and_keeps_the_data(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(200, hostile_order()))
    for fmt in ("json", "jsonl"):
        result = run(["retrieve-order", "59400", "-o", fmt])
        assert result.exit_code == 0, result.stderr
        assert not raw_bytes(result.stdout)
        assert "\\u001b]52;c;cm0gLXJmIH4=\\u0007\\u001b[2J-\\u202eNE" in result.stdout
        order = json.loads(result.stdout)
        assert order["products"][0]["sku"] == HOSTILE_SKU
        assert order["products"][0]["pins"] == [HOSTILE_PIN]


def test_raw_json_is_the_servers_but_escaped(faults: FaultServer) -> None:
    body = json.dumps(hostile_order(), ensure_ascii=False)
    faults.on(RETRIEVE, Reply(200, body.encode()))
    result = run(["retrieve-order", "59400", "--raw"])
    assert result.exit_code == 0, result.stderr
    assert not raw_bytes(result.stdout)
    assert result.stdout == json_safe(body) + "\n"
    assert json.loads(result.stdout) == hostile_order()


def test_csv_output_is_clean_and_defused(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(200, hostile_order()))
    result = run(["retrieve-order", "59400", "-o", "csv"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        "orderId,externalOrderCode,status,currency,productId,sku,price,quantity,pin\n"
        f'59400,O-1,completed,,2,{SHOWN_SKU},3299,1,"\'=HYPERLINK(""http://evil.example"")'
        '\\x1b[2J"\n'
    )


def test_pins_out_csv_is_clean_and_defused(faults: FaultServer, tmp_path: Path) -> None:
    faults.on(RETRIEVE, Reply(200, hostile_order(pin="+1-555-0100")))
    target = tmp_path / "pins.csv"
    result = run(["retrieve-order", "59400", "-o", "json", "--pins-out", str(target)])
    assert result.exit_code == 0, result.stderr
    assert (
        target.read_bytes()
        == (f"orderId,productId,sku,pin\n59400,2,{SHOWN_SKU},'+1-555-0100\n").encode()
    )
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert rows[0]["pin"] == "'+1-555-0100"


def test_pins_out_json_keeps_the_data(faults: FaultServer, tmp_path: Path) -> None:
    faults.on(RETRIEVE, Reply(200, hostile_order()))
    target = tmp_path / "pins.json"
    result = run(["retrieve-order", "59400", "-o", "json", "--pins-out", str(target)])
    assert result.exit_code == 0, result.stderr
    assert not raw_bytes(target.read_text())
    assert json.loads(target.read_text()) == [
        {"orderId": 59400, "productId": 2, "sku": HOSTILE_SKU, "pin": HOSTILE_PIN}
    ]


def test_server_message_and_correlation_key_on_stderr_are_clean(faults: FaultServer) -> None:
    faults.on(
        RETRIEVE,
        Reply(
            404,
            {"statusCode": 404, "message": f"no such order {OSC52}{RLO}"},
            {"fhp-codehype-correlation-key": CORRELATION},
        ),
    )
    result = run(["retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == ExitCode.REJECTED
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "kalixo: error: the API rejected the request (HTTP 404): no such order "
        "\\x1b]52;c;cm0gLXJmIH4=\\x07\\u202e "
        f"({faults.url}/v1/orders/retrieve-order; correlation key corr-\\x1b[2J1)"
    )
    assert not raw_bytes(result.stderr)
    error = json.loads(lines[-1])["error"]
    assert error["serverMessage"] == f"no such order {OSC52}{RLO}"
    assert error["correlationKey"] == CORRELATION


def test_place_order_failure_is_journaled_and_shown_clean(faults: FaultServer) -> None:
    faults.on(
        PLACE,
        Reply(
            422,
            {"statusCode": 422, "message": f"bad sku {CLEAR}{RLO}"},
            {"fhp-codehype-correlation-key": CORRELATION},
        ),
    )
    result = run(["place-order", ORDER, "--external-order-code", "O-H-1", "-o", "json"])
    assert result.exit_code == ExitCode.REJECTED
    assert not raw_bytes(result.stderr)
    for fmt in ("table", "csv"):
        listed = run(["orders", "list", "-o", fmt])
        assert listed.exit_code == 0, listed.stderr
        assert not raw_bytes(listed.stdout)
        assert "bad sku \\x1b[2J\\u202e" in listed.stdout
    shown = run(["orders", "show", "O-H-1", "-o", "json"])
    assert json.loads(shown.stdout)["error"] == f"bad sku {CLEAR}{RLO}"
    assert not raw_bytes(shown.stdout)


# ---------------------------------------------------------------------------------------
# Rich markup is never parsed from data


def test_markup_in_a_sku_is_printed_as_it_is(faults: FaultServer, tmp_path: Path) -> None:
    sku = "GB-[/]EN [link=https://evil.example]click[/link] :thumbs_up:"
    faults.on(
        PLACE,
        Reply(
            201,
            {
                "orderId": "59400",
                "products": [
                    {
                        "productId": 2,
                        "sku": sku,
                        "price": 3299,
                        "quantity": 1,
                        "pin": [{"PIN": "P-1"}],
                    },
                    {"productId": 6, "price": 839, "quantity": 1, "pin": [{"PIN": "P-2"}]},
                ],
            },
        ),
    )
    target = tmp_path / "pins.csv"
    result = run(
        [
            "place-order",
            ORDER,
            "--external-order-code",
            "O-M-1",
            "-o",
            "table",
            "--pins-out",
            str(target),
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert sku in result.stdout
    assert "\x1b]8;" not in result.stdout  # no hyperlink
    assert target.read_text().splitlines()[1] == f"59400,2,{sku},P-1"


def test_markup_in_the_users_own_file_is_printed_as_it_is(tmp_path: Path) -> None:
    order = json.loads(Path(ORDER).read_text())
    order["orderProducts"][0]["sku"] = "GB-[/]EN"
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    result = run(
        ["place-order", str(path), "--dry-run", "-o", "table", "--external-order-code", "O-D-1"]
    )
    assert result.exit_code == 0, result.stderr
    assert "GB-[/]EN" in result.stdout


# ---------------------------------------------------------------------------------------
# Codes that look like other codes are refused


def test_a_code_with_bidi_or_zero_width_characters_is_refused(faults: FaultServer) -> None:
    for code, shown in (
        ("O-1\u202e", "\\u202e"),
        ("O-\u200b1", "\\u200b"),
        ("O-\U000e00411", "\\U000e0041"),
    ):
        result = run(["place-order", ORDER, "--external-order-code", code, "-o", "json"])
        assert result.exit_code == ExitCode.USAGE
        assert f"must not contain invisible or text-direction characters ({shown})" in (
            result.stderr
        )
        assert not raw_bytes(result.stderr)
    assert faults.count() == 0


def test_catalog_list_is_clean_in_every_format(faults: FaultServer) -> None:
    name = f"[link=https://evil.example]Top-Up[/link] {OSC52}{RLO}£100"
    faults.on(
        "/v1/catalog/products",
        Reply(
            200,
            {
                "count": 1,
                "products": [
                    {
                        "id": 2,
                        "sku": HOSTILE_SKU,
                        "name": name,
                        "price": 10000,
                        "currencyCode": "GBP",
                        "brand": "=cmd|' /C calc'!A0",
                        "countryCode": "GB",
                    },
                ],
            },
        ),
    )
    table = run(["catalog", "list", "-o", "table", "--refresh"])
    assert table.exit_code == 0, table.stderr
    assert not raw_bytes(table.stdout)
    assert SHOWN_SKU in table.stdout
    assert "[link=https://evil.example]Top-Up[/link]" in table.stdout
    assert "\x1b]8;" not in table.stdout
    as_csv = run(["catalog", "list", "-o", "csv"])
    assert as_csv.exit_code == 0, as_csv.stderr
    assert not raw_bytes(as_csv.stdout)
    assert "'=cmd|' /C calc'!A0" in as_csv.stdout
    as_json = run(["catalog", "list", "-o", "json"])
    assert json.loads(as_json.stdout)[0]["name"] == name
    assert not raw_bytes(as_json.stdout)
