"""Kalixo API v1: paths and answer shapes, on top of the HTTP seam."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kalixo_cli.api.http import Answer, Transport
from kalixo_cli.errors import OutcomeUnknown, TransportError, UsageError
from kalixo_cli.normalize import normalize_order, normalize_placed_order
from kalixo_cli.order import Order

if TYPE_CHECKING:
    from kalixo_cli.models import OrderRequest


@dataclass(frozen=True)
class OrderResult:
    order: Order
    answer: Answer


class V1Client:
    can_look_up = False  # v1 reads orders by id only: an unknown outcome needs a person

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def place_order(self, request: OrderRequest) -> OrderResult:
        code = request.externalOrderCode
        answer = self.transport.post_order("orders/place-order", request.body(), code=code)
        try:
            order = normalize_placed_order(answer.data, request)
        except ValueError as exc:
            raise OutcomeUnknown(
                f"the API accepted the order {code} but its answer is not an order ({exc})",
                where=self.transport.url("orders/place-order"),
                correlation_key=answer.correlation_key,
                hint="find the order's id with Kalixo support before placing it again",
            ) from exc
        return OrderResult(order, answer)

    def retrieve_order(self, order_id: int | str) -> OrderResult:
        if isinstance(order_id, str) and not order_id.isdigit():
            raise UsageError(f"API v1 finds orders by orderId only, not {order_id!r}")
        answer = self.transport.get("orders/retrieve-order", params={"id": order_id})
        try:
            order = normalize_order(answer.data)
        except ValueError as exc:
            raise TransportError(
                f"the API's answer is not an order ({exc})",
                where=self.transport.url("orders/retrieve-order"),
            ) from exc
        return OrderResult(order, answer)
