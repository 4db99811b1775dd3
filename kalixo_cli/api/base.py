"""What every API generation's client offers, and the shapes its answers come in.

`OrderClient` is the one interface the workflows and commands use; `api.v1.V1Client` and
`api.v2.V2Client` implement it (v2 adds the wallet). What differs is a capability, never
an isinstance: `can_look_up` says whether an order can be found by its code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from kalixo_cli.api.http import Answer, Transport
from kalixo_cli.domain.errors import TransportError
from kalixo_cli.domain.order import Order

if TYPE_CHECKING:
    from kalixo_cli.api.probe import Probe
    from kalixo_cli.domain.catalog import CatalogFilters, Product
    from kalixo_cli.domain.models import OrderRequest


@dataclass(frozen=True)
class OrderResult:
    order: Order
    answer: Answer
    # what the caller should tell the user (the order stands whatever they say)
    notes: tuple[str, ...] = ()


class CatalogClient(Protocol):
    """What a client offers for the catalog (all `workflows.catalog_source` needs)."""

    def catalog_page(
        self, skip: int, take: int, filters: CatalogFilters | None = None
    ) -> tuple[int, list[Product]]: ...

    def catalog_product(self, product_id: int) -> Product: ...

    def catalog_product_by_code(
        self, *, ean: str | None = None, sku: str | None = None
    ) -> Product: ...


class OrderClient(CatalogClient, Protocol):
    """An API client: orders, the catalog, and a probe for `ping` and `doctor`."""

    transport: Transport
    can_look_up: bool  # can an order be found by its externalOrderCode (v2), or only by id

    def place_order(
        self, request: OrderRequest, *, on_send: Callable[[], None] | None = None
    ) -> OrderResult: ...

    def confirm_status(self, placed: OrderResult) -> OrderResult:
        """The placed order with the server's status (v1 asks once; v2's answer has it)."""
        ...

    def retrieve_order(self, reference: int | str) -> OrderResult: ...

    def look_up(self, code: str) -> OrderResult | None:
        """The order placed under `code`, None when there is none; only if `can_look_up`."""
        ...

    def probe(self) -> Probe: ...


def one_product(data: Any, where: str) -> Product:
    from kalixo_cli.domain.catalog import normalize_product

    try:
        return normalize_product(data)
    except ValueError as exc:
        raise TransportError(f"the API's answer is not a product ({exc})", where=where) from exc
