"""place-order and retrieve-order end to end: the CLI against the live sandbox over HTTP."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.sandbox import (
    KTEST_CANCEL_ID,
    KTEST_ERROR_ID,
    KTEST_FAIL_ID,
    KTEST_OK_ID,
    KTEST_OPEN_ID,
    KTEST_SLOW_ID,
    SANDBOX_TOKEN,
)
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_sqlite import Journal
from tests.helpers import Clock, run

EXAMPLES = Path(__file__).parent.parent / "examples"
PLACE = "/v1/orders/place-order"
TEST_SKUS = {
    KTEST_OK_ID: "KTEST-OK",
    KTEST_FAIL_ID: "KTEST-FAIL",
    KTEST_SLOW_ID: "KTEST-SLOW",
    KTEST_OPEN_ID: "KTEST-OPEN",
    KTEST_CANCEL_ID: "KTEST-CANCEL",
    KTEST_ERROR_ID: "KTEST-ERROR",
}


def order_file(tmp_path: Path, body: dict[str, Any], name: str = "order.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return str(path)


def test_order(product_id: int, price: int = 1000, quantity: int = 1) -> dict[str, Any]:
    return {
        "currency": "GBP",
        "orderProducts": [
            {
                "productId": product_id,
                "price": price,
                "quantity": quantity,
                "sku": TEST_SKUS[product_id],
                "currency": "GBP",
            }
        ],
    }


test_order.__test__ = False  # type: ignore[attr-defined]


def placed(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_place_order_from_json_prints_normalized_order(sandbox: RunningSandbox) -> None:
    result = run(["place-order", str(EXAMPLES / "order.json"), "-o", "json"])
    order = placed(result)
    assert set(order) == {
        "orderId",
        "externalOrderCode",
        "status",
        "currency",
        "price",
        "products",
        "estimatedReadyAt",
        "delivered",
        "total",
        "reason",
    }
    assert order["estimatedReadyAt"] is None and order["reason"] is None
    assert isinstance(order["orderId"], int)
    assert order["status"] == "completed"
    assert order["price"] == 4138
    assert order["currency"] == "GBP"
    assert [p["productId"] for p in order["products"]] == [2, 6]
    for product in order["products"]:
        assert set(product) == {"productId", "sku", "price", "quantity", "pins"}
        assert len(product["pins"]) == product["quantity"]
        assert all(pin.startswith("SANDBOX-") for pin in product["pins"])
    assert "generated externalOrderCode " + order["externalOrderCode"] in result.stderr
    assert sandbox.request_count("POST", PLACE) == 1


def test_place_order_from_csv(sandbox: RunningSandbox) -> None:
    order = placed(
        run(
            [
                "place-order",
                str(EXAMPLES / "order.csv"),
                "-o",
                "json",
                "--external-order-code",
                "CSV-1",
            ]
        )
    )
    assert order["externalOrderCode"] == "CSV-1"
    assert order["price"] == 3299 + 2 * 839
    assert len(order["products"][1]["pins"]) == 2


def test_place_order_from_stdin(sandbox: RunningSandbox) -> None:
    text = (EXAMPLES / "order.json").read_text()
    order = placed(run(["place-order", "-", "--format", "json", "-o", "json"], input=text))
    assert order["price"] == 4138


@pytest.mark.parametrize("example", ["order.json", "order.csv"])
def test_stdin_is_json_or_csv_by_its_first_character(sandbox: RunningSandbox, example: str) -> None:
    """A first non-blank { or [ is JSON, anything else CSV; no --format needed."""
    text = "\ufeff \n" + (EXAMPLES / example).read_text()  # a BOM and blank lines first
    order = placed(run(["place-order", "-", "-o", "json"], input=text))
    assert order["orderId"] is not None and order["status"] == "completed"


def test_stdin_sniffing_names_the_format_it_chose_when_the_input_is_bad(
    sandbox: RunningSandbox,
) -> None:
    result = run(["place-order", "-"], input="{}")
    assert result.exit_code == ExitCode.USAGE
    assert "<stdin>:1:1" in result.stderr and "orderProducts: missing" in result.stderr
    empty = run(["place-order", "-"], input="  \n")
    assert empty.exit_code == ExitCode.USAGE
    assert "the order on stdin is empty" in empty.stderr
    assert sandbox.request_count() == 0


def test_retrieve_order_matches_what_was_placed(sandbox: RunningSandbox) -> None:
    order = placed(run(["place-order", str(EXAMPLES / "order.json"), "-o", "json"]))
    again = placed(run(["retrieve-order", str(order["orderId"]), "-o", "json"]))
    assert again == order


def test_output_is_json_when_piped_by_default(sandbox: RunningSandbox) -> None:
    order = placed(run(["place-order", str(EXAMPLES / "order.json")]))
    assert order["status"] == "completed"


def test_table_output_shows_every_pin_uncut(sandbox: RunningSandbox) -> None:
    order = placed(run(["place-order", str(EXAMPLES / "order.csv"), "-o", "json"]))
    table = run(["retrieve-order", str(order["orderId"]), "-o", "table"])
    assert table.exit_code == 0
    for product in order["products"]:
        for pin in product["pins"]:
            assert pin in table.stdout
    assert "49.77 GBP" in table.stdout
    assert "completed" in table.stdout
    assert "\x1b[" not in table.stdout


def test_raw_prints_the_server_body_unchanged(sandbox: RunningSandbox) -> None:
    order = placed(run(["place-order", str(EXAMPLES / "order.json"), "-o", "json"]))
    raw = run(["retrieve-order", str(order["orderId"]), "--raw"])
    body = json.loads(raw.stdout)
    assert body["orderStatus"] == "completed"
    assert "pin" in body["products"][0]
    placed_raw = run(["place-order", str(EXAMPLES / "order.json"), "--raw", "--new-code"])
    assert isinstance(json.loads(placed_raw.stdout)["orderId"], str)


def test_raw_and_table_conflict(sandbox: RunningSandbox) -> None:
    result = run(["retrieve-order", "1", "--raw", "-o", "table"])
    assert result.exit_code == ExitCode.USAGE
    assert sandbox.request_count() == 0


def test_dry_run_prints_the_request_and_sends_nothing(sandbox: RunningSandbox) -> None:
    result = run(
        [
            "place-order",
            str(EXAMPLES / "order.json"),
            "--dry-run",
            "-o",
            "json",
            "--external-order-code",
            "DRY-1",
        ]
    )
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert body == {
        "externalOrderCode": "DRY-1",
        "price": 4138,
        "currency": "GBP",
        "orderProducts": [
            {
                "productId": 2,
                "price": 3299,
                "sku": "GB-EN-4251604177278",
                "currency": "GBP",
                "quantity": 1,
            },
            {
                "productId": 6,
                "price": 839,
                "sku": "GB-EN-4251604133182",
                "currency": "GBP",
                "quantity": 1,
            },
        ],
    }
    assert "nothing was sent" in result.stderr
    assert sandbox.request_count() == 0


def test_a_placed_code_is_replayed_not_sent_again(sandbox: RunningSandbox) -> None:
    """As a Stripe idempotency key: the same order, fresh from the API, exit 0; no POST."""
    args = ["place-order", str(EXAMPLES / "order.json"), "--external-order-code", "DUP-0"]
    first = placed(run([*args, "-o", "json"]))
    sandbox.reset_counts()
    again = run([*args, "-o", "json"])
    assert again.exit_code == ExitCode.OK, again.stderr
    assert json.loads(again.stdout) == first  # with its PINs, as retrieve-order prints it
    assert "placed on " in again.stderr and f"as order {first['orderId']}" in again.stderr
    assert "not sent again" in again.stderr
    assert sandbox.request_count("POST") == 0
    assert sandbox.request_count("GET") == 1
    as_csv = run([*args, "-o", "csv"])
    assert as_csv.exit_code == ExitCode.OK
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [row["pin"] for row in rows] == [
        pin for line in first["products"] for pin in line["pins"]
    ]
    assert sandbox.request_count("POST") == 0


def test_reused_code_is_refused_with_409_and_nothing_new_placed(
    sandbox: RunningSandbox, isolated: Path
) -> None:
    """Another machine (no journal here) reusing a code: the API's 409 stops it."""
    args = [
        "place-order",
        str(EXAMPLES / "order.json"),
        "--external-order-code",
        "DUP-1",
        "-o",
        "json",
    ]
    placed(run(args))
    (isolated / "xdg-data" / "kalixo" / "journal.sqlite3").unlink()
    before = sandbox.store.count_orders()
    again = run(args)
    assert again.exit_code == ExitCode.REJECTED
    assert "already exists" in again.stderr
    assert sandbox.store.count_orders() == before


@pytest.mark.parametrize(
    ("product_id", "status"),
    [
        (KTEST_OK_ID, "completed"),
        (KTEST_FAIL_ID, "failed"),
        (KTEST_CANCEL_ID, "cancelled"),
        (KTEST_ERROR_ID, "error"),
    ],
)
def test_every_final_status_is_rendered(
    sandbox: RunningSandbox, tmp_path: Path, product_id: int, status: str
) -> None:
    """place-order exits 7 for an order that ended failed, cancelled or in error (v1 states
    no status when placing: one retrieve tells it), and prints what retrieve-order prints."""
    result = run(["place-order", order_file(tmp_path, test_order(product_id)), "-o", "json"])
    assert result.exit_code == (
        ExitCode.OK if status == "completed" else ExitCode.ORDER_UNSUCCESSFUL
    ), result.stderr
    order = json.loads(result.stdout)
    assert order["status"] == status
    retrieved = placed(run(["retrieve-order", str(order["orderId"]), "-o", "json"]))
    assert retrieved == order
    with Journal(default_journal_path()) as journal:
        entry = journal.get(sandbox.v1_url, order["externalOrderCode"])
    assert entry is not None and entry.status == status
    table = run(["retrieve-order", str(order["orderId"]), "-o", "table"])
    assert status in table.stdout
    checked = run(["retrieve-order", str(order["orderId"]), "--exit-status", "-o", "json"])
    if status == "completed":
        assert checked.exit_code == 0
    else:
        assert checked.exit_code == ExitCode.ORDER_UNSUCCESSFUL
        assert f"ended {status}" in checked.stderr
        assert json.loads(checked.stdout)["status"] == status


def test_place_order_without_pins_asks_the_server_once_and_says_how_to_fetch(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    result = run(["place-order", order_file(tmp_path, test_order(KTEST_SLOW_ID)), "-o", "json"])
    order = placed(result)
    assert order["status"] == "requested"  # the server's word, not a guess
    assert sandbox.request_count("GET") == 1
    assert f"kalixo retrieve-order {order['orderId']}" in result.stderr


def test_a_v1_status_that_cannot_be_read_is_null_not_a_guess(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    from kalixo_cli.sandbox.faults import Faults

    sandbox.faults = Faults(error_rate_502=1.0, fault_paths=("/v1/orders/retrieve-order",))
    result = run(["place-order", order_file(tmp_path, test_order(KTEST_SLOW_ID)), "-o", "json"])
    assert result.exit_code == ExitCode.OK, result.stderr
    order = json.loads(result.stdout)
    assert order["orderId"] is not None and order["status"] is None
    assert "its status could not be read" in result.stderr


def test_slow_order_goes_requested_processing_completed(
    sandbox: RunningSandbox, sandbox_clock: Clock, tmp_path: Path
) -> None:
    order = placed(
        run(
            [
                "place-order",
                order_file(tmp_path, test_order(KTEST_SLOW_ID, quantity=2)),
                "-o",
                "json",
            ]
        )
    )
    seen = []
    for advance in (0, 3, 10):
        sandbox_clock.advance(advance)
        retrieved = placed(run(["retrieve-order", str(order["orderId"]), "-o", "json"]))
        seen.append((retrieved["status"], len(retrieved["products"][0]["pins"])))
    assert seen == [("requested", 0), ("processing", 0), ("completed", 2)]


def test_open_denomination_takes_the_chosen_amount(sandbox: RunningSandbox, tmp_path: Path) -> None:
    order = placed(
        run(["place-order", order_file(tmp_path, test_order(KTEST_OPEN_ID, 2500)), "-o", "json"])
    )
    assert order["price"] == 2500
    outside = run(
        ["place-order", order_file(tmp_path, test_order(KTEST_OPEN_ID, 50), "o.json"), "-o", "json"]
    )
    assert outside.exit_code == ExitCode.REJECTED
    assert "range" in outside.stderr


def test_sandbox_price_mismatch_is_the_servers_message(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    body = test_order(KTEST_OK_ID, price=999)
    result = run(["place-order", order_file(tmp_path, body), "-o", "json"])
    assert result.exit_code == ExitCode.REJECTED
    assert "price mismatch: expected 1000" in result.stderr


def test_unknown_order_is_404_exit_3(sandbox: RunningSandbox) -> None:
    result = run(["retrieve-order", "999999999"])
    assert result.exit_code == ExitCode.REJECTED
    assert "not found" in result.stderr


def test_bad_token_is_exit_4(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_TOKEN", "not-the-sandbox-token-at-all")
    result = run(["retrieve-order", "59401"])
    assert result.exit_code == ExitCode.AUTH
    assert "not-the-sandbox-token-at-all" not in result.stderr


def test_order_id_must_be_a_positive_integer(sandbox: RunningSandbox) -> None:
    for bad in ("abc", "0", "-5"):
        result = run(["retrieve-order", "--", bad])
        assert result.exit_code == ExitCode.USAGE, bad
    assert sandbox.request_count() == 0


def test_sandbox_flag_runs_in_process_and_remembers_orders(isolated: Path) -> None:
    order = placed(run(["--sandbox", "place-order", str(EXAMPLES / "order.json"), "-o", "json"]))
    assert (isolated / "xdg-data" / "kalixo" / "sandbox.sqlite3").exists()
    again = placed(run(["retrieve-order", str(order["orderId"]), "-o", "json", "--sandbox"]))
    assert again["products"] == order["products"]


def test_sandbox_flag_never_sends_the_configured_token(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_TOKEN", "my-real-production-token-0123456789")
    result = run(
        ["--sandbox", "place-order", str(EXAMPLES / "order.json"), "-o", "json", "--verbose"]
    )
    assert result.exit_code == 0, result.stderr
    assert "my-real-production-token" not in result.stdout + result.stderr
    assert SANDBOX_TOKEN not in result.stdout + result.stderr


def test_sandbox_and_api_url_conflict() -> None:
    result = run(["--sandbox", "--api-url", "http://127.0.0.1:1/v1", "retrieve-order", "1"])
    assert result.exit_code == ExitCode.USAGE
    assert "cannot be used together" in result.stderr


def test_orders_from_the_command_line_take_prices_from_the_catalog(sandbox: RunningSandbox) -> None:
    order = placed(run(["place-order", "--product", "2:1", "-p", "6:2", "-o", "json"]))
    assert order["price"] == 3299 + 2 * 839
    assert [p["sku"] for p in order["products"]] == ["GB-EN-4251604177278", "GB-EN-4251604133182"]
    open_amount = placed(run(["place-order", "-p", f"{KTEST_OPEN_ID}:1:2500", "-o", "json"]))
    assert open_amount["price"] == 2500
    sandbox.reset_counts()
    off_step = run(["place-order", "-p", f"{KTEST_OPEN_ID}:1:2550"])
    assert off_step.exit_code == ExitCode.USAGE and "step" in off_step.stderr
    both = run(["place-order", str(EXAMPLES / "order.json"), "-p", "2:1"])
    assert both.exit_code == ExitCode.USAGE
    assert sandbox.request_count("POST") == 0
