"""The sandbox's seed catalog: three real-looking products and one test product per outcome.

Pure data, no I/O. Prices are integers in minor units (pence), as everywhere in Kalixo.

Real-looking products (every order for them completes with PINs):

    id  sku                   price  name
    1   GB-EN-4251604160010   1099   Spotify Premium 1 Month Gift Card
    2   GB-EN-4251604177278   3299   Xbox Game Pass Ultimate 3 Months
    6   GB-EN-4251604133182    839   Roblox Gift Card 800 Robux

Test products, one per outcome; their sku (and EAN) is the scenario name, as in Kalixo's
own sandbox:

    id    sku / EAN      price       the order ...
    9001  KTEST-OK       1000        completes at once, with one PIN per unit
    9002  KTEST-FAIL     1000        ends ``failed``, no PINs
    9003  KTEST-SLOW     1000        is ``requested`` for ~2 s, then ``processing`` until
                                     ``slow_seconds`` (10 s by default), then ``completed``
    9004  KTEST-OPEN     open        open denomination: 500-10000 in steps of 100; completes
    9005  KTEST-CANCEL   1000        ends ``cancelled``, no PINs
    9006  KTEST-ERROR    1000        ends ``error``, no PINs
    9007  KTEST-PARTIAL  1000        delivers ceil(quantity / 2) units: 3 PINs of 5, 1 of 2,
                                     the only one of 1

On v1 an order's status is its worst line's: error > cancelled > failed > requested >
processing > completed, so mixing test products reaches every v1 status. v1 has no partial
status: a line short of PINs (KTEST-PARTIAL, quantity >= 2) is ``failed`` there and keeps
the PINs it got, as the KTEST-OK line of a KTEST-OK + KTEST-FAIL order does.

On v2 every order is ``processing`` until its ``estimatedReadyAt``, then ``completed``,
``partially_completed`` or ``failed`` by how many units got codes; KTEST-CANCEL and
KTEST-ERROR are ``failed`` there (v2 has neither status). `SCENARIOS` is the list
``GET /v2/sandbox/scenarios`` answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What happens to an order line for a product; stored with the line."""

    OK = "ok"
    FAIL = "fail"
    SLOW = "slow"
    CANCEL = "cancel"
    ERROR = "error"
    PARTIAL = "partial"

    @property
    def delivers(self) -> bool:
        """Whether units of this outcome ever get PINs."""
        return self in (Outcome.OK, Outcome.SLOW, Outcome.PARTIAL)

    def units_delivered(self, quantity: int) -> int:
        """How many of a line's ``quantity`` units get a PIN (KTEST-PARTIAL: 3 of 5)."""
        if self == Outcome.PARTIAL:
            return (quantity + 1) // 2
        return quantity if self.delivers else 0


KTEST_OK_ID = 9001
KTEST_FAIL_ID = 9002
KTEST_SLOW_ID = 9003
KTEST_OPEN_ID = 9004
KTEST_CANCEL_ID = 9005
KTEST_ERROR_ID = 9006
KTEST_PARTIAL_ID = 9007

READY_SECONDS = 2.0
"""How long a v2 order of up to 99 units is ``processing`` by default (KTEST-SLOW: the
server's ``slow_seconds``, 10 s by default)."""
SLOW_SECONDS = 10.0

DISCOUNT_PERCENT = 5
"""The sandbox reseller's commission: buying price = price less 5 %, rounded down."""


def buying_price(price: int) -> int:
    """What the reseller pays for a unit sold at ``price`` (3299 -> 3134)."""
    return price * (100 - DISCOUNT_PERCENT) // 100


