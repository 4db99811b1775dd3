"""Server spellings -> the one output shape (pure: no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from kalixo_cli.domain.models import OrderLine, OrderRequest
from kalixo_cli.domain.normalize import normalize_order, normalize_placed_order

REQUEST = OrderRequest(
    externalOrderCode="O-12345",
    price=4138,
    currency="GBP",
    orderProducts=[
        OrderLine(productId=2, price=3299, sku="GB-EN-4251604177278", currency="GBP", quantity=1),
        OrderLine(productId=6, price=839, sku="GB-EN-4251604133182", currency="GBP", quantity=1),
    ],
)


@pytest.mark.parametrize(
    "pins",
    [
        [{"PIN": "P-1"}],
        [{"pin": "P-1"}],
        [{"code": "P-1"}],
        ["P-1"],
    ],
    ids=["v1 PIN", "early v2 pin", "v2 codes entry", "plain string"],
)
@pytest.mark.parametrize("key", ["pin", "codes", "pins"])
def test_every_pin_spelling_becomes_pins(key: str, pins: list[Any]) -> None:
    order = normalize_order(
        {"orderId": 1, "products": [{"productId": 2, "quantity": 1, key: pins}]}
    )
    assert order.products[0].pins == ["P-1"]


@pytest.mark.parametrize("order_id", ["59400", 59400, " 59400 "])
def test_order_id_string_or_number(order_id: Any) -> None:
    assert normalize_order({"orderId": order_id, "products": []}).orderId == 59400


def test_retrieve_keeps_nulls_for_what_the_server_did_not_send() -> None:
    order = normalize_order({"orderId": 7, "products": [{"productId": 2}]})
    assert order.to_json() == {
        "orderId": 7,
        "externalOrderCode": None,
        "status": None,
        "currency": None,
        "price": None,
        "estimatedReadyAt": None,
        "delivered": None,
        "total": None,
        "reason": None,
        "products": [{"productId": 2, "sku": None, "price": None, "quantity": None, "pins": []}],
    }


def test_status_comes_from_status_or_orderStatus() -> None:
    assert normalize_order({"orderId": 1, "orderStatus": "Completed"}).status == "completed"
    assert normalize_order({"orderId": 1, "status": "failed"}).status == "failed"


def test_place_order_status_is_derived_from_delivered_pins() -> None:
    full: dict[str, Any] = {
        "orderId": "9",
        "products": [
            {"productId": 2, "price": 3299, "quantity": 1, "pin": [{"PIN": "A"}]},
            {"productId": 6, "price": 839, "quantity": 1, "pin": [{"PIN": "B"}]},
        ],
    }
    order = normalize_placed_order(full, REQUEST)
    assert order.status == "completed"
    assert order.externalOrderCode == "O-12345"
    assert order.price == 4138 and order.currency == "GBP"
    assert [p.sku for p in order.products] == ["GB-EN-4251604177278", "GB-EN-4251604133182"]
    full["products"][1]["pin"] = []
    assert normalize_placed_order(full, REQUEST).status == "processing"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        None,
        {"foo": 1},
        {"orderId": 1, "products": "x"},
        {"orderId": 1, "products": [3]},
    ],
)
def test_bodies_that_are_not_orders_raise_value_error(body: Any) -> None:
    with pytest.raises(ValueError):
        normalize_order(body)
