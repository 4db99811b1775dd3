"""The Kalixo API v2, emulated beside v1: the routes of Kalixo's OpenAPI 3.1 spec
(a copy is in tests/data/kalixo-openapi-v2.json) under ``/v2``, and the sandbox's scenario list.

    GET  /v2/ping                       {status: "ok", timestamp}
    GET  /v2/catalog/products           filters country, language, brand, category, tag
                                        (comma lists: OR within a field, AND across), search;
                                        skip, take (1-100, default 20; else 400)
    GET  /v2/catalog/products/{id}      one Product
    POST /v2/orders                     202 OrderAccepted: processing until estimatedReadyAt
    GET  /v2/orders/{reference}         OrderStatus, by numeric orderId or externalOrderCode
    GET  /v2/wallet                     {balances, lowBalance, threshold}
    GET  /v2/sandbox/scenarios          the test products and the outcome each one reaches

Every route wants ``x-api-key: SANDBOX_API_KEY``; without one the answer is 401 "Missing API
key", with any other (a ``kal_live_`` key included) 401 "Invalid API key". Errors are
``{statusCode, error, message}`` with the messages of Kalixo's v2 error catalogue.

Orders share v1's store: one orderId sequence, one namespace of external order codes, one
wallet (wallet.py). An order placed on either generation can be read on both.

Idempotency, as the spec's placeOrder documents it: ``externalOrderCode`` is the key.
Re-posting a code with the same order (`validation.same_order`) returns the existing order,
whatever its state, as the spec's only success answer, 202 OrderAccepted with the original
``orderId`` and ``estimatedReadyAt`` and a fresh wallet snapshot; nothing is created or
debited. Poll ``GET /v2/orders/{reference}`` for its state, as after any 202. Re-posting a
code with a different order is the catalogue's 409 "An order with this external order code
already exists." The code is looked up before the catalog is consulted, so a retry gets
its order back even if prices changed in between; two concurrent posts of one code create
one order (the store's UNIQUE constraint) and the loser answers as a re-post.

Statuses are derived from the injected clock on every read, as on v1. A v2 order is
``processing`` until its ``estimatedReadyAt``: `ready_seconds` after placement (2 s by
default, plus a second per 100 units: larger orders are ready later), or `slow_seconds`
when it has a KTEST-SLOW line. Then, by how many units got codes (store.py keeps exactly
the codes an order will ever deliver): all -> ``completed``, some -> ``partially_completed``
with ``delivered``/``total``, none -> ``failed`` with a ``reason``. An order placed on v1 is
ready at once (after ``slow_seconds`` with a KTEST-SLOW line), as v1 answered it.

Responses follow the spec's schemas strictly: no fields beyond them, and no nulls (OpenAPI
3.1 dropped ``nullable``, so a ``"type": "integer", "nullable": true`` field does not admit
null); tests/test_sandbox_contract.py checks every route and status against the spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from . import auth
from .catalog import PRODUCTS, PRODUCTS_BY_ID, SCENARIOS, Outcome, Product
from .store import DuplicateOrder, InsufficientFunds, NewLine, Store, StoredOrder
from .validation import (
    INT64_MAX,
    NOT_NUMERIC,
    ORDER_LIMIT_EXCEEDED,
    ApiError,
    OrderBody,
    json_body,
    parse_order,
    price_order,
    same_order,
)
from .wallet import Wallet

UNITS_PER_EXTRA_SECOND = 100
PROCESSING_MESSAGE = "Order is still processing"
FAILED_REASON = "The order could not be completed."
CANCELLED_REASON = "The order was cancelled."
DUPLICATE_CODE = "An order with this external order code already exists."
DEFAULT_TAKE = 20
MAX_TAKE = 100

_NUMBER = re.compile(r"-?[0-9]+")
_ORDER_NUMBER = re.compile(r"[0-9]{1,19}")


def timestamp(seconds: float) -> str:
    """``2026-06-02T11:05:00.000Z``: UTC, milliseconds, as Kalixo writes times."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- statuses -------------------------------------------------------------------------------


def ready_delay(lines: Sequence[NewLine], ready_seconds: float, slow_seconds: float) -> float:
    """Seconds a new v2 order of ``lines`` stays ``processing``."""
    units = sum(line.quantity for line in lines)
    delay = ready_seconds + units // UNITS_PER_EXTRA_SECOND
    if any(line.outcome == Outcome.SLOW for line in lines):
        delay = max(delay, slow_seconds)
    return delay


def ready_at(order: StoredOrder, slow_seconds: float) -> float:
    """The order's ``estimatedReadyAt``: stored for v2 orders, derived for v1 ones."""
    if order.ready_at is not None:
        return order.ready_at
    slow = any(line.outcome == Outcome.SLOW for line in order.lines)
    return order.placed_at + (slow_seconds if slow else 0.0)


