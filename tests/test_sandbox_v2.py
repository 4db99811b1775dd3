"""The sandbox's API v2 over real HTTP: auth by API key, the catalog's filters and paging,
asynchronous orders and every scenario's status over time, idempotent codes, one store and
one wallet with v1, the rate limit and faults on /v2, and the schema upgrade."""

from __future__ import annotations

import math
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from kalixo_cli.sandbox import (
    KTEST_CANCEL_ID,
    KTEST_ERROR_ID,
    KTEST_FAIL_ID,
    KTEST_OK_ID,
    KTEST_OPEN_ID,
    KTEST_PARTIAL_ID,
    KTEST_SLOW_ID,
    SANDBOX_API_KEY,
    SANDBOX_TOKEN,
    Wallet,
)
from kalixo_cli.sandbox.catalog import PRODUCTS, SCENARIOS
from kalixo_cli.sandbox.server import RunningSandbox, _announce, running_sandbox
from kalixo_cli.sandbox.store import Store
from tests.helpers import FakeClock

START = 1_800_000_000.0
START_ISO = "2027-01-15T08:00:00.000Z"
LINE_2 = {
    "productId": 2,
    "price": 3299,
    "sku": "GB-EN-4251604177278",
    "currency": "GBP",
    "quantity": 1,
}
LINE_6 = {"productId": 6, "price": 839, "quantity": 1}
ORDER_LIMIT = "Your account order limit has been exceeded. Contact support for assistance."


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory, clock: FakeClock) -> Iterator[RunningSandbox]:
    db = tmp_path_factory.mktemp("sandbox-v2") / "sandbox.sqlite3"
    with running_sandbox(db, clock=clock) as running:
        yield running


@pytest.fixture
def live(_server: RunningSandbox, clock: FakeClock) -> Iterator[RunningSandbox]:
    """One server for the module; each test starts at START with no faults."""
    clock.at(0)
    _server.faults.clear()
    _server.reset_counts()
    yield _server
    _server.faults.clear()


@pytest.fixture(scope="module")
def _small(tmp_path_factory: pytest.TempPathFactory, clock: FakeClock) -> Iterator[RunningSandbox]:
    db = tmp_path_factory.mktemp("sandbox-v2-wallet") / "sandbox.sqlite3"
    wallet = Wallet({"GBP": 150_00, "EUR": 1000_00}, threshold=100_00)
    with running_sandbox(db, clock=clock, wallet=wallet) as running:
        yield running


@pytest.fixture
def small(_small: RunningSandbox, clock: FakeClock) -> RunningSandbox:
    """A sandbox whose account holds GBP 150.00 and EUR 1,000.00, low below 100.00."""
    clock.at(0)
    _small.set_balance("GBP", 150_00)
    _small.set_balance("EUR", 1000_00)
    return _small


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["x-api-key"] = SANDBOX_API_KEY
        yield session


def code() -> str:
    return f"V2-{uuid.uuid4().hex[:12]}"


def body(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"externalOrderCode": code(), "currency": "GBP", "orderProducts": list(lines), **fields}


def line(product_id: int, quantity: int = 1, **fields: Any) -> dict[str, Any]:
    return {"productId": product_id, "quantity": quantity, **fields}


def post(live: RunningSandbox, http: requests.Session, order: Any) -> requests.Response:
    return http.post(f"{live.v2_url}/orders", json=order, timeout=5)


def get(
    live: RunningSandbox, http: requests.Session, path: str, **params: Any
) -> requests.Response:
    return http.get(f"{live.v2_url}{path}", params=params, timeout=5)


def placed(live: RunningSandbox, http: requests.Session, order: dict[str, Any]) -> dict[str, Any]:
    response = post(live, http, order)
    assert response.status_code == 202, response.text
    data: dict[str, Any] = response.json()
    return data


def v1_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {SANDBOX_TOKEN}"}


def error(status: int, label: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "error": label, "message": message}


