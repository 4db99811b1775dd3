"""`kalixo schema`: the published schemas hold real outputs of every command; --skeleton."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kalixo_cli.commands.schema import SchemaName
from kalixo_cli.domain.schemas import schema_names
from kalixo_cli.sandbox.server import RunningSandbox
from tests.helpers import run

EXAMPLE = Path(__file__).parent.parent / "examples" / "order.json"


def published(name: str) -> dict[str, Any]:
    result = run(["schema", name])
    assert result.exit_code == 0, result.stderr
    schema: dict[str, Any] = json.loads(result.stdout)
    return schema


def strict(schema: Any) -> Any:
    """The schema with no room for fields it does not name: a field printed but not in the
    schema (or in it but never printed, via `required`) fails the test."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def check(name: str, instance: Any) -> None:
    Draft202012Validator(strict(published(name))).validate(instance)


def place(*args: str) -> dict[str, Any]:
    result = run(["place-order", str(EXAMPLE), "-o", "json", *args])
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# -- the command ----------------------------------------------------------------------------


def test_list_names_every_schema() -> None:
    result = run(["schema", "--list", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    names = [row["name"] for row in json.loads(result.stdout)]
    assert names == schema_names()
    assert {"order-file", "bulk-order", "order", "bulk-result", "error"} <= set(names)


def test_the_command_knows_every_schema_by_name() -> None:
    assert [name.value for name in SchemaName] == schema_names()


@pytest.mark.parametrize("name", schema_names())
def test_every_schema_is_valid_2020_12(name: str) -> None:
    schema = published(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("args", [["nope"], [], ["order", "--list"]])
def test_a_wrong_name_or_both_or_neither_is_exit_2(args: list[str]) -> None:
    result = run(["schema", *args])
    assert result.exit_code == 2
    assert "order-file" in result.stderr or "order-file" in result.output  # names them


# -- inputs ---------------------------------------------------------------------------------


def test_order_files_that_kalixo_accepts_fit_the_order_file_schema() -> None:
    validator = Draft202012Validator(published("order-file"))
    validator.validate(json.loads(EXAMPLE.read_text()))
    validator.validate(
        {
            "orderProducts": [
                {"productId": 2, "price": 3299, "sku": "X", "quantity": 1, "currency": None}
            ],
            "price": None,
            "externalOrderCode": None,
        }
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"orderProducts": [{"productId": 2, "price": 32.99, "sku": "X", "quantity": 1}]},
        {
            "orderProducts": [{"productId": 2, "price": 3299, "sku": "X", "quantity": 1}],
            "curency": "GBP",
        },
        {"orderProducts": [{"productId": 0, "price": 3299, "sku": "X", "quantity": 1}]},
        {"orderProducts": []},
        {
            "currency": "gbp",
            "orderProducts": [{"productId": 2, "price": 1, "sku": "X", "quantity": 1}],
        },
    ],
)
def test_the_schema_flags_what_kalixo_refuses(bad: dict[str, Any], tmp_path: Path) -> None:
    assert not Draft202012Validator(published("order-file")).is_valid(bad)
    file = tmp_path / "bad.json"
    file.write_text(json.dumps(bad))
    assert run(["place-order", str(file), "--dry-run"]).exit_code == 2


def test_a_batch_order_needs_its_code() -> None:
    validator = Draft202012Validator(published("bulk-order"))
    body = json.loads(EXAMPLE.read_text())
    assert not validator.is_valid(body)
    validator.validate({**body, "externalOrderCode": "B-1"})


def test_an_order_file_may_name_its_schema(tmp_path: Path) -> None:
    file = tmp_path / "order.json"
    file.write_text(
        json.dumps({"$schema": "./order-file.schema.json", **json.loads(EXAMPLE.read_text())})
    )
    Draft202012Validator(published("order-file")).validate(json.loads(file.read_text()))
    result = run(["place-order", str(file), "--dry-run", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert "$schema" not in json.loads(result.stdout)  # never sent to the API


# -- real outputs of every command ----------------------------------------------------------


def test_place_and_retrieve_order_print_the_order_schema_on_v1(sandbox: RunningSandbox) -> None:
    order = place()
    check("order", order)
    retrieved = run(["retrieve-order", str(order["orderId"]), "-o", "json"])
    check("order", json.loads(retrieved.stdout))
    jsonl = run(["retrieve-order", str(order["orderId"]), "-o", "jsonl"])
    check("order", json.loads(jsonl.stdout))


def test_place_and_retrieve_order_print_the_order_schema_on_v2(v2: RunningSandbox) -> None:
    order = place("--wait", "--poll-interval", "1")
    check("order", order)
    check(
        "order",
        json.loads(run(["retrieve-order", order["externalOrderCode"], "-o", "json"]).stdout),
    )


def test_place_orders_lines_fit_the_bulk_result_schema(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    body = json.loads(EXAMPLE.read_text())
    good = {**body, "externalOrderCode": "S-1"}
    refused = {
        "externalOrderCode": "S-2",
        "currency": "GBP",
        "orderProducts": [
            {"productId": 2, "price": 1, "sku": "GB-EN-4251604177278", "quantity": 1}
        ],
    }
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps(good) + "\n" + json.dumps(refused) + "\n")
    for line in batch.read_text().splitlines():
        Draft202012Validator(published("bulk-order")).validate(json.loads(line))
    outcomes = set()
    for _ in range(2):  # placed and rejected, then skipped
        result = run(["place-orders", str(batch), "-o", "jsonl"])
        for line in result.stdout.splitlines():
            record = json.loads(line)
            check("bulk-result", record)
            outcomes.add(record["outcome"])
    assert {"placed", "rejected", "skipped"} <= outcomes


def test_errors_fit_the_error_schema(sandbox: RunningSandbox, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"orderProducts": [{"productId": 2, "price": 32.99}]}')
    invalid = run(["place-order", str(bad), "-o", "json"])
    assert invalid.exit_code == 2
    data = json.loads(invalid.stderr.splitlines()[-1])
    assert data["error"]["problems"]
    check("error", data)
    missing = run(["retrieve-order", "999999", "-o", "json"])
    assert missing.exit_code == 3
    data = json.loads(missing.stderr.splitlines()[-1])
    assert data["error"]["status"] == 404 and data["error"]["apiUrl"]
    check("error", data)


def test_journal_and_catalog_outputs_fit_their_schemas(sandbox: RunningSandbox) -> None:
    place("--external-order-code", "S-J")
    listed = json.loads(run(["orders", "list", "-o", "json"]).stdout)
    assert listed
    for entry in listed:
        check("journal-entry", entry)
    check("journal-entry", json.loads(run(["orders", "show", "S-J", "-o", "json"]).stdout))
    products = json.loads(run(["catalog", "list", "-o", "json"]).stdout)
    assert products
    for product in products:
        check("product", product)
    check("product", json.loads(run(["catalog", "show", "9004", "-o", "json"]).stdout))


# -- place-order --skeleton -----------------------------------------------------------------


def test_the_skeleton_is_a_valid_order_file_made_offline(tmp_path: Path) -> None:
    result = run(["place-order", "--skeleton"])  # no API configured: nothing is asked
    assert result.exit_code == 0, result.stderr
    skeleton = json.loads(result.stdout)
    Draft202012Validator(published("order-file")).validate(skeleton)
    assert skeleton["externalOrderCode"].startswith("KX-")
    file = tmp_path / "order.json"
    file.write_text(result.stdout)
    dry = run(["place-order", str(file), "--dry-run", "-o", "json"])
    assert dry.exit_code == 0, dry.stderr
    assert json.loads(dry.stdout) == skeleton


def test_the_skeleton_of_products_has_todays_catalog_prices(sandbox: RunningSandbox) -> None:
    result = run(
        [
            "place-order",
            "--skeleton",
            "-p",
            "1:2",
            "-p",
            "9004:1:2500",
            "--external-order-code",
            "SK-1",
        ]
    )
    assert result.exit_code == 0, result.stderr
    skeleton = json.loads(result.stdout)
    assert skeleton["externalOrderCode"] == "SK-1"
    assert [
        (line["productId"], line["price"], line["quantity"], line["sku"])
        for line in skeleton["orderProducts"]
    ] == [(1, 1099, 2, "GB-EN-4251604160010"), (9004, 2500, 1, "KTEST-OPEN")]
    assert skeleton["price"] == 2 * 1099 + 2500
    assert sandbox.request_count("POST") == 0
    assert run(["orders", "list", "-o", "json"]).stdout.strip() == "[]"


@pytest.mark.parametrize("args", [[str(EXAMPLE)], ["-o", "table"], ["--currency", "EURO"]])
def test_skeleton_misuse_is_exit_2(args: list[str]) -> None:
    assert run(["place-order", "--skeleton", *args]).exit_code == 2


def json_of(args: list[str]) -> Any:
    result = run([*args, "-o", "json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_account_config_and_auth_outputs_fit_their_schemas(v2: RunningSandbox) -> None:
    check("wallet", json_of(["wallet"]))
    check("ping", json_of(["ping"]))
    check("doctor", json_of(["doctor"]))
    check("settings", json_of(["config", "show"]))
    check("profiles", json_of(["config", "profiles"]))
    check("auth-status", json_of(["auth", "status"]))


def test_v1_auth_status_and_settings_fit_too(sandbox: RunningSandbox) -> None:
    check("auth-status", json_of(["auth", "status"]))
    check("settings", json_of(["config", "show"]))
    check("doctor", json_of(["doctor"]))
