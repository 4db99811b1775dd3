"""The normalized order: one shape whatever the server's spelling. Scripts rely on it.

Plain dataclasses, not pydantic: retrieve-order's start-up time is spent here, and there is
nothing to validate in what `normalize.py` has already shaped. Later versions only add fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

UNSUCCESSFUL_STATUSES = frozenset({"failed", "cancelled", "error"})


@dataclass
class OrderProduct:
    productId: int | None = None
    sku: str | None = None
    price: int | None = None
    quantity: int | None = None
    pins: list[str] = field(default_factory=list)


@dataclass
class Order:
    orderId: int | None = None
    externalOrderCode: str | None = None
    status: str | None = None
    currency: str | None = None
    price: int | None = None
    products: list[OrderProduct] = field(default_factory=list)
    # Added with API v2 (null where the server does not say):
    estimatedReadyAt: str | None = None
    delivered: int | None = None
    total: int | None = None
    reason: str | None = None

    @property
    def short_lines(self) -> list[OrderProduct]:
        """Lines with fewer PINs than units ordered (a partial delivery)."""
        return [p for p in self.products if p.quantity is not None and len(p.pins) < p.quantity]

    @property
    def unsuccessful(self) -> bool:
        return (self.status or "").lower() in UNSUCCESSFUL_STATUSES

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