# -- auth -------------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/ping"),
    ("GET", "/catalog/products"),
    ("GET", "/catalog/products/2"),
    ("POST", "/orders"),
    ("GET", "/orders/59401"),
    ("GET", "/wallet"),
    ("GET", "/sandbox/scenarios"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing API key"),
        ({"x-api-key": ""}, "Missing API key"),
        ({"x-api-key": "kal_test_someone_else_0000000000"}, "Invalid API key"),
        ({"x-api-key": "kal_live_" + SANDBOX_API_KEY.removeprefix("kal_test_")}, "Invalid API key"),
        ({"Authorization": f"Bearer {SANDBOX_TOKEN}"}, "Missing API key"),
    ],
)
def test_every_route_wants_the_sandbox_api_key(
    live: RunningSandbox, method: str, path: str, headers: dict[str, str], message: str
) -> None:
    before = live.store.count_orders()
    response = requests.request(
        method, f"{live.v2_url}{path}", headers=headers, json=body(LINE_2), timeout=5
    )
    assert response.status_code == 401
    assert response.json() == error(401, "Unauthorized", message)
    assert live.store.count_orders() == before


def test_ping_answers_ok_and_the_sandbox_time(live: RunningSandbox, http: requests.Session) -> None:
    assert get(live, http, "/ping").json() == {"status": "ok", "timestamp": START_ISO}


# -- catalog ----------------------------------------------------------------------------------


def ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [product["id"] for product in response.json()["products"]]


KTEST_IDS = [9001, 9002, 9003, 9004, 9005, 9006, 9007]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [1, 2, 6, *KTEST_IDS]),
        ({"country": "GB"}, [1, 2, 6, *KTEST_IDS]),
        ({"country": "ie,de"}, []),
        ({"language": "EN"}, [1, 2, 6, *KTEST_IDS]),
        ({"language": "de"}, []),
        ({"brand": "Xbox,roblox"}, [2, 6]),
        ({"category": "Gaming"}, [2, 6]),
        ({"category": "Test"}, KTEST_IDS),
        ({"tag": "music, bestseller"}, [1, 2]),
        ({"tag": "gaming", "brand": "Spotify"}, []),  # AND across fields
        ({"search": "robux"}, [6]),
        ({"search": "4251604177278"}, [2]),
        ({"search": "KTEST-PART"}, [KTEST_PARTIAL_ID]),
        ({"brand": ""}, [1, 2, 6, *KTEST_IDS]),  # an empty filter filters nothing
    ],
)
def test_catalog_filters(
    live: RunningSandbox, http: requests.Session, filters: dict[str, str], expected: list[int]
) -> None:
    response = get(live, http, "/catalog/products", **filters)
    assert ids(response) == expected
    assert response.json()["count"] == len(expected)


@pytest.mark.parametrize(
    ("params", "skip", "take", "expected"),
    [
        ({}, 0, 20, [1, 2, 6, *KTEST_IDS]),
        ({"skip": "2", "take": "3"}, 2, 3, [6, 9001, 9002]),
        ({"skip": "9", "take": "5"}, 9, 5, [9007]),
        ({"skip": "50"}, 50, 20, []),
        ({"take": "100"}, 0, 100, [1, 2, 6, *KTEST_IDS]),
        ({"take": "1", "skip": "0"}, 0, 1, [1]),
    ],
)
def test_catalog_pages_with_skip_and_take(
    live: RunningSandbox,
    http: requests.Session,
    params: dict[str, str],
    skip: int,
    take: int,
    expected: list[int],
) -> None:
    response = get(live, http, "/catalog/products", **params)
    assert ids(response) == expected
    assert (response.json()["count"], response.json()["skip"], response.json()["take"]) == (
        10,
        skip,
        take,
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"take": "101"}, "Validation failed (take must not be greater than 100)"),
        ({"take": "500"}, "Validation failed (take must not be greater than 100)"),
        ({"take": "0"}, "Validation failed (take must not be less than 1)"),
        ({"skip": "-3"}, "Validation failed (skip must not be less than 0)"),
        ({"take": "ten"}, "Validation failed (numeric string is expected)"),
        ({"skip": "x"}, "Validation failed (numeric string is expected)"),
        ({"take": "9" * 5000}, "Validation failed (take must not be greater than 100)"),
        ({"skip": "-" + "9" * 5000}, "Validation failed (skip must not be less than 0)"),
    ],
)
def test_skip_and_take_outside_the_spec_are_400(
    live: RunningSandbox, http: requests.Session, params: dict[str, str], message: str
) -> None:
    """The spec's parameter schemas bound them (take 1-100, skip >= 0): never clamped into
    a 200 that a client would take for the page it asked for (Schemathesis found take=101)."""
    response = get(live, http, "/catalog/products", **params)
    assert response.status_code == 400
    assert response.json() == {"statusCode": 400, "error": "Bad Request", "message": message}


