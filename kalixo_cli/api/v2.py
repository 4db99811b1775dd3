"""Kalixo API v2: asynchronous orders keyed by externalOrderCode, on top of the HTTP seam.

v2 differs from v1 where it matters for money: a POST is idempotent by code (the seam retries
it with the same body, under `V2_RULES`), a 409 means "it exists: look it up", and an order
can be read by its code, so an unknown outcome can always be settled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kalixo_cli.api.base import OrderResult, one_product
from kalixo_cli.api.http import Transport
from kalixo_cli.domain.errors import OrderExists, OutcomeUnknown, RequestRejected, TransportError
from kalixo_cli.domain.normalize import normalize_order, normalize_placed_order

if TYPE_CHECKING:
    from kalixo_cli.api.probe import Probe
    from kalixo_cli.domain.catalog import CatalogFilters, Product
    from kalixo_cli.domain.models import OrderRequest


@dataclass(frozen=True)
class Wallet:
    balances: dict[str, float]
    low_balance: bool
    threshold: float | None

    @classmethod
    def from_body(cls, body: Any) -> Wallet | None:
        if not isinstance(body, dict) or not isinstance(body.get("balances"), dict):
            return None
        balances = {
            str(k): float(v)
            for k, v in body["balances"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        threshold = body.get("threshold")
        return cls(
            balances,
            body.get("lowBalance") is True,
            float(threshold) if isinstance(threshold, (int, float)) else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "balances": self.balances,
            "lowBalance": self.low_balance,
            "threshold": self.threshold,
        }


class V2Client:
    can_look_up = True

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def place_order(
        self, request: OrderRequest, *, on_send: Callable[[], None] | None = None
    ) -> OrderResult:
        """POST, retried with the same code; a 409 (it exists) returns the existing order."""
        code = request.externalOrderCode
        try:
            answer = self.transport.post_order("orders", request.body(), code=code, on_send=on_send)
        except OrderExists:
            found = self.look_up(code)
            if found is None:
                raise OutcomeUnknown(
                    f"the API says order {code} exists (409) but cannot find it",
                    where=self.transport.url(f"orders/{quote(code, safe='')}"),
                    hint=f"try `kalixo retrieve-order {code}` in a moment",
                ) from None
            return found
        try:
            order = normalize_placed_order(answer.data, request)
        except ValueError as exc:
            raise OutcomeUnknown(
                f"the API accepted order {code} but its answer is not an order ({exc})",
                where=self.transport.url("orders"),
                correlation_key=answer.correlation_key,
                hint=f"look it up with `kalixo retrieve-order {code}`",
            ) from exc
        return OrderResult(order, answer)

    def confirm_status(self, placed: OrderResult) -> OrderResult:
        return placed  # v2's answer states the status

    def retrieve_order(self, reference: int | str) -> OrderResult:
        path = f"orders/{quote(str(reference), safe='')}"
        answer = self.transport.get(path)
        try:
            order = normalize_order(answer.data)
        except ValueError as exc:
            raise TransportError(
                f"the API's answer is not an order ({exc})", where=self.transport.url(path)
            ) from exc
        return OrderResult(order, answer)

    def look_up(self, code: str) -> OrderResult | None:
        """The order placed under `code`, or None when the API has none (404)."""
        try:
            return self.retrieve_order(code)
        except RequestRejected as exc:
            if exc.status == 404:
                return None
            raise

    def wallet(self) -> Wallet:
        answer = self.transport.get("wallet")
        wallet = Wallet.from_body(answer.data)
        if wallet is None:
            raise TransportError(
                "the API's wallet answer has no balances", where=self.transport.url("wallet")
            )
        return wallet

    def ping(self) -> dict[str, Any]:
        answer = self.transport.get("ping")
        if not isinstance(answer.data, dict):
            raise TransportError(
                "the API's ping answer is not an object", where=self.transport.url("ping")
            )
        return dict(answer.data)

    # -- catalog -----------------------------------------------------------------------

    def catalog_page(
        self, skip: int, take: int, filters: CatalogFilters | None = None
    ) -> tuple[int, list[Product]]:
        """`catalog/products` with the filters as query parameters -> (count, products)."""
        from kalixo_cli.domain.catalog import normalize_product_list

        path = "catalog/products"
        params: dict[str, Any] = {"skip": skip, "take": take}
        if filters is not None:
            params.update(filters.params())
        answer = self.transport.get(path, params=params)
        try:
            return normalize_product_list(answer.data, skip=skip, take=take)
        except ValueError as exc:
            raise TransportError(
                f"the API's answer is not a product list ({exc})", where=self.transport.url(path)
            ) from exc

    def catalog_product(self, product_id: int) -> Product:
        path = f"catalog/products/{int(product_id)}"
        answer = self.transport.get(path)
        return one_product(answer.data, self.transport.url(path))

    def catalog_product_by_code(self, *, ean: str | None = None, sku: str | None = None) -> Product:
        """v2 reads products by id only: search for the code (the search covers product
        codes), then keep the product whose EAN or SKU it is."""
        from kalixo_cli.domain.catalog import CatalogFilters, CatalogPages

        code = (ean if ean is not None else sku) or ""
        locale = _LOCALE_SKU.fullmatch(code) if sku is not None else None
        term = locale.group(1) if locale else code  # the product code inside GB-EN-...
        for product in CatalogPages(
            lambda skip, take: self.catalog_page(skip, take, CatalogFilters(search=term))
        ):
            have = product.productCode if ean is not None else product.sku
            if have is not None and have.casefold() == code.casefold():
                return product
        raise RequestRejected(
            f"no product with the {'EAN' if ean is not None else 'SKU'} {code} in the catalog",
            status=404,
            where=self.transport.url("catalog/products"),
            hint="`kalixo catalog list --search WORD` finds products by name or code",
        )

    # -- diagnosis ---------------------------------------------------------------------

    def probe(self) -> Probe:
        """`GET /ping`, timed, with the server's clock from its timestamp, for `doctor`."""
        from kalixo_cli.api.probe import probe

        result = probe(self.transport, "ping")
        stamp = result.data.get("timestamp") if isinstance(result.data, dict) else None
        server_time = iso_timestamp(stamp)
        return result if server_time is None else replace(result, server_time=server_time)


_LOCALE_SKU = re.compile(r"[A-Za-z]{2}-[A-Za-z]{2}-(.+)")


def iso_timestamp(value: Any) -> float | None:
    """`2026-06-05T12:00:00.000Z` -> unix seconds; None when it is not such a time."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def wallet_of(result: OrderResult) -> Wallet | None:
    """The wallet snapshot v2 embeds in order answers (v1 sometimes does too)."""
    data = result.answer.data
    return Wallet.from_body(data.get("wallet")) if isinstance(data, dict) else None
