"""Kalixo's two API generations, as a type: what differs is asked of the version."""

from __future__ import annotations

from enum import StrEnum


class ApiVersion(StrEnum):
    """v1: bearer tokens, synchronous orders found by id. v2: API keys, asynchronous
    orders also found by their externalOrderCode."""

    V1 = "v1"
    V2 = "v2"

    @property
    def finds_orders_by_code(self) -> bool:
        """Can an order be looked up by its externalOrderCode (settles unknown outcomes)."""
        return self is ApiVersion.V2

    @property
    def credential_name(self) -> str:
        return "API key" if self is ApiVersion.V2 else "token"
