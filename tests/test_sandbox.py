"""The sandbox over real HTTP: auth, place and retrieve, Kalixo's validation messages, every
v1 status, persistence, the envelope every response gets, and running it."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import typer
from typer.testing import CliRunner

from kalixo_cli.commands import sandbox as sandbox_command
from kalixo_cli.domain.errors import UsageError
from kalixo_cli.sandbox import (
    KTEST_CANCEL_ID,
    KTEST_ERROR_ID,
    KTEST_FAIL_ID,
    KTEST_OK_ID,
    KTEST_OPEN_ID,
    KTEST_SLOW_ID,
    SANDBOX_EMAIL,
    SANDBOX_PASSWORD,
    SANDBOX_TOKEN,
)
from kalixo_cli.sandbox.server import RunningSandbox, require_sandbox_stack, running_sandbox
from kalixo_cli.sandbox.store import DuplicateOrder, NewLine, NewOrder, Store
from tests.helpers import FakeClock

START = 1_800_000_000.0
PIN = re.compile(r"SANDBOX(-[A-Z0-9]{5}){4}")
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CORRELATION = "fhp-codehype-correlation-key"
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


@pytest.fixture(scope="module")
def fake_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def _live(
    tmp_path_factory: pytest.TempPathFactory, fake_clock: FakeClock
) -> Iterator[RunningSandbox]:
    db = tmp_path_factory.mktemp("sandbox-http") / "sandbox.sqlite3"
    with running_sandbox(db, clock=fake_clock, slow_seconds=10.0) as running:
        yield running


@pytest.fixture
def live(_live: RunningSandbox, fake_clock: FakeClock) -> RunningSandbox:
    """One server for the module (fast); time and request counts reset for each test."""
    fake_clock.now = START
    _live.reset_counts()
    return _live


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def auth_header(token: str = SANDBOX_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def code() -> str:
    return f"T-{uuid.uuid4().hex[:12]}"


def order_body(*lines: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "externalOrderCode": code(),
        "currency": "GBP",
        "orderProducts": list(lines),
    }
    body.update(fields)
    return body


def line(product_id: int, *, price: int = 1000, quantity: int = 1) -> dict[str, Any]:
    return {"productId": product_id, "price": price, "currency": "GBP", "quantity": quantity}


def place(live: RunningSandbox, http: requests.Session, body: Any) -> requests.Response:
    return http.post(
        f"{live.v1_url}/orders/place-order", json=body, headers=auth_header(), timeout=5
    )


def retrieve(live: RunningSandbox, http: requests.Session, order_id: object) -> requests.Response:
    return http.get(
        f"{live.v1_url}/orders/retrieve-order",
        params={"id": str(order_id)},
        headers=auth_header(),
        timeout=5,
    )


def pins(product: dict[str, Any]) -> list[str]:
    return [entry["PIN"] for entry in product["pin"]]


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    padded = payload + "=" * (-len(payload) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


def error(status: int, label: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "error": label, "message": message}


# -- auth -----------------------------------------------------------------------------------


def login(live: RunningSandbox, http: requests.Session) -> dict[str, str]:
    response = http.post(
        f"{live.v1_url}/auth/login",
        json={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD},
        timeout=5,
    )
    assert response.status_code == 201, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def test_login_with_the_test_credentials_returns_an_access_and_a_refresh_jwt(
    live: RunningSandbox, http: requests.Session
) -> None:
    tokens = login(live, http)
    assert set(tokens) == {"accessToken", "refreshToken"}
    access, refresh = claims(tokens["accessToken"]), claims(tokens["refreshToken"])
    assert (access["typ"], access["sub"], access["iat"]) == ("access", SANDBOX_EMAIL, START)
    assert access["exp"] - access["iat"] == 4 * 3600
    assert (refresh["typ"], refresh["exp"] - refresh["iat"]) == ("refresh", 8 * 3600)


def test_login_with_a_wrong_password_is_401(live: RunningSandbox, http: requests.Session) -> None:
    response = http.post(
        f"{live.v1_url}/auth/login", json={"email": SANDBOX_EMAIL, "password": "nope"}, timeout=5
    )
    assert response.status_code == 401
    assert response.json() == error(401, "Unauthorized", "Invalid email or password")


def test_an_access_token_from_login_is_accepted_until_it_expires(
    live: RunningSandbox, http: requests.Session, fake_clock: FakeClock
) -> None:
    access = login(live, http)["accessToken"]
    url = f"{live.v1_url}/catalog"
    assert http.get(url, headers=auth_header(access), timeout=5).status_code == 200
    fake_clock.advance(4 * 3600)
    expired = http.get(url, headers=auth_header(access), timeout=5)
    assert expired.status_code == 401
    assert expired.json() == error(401, "Unauthorized", "Invalid or expired token")


def test_refresh_returns_a_new_pair_until_the_refresh_token_expires(
    live: RunningSandbox, http: requests.Session, fake_clock: FakeClock
) -> None:
    refresh_token = login(live, http)["refreshToken"]
    fake_clock.advance(5 * 3600)  # the access token is dead, the refresh token is not
    refreshed = http.post(
        f"{live.v1_url}/auth/refresh", headers=auth_header(refresh_token), timeout=5
    )
    assert refreshed.status_code == 201
    new_access = refreshed.json()["accessToken"]
    assert (
        http.get(f"{live.v1_url}/catalog", headers=auth_header(new_access), timeout=5).status_code
        == 200
    )
    fake_clock.advance(3 * 3600)
    late = http.post(f"{live.v1_url}/auth/refresh", headers=auth_header(refresh_token), timeout=5)
    assert late.status_code == 401


@pytest.mark.parametrize("kind", ["access", "static", "garbage", "forged"])
def test_refresh_accepts_only_a_refresh_token(
    live: RunningSandbox, http: requests.Session, kind: str
) -> None:
    tokens = login(live, http)
    header, payload, _ = tokens["refreshToken"].split(".")
    token = {
        "access": tokens["accessToken"],
        "static": SANDBOX_TOKEN,
        "garbage": "not-a-jwt",
        "forged": f"{header}.{payload}.{'A' * 43}",
    }[kind]
    response = http.post(f"{live.v1_url}/auth/refresh", headers=auth_header(token), timeout=5)
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid or expired token"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing bearer token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Missing bearer token"),
        ({"Authorization": "Bearer wrong-token"}, "Invalid or expired token"),
        ({"Authorization": f"Bearer {SANDBOX_TOKEN}x"}, "Invalid or expired token"),
    ],
)
def test_orders_need_a_valid_bearer_token(
    live: RunningSandbox, http: requests.Session, headers: dict[str, str], message: str
) -> None:
    before = live.store.count_orders()
    response = http.post(
        f"{live.v1_url}/orders/place-order", json=order_body(LINE_2), headers=headers, timeout=5
    )
    assert response.status_code == 401
    assert response.json() == error(401, "Unauthorized", message)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert live.store.count_orders() == before


# -- place and retrieve ---------------------------------------------------------------------


def test_place_order_answers_a_string_id_and_one_unique_pin_per_unit(
    live: RunningSandbox, http: requests.Session
) -> None:
    body = order_body({**LINE_2, "quantity": 3}, LINE_6, price=3 * 3299 + 839)
    response = place(live, http, body)
    assert response.status_code == 201, response.text
    placed = response.json()
    assert isinstance(placed["orderId"], str) and placed["orderId"].isdigit()
    first, second = placed["products"]
    assert first == {
        "productId": 2,
        "price": 3299,
        "buyingPrice": 3134,
        "quantity": 3,
        "pin": first["pin"],
    }
    assert (second["productId"], second["quantity"], len(second["pin"])) == (6, 1, 1)
    all_pins = pins(first) + pins(second)
    assert len(all_pins) == 4 == len(set(all_pins))
    assert all(PIN.fullmatch(pin) for pin in all_pins)


def test_retrieve_order_answers_an_integer_id_the_status_and_the_same_pins(
    live: RunningSandbox, http: requests.Session
) -> None:
    body = order_body(LINE_2, LINE_6, price=4138)
    placed = place(live, http, body).json()
    response = retrieve(live, http, placed["orderId"])
    assert response.status_code == 200
    order = response.json()
    assert order["orderId"] == int(placed["orderId"])
    assert order["orderStatus"] == "completed"
    assert order["externalOrderCode"] == body["externalOrderCode"]
    assert (order["price"], order["currency"]) == (4138, "GBP")
    assert [p["sku"] for p in order["products"]] == [LINE_2["sku"], LINE_6["sku"]]
    assert [pins(p) for p in order["products"]] == [pins(p) for p in placed["products"]]


def test_the_order_price_is_computed_when_absent(
    live: RunningSandbox, http: requests.Session
) -> None:
    body = order_body({"productId": 2, "quantity": 2})  # line price, sku, currency optional too
    placed = place(live, http, body)
    assert placed.status_code == 201, placed.text
    assert retrieve(live, http, placed.json()["orderId"]).json()["price"] == 6598


def test_order_ids_increase(live: RunningSandbox, http: requests.Session) -> None:
    ids = [int(place(live, http, order_body(LINE_6)).json()["orderId"]) for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] >= 59401


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("id=1", 404, "Order 1 not found"),
        ("id=abc", 400, "Validation failed (numeric string is expected)"),
        ("", 400, "Validation failed (numeric string is expected)"),
    ],
)
def test_retrieve_order_errors(
    live: RunningSandbox, http: requests.Session, query: str, status: int, message: str
) -> None:
    response = http.get(
        f"{live.v1_url}/orders/retrieve-order?{query}", headers=auth_header(), timeout=5
    )
    assert response.status_code == status
    assert response.json()["message"] == message


# -- Kalixo's validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "fields", "status", "message"),
    [
        ([{**LINE_2, "price": 3000}], {}, 400, "Product 2 price mismatch: expected 3299"),
        ([{**LINE_2, "productId": 12345}], {}, 404, "Product 12345 not found"),
        (
            [{**LINE_2, "sku": "GB-EN-0000000000000"}],
            {},
            400,
            "Product 2 sku mismatch: expected GB-EN-4251604177278",
        ),
        (
            [line(KTEST_OPEN_ID, price=400)],
            {},
            400,
            "Product 9004 price 400 is outside the allowed range 500-10000",
        ),
        (
            [line(KTEST_OPEN_ID, price=10100)],
            {},
            400,
            "Product 9004 price 10100 is outside the allowed range 500-10000",
        ),
        (
            [line(KTEST_OPEN_ID, price=550)],
            {},
            400,
            "Product 9004 price 550 is not a multiple of the step 100",
        ),
        (
            [{"productId": KTEST_OPEN_ID, "quantity": 1}],
            {},
            400,
            "Product 9004 is open-denomination and requires a price",
        ),
        (
            [{**LINE_2, "currency": "EUR"}],
            {},
            400,
            "Currency mismatch: orderProducts.0.currency is EUR but the order currency is GBP",
        ),
        (
            [{**LINE_2, "currency": "EUR"}],
            {"currency": "EUR"},
            400,
            "Currency mismatch: Product 2 is priced in GBP, not EUR",
        ),
        ([LINE_2, LINE_6], {"price": 4398}, 400, "Order price mismatch: expected total 4138"),
        ([{**LINE_2, "quantity": 0}], {}, 400, "orderProducts.0.quantity must not be less than 1"),
        ([{**LINE_2, "price": "3299"}], {}, 400, "orderProducts.0.price must be an integer number"),
        ([{**LINE_2, "price": 32.99}], {}, 400, "orderProducts.0.price must be an integer number"),
        (
            [{**LINE_2, "quantity": True}],
            {},
            400,
            "orderProducts.0.quantity must be an integer number",
        ),
        ([], {}, 400, "orderProducts must contain at least 1 elements"),
        ([LINE_2], {"currency": "pounds"}, 400, "currency must be a valid ISO4217 currency code"),
        ([LINE_2], {"externalOrderCode": "  "}, 400, "externalOrderCode should not be empty"),
        (
            [{**LINE_6, "quantity": 1001}],
            {},
            422,
            "Your account order limit has been exceeded. Contact support for assistance.",
        ),
    ],
)
def test_invalid_orders_get_kalixos_message_and_place_nothing(
    live: RunningSandbox,
    http: requests.Session,
    lines: list[dict[str, Any]],
    fields: dict[str, Any],
    status: int,
    message: str,
) -> None:
    body = order_body(*lines, **fields)
    before = live.store.count_orders()
    response = place(live, http, body)
    assert response.status_code == status
    assert response.json() == {"statusCode": status, "error": response.reason, "message": message}
    assert live.store.count_orders() == before


def test_open_denomination_in_range_and_on_step_is_accepted(
    live: RunningSandbox, http: requests.Session
) -> None:
    response = place(
        live, http, order_body(line(KTEST_OPEN_ID, price=2300, quantity=2), price=4600)
    )
    assert response.status_code == 201, response.text
    product = response.json()["products"][0]
    assert (product["price"], product["buyingPrice"], len(product["pin"])) == (2300, 2185, 2)


def test_a_reused_external_order_code_is_409_and_no_second_order(
    live: RunningSandbox, http: requests.Session
) -> None:
    body = order_body(LINE_2)
    assert place(live, http, body).status_code == 201
    again = place(live, http, {**body, "orderProducts": [LINE_6]})
    assert again.status_code == 409
    assert again.json() == error(
        409, "Conflict", "An order with this external order code already exists."
    )
    assert len(live.store.orders_by_code(body["externalOrderCode"])) == 1


def test_concurrent_posts_of_one_code_create_exactly_one_order(live: RunningSandbox) -> None:
    body = order_body(LINE_6)
    statuses: list[int] = []

    def post() -> None:
        with requests.Session() as session:
            statuses.append(place(live, session, body).status_code)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 7
    assert len(live.store.orders_by_code(body["externalOrderCode"])) == 1


# -- statuses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product_id", "status"),
    [
        (KTEST_OK_ID, "completed"),
        (KTEST_FAIL_ID, "failed"),
        (KTEST_CANCEL_ID, "cancelled"),
        (KTEST_ERROR_ID, "error"),
    ],
)
def test_each_test_product_ends_in_its_status(
    live: RunningSandbox, http: requests.Session, product_id: int, status: str
) -> None:
    placed = place(live, http, order_body(line(product_id, quantity=2))).json()
    order = retrieve(live, http, placed["orderId"]).json()
    assert order["orderStatus"] == status
    expected_pins = 2 if status == "completed" else 0
    assert len(placed["products"][0]["pin"]) == len(order["products"][0]["pin"]) == expected_pins


def test_a_slow_order_is_requested_then_processing_then_completed(
    live: RunningSandbox, http: requests.Session, fake_clock: FakeClock
) -> None:
    placed = place(live, http, order_body(line(KTEST_SLOW_ID, quantity=2))).json()
    assert placed["products"][0]["pin"] == []
    seen = []
    for elapsed in (0.0, 1.9, 2.0, 9.9, 10.0, 60.0):
        fake_clock.now = START + elapsed
        order = retrieve(live, http, placed["orderId"]).json()
        seen.append((order["orderStatus"], len(order["products"][0]["pin"])))
    assert seen == [
        ("requested", 0),
        ("requested", 0),
        ("processing", 0),
        ("processing", 0),
        ("completed", 2),
        ("completed", 2),
    ]


@pytest.mark.parametrize(
    ("product_ids", "status"),
    [
        ((KTEST_OK_ID, KTEST_FAIL_ID), "failed"),
        ((KTEST_FAIL_ID, KTEST_CANCEL_ID), "cancelled"),
        ((KTEST_CANCEL_ID, KTEST_ERROR_ID), "error"),
        ((KTEST_OK_ID, KTEST_SLOW_ID), "requested"),
        ((KTEST_SLOW_ID, KTEST_FAIL_ID), "failed"),
    ],
)
def test_an_order_has_its_worst_lines_status(
    live: RunningSandbox, http: requests.Session, product_ids: tuple[int, ...], status: str
) -> None:
    placed = place(live, http, order_body(*(line(pid) for pid in product_ids))).json()
    assert retrieve(live, http, placed["orderId"]).json()["orderStatus"] == status


def test_delivered_lines_keep_their_pins_when_another_line_fails(
    live: RunningSandbox, http: requests.Session
) -> None:
    placed = place(live, http, order_body(line(KTEST_OK_ID), line(KTEST_FAIL_ID))).json()
    ok, failed = retrieve(live, http, placed["orderId"]).json()["products"]
    assert (len(ok["pin"]), failed["pin"]) == (1, [])


# -- catalog --------------------------------------------------------------------------------


def test_the_catalog_lists_the_seed_and_test_products(
    live: RunningSandbox, http: requests.Session
) -> None:
    products = http.get(f"{live.v1_url}/catalog", headers=auth_header(), timeout=5).json()
    by_id = {product["id"]: product for product in products}
    assert set(by_id) == {1, 2, 6, 9001, 9002, 9003, 9004, 9005, 9006, 9007}
    assert (by_id[2]["price"], by_id[2]["sku"], by_id[2]["currencyCode"]) == (
        3299,
        "GB-EN-4251604177278",
        "GBP",
    )
    assert (by_id[6]["price"], by_id[6]["sku"]) == (839, "GB-EN-4251604133182")
    assert by_id[1]["price"] == 1099
    open_product = by_id[KTEST_OPEN_ID]
    assert (
        open_product["denominationType"],
        open_product["denominationMinValue"],
        open_product["denominationMaxValue"],
        open_product["denominationStep"],
    ) == ("open", 500, 10000, 100)


def test_catalog_products_pages_with_skip_and_take(
    live: RunningSandbox, http: requests.Session
) -> None:
    url = f"{live.v1_url}/catalog/products"
    page = http.get(url, params={"skip": 2, "take": 3}, headers=auth_header(), timeout=5).json()
    assert (page["count"], page["skip"], page["take"]) == (10, 2, 3)
    assert [p["id"] for p in page["products"]] == [6, 9001, 9002]
    too_many = http.get(url, params={"take": 101}, headers=auth_header(), timeout=5)
    assert too_many.status_code == 400
    assert too_many.json()["message"] == "take must not be greater than 100"


@pytest.mark.parametrize(
    ("query", "status", "product_id"),
    [
        ("ean=4251604177278", 200, 2),
        ("sku=GB-EN-4251604133182", 200, 6),
        ("ean=KTEST-SLOW", 200, KTEST_SLOW_ID),
        ("ean=0000000000000", 404, None),
    ],
)
def test_catalog_product_looks_up_by_ean_or_sku(
    live: RunningSandbox, http: requests.Session, query: str, status: int, product_id: int | None
) -> None:
    response = http.get(f"{live.v1_url}/catalog/product?{query}", headers=auth_header(), timeout=5)
    assert response.status_code == status
    if product_id is not None:
        assert response.json()["id"] == product_id
    else:
        assert response.json() == error(404, "Not Found", "Product 0000000000000 not found")


# -- envelope: correlation key, error shape, request counting ------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/catalog", 200),
        ("GET", "/orders/retrieve-order?id=1", 404),
        ("GET", "/no/such/route", 404),
        ("POST", "/catalog", 405),
    ],
)
def test_every_response_carries_a_fresh_correlation_key(
    live: RunningSandbox, http: requests.Session, method: str, path: str, status: int
) -> None:
    keys = set()
    for _ in range(2):
        response = http.request(method, f"{live.v1_url}{path}", headers=auth_header(), timeout=5)
        assert response.status_code == status
        assert UUID4.fullmatch(response.headers[CORRELATION])
        keys.add(response.headers[CORRELATION])
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("method", "path", "data", "status", "message"),
    [
        (
            "POST",
            "/orders/place-order",
            "{not json",
            400,
            "Malformed JSON body: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        ("POST", "/orders/place-order", "[1, 2]", 400, "Request body must be a JSON object"),
        ("POST", "/orders/place-order", "", 400, "Request body must be a JSON object"),
        (
            "POST",
            "/orders/place-order",
            '{"price": NaN}',
            400,
            "Malformed JSON body: NaN is not valid JSON",
        ),
        ("GET", "/no/such/route", None, 404, "Cannot GET /v1/no/such/route"),
        ("DELETE", "/orders/place-order", None, 405, "Cannot DELETE /v1/orders/place-order"),
    ],
)
def test_errors_have_kalixos_shape(
    live: RunningSandbox,
    http: requests.Session,
    method: str,
    path: str,
    data: str | None,
    status: int,
    message: str,
) -> None:
    response = http.request(
        method,
        f"{live.v1_url}{path}",
        data=data,
        timeout=5,
        headers={**auth_header(), "Content-Type": "application/json"},
    )
    assert response.status_code == status
    assert response.json() == {"statusCode": status, "error": response.reason, "message": message}


def test_requests_are_counted_by_method_and_path(
    live: RunningSandbox, http: requests.Session
) -> None:
    place(live, http, order_body(LINE_6))
    place(live, http, order_body(LINE_6))
    retrieve(live, http, 1)
    http.get(f"{live.v1_url}/nowhere", timeout=5)
    assert live.request_count() == 4
    assert live.request_count("POST") == 2
    assert live.request_count("post", "/v1/orders/place-order") == 2
    assert live.request_count(path="/v1/orders/retrieve-order") == 1
    assert live.request_count("GET", "/v1/orders/place-order") == 0
    live.reset_counts()
    assert live.request_count() == 0


# -- persistence ----------------------------------------------------------------------------


def test_state_survives_a_restart_and_ids_keep_increasing(tmp_path: Path) -> None:
    db = tmp_path / "state" / "sandbox.sqlite3"
    with running_sandbox(db) as first, requests.Session() as http:
        placed = place(first, http, order_body(LINE_2)).json()
    with running_sandbox(db) as second, requests.Session() as http:
        order = retrieve(second, http, placed["orderId"]).json()
        assert pins(order["products"][0]) == pins(placed["products"][0])
        later = place(second, http, order_body(LINE_2)).json()
    assert int(later["orderId"]) == int(placed["orderId"]) + 1


def test_the_database_is_private_to_the_user(tmp_path: Path) -> None:
    db = tmp_path / "new-dir" / "sandbox.sqlite3"
    Store(db).close()
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_two_stores_sharing_a_file_never_duplicate_a_code(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    line_ = NewLine(6, "GB-EN-4251604133182", 839, 797, "GBP", 1, "ok", delivers=True)
    with Store(db) as one, Store(db) as two:
        first = one.place_order(NewOrder("SHARED-1", 839, "GBP", START, (line_,)))
        second = two.place_order(NewOrder("SHARED-2", 839, "GBP", START, (line_,)))
        assert second.order_id == first.order_id + 1
        with pytest.raises(DuplicateOrder):
            two.place_order(NewOrder("SHARED-1", 839, "GBP", START, (line_,)))
        assert one.count_orders() == 2
        assert one.get_order(second.order_id) == second


# -- running it -----------------------------------------------------------------------------


def test_a_busy_port_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(UsageError, match="already in use") as caught,
            running_sandbox(tmp_path / "db.sqlite3", port=port),
        ):
            pass
    assert caught.value.hint and "--port" in caught.value.hint


def test_a_missing_sandbox_extra_is_a_usage_error_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(UsageError) as caught:
        require_sandbox_stack()
    assert caught.value.hint == "pip install 'kalixo[sandbox]'"


def test_importing_the_sandbox_package_and_command_does_not_import_fastapi() -> None:
    code_ = (
        "import sys, kalixo_cli.sandbox, kalixo_cli.sandbox.server, kalixo_cli.commands.sandbox\n"
        "heavy = {'fastapi', 'uvicorn', 'starlette'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code_], check=True, timeout=30)


def test_serve_help_has_a_summary_and_an_example() -> None:
    root = typer.Typer()
    root.callback()(lambda: None)
    root.add_typer(sandbox_command.app, name="sandbox")
    result = CliRunner().invoke(root, ["sandbox", "serve", "--help"])
    assert result.exit_code == 0
    assert "Serve the Kalixo API v1 emulator" in result.output
    assert "Example: kalixo sandbox serve" in result.output
    assert "--db" in result.output and "--port" in result.output


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child is POSIX")
def test_serve_prints_where_it_listens_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "serve.sqlite3"
    script = (
        "import sys; from pathlib import Path; from kalixo_cli.sandbox.server import serve;"
        "serve('127.0.0.1', 0, Path(sys.argv[1]))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        banner = child.stderr.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+)/v1$", banner.strip())
        assert match, banner
        lines = [child.stderr.readline() for _ in range(5)]
        assert str(db) in "".join(lines)
        assert f"KALIXO_API_URL={match.group(1)}/v1" in "".join(lines)
        assert SANDBOX_TOKEN not in "".join(lines) and SANDBOX_PASSWORD not in "".join(lines)
        response = requests.get(f"{match.group(1)}/v1/catalog", headers=auth_header(), timeout=5)
        assert response.status_code == 200
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, stderr
    assert stdout == ""
    assert "Traceback" not in stderr and "kalixo sandbox: stopped" in stderr
