"""The Kalixo API emulated: the app, the envelope and fault injection every request meets,
and the v1 routes (v2's are in v2.py, what both validate with in validation.py).

Bodies are validated by hand, not with the client's strict models: the point is to answer
as Kalixo does (NestJS-style ``{statusCode, error, message}`` bodies, class-validator-like
messages, 400 for bad bodies, the business messages of the public error catalogue), so a
client tested here meets the real server's answers. FastAPI's own 404/405/422 answers are
rewritten into the same shape, and every response, errors and 500s included, carries a
fresh ``fhp-codehype-correlation-key``.

Order statuses are derived from the injected clock on every read, never by a background
worker: see `line_status`. This keeps the server stateless between requests and lets tests
move time instead of sleeping. v1 answers place-order synchronously, so an order placed
there is final at once (KTEST-SLOW aside); an order placed on v2 is ``processing`` on v1
too until its ``estimatedReadyAt``. v1 has no partial status: a line short of PINs
(KTEST-PARTIAL) is ``failed`` and shows the PINs it got.

Faults (latency, 500/502, rate limits, hangs, dropped answers) are injected by
`_FaultInjection`, just inside the envelope, as the `FaultInjector` in ``app.state.faults``
decides (see faults.py); they are off unless configured.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import auth
from .catalog import PRODUCTS, READY_SECONDS, SLOW_SECONDS, Outcome, find_product
from .faults import PLACE_ORDER_PATHS, DroppedConnection, FaultInjector, Faults, Plan
from .store import DuplicateOrder, InsufficientFunds, Store, StoredLine, StoredOrder
from .v2 import add_v2_routes
from .validation import (
    INT64_MAX,
    MAX_BODY_BYTES,
    NOT_NUMERIC,
    ORDER_LIMIT_EXCEEDED,
    ApiError,
    error_response,
    json_body,
    object_body,
    page_param,
    parse_order,
    price_order,
    string_field,
)
from .wallet import Wallet

CORRELATION_HEADER = "fhp-codehype-correlation-key"
REQUESTED_SECONDS = 2.0
"""How long a KTEST-SLOW order stays ``requested`` before it is ``processing``."""

_STATUS_SEVERITY = ("completed", "processing", "requested", "failed", "cancelled", "error")
_ORDER_ID = re.compile(r"-?[0-9]{1,19}")

logger = logging.getLogger("kalixo.sandbox")


# -- request accounting and the envelope every response gets ------------------------------


class RequestLog:
    """Thread-safe record of (method, path) for every request, and of the external order
    code of every place-order received, so tests can count calls and attempts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str]] = []
        self._attempts: Counter[str] = Counter()

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self._seen.append((method.upper(), path))

    def record_attempt(self, external_order_code: str) -> None:
        with self._lock:
            self._attempts[external_order_code] += 1

    def attempts(self) -> dict[str, int]:
        """Place-order requests received per externalOrderCode, whatever the answer."""
        with self._lock:
            return dict(self._attempts)

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
            self._attempts.clear()


def request_log(app: FastAPI) -> RequestLog:
    """The `RequestLog` of an app made by `create_app`."""
    log = app.state.request_log
    assert isinstance(log, RequestLog)
    return log


def fault_injector(app: FastAPI) -> FaultInjector:
    """The `FaultInjector` of an app made by `create_app`."""
    injector = app.state.faults
    assert isinstance(injector, FaultInjector)
    return injector


async def _buffered_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages up to the end of its body, and the body (None if it is over
    `MAX_BODY_BYTES` or the client left); the app reads the messages again via `_replay`."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _external_order_code(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    code = data.get("externalOrderCode") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