def order_status(order: StoredOrder, now: float, slow_seconds: float) -> str:
    """``processing``, ``completed``, ``partially_completed`` or ``failed`` at ``now``."""
    if now < ready_at(order, slow_seconds):
        return "processing"
    delivered = sum(len(line.pins) for line in order.lines)
    if delivered == sum(line.quantity for line in order.lines):
        return "completed"
    return "partially_completed" if delivered else "failed"


def _failure_reason(order: StoredOrder) -> str:
    cancelled = any(line.outcome == Outcome.CANCEL for line in order.lines)
    return CANCELLED_REASON if cancelled else FAILED_REASON


def accepted_json(
    order: StoredOrder, slow_seconds: float, wallet: dict[str, Any]
) -> dict[str, Any]:
    """The 202 OrderAccepted answer, for a new order and for a re-post of one alike."""
    return {
        "orderId": order.order_id,
        "externalOrderCode": order.external_order_code,
        "status": "processing",
        "estimatedReadyAt": timestamp(ready_at(order, slow_seconds)),
        "wallet": wallet,
    }


def status_json(
    order: StoredOrder, now: float, slow_seconds: float, wallet: dict[str, Any]
) -> dict[str, Any]:
    """The OrderStatus answer: codes for every delivered unit once the order is ready."""
    status = order_status(order, now, slow_seconds)
    data: dict[str, Any] = {
        "orderId": order.order_id,
        "externalOrderCode": order.external_order_code,
        "status": status,
        "estimatedReadyAt": timestamp(ready_at(order, slow_seconds)),
    }
    if status == "processing":
        data["message"] = PROCESSING_MESSAGE
    elif status == "failed":
        data["reason"] = _failure_reason(order)
    else:
        if status == "partially_completed":
            data["delivered"] = sum(len(line.pins) for line in order.lines)
            data["total"] = sum(line.quantity for line in order.lines)
        data["products"] = [
            {
                "productId": line.product_id,
                "price": line.price,
                "quantity": line.quantity,
                "codes": [{"code": pin} for pin in line.pins],
            }
            for line in order.lines
        ]
    data["wallet"] = wallet
    return data


# -- catalog --------------------------------------------------------------------------------


def _wanted(raw: str | None) -> set[str] | None:
    """A comma list as lower-case values; None (no filter) when absent or empty."""
    if raw is None:
        return None
    values = {value.strip().lower() for value in raw.split(",") if value.strip()}
    return values or None


def _paging_int(
    name: str, raw: str | None, *, default: int, minimum: int, maximum: int | None = None
) -> int:
    """skip/take within the bounds the spec's parameter schemas give, or 400 as Kalixo's
    NestJS stack answers (ParseIntPipe, then class-validator). The spec lists no 400 for
    listCatalogProducts; the contract and fuzz tests record that gap (tests/data)."""
    if raw is None:
        return default
    text = raw.strip()
    if not _NUMBER.fullmatch(text):
        raise ApiError(400, NOT_NUMERIC)
    value = _bounded_int(text)
    if value < minimum:
        raise ApiError(400, f"Validation failed ({name} must not be less than {minimum})")
    if maximum is not None and value > maximum:
        raise ApiError(400, f"Validation failed ({name} must not be greater than {maximum})")
    return value


def _bounded_int(text: str) -> int:
    """A numeric string as an int, huge ones (beyond int64) as +-INT64_MAX."""
    if len(text.lstrip("-")) > 18:
        return -INT64_MAX if text.startswith("-") else INT64_MAX
    return int(text)


def filter_products(
    *,
    country: str | None = None,
    language: str | None = None,
    brand: str | None = None,
    category: str | None = None,
    tag: str | None = None,
    search: str | None = None,
) -> list[Product]:
    """The catalog products matching every given filter (each one a comma list of
    alternatives, case-insensitive); ``search`` looks in the name and the product code."""
    fields: list[tuple[set[str] | None, Callable[[Product], set[str]]]] = [
        (_wanted(country), lambda p: {p.country.lower()}),
        (_wanted(language), lambda p: {"en"}),  # every sandbox product is in English
        (_wanted(brand), lambda p: {p.brand.lower()}),
        (_wanted(category), lambda p: {p.category.lower(), p.brand.lower()}),
        (_wanted(tag), lambda p: {t.lower() for t in p.tags}),
    ]
    text = search.strip().lower() if search else ""
    return [
        product
        for product in PRODUCTS
        if all(wanted is None or wanted & values(product) for wanted, values in fields)
        and (not text or text in product.name.lower() or text in product.ean.lower())
    ]


# -- the routes -----------------------------------------------------------------------------


