"""JSON Schemas (2020-12) of what kalixo reads and prints, for `kalixo schema NAME`.

Generated, never written by hand: the order file and a bulk order from the pydantic model
that validates them (`models.OrderRequest`, with the parts `inputs/order_file.py` fills in made
optional), the printed order and product from the dataclasses that print them (through
pydantic's `TypeAdapter`), and the other outputs from the small models below, which the
tests hold to the real outputs of every command (no field missing, none extra).

Output schemas leave `additionalProperties` open: later versions only add fields.
Imported only by `kalixo schema` and the tests (pydantic's schema machinery is not cheap).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Filled in by inputs/order_file.py when absent or null (see README, "JSON is the request body").
_OPTIONAL_ORDER_FIELDS = ("externalOrderCode", "price", "currency")
_OPTIONAL_LINE_FIELDS = ("currency",)


class _Out(BaseModel):
    """An output shape: every field is always printed (null when unknown)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class ErrorDetail(BaseModel):
    kind: str = Field(
        description="What went wrong, for a script to branch on "
        "(usage, invalid_input, rejected, auth_rejected, temporary, ...)"
    )
    exitCode: int = Field(description="The exit code the command ended with")
    message: str
    where: str | None = Field(description="File and line, or the URL, it is about")
    hint: str | None = Field(description="How to fix it")


class Problem(BaseModel):
    message: str
    where: str | None
    field: str | None


class ErrorObjectDetail(ErrorDetail):
    status: int | None = Field(None, description="HTTP status, when the API answered")
    serverMessage: str | None = Field(None, description="The API's own message")
    correlationKey: str | None = Field(None, description="For Kalixo support")
    problems: list[Problem] | None = Field(None, description="Every problem of invalid input")
    profile: str | None = Field(None, description="The profile in use, once known")
    apiUrl: str | None = Field(None, description="The API URL in use, once known")


class ErrorObject(BaseModel):
    """Written to stderr as one line with `-o json` when a command fails."""

    error: ErrorObjectDetail


class ResultError(BaseModel):
    kind: str
    exitCode: int | None = None
    message: str
    serverMessage: str | None = None
    correlationKey: str | None = None


class BulkResult(_Out):
    """One line of `place-orders -o jsonl`: one order's outcome."""

    externalOrderCode: str
    outcome: Literal[
        "placed", "rejected", "failed", "unknown", "skipped", "skipped_unknown", "skipped_busy"
    ]
    orderId: int | None
    status: str | None
    error: ResultError | None
    order: dict[str, Any] | None = Field(
        description="The order as `kalixo schema order` describes it, when this run has it"
    )


class SentBy(_Out):
    """The kalixo process that last claimed the code (it still holds it while `sending`)."""

    host: str | None
    pid: int | None
    user: str | None
    """Recorded by the shared journal (PostgreSQL); null in a machine's local journal."""


class JournalEntry(_Out):
    """One row of `kalixo orders list` / `orders show`: what was sent (from this machine,
    or from every machine that shares the journal)."""

    api: str
    externalOrderCode: str
    state: Literal["placed", "rejected", "failed", "unknown", "sending"]
    orderId: int | None
    status: str | None
    errorKind: str | None
    error: str | None
    attempts: int
    createdAt: str
    updatedAt: str
    requestHash: str
    sentBy: SentBy | None
    leaseUntil: str | None


class SyncResult(_Out):
    """One row of `kalixo orders sync`: a journal row looked at, before and after."""

    externalOrderCode: str
    orderId: int | None
    stateBefore: Literal["placed", "unknown"]
    statusBefore: str | None
    state: Literal["placed", "failed", "unknown"]
    status: str | None
    changed: bool
    detail: str | None = Field(description="What the API said, or why nothing changed")
    errorKind: str | None = Field(
        description="Why the API could not be asked (as the error object's kind)"
    )


class Wallet(_Out):
    """`kalixo wallet`: balances in major units, as the API gives them (API v2)."""

    balances: dict[str, float]
    lowBalance: bool
    threshold: float | None


class Ping(_Out):
    """`kalixo ping` (API v2)."""

    status: str | None
    timestamp: str | None = Field(description="The server's clock (ISO 8601)")
    roundTripMs: float | None
    clockSkewSeconds: float | None = Field(description="Server's clock minus ours")


class DoctorCheck(_Out):
    """One check of `kalixo doctor` (it prints a list of them)."""

    check: str
    status: Literal["ok", "warn", "fail", "skip"]
    detail: str
    hint: str | None


class Sourced(_Out):
    value: Any
    source: str | None = Field(description="flag, env NAME, config, profile NAME, default")


class Settings(_Out):
    """`kalixo config show`: every setting, secrets masked, with where it comes from."""

    profile: Sourced
    api_url: Sourced
    api_version: Sourced
    token: Sourced
    api_key: Sourced
    timeout: Sourced
    retries: Sourced
    deadline: Sourced
    journal_url: Sourced
    config_path: str


class Profile(_Out):
    """One profile of `kalixo config profiles` (it prints a list), credentials masked."""

    profile: str
    active: bool
    api_url: str | None
    api_version: str | None
    token: str | None
    api_key: str | None