class _Envelope:
    """Outermost user middleware: counts the request (and a place-order's code), stamps the
    correlation key, and turns an unhandled exception into Kalixo's 500 body (Starlette's
    own 500 would bypass us)."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.log.record(scope["method"], scope["path"])
        if scope["method"] == "POST" and scope["path"] in PLACE_ORDER_PATHS:
            messages, body = await _buffered_body(receive)
            code = _external_order_code(body) if body is not None else None
            if code is not None:
                self.log.record_attempt(code)
            receive = _replay(messages, receive)
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
        except DroppedConnection:
            raise
        except Exception:
            logger.exception("unhandled error (correlation key %s)", key)
            if started:
                raise
            response = error_response(500, "Internal server error")
            await response(scope, receive, stamped_send)


# -- fault injection ------------------------------------------------------------------------

FAULT_500_MESSAGE = "Internal server error"
FAULT_502_MESSAGE = "Order processing unavailable, please retry"
FAULT_502_MESSAGE_V2 = "Order processing is temporarily unavailable. Please try again later."
"""v2's catalogue words it so (ErrorOrderUnavailable)."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging "Exception in ASGI application" and a traceback for a
    connection we dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        dropped = record.exc_info[1] if record.exc_info else None
        return not isinstance(dropped, DroppedConnection)


_QUIET_DROPS = _QuietDrops()


def _credential(scope: Scope) -> str:
    """What a request's quota is kept under: its bearer token (v1) or x-api-key (v2);
    requests without one share ''."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if scope["path"].startswith("/v2/"):
        for name, value in headers:
            if name == b"x-api-key":
                return value.decode("latin-1").strip()
        return ""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class _FaultInjection:
    """Acts on the `FaultInjector`'s `Plan` for each request; a no-op when faults are off.

    Sits just inside `_Envelope`, so injected answers carry a correlation key and every
    request is counted whatever happens to it.
    """

    def __init__(self, app: ASGIApp, injector: FaultInjector, clock: Callable[[], float]):
        self.app = app
        self.injector = injector
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        plan = self.injector.plan(method, path, _credential(scope), self.clock())
        if plan.delay_seconds > 0:
            self.injector.record("latency", method, path, f"{plan.delay_seconds * 1000:.0f} ms")
            await asyncio.sleep(plan.delay_seconds)
        if plan.rate is not None:
            send = _with_headers(send, plan.rate.headers())
        await self._apply(plan, scope, receive, send)

    async def _apply(self, plan: Plan, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        fault = plan.fault
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "rate_limited":
            assert plan.rate is not None
            self.injector.record(fault, method, path, f"retry after {plan.rate.retry_after}s")
            await error_response(429, plan.rate.message)(scope, receive, send)
        elif fault == "error_500":
            self.injector.record(fault, method, path)
            await error_response(500, FAULT_500_MESSAGE)(scope, receive, send)
        elif fault == "error_502":
            self.injector.record(fault, method, path)
            v2 = path.startswith("/v2/")
            message = FAULT_502_MESSAGE_V2 if v2 else FAULT_502_MESSAGE
            body = {"statusCode": 502, "error": "Bad Gateway", "message": message}
            await JSONResponse(body, status_code=502)(scope, receive, send)
        elif fault == "hang":
            self.injector.record(fault, method, path, f"{plan.hang_seconds:g} s")
            await _hang(plan.hang_seconds, receive, send)
        else:
            await self._drop_after_commit(scope, receive, send)

    async def _drop_after_commit(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let place-order run to the end, then send the head and half the body of its
        answer and drop the connection; any answer but a 2xx (nothing committed) is sent
        whole."""
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start, *rest = messages
        if not 200 <= start["status"] < 300:
            for message in messages:
                await send(message)
            return
        body = b"".join(message.get("body", b"") for message in rest)
        await send(start)
        half = body[: len(body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        order = f"order {_order_id(body)}"
        self.injector.record("drop_after_commit", scope["method"], scope["path"], order)
        raise DroppedConnection(f"dropped the answer about {order} on purpose")


def _order_id(body: bytes) -> object:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get("orderId") if isinstance(data, dict) else None


def _with_headers(send: Send, headers: list[tuple[str, str]]) -> Send:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *raw]}
        await send(message)

    return send_with_headers


async def _hang(seconds: float, receive: Receive, send: Send) -> None:
    """No answer for ``seconds``, or until the client gives up; then drop the connection
    after a bare 504 head (ASGI has no way to close without sending something)."""
    try:
        await asyncio.wait_for(_until_disconnect(receive), seconds)
        return
    except TimeoutError:
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 504,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
        }
    )
    raise DroppedConnection(f"dropped a request held for {seconds:g} s on purpose")


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
    pins = () if status in ("requested", "processing") else line.pins
    data: dict[str, Any] = {"productId": line.product_id}
    if detailed:
        data["sku"] = line.sku
    data.update(price=line.price, buyingPrice=line.buying_price)
    if detailed:
        data["currency"] = line.currency
    data.update(quantity=line.quantity, pin=[{"PIN": pin} for pin in pins])
    return data