def api_key(request: Request) -> str:
    """The request's accepted API key, or the catalogue's 401."""
    key = request.headers.get("x-api-key", "").strip()
    if not key:
        raise ApiError(401, "Missing API key")
    if not auth.api_key_allowed(key):
        raise ApiError(401, "Invalid API key")
    return key


def add_v2_routes(
    app: FastAPI,
    store: Store,
    *,
    clock: Callable[[], float],
    slow_seconds: float,
    ready_seconds: float,
    wallet: Wallet,
) -> None:
    """Serve the v2 routes on ``app``, over the same ``store`` as v1."""

    async def snapshot(key: str) -> dict[str, Any]:
        return wallet.snapshot_json(await run_in_threadpool(store.balances, key, wallet.opening))

    async def existing(key: str, stored: StoredOrder, body: OrderBody) -> JSONResponse:
        if not same_order(stored, body):
            raise ApiError(409, DUPLICATE_CODE)
        accepted = accepted_json(stored, slow_seconds, await snapshot(key))
        return JSONResponse(accepted, status_code=202)

    @app.get("/v2/ping")
    async def ping(request: Request) -> JSONResponse:
        api_key(request)
        return JSONResponse({"status": "ok", "timestamp": timestamp(clock())})

    @app.get("/v2/catalog/products")
    async def catalog_products(
        request: Request,
        country: str | None = None,
        language: str | None = None,
        brand: str | None = None,
        category: str | None = None,
        tag: str | None = None,
        search: str | None = None,
        skip: str | None = None,
        take: str | None = None,
    ) -> JSONResponse:
        api_key(request)
        found = filter_products(
            country=country,
            language=language,
            brand=brand,
            category=category,
            tag=tag,
            search=search,
        )
        first = _paging_int("skip", skip, default=0, minimum=0)
        size = _paging_int("take", take, default=DEFAULT_TAKE, minimum=1, maximum=MAX_TAKE)
        return JSONResponse(
            {
                "count": len(found),
                "skip": first,
                "take": size,
                "products": [product.to_v2_json() for product in found[first : first + size]],
            }
        )

    @app.get("/v2/catalog/products/{product_id}")
    async def catalog_product(request: Request, product_id: str) -> JSONResponse:
        api_key(request)
        if not _NUMBER.fullmatch(product_id):
            raise ApiError(400, NOT_NUMERIC)
        product = PRODUCTS_BY_ID.get(_bounded_int(product_id))
        if product is None:
            raise ApiError(404, f"Product {product_id} was not found in your catalog")
        return JSONResponse(product.to_v2_json())

    @app.post("/v2/orders")
    async def place_order(request: Request) -> JSONResponse:
        key = api_key(request)
        now = clock()
        body = parse_order(await json_body(request))
        stored = await run_in_threadpool(store.order_by_code, body.external_order_code)
        if stored is not None:
            return await existing(key, stored, body)
        priced = price_order(body, now, api=2)
        delay = ready_delay(priced.lines, ready_seconds, slow_seconds)
        new_order = replace(priced, ready_at=now + delay)
        try:
            stored = await run_in_threadpool(
                lambda: store.place_order(new_order, account=key, opening=wallet.opening)
            )
        except DuplicateOrder:  # a concurrent post of the same code won
            stored = await run_in_threadpool(store.order_by_code, body.external_order_code)
            assert stored is not None
            return await existing(key, stored, body)
        except InsufficientFunds:
            raise ApiError(422, ORDER_LIMIT_EXCEEDED) from None
        return JSONResponse(
            accepted_json(stored, slow_seconds, await snapshot(key)), status_code=202
        )

    @app.get("/v2/orders/{reference:path}")
    async def get_order(request: Request, reference: str) -> JSONResponse:
        key = api_key(request)
        stored = await run_in_threadpool(_find_order, store, reference)
        if stored is None:
            raise ApiError(404, f"Order {reference} not found")
        return JSONResponse(status_json(stored, clock(), slow_seconds, await snapshot(key)))

    @app.get("/v2/wallet")
    async def get_wallet(request: Request) -> JSONResponse:
        key = api_key(request)
        balances = await run_in_threadpool(store.balances, key, wallet.opening)
        return JSONResponse(wallet.to_json(balances))

    @app.get("/v2/sandbox/scenarios")
    async def scenarios(request: Request) -> JSONResponse:
        api_key(request)
        return JSONResponse(
            {"scenarios": [s.to_json(ready_seconds, slow_seconds) for s in SCENARIOS]}
        )


def _find_order(store: Store, reference: str) -> StoredOrder | None:
    """A numeric reference is an orderId first, then (no such order) a code; any other
    reference is a code."""
    if _ORDER_NUMBER.fullmatch(reference) and 0 < int(reference) <= INT64_MAX:
        found = store.get_order(int(reference))
        if found is not None:
            return found
    return store.order_by_code(reference)
