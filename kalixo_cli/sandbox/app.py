"""The Kalixo API v1, emulated: routes, validation with Kalixo's messages, and statuses.

Bodies are validated by hand, not with the client's strict models: the point is to answer
as Kalixo does (NestJS-style ``{statusCode, error, message}`` bodies, class-validator-like
messages, 400 for bad bodies, the business messages of the public error catalogue), so a
client tested here meets the real server's answers. FastAPI's own 404/405/422 answers are
rewritten into the same shape, and every response, errors and 500s included, carries a
fresh ``fhp-codehype-correlation-key``.

Order statuses are derived from the injected clock on every read, never by a background
worker: see `line_status`. This keeps the server stateless between requests and lets tests
move time instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import auth
from .catalog import PRODUCTS, PRODUCTS_BY_ID, Outcome, Product, buying_price, find_product
from .store import DuplicateOrder, NewLine, NewOrder, Store, StoredLine, StoredOrder

CORRELATION_HEADER = "fhp-codehype-correlation-key"
REQUESTED_SECONDS = 2.0
"""How long a KTEST-SLOW order stays ``requested`` before it is ``processing``."""

INT64_MAX = 2**63 - 1
MAX_BODY_BYTES = 1 << 20
MAX_CODE_LENGTH = 100
MAX_LINES = 100
MAX_UNITS = 1000
"""Units per order above which the sandbox answers Kalixo's 422 'order limit exceeded'."""

_STATUS_SEVERITY = ("completed", "processing", "requested", "failed", "cancelled", "error")
_CURRENCY = re.compile(r"[A-Z]{3}")
_ORDER_ID = re.compile(r"-?[0-9]{1,19}")
_ERROR_LABELS = {413: "Payload Too Large"}
_NOT_NUMERIC = "Validation failed (numeric string is expected)"

logger = logging.getLogger("kalixo.sandbox")


class ApiError(Exception):
    """An answer in Kalixo's error shape; raised anywhere in a route, rendered by a handler."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_body(status: int, message: str) -> dict[str, Any]:
    """``{statusCode, error, message}``; like Kalixo, 500s carry no ``error`` label."""
    if status >= 500:
        return {"statusCode": status, "message": message}
    label = _ERROR_LABELS.get(status) or HTTPStatus(status).phrase
    return {"statusCode": status, "error": label, "message": message}


def _error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


# -- request accounting and the envelope every response gets ------------------------------


class RequestLog:
    """Thread-safe record of (method, path) for every request, so tests can count calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str]] = []

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self._seen.append((method.upper(), path))

    def count(self, method: str | None = None, path: str | None = None) -> int:
        wanted_method = method.upper() if method else None
        with self._lock:
            return sum(
                1
                for seen_method, seen_path in self._seen
                if (wanted_method is None or seen_method == wanted_method)
                and (path is None or seen_path == path)
            )

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


def request_log(app: FastAPI) -> RequestLog:
    """The `RequestLog` of an app made by `create_app`."""
    log = app.state.request_log
    assert isinstance(log, RequestLog)
    return log