def _statuses(order: StoredOrder, now: float, slow_seconds: float) -> list[str]:
    if order.ready_at is not None and now < order.ready_at:  # placed on v2, not ready yet
        return ["processing"] * len(order.lines)
    # a v2 order that is ready is past any KTEST-SLOW delay too
    elapsed = now - order.placed_at if order.ready_at is None else float("inf")
    return [_line_status(line, elapsed, slow_seconds) for line in order.lines]


def _line_status(line: StoredLine, elapsed: float, slow_seconds: float) -> str:
    status = line_status(line.outcome, elapsed, slow_seconds)
    if status == "completed" and len(line.pins) < line.quantity:
        return "failed"  # KTEST-PARTIAL: v1 has no partial status
    return status


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


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def _unauthorized() -> ApiError:
    return ApiError(401, "Invalid or expired token", headers={"WWW-Authenticate": "Bearer"})


# -- the app ------------------------------------------------------------------------------


def create_app(
    store: Store,
    *,
    clock: Callable[[], float] = time.time,
    slow_seconds: float = SLOW_SECONDS,
    faults: Faults | None = None,
    ready_seconds: float = READY_SECONDS,
    wallet: Wallet | None = None,
) -> FastAPI:
    """The emulator (v1 and v2) over ``store``; ``clock`` drives token expiry, statuses and
    rate-limit windows; ``faults`` are injected until changed via ``app.state.faults``;
    ``ready_seconds`` is how long a v2 order is ``processing`` (KTEST-SLOW: ``slow_seconds``);
    ``wallet`` sets the opening balances and the low-balance threshold (wallet.py)."""
    wallet = wallet if wallet is not None else Wallet()
    app = FastAPI(title="Kalixo API sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    log = RequestLog()
    injector = FaultInjector(faults)
    app.state.request_log = log
    app.state.faults = injector
    app.state.store = store
    app.state.wallet = wallet
    # added first, so it runs inside the envelope
    app.add_middleware(_FaultInjection, injector=injector, clock=clock)
    app.add_middleware(_Envelope, log=log)
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
    _install_error_handlers(app)

    def authorize(request: Request) -> None:
        if not auth.access_allowed(_bearer(request), clock()):
            raise _unauthorized()

    @app.post("/v1/auth/login")
    async def login(request: Request) -> JSONResponse:
        data = object_body(await json_body(request))
        problems: list[str] = []
        email = string_field(data, "email", "email", problems, max_length=320)
        password = string_field(data, "password", "password", problems, max_length=1024)
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
        new_order = price_order(parse_order(await json_body(request)), now)
        try:
            stored = await run_in_threadpool(
                lambda: store.place_order(
                    new_order, account=auth.V1_WALLET_KEY, opening=wallet.opening
                )
            )
        except DuplicateOrder:
            raise ApiError(409, "An order with this external order code already exists.") from None
        except InsufficientFunds:
            raise ApiError(422, ORDER_LIMIT_EXCEEDED) from None
        return JSONResponse(placed_json(stored, now, slow_seconds), status_code=201)

    @app.get("/v1/orders/retrieve-order")
    async def retrieve_order(
        request: Request, order_id: str | None = Query(None, alias="id")
    ) -> JSONResponse:
        authorize(request)
        if order_id is None or not _ORDER_ID.fullmatch(order_id.strip()):
            raise ApiError(400, NOT_NUMERIC)
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
        first = page_param(skip, "skip", default=0, minimum=0, maximum=INT64_MAX)
        size = page_param(take, "take", default=20, minimum=1, maximum=100)
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

    add_v2_routes(
        app,
        store,
        clock=clock,
        slow_seconds=slow_seconds,
        ready_seconds=ready_seconds,
        wallet=wallet,
    )
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (404, 405):
            # NestJS's wording for a route it does not have
            message = f"Cannot {request.method} {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in error.get('loc', ())[1:]) or 'request'} "
            f"{error.get('msg', 'is invalid')}"
            for error in exc.errors()
        ]
        return error_response(400, "; ".join(problems) or "Bad Request")