def test_a_product_has_the_spec_shape_without_v1_fields_or_nulls(
    live: RunningSandbox, http: requests.Session
) -> None:
    fixed = get(live, http, "/catalog/products/2").json()
    assert (fixed["id"], fixed["productCode"], fixed["price"], fixed["denominationType"]) == (
        2,
        "4251604177278",
        3299,
        "fixed",
    )
    assert fixed["languages"][0]["sku"] == "GB-EN-4251604177278"
    assert "ean" not in fixed and "sku" not in fixed and "denominationMinValue" not in fixed
    assert None not in fixed.values()
    open_ = get(live, http, f"/catalog/products/{KTEST_OPEN_ID}").json()
    assert [open_[f"denomination{k}"] for k in ("Type", "MinValue", "MaxValue", "Step")] == [
        "open",
        500,
        10000,
        100,
    ]


@pytest.mark.parametrize(
    ("product_id", "status", "message"),
    [
        ("3", 404, "Product 3 was not found in your catalog"),
        ("-1", 404, "Product -1 was not found in your catalog"),
        ("9" * 5000, 404, f"Product {'9' * 5000} was not found in your catalog"),
        ("abc", 400, "Validation failed (numeric string is expected)"),
        ("2.5", 400, "Validation failed (numeric string is expected)"),
    ],
)
def test_an_unknown_or_malformed_product_id(
    live: RunningSandbox, http: requests.Session, product_id: str, status: int, message: str
) -> None:
    response = get(live, http, f"/catalog/products/{product_id}")
    assert response.status_code == status
    assert response.json()["message"] == message


# -- placing ----------------------------------------------------------------------------------


def test_an_order_is_accepted_processing_with_its_ready_time_and_the_wallet(
    live: RunningSandbox, http: requests.Session
) -> None:
    order = body(LINE_2, {**LINE_6, "quantity": 2}, price=3299 + 2 * 839)
    accepted = placed(live, http, order)
    assert accepted == {
        "orderId": accepted["orderId"],
        "externalOrderCode": order["externalOrderCode"],
        "status": "processing",
        "estimatedReadyAt": "2027-01-15T08:00:02.000Z",
        "wallet": {"balances": accepted["wallet"]["balances"], "lowBalance": False},
    }
    assert isinstance(accepted["orderId"], int) and accepted["orderId"] >= 59401