class _Envelope:
    """Outermost user middleware: counts the request, stamps the correlation key, and turns
    an unhandled exception into Kalixo's 500 body (Starlette's own 500 would bypass us)."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.log.record(scope["method"], scope["path"])
        key = str(uuid.uuid4())
        started = False

        async def stamped_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", []), (CORRELATION_HEADER.encode(), key.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, stamped_send)
        except Exception:
            logger.exception("unhandled error (correlation key %s)", key)
            if started:
                raise
            response = _error_response(500, "Internal server error")
            await response(scope, receive, stamped_send)


# -- statuses -------------------------------------------------------------------------------


def line_status(outcome: str, elapsed: float, slow_seconds: float) -> str:
    """A line's v1 status ``elapsed`` seconds after placement.

    KTEST-SLOW lines are ``requested`` for the first `REQUESTED_SECONDS`, ``processing``
    until ``slow_seconds``, then ``completed``; the other outcomes are final at once.
    """
    if outcome == Outcome.FAIL:
        return "failed"
    if outcome == Outcome.CANCEL:
        return "cancelled"
    if outcome == Outcome.ERROR:
        return "error"
    if outcome == Outcome.SLOW:
        if elapsed < min(REQUESTED_SECONDS, slow_seconds):
            return "requested"
        if elapsed < slow_seconds:
            return "processing"
    return "completed"


def worst_status(statuses: Sequence[str]) -> str:
    """The order's status: its worst line's (error > cancelled > failed > requested >
    processing > completed)."""
    return max(statuses, key=_STATUS_SEVERITY.index, default="completed")


def _line_json(line: StoredLine, status: str, *, detailed: bool) -> dict[str, Any]:
    pins = line.pins if status == "completed" else ()
    data: dict[str, Any] = {"productId": line.product_id}
    if detailed:
        data["sku"] = line.sku
    data.update(price=line.price, buyingPrice=line.buying_price)
    if detailed:
        data["currency"] = line.currency
    data.update(quantity=line.quantity, pin=[{"PIN": pin} for pin in pins])
    return data


def _statuses(order: StoredOrder, now: float, slow_seconds: float) -> list[str]:
    elapsed = now - order.placed_at
    return [line_status(line.outcome, elapsed, slow_seconds) for line in order.lines]


def placed_json(order: StoredOrder, now: float, slow_seconds: float) -> dict[str, Any]:
    """The v1 place-order answer: ``orderId`` is a string there, and PINs are those
    delivered at placement."""
    statuses = _statuses(order, now, slow_seconds)
    return {
        "orderId": str(order.order_id),
        "products": [
            _line_json(line, status, detailed=False)
            for line, status in zip(order.lines, statuses, strict=True)
        ],
    }


def order_json(order: StoredOrder, now: float, slow_seconds: float) -> dict[str, Any]:
    """The v1 retrieve-order answer: ``orderId`` is an integer there, plus ``orderStatus``."""
    statuses = _statuses(order, now, slow_seconds)
    created = datetime.fromtimestamp(order.placed_at, UTC)
    return {
        "orderId": order.order_id,
        "externalOrderCode": order.external_order_code,
        "orderStatus": worst_status(statuses),
        "price": order.price,
        "currency": order.currency,
        "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "products": [
            _line_json(line, status, detailed=True)
            for line, status in zip(order.lines, statuses, strict=True)
        ],
    }


# -- body validation, class-validator style -----------------------------------------------


async def _json_body(request: Request) -> Any:
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "request entity too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ApiError(400, "Request body must be a JSON object")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body


def _string(
    data: dict[str, Any],
    key: str,
    name: str,
    problems: list[str],
    *,
    required: bool = True,
    max_length: int = 200,
) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f"{name} must be a string")
        return None
    if not isinstance(value, str):
        problems.append(f"{name} must be a string")
    elif not value.strip():
        problems.append(f"{name} should not be empty")
    elif len(value) > max_length:
        problems.append(f"{name} must be shorter than or equal to {max_length} characters")
    else:
        return value
    return None


def _integer(
    data: dict[str, Any],
    key: str,
    name: str,
    problems: list[str],
    *,
    required: bool = True,
    minimum: int = 0,
) -> int | None:
    """An integer as JavaScript sees one: 3299 and 3299.0 are, 32.99, "3299" and true not."""
    value = data.get(key)
    if value is None:
        if required:
            problems.append(f"{name} must be an integer number")
        return None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole:
        problems.append(f"{name} must be an integer number")
    elif value < minimum:
        problems.append(f"{name} must not be less than {minimum}")
    elif value > INT64_MAX:
        problems.append(f"{name} must not be greater than {INT64_MAX}")
    else:
        return int(value)
    return None


def _currency(
    data: dict[str, Any], key: str, name: str, problems: list[str], *, required: bool = True
) -> str | None:
    value = _string(data, key, name, problems, required=required)
    if value is not None and not _CURRENCY.fullmatch(value):
        problems.append(f"{name} must be a valid ISO4217 currency code")
        return None
    return value


@dataclass(frozen=True)
class OrderLineBody:
    product_id: int
    price: int | None
    sku: str | None
    currency: str | None
    quantity: int


@dataclass(frozen=True)
class OrderBody:
    """A place-order body that is well-formed; not yet checked against the catalog."""

    external_order_code: str
    price: int | None
    currency: str
    lines: tuple[OrderLineBody, ...]


def parse_order(body: Any) -> OrderBody:
    """Check the shape of a place-order body; every shape problem in one 400 message."""
    data = _object(body)
    problems: list[str] = []
    code = _string(
        data, "externalOrderCode", "externalOrderCode", problems, max_length=MAX_CODE_LENGTH
    )
    currency = _currency(data, "currency", "currency", problems)
    price = _integer(data, "price", "price", problems, required=False)
    raw_lines = data.get("orderProducts")
    lines: list[OrderLineBody] = []
    if not isinstance(raw_lines, list):
        problems.append("orderProducts must be an array")
    elif not raw_lines:
        problems.append("orderProducts must contain at least 1 elements")
    elif len(raw_lines) > MAX_LINES:
        problems.append(f"orderProducts must contain no more than {MAX_LINES} elements")
    else:
        for index, raw in enumerate(raw_lines):
            where = f"orderProducts.{index}"
            if not isinstance(raw, dict):
                problems.append(f"{where} must be an object")
                continue
            product_id = _integer(raw, "productId", f"{where}.productId", problems, minimum=1)
            line_price = _integer(raw, "price", f"{where}.price", problems, required=False)
            sku = _string(raw, "sku", f"{where}.sku", problems, required=False)
            line_currency = _currency(
                raw, "currency", f"{where}.currency", problems, required=False
            )
            quantity = _integer(raw, "quantity", f"{where}.quantity", problems, minimum=1)
            if product_id is not None and quantity is not None:
                lines.append(OrderLineBody(product_id, line_price, sku, line_currency, quantity))
    if problems:
        raise ApiError(400, "; ".join(problems))
    assert code is not None and currency is not None
    return OrderBody(code, price, currency, tuple(lines))


# -- business rules -----------------------------------------------------------------------


def _unit_price(product: Product, price: int | None) -> int:
    if product.open_range is None:
        if price is not None and price != product.price:
            raise ApiError(400, f"Product {product.id} price mismatch: expected {product.price}")
        return product.price
    if price is None:
        raise ApiError(400, f"Product {product.id} is open-denomination and requires a price")
    minimum, maximum, step = product.open_range
    if not minimum <= price <= maximum:
        raise ApiError(
            400,
            f"Product {product.id} price {price} is outside the allowed range {minimum}-{maximum}",
        )
    if price % step:
        raise ApiError(
            400, f"Product {product.id} price {price} is not a multiple of the step {step}"
        )
    return price


def price_order(order: OrderBody, now: float) -> NewOrder:
    """Check ``order`` against the catalog as Kalixo does; the first problem is the answer."""
    lines: list[NewLine] = []
    for index, line in enumerate(order.lines):
        product = PRODUCTS_BY_ID.get(line.product_id)
        if product is None:
            raise ApiError(404, f"Product {line.product_id} not found")
        if line.sku is not None and line.sku != product.sku:
            raise ApiError(400, f"Product {product.id} sku mismatch: expected {product.sku}")
        line_currency = line.currency or order.currency
        if line_currency != order.currency:
            raise ApiError(
                400,
                f"Currency mismatch: orderProducts.{index}.currency is {line_currency} "
                f"but the order currency is {order.currency}",
            )
        if product.currency != line_currency:
            raise ApiError(
                400,
                f"Currency mismatch: Product {product.id} is priced in {product.currency}, "
                f"not {line_currency}",
            )
        unit_price = _unit_price(product, line.price)
        lines.append(
            NewLine(
                product_id=product.id,
                sku=product.sku,
                price=unit_price,
                buying_price=buying_price(unit_price),
                currency=product.currency,
                quantity=line.quantity,
                outcome=product.outcome.value,
                delivers=product.outcome.delivers,
            )
        )
    if sum(line.quantity for line in lines) > MAX_UNITS:
        raise ApiError(
            422, "Your account order limit has been exceeded. Contact support for assistance."
        )
    total = sum(line.price * line.quantity for line in lines)
    if total > INT64_MAX:
        raise ApiError(400, f"Order total {total} is larger than any order may be")
    if order.price is not None and order.price != total:
        raise ApiError(400, f"Order price mismatch: expected total {total}")
    return NewOrder(order.external_order_code, total, order.currency, now, tuple(lines))


def _page_param(raw: str | None, name: str, *, default: int, minimum: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.strip().isdigit():
        raise ApiError(400, f"{name} must be an integer number")
    value = int(raw)
    if value < minimum:
        raise ApiError(400, f"{name} must not be less than {minimum}")
    if value > maximum:
        raise ApiError(400, f"{name} must not be greater than {maximum}")
    return value


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def _unauthorized() -> ApiError:
    return ApiError(401, "Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})


# -- the app ------------------------------------------------------------------------------


def create_app(
    store: Store, *, clock: Callable[[], float] = time.time, slow_seconds: float = 10.0
) -> FastAPI:
    """The emulator over ``store``; ``clock`` drives token expiry and KTEST-SLOW statuses."""
    app = FastAPI(title="Kalixo API v1 sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    log = RequestLog()
    app.state.request_log = log
    app.state.store = store
    app.add_middleware(_Envelope, log=log)
    _install_error_handlers(app)

    def authorize(request: Request) -> None:
        if not auth.access_allowed(_bearer(request), clock()):
            raise _unauthorized()

    @app.post("/v1/auth/login")
    async def login(request: Request) -> JSONResponse:
        data = _object(await _json_body(request))
        problems: list[str] = []
        email = _string(data, "email", "email", problems, max_length=320)
        password = _string(data, "password", "password", problems, max_length=1024)
        if problems:
            raise ApiError(400, "; ".join(problems))
        assert email is not None and password is not None
        if not auth.credentials_valid(email, password):
            raise ApiError(401, "Invalid email or password")
        return JSONResponse(auth.issue_pair(clock()), status_code=201)

    @app.post("/v1/auth/refresh")
    async def refresh(request: Request) -> JSONResponse:
        if auth.verify_token(_bearer(request), "refresh", clock()) is None:
            raise _unauthorized()
        return JSONResponse(auth.issue_pair(clock()), status_code=201)

    @app.post("/v1/orders/place-order")
    async def place_order(request: Request) -> JSONResponse:
        authorize(request)
        now = clock()
        new_order = price_order(parse_order(await _json_body(request)), now)
        try:
            stored = await run_in_threadpool(store.place_order, new_order)
        except DuplicateOrder:
            raise ApiError(409, "An order with this external order code already exists.") from None
        return JSONResponse(placed_json(stored, now, slow_seconds), status_code=201)

    @app.get("/v1/orders/retrieve-order")
    async def retrieve_order(
        request: Request, order_id: str | None = Query(None, alias="id")
    ) -> JSONResponse:
        authorize(request)
        if order_id is None or not _ORDER_ID.fullmatch(order_id.strip()):
            raise ApiError(400, _NOT_NUMERIC)
        number = int(order_id)
        in_range = 0 < number <= INT64_MAX
        stored = await run_in_threadpool(store.get_order, number) if in_range else None
        if stored is None:
            raise ApiError(404, f"Order {number} not found")
        return JSONResponse(order_json(stored, clock(), slow_seconds))

    @app.get("/v1/catalog")
    async def catalog(request: Request) -> JSONResponse:
        authorize(request)
        return JSONResponse([product.to_json() for product in PRODUCTS])

    @app.get("/v1/catalog/products")
    async def catalog_products(
        request: Request, skip: str | None = None, take: str | None = None
    ) -> JSONResponse:
        authorize(request)
        first = _page_param(skip, "skip", default=0, minimum=0, maximum=INT64_MAX)
        size = _page_param(take, "take", default=20, minimum=1, maximum=100)
        page = PRODUCTS[first : first + size]
        return JSONResponse(
            {
                "count": len(PRODUCTS),
                "skip": first,
                "take": size,
                "products": [product.to_json() for product in page],
            }
        )

    @app.get("/v1/catalog/product")
    async def catalog_product(
        request: Request, ean: str | None = None, sku: str | None = None
    ) -> JSONResponse:
        authorize(request)
        code = ean if ean is not None else sku
        if code is None or not code.strip():
            raise ApiError(400, "ean should not be empty (or pass sku)")
        product = find_product(code)
        if product is None:
            raise ApiError(404, f"Product {code.strip()} not found")
        return JSONResponse(product.to_json())

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):
            # NestJS's wording for a route it does not have
            message = f"Cannot {request.method} {request.url.path}"
        else:
            message = str(exc.detail)
        return _error_response(exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in error.get('loc', ())[1:]) or 'request'} "
            f"{error.get('msg', 'is invalid')}"
            for error in exc.errors()
        ]
        return _error_response(400, "; ".join(problems) or "Bad Request")
