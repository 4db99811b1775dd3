"""api: an authenticated request to any path of the configured API, printed as received.

The way to reach an endpoint kalixo has no command for yet, as `gh api` is for GitHub: the
profile's credential, the same timeouts and deadline, retries for GET only (a POST to an
unknown endpoint may not be safe to repeat), credentials masked in --verbose and -i.

Orders are the exception: anything but a read of `orders/...` is refused, so that no order
is placed or changed outside the journal that makes placing exactly-once (place-order and
place-orders write it before sending).
"""

import json
import posixpath
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import unquote, urlsplit

import typer

from kalixo_cli.commands.context import AppState, get_state
from kalixo_cli.commands.options import JqOption
from kalixo_cli.domain.errors import UsageError

if TYPE_CHECKING:
    import requests

    from kalixo_cli.api.base import OrderClient

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
# Header values never printed by -i, whatever they hold.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "cookie", "set-cookie"}
)


def api_path(path: str, base_url: str) -> str:
    """PATH relative to the API base URL. `/orders/1`, `v1/orders/1` (the version the base
    URL ends in) and the full URL under the base all mean `orders/1`; a URL anywhere else
    is refused: the credential goes to the configured API only."""
    text = path.strip()
    if not text:
        raise UsageError("PATH is empty", hint="kalixo api catalog/products")
    base = base_url.rstrip("/")
    if "://" in text:
        if not text.lower().startswith(base.lower() + "/") and text.lower() != base.lower():
            raise UsageError(
                f"{text} is not under the configured API {base}",
                hint="kalixo api sends the credential only to the API it is "
                "configured for; give a path such as catalog/products, or "
                "--api-url / --profile",
            )
        text = text[len(base) :]
    text = text.lstrip("/")
    version = base.rsplit("/", 1)[-1].lower()
    if version in ("v1", "v2") and text.lower().split("?", 1)[0].split("/", 1)[0] == version:
        text = text[len(version) :].lstrip("/")
    return text


def writes_orders(method: str, path: str) -> bool:
    """Would this request place, change or cancel an order? Any method but a read, to any
    path under `orders` once decoded and normalised (`catalog/../orders`, `ORDERS`,
    `orders%2Fplace-order`, `orders;x`, `//orders/`)."""
    if method.upper() in READ_METHODS:
        return False
    route = path.split("?", 1)[0].split("#", 1)[0]
    for _ in range(3):  # %252F -> %2F -> /
        route = unquote(route)
    route = posixpath.normpath("/" + route.replace("\\", "/").lower()).lstrip("/")
    parts = [part.split(";", 1)[0].strip() for part in route.split("/") if part]
    if parts and parts[0] in ("v1", "v2"):
        parts = parts[1:]
    return bool(parts) and parts[0] == "orders"