def test_sku_line_currency_and_total_are_optional(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    accepted = placed(live, http, body(line(2, 2), line(KTEST_OPEN_ID, price=2300)))
    stored = live.store.get_order(accepted["orderId"])
    assert stored is not None
    assert (stored.price, [ln.price for ln in stored.lines]) == (2 * 3299 + 2300, [3299, 2300])


def test_a_large_order_is_ready_later(live: RunningSandbox, http: requests.Session) -> None:
    accepted = placed(live, http, body(line(KTEST_OK_ID, 250)))
    assert accepted["estimatedReadyAt"] == "2027-01-15T08:00:04.000Z"  # 2 s + 1 s per 100 units


@pytest.mark.parametrize(
    ("lines", "fields", "status", "message"),
    [
        ([{**LINE_2, "price": 3000}], {}, 400, "Product 2 price mismatch: expected 3299"),
        ([LINE_2, LINE_6], {"price": 4398}, 400, "Order price mismatch: expected total 4138"),
        ([line(12345)], {}, 404, "Product 12345 was not found in your catalog"),
        ([line(KTEST_OPEN_ID)], {}, 400, "Product 9004 is open-denomination and requires a price"),
        (
            [line(KTEST_OPEN_ID, price=400)],
            {},
            400,
            "Product 9004 price 400 is outside the allowed range 500-10000",
        ),
        (
            [line(KTEST_OPEN_ID, price=550)],
            {},
            400,
            "Product 9004 price 550 is not a multiple of the step 100",
        ),
        ([LINE_6], {"currency": "EUR"}, 400, "Product 6 is priced in GBP, not EUR"),
        ([{**LINE_6, "currency": "EUR"}], {}, 400, "Product 6 is priced in GBP, not EUR"),
        (
            [{**LINE_6, "currency": "GBP"}],
            {"currency": "EUR"},
            400,
            "Product 6 is not available for ordering with the supplied country or currency.",
        ),
        (
            [{**LINE_2, "sku": "GB-EN-1"}],
            {},
            400,
            "Product 2 sku mismatch: expected GB-EN-4251604177278",
        ),
        ([line(6, 0)], {}, 400, "orderProducts.0.quantity must not be less than 1"),
        ([], {}, 400, "orderProducts must contain at least 1 elements"),
        ([LINE_6], {"externalOrderCode": None}, 400, "externalOrderCode must be a string"),
        ([line(6, 1001)], {}, 422, ORDER_LIMIT),
    ],
)
def test_invalid_orders_get_the_v2_catalogue_message_and_cost_nothing(
    live: RunningSandbox,
    http: requests.Session,
    lines: list[dict[str, Any]],
    fields: dict[str, Any],
    status: int,
    message: str,
) -> None:
    before = (live.store.count_orders(), live.balances())
    response = post(live, http, body(*lines, **fields))
    assert response.status_code == status
    assert response.json() == {"statusCode": status, "error": response.reason, "message": message}
    assert (live.store.count_orders(), live.balances()) == before


# -- idempotency ------------------------------------------------------------------------------


def test_reposting_a_code_with_the_same_order_returns_it_and_creates_nothing(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    order = body(LINE_2, price=3299)
    first = placed(live, http, order)
    balances = live.balances()
    clock.at(60)  # long completed: the answer is still the acceptance, as the spec has it
    again = placed(live, http, order)
    sparse = placed(
        live, http, {**order, "price": None, "orderProducts": [{"productId": 2, "quantity": 1}]}
    )
    assert again == sparse == first
    assert len(live.store.orders_by_code(order["externalOrderCode"])) == 1
    assert live.balances() == balances
    assert live.place_attempts()[order["externalOrderCode"]] == 3


@pytest.mark.parametrize(
    "change",
    [
        {"orderProducts": [{**LINE_2, "quantity": 2}]},
        {"orderProducts": [LINE_6]},
        {"orderProducts": [LINE_2, LINE_6]},
        {"price": 3300},
        {"currency": "EUR"},
    ],
)
def test_reposting_a_code_with_another_order_is_409(
    live: RunningSandbox, http: requests.Session, change: dict[str, Any]
) -> None:
    order = body(LINE_2)
    placed(live, http, order)
    conflict = post(live, http, {**order, **change})
    assert conflict.status_code == 409
    assert conflict.json() == error(
        409, "Conflict", "An order with this external order code already exists."
    )
    assert len(live.store.orders_by_code(order["externalOrderCode"])) == 1


def test_concurrent_posts_of_one_code_make_one_order_and_all_get_it(live: RunningSandbox) -> None:
    order = body(LINE_6)
    answers: list[requests.Response] = []

    def send() -> None:
        with requests.Session() as session:
            session.headers["x-api-key"] = SANDBOX_API_KEY
            answers.append(post(live, session, order))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202] * 8
    assert len({a.json()["orderId"] for a in answers}) == 1
    assert len(live.store.orders_by_code(order["externalOrderCode"])) == 1


# -- one store with v1 ------------------------------------------------------------------------


def test_v1_and_v2_share_one_order_id_sequence_and_one_code_namespace(
    live: RunningSandbox, http: requests.Session
) -> None:
    v1_order = {**body(LINE_6)}
    v1 = requests.post(
        f"{live.v1_url}/orders/place-order", json=v1_order, headers=v1_headers(), timeout=5
    ).json()
    v2 = placed(live, http, body(LINE_6))
    assert v2["orderId"] == int(v1["orderId"]) + 1
    # a v2 re-post of the v1 order is a retry of it; a v1 re-post of a v2 code is v1's 409
    assert placed(live, http, v1_order)["orderId"] == int(v1["orderId"])
    v1_again = requests.post(
        f"{live.v1_url}/orders/place-order",
        json={**v1_order, "externalOrderCode": v2["externalOrderCode"]},
        headers=v1_headers(),
        timeout=5,
    )
    assert v1_again.status_code == 409


def test_an_order_placed_on_v1_reads_on_v2_by_id_and_by_code(
    live: RunningSandbox, http: requests.Session
) -> None:
    order = body(line(2, 2))
    v1 = requests.post(
        f"{live.v1_url}/orders/place-order", json=order, headers=v1_headers(), timeout=5
    ).json()
    by_id = get(live, http, f"/orders/{v1['orderId']}").json()
    by_code = get(live, http, f"/orders/{order['externalOrderCode']}").json()
    assert by_id == by_code
    assert (by_id["status"], by_id["estimatedReadyAt"]) == ("completed", START_ISO)
    assert [c["code"] for c in by_id["products"][0]["codes"]] == [
        p["PIN"] for p in v1["products"][0]["pin"]
    ]


def test_an_order_placed_on_v2_is_processing_on_v1_until_it_is_ready(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    accepted = placed(live, http, body(line(KTEST_PARTIAL_ID, 4)))

    def v1_order() -> dict[str, Any]:
        data: dict[str, Any] = requests.get(
            f"{live.v1_url}/orders/retrieve-order",
            params={"id": accepted["orderId"]},
            headers=v1_headers(),
            timeout=5,
        ).json()
        return data

    processing = v1_order()
    assert (processing["orderStatus"], processing["products"][0]["pin"]) == ("processing", [])
    clock.at(2)
    ready = v1_order()
    assert (ready["orderStatus"], len(ready["products"][0]["pin"])) == ("failed", 2)


@pytest.mark.parametrize(("quantity", "status", "pins"), [(4, "failed", 2), (1, "completed", 1)])
def test_on_v1_a_partial_line_is_failed_with_the_pins_it_got(
    live: RunningSandbox, quantity: int, status: str, pins: int
) -> None:
    order = body(line(KTEST_PARTIAL_ID, quantity, price=1000, currency="GBP"))
    response = requests.post(
        f"{live.v1_url}/orders/place-order", json=order, headers=v1_headers(), timeout=5
    )
    assert response.status_code == 201
    assert len(response.json()["products"][0]["pin"]) == pins
    retrieved = requests.get(
        f"{live.v1_url}/orders/retrieve-order",
        params={"id": response.json()["orderId"]},
        headers=v1_headers(),
        timeout=5,
    ).json()
    assert (retrieved["orderStatus"], len(retrieved["products"][0]["pin"])) == (status, pins)


# -- looking orders up ------------------------------------------------------------------------


@pytest.mark.parametrize("external_code", ["O/2026/0001", "käse 1", "12345"])
def test_an_order_is_found_by_any_code_including_slashes_spaces_and_digits(
    live: RunningSandbox, http: requests.Session, external_code: str
) -> None:
    unique = (
        f"{external_code}-{uuid.uuid4().hex[:6]}"
        if not external_code.isdigit()
        else (str(10_000 + uuid.uuid4().int % 40_000))
    )  # digits, but no order has that id
    accepted = placed(live, http, {**body(LINE_6), "externalOrderCode": unique})
    found = http.get(f"{live.v2_url}/orders/{quote(unique, safe='')}", timeout=5)
    assert found.status_code == 200, found.text
    assert found.json()["orderId"] == accepted["orderId"]


def test_an_unknown_reference_is_404_with_the_reference(
    live: RunningSandbox, http: requests.Session
) -> None:
    for reference in ("O-12345", "1", "99999999999999999999999"):
        response = get(live, http, f"/orders/{reference}")
        assert response.status_code == 404
        assert response.json() == error(404, "Not Found", f"Order {reference} not found")


# -- statuses over time -----------------------------------------------------------------------


def status_at(
    live: RunningSandbox, http: requests.Session, clock: FakeClock, order_id: int, at: float
) -> dict[str, Any]:
    clock.at(at)
    response = get(live, http, f"/orders/{order_id}")
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def codes(order: dict[str, Any]) -> list[int]:
    return [len(product["codes"]) for product in order["products"]]


@pytest.mark.parametrize(
    ("lines", "ready", "status", "delivered"),
    [
        ([line(KTEST_OK_ID, 2)], 2, "completed", [2]),
        ([line(KTEST_OPEN_ID, 3, price=2500)], 2, "completed", [3]),
        ([line(KTEST_SLOW_ID, 2)], 10, "completed", [2]),
        ([line(KTEST_PARTIAL_ID, 5)], 2, "partially_completed", [3]),
        ([line(KTEST_PARTIAL_ID, 2)], 2, "partially_completed", [1]),
        ([line(KTEST_PARTIAL_ID, 1)], 2, "completed", [1]),
        ([line(KTEST_OK_ID, 2), line(KTEST_FAIL_ID, 1)], 2, "partially_completed", [2, 0]),
        ([line(KTEST_FAIL_ID, 2)], 2, "failed", None),
        ([line(KTEST_CANCEL_ID)], 2, "failed", None),
        ([line(KTEST_ERROR_ID)], 2, "failed", None),
    ],
)
def test_each_scenario_is_processing_until_ready_then_final(
    live: RunningSandbox,
    http: requests.Session,
    clock: FakeClock,
    lines: list[dict[str, Any]],
    ready: float,
    status: str,
    delivered: list[int] | None,
) -> None:
    accepted = placed(live, http, body(*lines))
    for at in (0, ready - 0.01):
        processing = status_at(live, http, clock, accepted["orderId"], at)
        assert (processing["status"], processing["message"]) == (
            "processing",
            "Order is still processing",
        )
        assert "products" not in processing and "reason" not in processing
    for at in (ready, ready + 3600):
        final = status_at(live, http, clock, accepted["orderId"], at)
        assert final["status"] == status
        assert "message" not in final
        if delivered is None:
            assert "products" not in final and final["reason"].startswith("The order ")
        else:
            assert codes(final) == delivered
            assert [p["quantity"] for p in final["products"]] == [ln["quantity"] for ln in lines]
        if status == "partially_completed":
            assert (final["delivered"], final["total"]) == (
                sum(delivered or []),
                sum(ln["quantity"] for ln in lines),
            )
        else:
            assert "delivered" not in final and "total" not in final


def test_codes_are_the_same_on_every_read_and_unique(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    accepted = placed(live, http, body(line(KTEST_OK_ID, 3), line(KTEST_PARTIAL_ID, 3)))
    first = status_at(live, http, clock, accepted["orderId"], 5)
    second = status_at(live, http, clock, accepted["orderId"], 500)
    assert first["products"] == second["products"]
    all_codes = [c["code"] for p in first["products"] for c in p["codes"]]
    assert len(all_codes) == 5 == len(set(all_codes))
    assert all(code_.startswith("SANDBOX-") for code_ in all_codes)


def test_failed_reasons(live: RunningSandbox, http: requests.Session, clock: FakeClock) -> None:
    failed = placed(live, http, body(line(KTEST_FAIL_ID)))
    cancelled = placed(live, http, body(line(KTEST_CANCEL_ID)))
    assert status_at(live, http, clock, failed["orderId"], 3)["reason"] == (
        "The order could not be completed."
    )
    assert status_at(live, http, clock, cancelled["orderId"], 3)["reason"] == (
        "The order was cancelled."
    )


def test_the_scenarios_list_every_test_product_and_each_outcome_is_what_happens(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    listed = get(live, http, "/sandbox/scenarios").json()["scenarios"]
    assert [s["name"] for s in listed] == [s.name for s in SCENARIOS]
    test_products = {p.id for p in PRODUCTS if p.sku.startswith("KTEST-")}
    assert {pid for s in listed for pid in s["productIds"]} == test_products
    for scenario in listed:
        clock.at(0)
        lines = [
            line(pid, 2, **({"price": 2500} if pid == KTEST_OPEN_ID else {}))
            for pid in scenario["productIds"]
        ]
        accepted = placed(live, http, body(*lines))
        v1 = requests.post(
            f"{live.v1_url}/orders/place-order", json=body(*lines), headers=v1_headers(), timeout=5
        ).json()
        clock.at(scenario["processingSeconds"])
        assert (
            get(live, http, f"/orders/{accepted['orderId']}").json()["status"]
            == (scenario["outcome"])
        ), scenario
        v1_status = requests.get(
            f"{live.v1_url}/orders/retrieve-order",
            params={"id": v1["orderId"]},
            headers=v1_headers(),
            timeout=5,
        ).json()["orderStatus"]
        assert v1_status == scenario["v1Status"], scenario


# -- wallet -----------------------------------------------------------------------------------


def test_the_wallet_shows_balances_in_major_units_and_the_threshold(
    small: RunningSandbox, http: requests.Session
) -> None:
    assert get(small, http, "/wallet").json() == {
        "balances": {"EUR": 1000.0, "GBP": 150.0},
        "lowBalance": False,
        "threshold": 100.0,
    }


def test_orders_on_both_generations_debit_one_wallet_until_it_is_low(
    small: RunningSandbox, http: requests.Session
) -> None:
    first = placed(small, http, body(LINE_2))
    assert first["wallet"] == {"balances": {"EUR": 1000.0, "GBP": 117.01}, "lowBalance": False}
    v1 = requests.post(
        f"{small.v1_url}/orders/place-order", json=body(line(6, 2)), headers=v1_headers(), timeout=5
    )
    assert v1.status_code == 201
    wallet = get(small, http, "/wallet").json()
    assert wallet == {
        "balances": {"EUR": 1000.0, "GBP": 100.23},
        "lowBalance": False,
        "threshold": 100.0,
    }
    low = placed(small, http, body(LINE_6))
    assert low["wallet"] == {"balances": {"EUR": 1000.0, "GBP": 91.84}, "lowBalance": True}
    order = get(small, http, f"/orders/{low['orderId']}").json()
    assert order["wallet"] == low["wallet"]
    assert small.balances() == {"EUR": 1000_00, "GBP": 91_84}


def test_an_order_that_would_overdraw_is_422_and_records_nothing(
    small: RunningSandbox, http: requests.Session
) -> None:
    small.set_balance("GBP", 3298)
    order = body(LINE_2)
    refused = post(small, http, order)
    assert refused.status_code == 422
    assert refused.json() == error(422, "Unprocessable Entity", ORDER_LIMIT)
    assert small.store.orders_by_code(order["externalOrderCode"]) == []
    v1 = requests.post(
        f"{small.v1_url}/orders/place-order", json=order, headers=v1_headers(), timeout=5
    )
    assert (v1.status_code, v1.json()["message"]) == (422, ORDER_LIMIT)
    small.set_balance("GBP", 3299)  # exactly enough
    assert placed(small, http, order)["wallet"]["balances"]["GBP"] == 0.0
    assert small.balances()["GBP"] == 0


def test_the_default_wallet_is_large_enough_for_test_suites(
    live: RunningSandbox, http: requests.Session
) -> None:
    wallet = get(live, http, "/wallet").json()
    assert wallet["threshold"] == 100.0 and wallet["lowBalance"] is False
    assert min(wallet["balances"].values()) > 900_000


@pytest.mark.parametrize(
    ("opening", "threshold", "message"),
    [
        ({"gbp": 1}, 0, "ISO 4217"),
        ({"GBP": -1}, 0, "whole minor units >= 0"),
        ({"GBP": 1.5}, 0, "whole minor units >= 0"),
        ({"GBP": 1}, -1, "threshold must be"),
    ],
)
def test_invalid_wallet_settings_are_refused(
    opening: dict[str, Any], threshold: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Wallet(opening, threshold)


# -- rate limit and faults on /v2 -------------------------------------------------------------


def test_without_a_limit_v2_answers_carry_no_rate_limit_headers(
    live: RunningSandbox, http: requests.Session
) -> None:
    response = get(live, http, "/ping")
    assert not any(name.lower().startswith("x-ratelimit") for name in response.headers)


def test_the_rate_limit_counts_per_api_key_with_headers_on_every_v2_answer(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(rate_limit_per_minute=3)
    reset = str(math.floor(START) + 60)
    answers = [
        get(live, http, "/ping"),
        post(live, http, body(LINE_6)),
        get(live, http, "/wallet"),
        get(live, http, "/catalog/products"),
    ]
    assert [a.status_code for a in answers] == [200, 202, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {(a.headers["X-RateLimit-Limit"], a.headers["X-RateLimit-Reset"]) for a in answers} == {
        ("3", reset)
    }
    limited = answers[-1]
    assert limited.headers["Retry-After"] == "60"
    assert limited.json() == error(
        429, "Too Many Requests", "Rate limit exceeded. Retry after 60s."
    )
    other_key = requests.get(
        f"{live.v2_url}/ping", headers={"x-api-key": "kal_test_other"}, timeout=5
    )
    assert (other_key.status_code, other_key.headers["X-RateLimit-Remaining"]) == (401, "2")
    v1 = requests.get(f"{live.v1_url}/catalog", headers=v1_headers(), timeout=5)
    assert (v1.status_code, v1.headers["X-RateLimit-Remaining"]) == (200, "2")


def test_faults_hit_the_v2_order_routes_with_v2_messages(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(error_rate_502=1.0)
    order = body(LINE_6)
    refused = post(live, http, order)
    assert refused.json() == error(
        502, "Bad Gateway", "Order processing is temporarily unavailable. Please try again later."
    )
    assert get(live, http, "/orders/1").status_code == 502
    assert get(live, http, "/catalog/products").status_code == 200
    assert live.store.orders_by_code(order["externalOrderCode"]) == []
    live.faults.update(error_rate_502=0.0, error_rate_500=1.0)
    assert get(live, http, "/orders/1").json() == {
        "statusCode": 500,
        "message": "Internal server error",
    }
    assert live.place_attempts()[order["externalOrderCode"]] == 1


def test_a_dropped_v2_answer_is_recovered_by_reposting_the_code(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(drop_after_commit_rate=1.0)
    order = body(LINE_6)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        post(live, http, order)
    [committed] = live.store.orders_by_code(order["externalOrderCode"])
    live.faults.clear()
    again = placed(live, http, order)  # the idempotent retry a v2 client makes
    assert again["orderId"] == committed.order_id
    assert live.place_attempts()[order["externalOrderCode"]] == 2
    assert live.fault_counts()["drop_after_commit"] == 1


# -- running it -------------------------------------------------------------------------------


def test_running_sandbox_has_both_base_urls(live: RunningSandbox) -> None:
    assert live.v1_url == f"{live.base_url}/v1"
    assert live.v2_url == f"{live.base_url}/v2"


def test_the_banner_names_both_generations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kalixo_cli.sandbox.faults import Faults

    _announce("http://127.0.0.1:8000", tmp_path / "db", Faults())
    banner = capsys.readouterr().err
    assert "serving the Kalixo API v1 at http://127.0.0.1:8000/v1\n" in banner
    assert "and the Kalixo API v2 at http://127.0.0.1:8000/v2\n" in banner
    assert "KTEST-PARTIAL (9007)" in banner
    assert SANDBOX_API_KEY not in banner


def test_a_schema_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT,
                external_order_code TEXT NOT NULL UNIQUE, price INTEGER NOT NULL,
                currency TEXT NOT NULL, placed_at REAL NOT NULL);
            CREATE TABLE order_lines (id INTEGER PRIMARY KEY AUTOINCREMENT,
                order_id INTEGER NOT NULL REFERENCES orders(id), position INTEGER NOT NULL,
                product_id INTEGER NOT NULL, sku TEXT NOT NULL, price INTEGER NOT NULL,
                buying_price INTEGER NOT NULL, currency TEXT NOT NULL,
                quantity INTEGER NOT NULL CHECK (quantity >= 1), outcome TEXT NOT NULL,
                UNIQUE (order_id, position));
            CREATE TABLE pins (id INTEGER PRIMARY KEY AUTOINCREMENT,
                line_id INTEGER NOT NULL REFERENCES order_lines(id), unit INTEGER NOT NULL,
                pin TEXT NOT NULL UNIQUE, UNIQUE (line_id, unit));
            INSERT INTO orders VALUES (59401, 'OLD-1', 839, 'GBP', 1800000000.0);
            INSERT INTO order_lines VALUES (1, 59401, 0, 6, 'GB-EN-4251604133182', 839, 797,
                'GBP', 1, 'ok');
            INSERT INTO pins VALUES (1, 1, 0, 'SANDBOX-AAAAA-BBBBB-CCCCC-DDDDD');
            PRAGMA user_version = 1;
            """
        )
    conn.close()
    with Store(db) as store:
        old = store.order_by_code("OLD-1")
        assert old is not None
        assert (old.api_version, old.ready_at, old.lines[0].pins) == (
            1,
            None,
            ("SANDBOX-AAAAA-BBBBB-CCCCC-DDDDD",),
        )
        assert store.balances("k", {"GBP": 100}) == {"GBP": 100}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    conn.close()
