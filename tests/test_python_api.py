"""The Python API (`from kalixo_cli import Kalixo`): the commands' work, same rules, same JSON.

Against the real sandbox over HTTP, with the settings the commands read (the `sandbox` and
`v2` fixtures point KALIXO_API_URL and the credential at it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kalixo_cli import Kalixo, KalixoError
from kalixo_cli.domain.errors import ExitCode, InputError, UsageError
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_url import locate, open_journal
from tests.helpers import Clock, run

EXAMPLE = Path(__file__).parent.parent / "examples" / "order.json"


def order(
    code: str | None, product_id: int = 2, price: int = 3299, sku: str = "GB-EN-4251604177278"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "price": price,
        "currency": "GBP",
        "orderProducts": [
            {"productId": product_id, "price": price, "sku": sku, "currency": "GBP", "quantity": 1}
        ],
    }
    if code is not None:
        body["externalOrderCode"] = code
    return body


def journal_states(api: str) -> dict[str, str]:
    journal = open_journal(locate(f"sqlite://{default_journal_path()}"), readonly=True)
    return {entry.code: entry.state for entry in journal.entries(api)}


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_orders_are_the_json_the_commands_print(
    version: str, sandbox: RunningSandbox, sandbox_clock: Clock, request: pytest.FixtureRequest
) -> None:
    if version == "v2":
        request.getfixturevalue("v2")
    with Kalixo() as kalixo:
        placed = kalixo.place_order(order(f"PY-{version}-1"))
        assert placed.orderId is not None and placed.externalOrderCode == f"PY-{version}-1"
        if version == "v2":  # asynchronous: ready a few seconds later
            assert placed.status == "processing"
            sandbox_clock.advance(60)
        retrieved = kalixo.retrieve_order(placed.orderId)
    assert retrieved.status == "completed" and retrieved.products[0].pins
    if version == "v1":
        assert placed.to_json() == retrieved.to_json()
    shown = run(["retrieve-order", str(placed.orderId), "-o", "json"])
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == retrieved.to_json()


def test_a_placed_code_is_replayed_never_bought_twice(sandbox: RunningSandbox) -> None:
    with Kalixo() as kalixo:
        first = kalixo.place_order(order("PY-REPLAY"))
        posts = sandbox.request_count("POST", "/v1/orders/place-order")
        again = kalixo.place_order(order("PY-REPLAY"))
    assert again.orderId == first.orderId
    assert sandbox.request_count("POST", "/v1/orders/place-order") == posts  # nothing sent
    # and the command sees the same journal: a replay, not a purchase
    assert (
        run(["place-order", "-", "-o", "json"], input=json.dumps(order("PY-REPLAY"))).exit_code == 0
    )
    assert sandbox.request_count("POST", "/v1/orders/place-order") == posts


def test_an_order_without_a_code_gets_the_commands_content_code(sandbox: RunningSandbox) -> None:
    with Kalixo() as kalixo:
        request = kalixo.order_request(order(None))
        placed = kalixo.place_order(order(None))
        assert placed.externalOrderCode == request.externalOrderCode
        fresh = kalixo.place_order(order(None), new_code=True)
    assert fresh.externalOrderCode != placed.externalOrderCode
    assert fresh.orderId != placed.orderId
    dry = run(["place-order", "-", "--dry-run", "-o", "json"], input=json.dumps(order(None)))
    assert json.loads(dry.stdout)["externalOrderCode"] == request.externalOrderCode


def test_an_order_file_is_read_as_the_command_reads_it(sandbox: RunningSandbox) -> None:
    with Kalixo() as kalixo:
        placed = kalixo.place_order(EXAMPLE)
    assert [line.productId for line in placed.products] == [2, 6]


def test_an_invalid_order_raises_input_error_naming_the_field_and_is_never_sent(
    sandbox: RunningSandbox,
) -> None:
    bad = order("PY-BAD")
    bad["orderProducts"][0]["quantity"] = 0
    before = sandbox.request_count("POST", "/v1/orders/place-order")
    with Kalixo() as kalixo, pytest.raises(InputError) as raised:
        kalixo.place_order(bad)
    assert "quantity" in str(raised.value)
    assert raised.value.exit_code == ExitCode.USAGE
    assert sandbox.request_count("POST", "/v1/orders/place-order") == before
    assert "PY-BAD" not in journal_states(sandbox.v1_url)


def test_failures_are_the_commands_errors_with_their_exit_codes(sandbox: RunningSandbox) -> None:
    with Kalixo() as kalixo, pytest.raises(KalixoError) as raised:
        kalixo.retrieve_order(999_999_999)
    assert raised.value.exit_code == ExitCode.REJECTED
    with pytest.raises(UsageError):
        Kalixo(sandbox=True, api_url="https://api.example/v1")
    with Kalixo() as kalixo, pytest.raises(UsageError):
        kalixo.place_order(order("PY-NEW"), new_code=True)  # it has a code of its own


def test_place_orders_places_each_once_and_a_rerun_places_none(sandbox: RunningSandbox) -> None:
    batch = [order(f"PY-BULK-{n}") for n in range(5)]
    before = sandbox.request_count("POST", "/v1/orders/place-order")
    with Kalixo() as kalixo:
        first = kalixo.place_orders(batch, concurrency=3)
        posts = sandbox.request_count("POST", "/v1/orders/place-order")
        again = kalixo.place_orders(batch, concurrency=3)
    assert sorted(result.code for result in first) == [f"PY-BULK-{n}" for n in range(5)]
    assert {result.outcome for result in first} == {"placed"}
    assert posts - before == 5
    assert {result.outcome for result in again} == {"skipped"}
    assert sandbox.request_count("POST", "/v1/orders/place-order") == posts
    states = journal_states(sandbox.v1_url)
    assert all(states[f"PY-BULK-{n}"] == "placed" for n in range(5))
    # the same result lines as the command's, for the same orders
    rerun = run(
        ["place-orders", "-", "--format", "jsonl", "-o", "jsonl"],
        input="\n".join(json.dumps(body) for body in batch),
    )
    assert rerun.exit_code == 0, rerun.stderr
    lines = [json.loads(line) for line in rerun.stdout.splitlines()]
    assert sorted(lines, key=lambda line: line["externalOrderCode"]) == sorted(
        (result.to_json() for result in again), key=lambda line: line["externalOrderCode"]
    )


def test_place_orders_validates_everything_before_sending_anything(sandbox: RunningSandbox) -> None:
    batch = [order("PY-V-1"), {**order("PY-V-2"), "currency": "pounds"}]
    before = sandbox.request_count("POST", "/v1/orders/place-order")
    with Kalixo() as kalixo, pytest.raises(InputError) as raised:
        kalixo.place_orders(batch)
    assert "currency" in str(raised.value)
    assert sandbox.request_count("POST", "/v1/orders/place-order") == before