@dataclass(frozen=True)
class Product:
    """One catalog entry; `to_json` spells it like the v2 spec's Product schema."""

    id: int
    ean: str
    sku: str
    name: str
    short_name: str
    price: int
    brand: str
    publisher: str
    category: str
    product_type: str
    platform: str
    outcome: Outcome = Outcome.OK
    currency: str = "GBP"
    country: str = "GB"
    open_range: tuple[int, int, int] | None = None  # (min, max, step) for open denomination
    tags: tuple[str, ...] = field(default_factory=tuple)
    description: str = ""

    @property
    def is_open(self) -> bool:
        return self.open_range is not None

    def to_v2_json(self) -> dict[str, Any]:
        """The v2 spec's Product: no v1-only ``ean``/``sku`` at the top, and no nulls.

        OpenAPI 3.1 has no ``nullable``, so the spec's ``"type": "number", "nullable": true``
        fields do not admit null; leaving them out fits both readings (and the spec's own
        list example, which leaves them out for fixed products).
        """
        data = self.to_json()
        del data["ean"], data["sku"]
        return {key: value for key, value in data.items() if value is not None}

    def to_json(self) -> dict[str, Any]:
        minimum, maximum, step = self.open_range if self.open_range else (None, None, None)
        image = f"https://cdn.kalixo.io/static-images/{self.sku}.png"
        return {
            "id": self.id,
            "productCode": self.ean,
            "ean": self.ean,
            "sku": self.sku,
            "name": self.name,
            "shortName": self.short_name,
            "image": image,
            "price": self.price,
            "currencyCode": self.currency,
            "buyingPrice": buying_price(self.price),
            "buyingCurrencyCode": self.currency,
            "discountAmount": self.price - buying_price(self.price),
            "discountPercentage": DISCOUNT_PERCENT,
            "currencyMismatch": False,
            "denominationType": "open" if self.is_open else "fixed",
            "denominationMinValue": minimum,
            "denominationMaxValue": maximum,
            "denominationStep": step,
            "denominationDefaultValue": self.price if self.is_open else None,
            "brand": self.brand,
            "publisher": self.publisher,
            "countryCode": self.country,
            "mainCategory": self.category,
            "subCategory": self.brand,
            "productCategory": self.brand,
            "productType": self.product_type,
            "platform": self.platform,
            "redeemable": "United Kingdom" if self.country == "GB" else self.country,
            "preorder": False,
            "expires": False,
            "tags": list(self.tags),
            "status": "active",
            "promotion": False,
            "serviceFee": False,
            "type": "digital",
            "languages": [
                {
                    "languageCode": "en",
                    "name": self.name,
                    "sku": self.sku,
                    "image": image,
                    "description": self.description,
                }
            ],
        }


def _test_product(
    product_id: int,
    scenario: str,
    outcome: Outcome,
    description: str,
    *,
    price: int = 1000,
    open_range: tuple[int, int, int] | None = None,
) -> Product:
    return Product(
        id=product_id,
        ean=scenario,
        sku=scenario,
        name=f"Sandbox test product {scenario}",
        short_name=scenario,
        price=price,
        brand="Kalixo Sandbox",
        publisher="Kalixo",
        category="Test",
        product_type="test",
        platform="Sandbox",
        outcome=outcome,
        tags=("sandbox", "test"),
        description=f"Sandbox test product: {description}",
        open_range=open_range,
    )