class AuthStatus(_Out):
    """`kalixo auth status`: the credential in force, masked, and when tokens expire."""

    profile: str
    apiUrl: str
    apiVersion: Literal["v1", "v2"]
    authenticated: bool
    credential: Literal["token", "api key"]
    masked: str | None
    source: str | None
    store: str | None
    accessTokenExpires: str | None
    refreshTokenExpires: str | None


def _listed(model: type[BaseModel], what: str) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        item = model.model_json_schema(mode="serialization")
        defs = item.pop("$defs", {})
        return {
            "type": "array",
            "items": item,
            "description": what,
            **({"$defs": defs} if defs else {}),
        }

    return build


def _order_request(required_code: bool) -> dict[str, Any]:
    """`OrderRequest`'s schema, loosened where inputs/order_file.py completes the order."""
    from kalixo_cli.domain.models import SCHEMA_KEY, OrderRequest

    schema = OrderRequest.model_json_schema(mode="validation")
    optional = [
        f for f in _OPTIONAL_ORDER_FIELDS if not (required_code and f == "externalOrderCode")
    ]
    _loosen(schema, optional)
    line = schema["$defs"]["OrderLine"]
    _loosen(line, list(_OPTIONAL_LINE_FIELDS))
    schema["properties"] = {
        SCHEMA_KEY: {
            "type": "string",
            "description": "The schema this file follows (for editors; kalixo ignores it)",
        },
        **schema["properties"],
    }
    schema["description"] = (
        "A kalixo order"
        + (" in a batch (place-orders)" if required_code else " file")
        + ". Amounts are integers in minor units (3299 is 32.99). price, currency and "
        "line currencies may be left out or null: kalixo fills them in (price must equal "
        "the lines' total when given; one currency per order)"
        + ("" if required_code else "; externalOrderCode too (a code is generated)")
        + "."
    )
    return schema


def _loosen(schema: dict[str, Any], fields: list[str]) -> None:
    schema["required"] = [f for f in schema["required"] if f not in fields]
    for name in fields:
        prop = schema["properties"][name]
        schema["properties"][name] = {
            "anyOf": [{k: v for k, v in prop.items() if k != "title"}, {"type": "null"}],
            "title": prop.get("title", name),
        }


def _serialized(target: Any) -> dict[str, Any]:
    """A printing dataclass's schema: every field is always printed, so all are required."""
    adapter: TypeAdapter[Any] = TypeAdapter(target)
    schema = adapter.json_schema(mode="serialization")
    for shape in (schema, *schema.get("$defs", {}).values()):
        if "properties" in shape:
            shape["required"] = list(shape["properties"])
    return schema


def _order() -> dict[str, Any]:
    from kalixo_cli.domain.order import Order

    schema = _serialized(Order)
    schema["description"] = (
        "An order as kalixo prints it (place-order, retrieve-order, "
        "the order of a place-orders result): one shape on v1 and v2"
    )
    return schema


def _product() -> dict[str, Any]:
    from kalixo_cli.domain.catalog import Product

    schema = _serialized(Product)
    schema["description"] = "A catalog product as `kalixo catalog list/show` prints it"
    return schema


def _model(
    model: type[BaseModel], mode: Literal["validation", "serialization"] = "serialization"
) -> Callable[[], dict[str, Any]]:
    return lambda: model.model_json_schema(mode=mode)


def _bulk_result() -> dict[str, Any]:
    schema = BulkResult.model_json_schema(mode="serialization")
    order = _order()
    defs = schema.setdefault("$defs", {})
    for name, definition in order.pop("$defs", {}).items():
        defs[name] = definition
    defs["Order"] = order
    schema["properties"]["order"] = {
        "anyOf": [{"$ref": "#/$defs/Order"}, {"type": "null"}],
        "description": schema["properties"]["order"].get("description", ""),
    }
    return schema


SCHEMAS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "order-file": ("an order file (JSON) for place-order", lambda: _order_request(False)),
    "bulk-order": (
        "one order of a place-orders batch (a JSON array item or a JSON Lines line)",
        lambda: _order_request(True),
    ),
    "order": ("an order as kalixo prints it (place-order, retrieve-order)", _order),
    "bulk-result": ("one line of place-orders -o jsonl", _bulk_result),
    "error": ("the JSON error object on stderr (with -o json)", _model(ErrorObject)),
    "journal-entry": ("one entry of orders list / orders show", _model(JournalEntry)),
    "product": ("a catalog product (catalog list / show)", _product),
    "sync-result": ("one row of orders sync", _model(SyncResult)),
    "wallet": ("wallet", _model(Wallet)),
    "ping": ("ping", _model(Ping)),
    "doctor": ("doctor: the list of checks", _listed(DoctorCheck, "kalixo doctor's checks")),
    "settings": ("config show", _model(Settings)),
    "profiles": ("config profiles", _listed(Profile, "kalixo config profiles")),
    "auth-status": ("auth status", _model(AuthStatus)),
}


def schema_names() -> list[str]:
    return list(SCHEMAS)


def schema(name: str) -> dict[str, Any]:
    """The schema called `name`, with its dialect and title; KeyError for an unknown name."""
    _description, build = SCHEMAS[name]
    body = copy.deepcopy(build())
    return {
        "$schema": DIALECT,
        "title": f"kalixo {name}",
        **{k: v for k, v in body.items() if k != "title"},
    }
