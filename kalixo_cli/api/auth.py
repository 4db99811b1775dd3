"""API v1 sign-in: email and password for an access token (~4 h) and a refresh token (~8 h).

The password is sent once and never stored; the tokens are. A 401 on a request is answered by
one refresh and one repeat of the request (`RefreshingV1Client`); a refused refresh means the
session is over and the user must log in again.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from kalixo_cli.api.base import OrderResult
from kalixo_cli.api.http import Transport
from kalixo_cli.api.v1 import V1Client
from kalixo_cli.domain.errors import AuthRejected, TransportError

if TYPE_CHECKING:
    from kalixo_cli.domain.models import OrderRequest

T = TypeVar("T")


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str


def _tokens(data: Any, where: str) -> Tokens:
    if (
        isinstance(data, dict)
        and isinstance(data.get("accessToken"), str)
        and isinstance(data.get("refreshToken"), str)
    ):
        return Tokens(data["accessToken"], data["refreshToken"])
    raise TransportError(
        "the API's sign-in answer has no accessToken and refreshToken", where=where
    )


def login(transport: Transport, email: str, password: str) -> Tokens:
    answer = transport.post_json("auth/login", {"email": email, "password": password})
    return _tokens(answer.data, transport.url("auth/login"))


def refresh(transport: Transport, refresh_token: str) -> Tokens:
    try:
        answer = transport.post_json("auth/refresh", bearer=refresh_token)
    except AuthRejected as exc:
        raise AuthRejected(
            "the session has expired: the refresh token was refused",
            status=exc.status,
            server_message=exc.server_message,
            correlation_key=exc.correlation_key,
            where=exc.where,
            hint="log in again with `kalixo auth login`",
        ) from exc
    return _tokens(answer.data, transport.url("auth/refresh"))


def jwt_expiry(token: str) -> datetime | None:
    """When a JWT says it expires; None for tokens that are not JWTs. Not verified: it only
    tells the user when to log in again."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(float(payload["exp"]), UTC)
    except (ValueError, KeyError, TypeError):
        return None


class RefreshingV1Client(V1Client):
    """On a 401, refresh the access token once, save it, and repeat the request once.

    A 401 means the request was not processed, so repeating a place-order is safe.
    """

    def __init__(
        self, transport: Transport, refresh_token: str, save: Callable[[Tokens], None]
    ) -> None:
        super().__init__(transport)
        self._refresh_token = refresh_token
        self._save = save
        self._refreshed = False

    def _once_more(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except AuthRejected as exc:
            if exc.status != 401 or self._refreshed:
                raise
        self._refreshed = True
        tokens = refresh(self.transport, self._refresh_token)
        self._refresh_token = tokens.refresh
        self._save(tokens)
        self.transport.set_token(tokens.access)
        return call()

    def with_refresh(self, call: Callable[[], T]) -> T:
        """Any request of this client's (`kalixo api`'s), refreshed and repeated once on a
        401 (AuthRejected) as this client's own requests are."""
        return self._once_more(call)

    def place_order(
        self, request: OrderRequest, *, on_send: Callable[[], None] | None = None
    ) -> OrderResult:
        return self._once_more(lambda: V1Client.place_order(self, request, on_send=on_send))

    def retrieve_order(self, order_id: int | str) -> OrderResult:
        return self._once_more(lambda: V1Client.retrieve_order(self, order_id))