PRODUCTS: tuple[Product, ...] = (
    Product(
        id=1,
        ean="4251604160010",
        sku="GB-EN-4251604160010",
        name="Spotify Premium 1 Month Gift Card",
        short_name="Spotify",
        price=1099,
        brand="Spotify",
        publisher="Spotify",
        category="Entertainment",
        product_type="subscription",
        platform="Spotify",
        tags=("music", "subscription"),
        description="One month of Spotify Premium, redeemable in the United Kingdom.",
    ),
    Product(
        id=2,
        ean="4251604177278",
        sku="GB-EN-4251604177278",
        name="Xbox Game Pass Ultimate 3 Months",
        short_name="XGPU",
        price=3299,
        brand="Xbox",
        publisher="Microsoft",
        category="Gaming",
        product_type="subscription",
        platform="Xbox",
        tags=("bestseller", "gaming"),
        description="Three months of Xbox Game Pass Ultimate, redeemable in the United Kingdom.",
    ),
    Product(
        id=6,
        ean="4251604133182",
        sku="GB-EN-4251604133182",
        name="Roblox Gift Card 800 Robux",
        short_name="Roblox",
        price=839,
        brand="Roblox",
        publisher="Roblox Corporation",
        category="Gaming",
        product_type="credit",
        platform="Roblox",
        tags=("gaming",),
        description="800 Robux, redeemable in the United Kingdom.",
    ),
    _test_product(KTEST_OK_ID, "KTEST-OK", Outcome.OK, "the order completes with PINs."),
    _test_product(KTEST_FAIL_ID, "KTEST-FAIL", Outcome.FAIL, "the order ends failed, no PINs."),
    _test_product(
        KTEST_SLOW_ID,
        "KTEST-SLOW",
        Outcome.SLOW,
        "the order is requested, then processing for about 10 s, then completed with PINs.",
    ),
    _test_product(
        KTEST_OPEN_ID,
        "KTEST-OPEN",
        Outcome.OK,
        "open denomination, 500-10000 in steps of 100; completes with PINs.",
        price=2500,
        open_range=(500, 10000, 100),
    ),
    _test_product(
        KTEST_CANCEL_ID, "KTEST-CANCEL", Outcome.CANCEL, "the order ends cancelled, no PINs."
    ),
    _test_product(
        KTEST_ERROR_ID, "KTEST-ERROR", Outcome.ERROR, "the order ends in error, no PINs."
    ),
    _test_product(
        KTEST_PARTIAL_ID,
        "KTEST-PARTIAL",
        Outcome.PARTIAL,
        "with quantity >= 2 only half the units (rounded up) get PINs: partially_completed "
        "on v2, failed with those PINs on v1.",
    ),
)

PRODUCTS_BY_ID: dict[int, Product] = {product.id: product for product in PRODUCTS}


@dataclass(frozen=True)
class Scenario:
    """One outcome Kalixo's sandbox documents, and how to reach it here."""

    name: str
    product_ids: tuple[int, ...]
    outcome: str
    """The v2 status the order ends in."""
    v1_status: str
    """The v1 ``orderStatus`` the same order ends in."""
    description: str
    slow: bool = False
    """Whether the order stays ``processing`` for the server's ``slow_seconds``."""

    def to_json(self, ready_seconds: float, slow_seconds: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "productIds": list(self.product_ids),
            "outcome": self.outcome,
            "v1Status": self.v1_status,
            "processingSeconds": slow_seconds if self.slow else ready_seconds,
            "description": self.description,
        }


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("KTEST-OK", (KTEST_OK_ID,), "completed", "completed", "completed with codes"),
    Scenario(
        "KTEST-OPEN",
        (KTEST_OPEN_ID,),
        "completed",
        "completed",
        "open denomination 500-10000 in steps of 100: completed when the line price is in "
        "range and on a step, else 400",
    ),
    Scenario("KTEST-FAIL", (KTEST_FAIL_ID,), "failed", "failed", "failed, no codes"),
    Scenario(
        "KTEST-PARTIAL",
        (KTEST_PARTIAL_ID,),
        "partially_completed",
        "failed",
        "partially_completed when quantity >= 2: codes for half the units, rounded up "
        "(quantity 1 completes)",
    ),
    Scenario(
        "KTEST-SLOW",
        (KTEST_SLOW_ID,),
        "completed",
        "completed",
        "processing for about 10 s, then completed",
        slow=True,
    ),
    Scenario(
        "KTEST-OK + KTEST-FAIL",
        (KTEST_OK_ID, KTEST_FAIL_ID),
        "partially_completed",
        "failed",
        "partially_completed: the KTEST-OK units get codes, the KTEST-FAIL units none",
    ),
    Scenario(
        "KTEST-CANCEL",
        (KTEST_CANCEL_ID,),
        "failed",
        "cancelled",
        "failed on v2 (v1: cancelled), no codes",
    ),
    Scenario(
        "KTEST-ERROR", (KTEST_ERROR_ID,), "failed", "error", "failed on v2 (v1: error), no codes"
    ),
)


def find_product(code: str) -> Product | None:
    """The product whose EAN, sku or product code is ``code`` (case-insensitive)."""
    wanted = code.strip().upper()
    for product in PRODUCTS:
        if wanted in (product.ean.upper(), product.sku.upper()):
            return product
    return None