def parse_field(text: str, *, typed: bool, flag: str) -> tuple[str, Any]:
    """`key=value`; with -F the value is JSON when it parses (3, true, null, [1]) and
    `@FILE` is the file's text; with -f it is always the string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"{flag} {text!r} is not key=value", hint=f"{flag} take=10")
    if not typed:
        return key, value
    if value.startswith("@"):
        try:
            return key, Path(value[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{flag} {key}: cannot read {value[1:]}: {exc}") from None
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _read_input(name: str) -> bytes:
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --input {name}: {exc.strerror or exc}") from None
    try:
        json.loads(data)
    except ValueError as exc:
        where = (
            f"{name}:{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else name
        )
        raise UsageError(
            f"--input is not JSON: {exc}", where=where, hint="the body is sent as application/json"
        ) from None
    return data


def _client(state: AppState) -> "OrderClient":
    """The profile's client (endpoint, credential, timeouts, deadline, plain-HTTP rule, v1
    token refresh), with GET alone retried: other methods may not be safe to repeat."""
    from dataclasses import replace

    from kalixo_cli.api.retry import NEVER, V1_RULES, V2_RULES

    v2 = state.endpoint().version == "v2"
    return state.new_client(
        deadline=state.settings().deadline.value,
        rules=replace(V2_RULES if v2 else V1_RULES, post=NEVER),
    )


def _send(client: "OrderClient", method: str, path: str, **options: Any) -> "requests.Response":
    """One request; on v1 with a stored refresh token, a 401 refreshes the token (saved, as
    every command does) and the request is sent once more."""
    from kalixo_cli.api.auth import RefreshingV1Client

    transport = client.transport
    if not isinstance(client, RefreshingV1Client):
        return transport.request(method, path, **options)

    def attempt() -> "requests.Response":
        response = transport.request(method, path, **options)
        if response.status_code == 401:
            transport.raise_for(response)  # AuthRejected: the client refreshes and repeats
        return response

    return client.with_refresh(attempt)


def _head(response: "requests.Response", state: AppState) -> str:
    """`-i`: the status line and headers as received, credentials masked."""
    raw = getattr(response.raw, "version", 11)
    version = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(raw, "HTTP/1.1")
    lines = [f"{version} {response.status_code} {response.reason or ''}".rstrip()]
    for name, value in response.headers.items():
        shown = "[REDACTED]" if name.lower() in SECRET_HEADERS else state.redactor(value)
        lines.append(f"{name}: {shown}")
    return "\n".join(lines) + "\n\n"


def _refuse_order_writes(method: str, path: str) -> None:
    if writes_orders(method, path):
        raise UsageError(
            f"kalixo api does not send {method} {path.lstrip('/')}: orders are placed and "
            "changed only through the journal, so that none is ever bought twice",
            hint="place orders with `kalixo place-order FILE` (or --product, or "
            "place-orders for many); read them with `kalixo api orders/ID` or retrieve-order",
        )


def api(
    ctx: typer.Context,
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            show_default=False,
            help="Path under the API base URL, such as catalog/products or "
            "orders/59401 (a leading / or the version is fine).",
        ),
    ],
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            "-X",
            metavar="METHOD",
            show_default=False,
            help="GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS [default: GET, or "
            "POST with --input]. Only GET is retried.",
        ),
    ] = None,
    fields: Annotated[
        list[str] | None,
        typer.Option(
            "--field",
            "-f",
            metavar="KEY=VALUE",
            show_default=False,
            help="A string field: a query parameter of a GET, a key of the JSON "
            "body of a POST, PUT or PATCH. Repeatable.",
        ),
    ] = None,
    typed_fields: Annotated[
        list[str] | None,
        typer.Option(
            "--typed-field",
            "-F",
            metavar="KEY=VALUE",
            show_default=False,
            help="As -f, with the value read as JSON when it is (3, true, null) "
            "and @FILE as that file's text. Repeatable.",
        ),
    ] = None,
    input_file: Annotated[
        str | None,
        typer.Option(
            "--input",
            metavar="FILE",
            show_default=False,
            help="The JSON request body, from FILE (- for stdin); fields then go "
            "to the query string.",
        ),
    ] = None,
    include: Annotated[
        bool,
        typer.Option(
            "--include",
            "-i",
            help="Print the status line and the response "
            "headers before the body (credentials masked).",
        ),
    ] = False,
    jq: JqOption = None,
) -> None:
    """Call any path of the configured API, authenticated, and print the answer.

    For endpoints kalixo has no command for yet: the profile's credential, timeouts and
    deadline; GET is retried as every command's is. Requests that would place, change or
    cancel an order (anything but GET on orders/...) are refused: place-order and
    place-orders journal every order so that none is ever bought twice. An error status
    prints the body and exits 3, 4 or 5 as any command does.

    Example: kalixo api catalog/products -f take=5 --jq '.products[].name'
    """
    state = get_state(ctx)
    chosen = (method or ("POST" if input_file is not None else "GET")).upper()
    if chosen not in METHODS:
        raise UsageError(
            f"-X {method}: not an HTTP method kalixo api sends",
            hint=f"one of: {', '.join(sorted(METHODS))}",
        )
    pairs = [parse_field(text, typed=False, flag="-f") for text in fields or []]
    pairs += [parse_field(text, typed=True, flag="-F") for text in typed_fields or []]
    body = _read_input(input_file) if input_file is not None else None
    if chosen in READ_METHODS and body is not None:
        raise UsageError(f"a {chosen} request has no body: --input goes with -X POST, PUT or PATCH")
    _refuse_order_writes(chosen, urlsplit(path).path if "://" in path else path)
    params: dict[str, Any] | None = None
    headers: dict[str, str] = {}
    if body is None and pairs and chosen not in READ_METHODS:
        body = json.dumps(dict(pairs)).encode()
    elif pairs:
        params = {
            key: value if isinstance(value, str) else json.dumps(value) for key, value in pairs
        }
    if body is not None:
        headers["Content-Type"] = "application/json"
    client = _client(state)
    transport = client.transport
    relative = api_path(path, transport.base_url)
    _refuse_order_writes(chosen, relative)
    response = _send(client, chosen, relative, params=params, body=body, headers=headers)
    if include:
        sys.stdout.write(_head(response, state))
    if response.text:
        state.out.raw(response.text)
    else:
        sys.stdout.flush()
    transport.raise_for(response)
