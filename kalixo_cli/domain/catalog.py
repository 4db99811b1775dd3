"""Products in one shape, whatever the API generation, with filters and paging. Pure.

Kalixo's two API generations describe a product differently (v1 puts `sku` and `ean` at the
top; v2 keeps the SKU per language and calls the EAN `productCode`; range bounds may come as
numbers with a fraction part); `normalize_product` is the only place that knows.
`CatalogPages` walks any `fetch(skip, take)`. The cache is `store.catalog_cache`, the
client's catalog through it `workflows.catalog_source`, `--product` specs
`inputs.product_spec`, the views `terminal.views`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from kalixo_cli.domain.errors import UsageError
from kalixo_cli.domain.normalize import as_int

log = logging.getLogger("kalixo.catalog")
PAGE_SIZE = 100  # the most products the API gives per request (`take`)


# --------------------------------------------------------------------------------------
# The product.


@dataclass(frozen=True)
class Product:
    """A catalog product, whichever API described it. Amounts in minor units.

    A fixed product sells at `price`; an open-denomination one (`denominationType` "open")
    at any amount from `denominationMin` to `denominationMax` that is a multiple of
    `denominationStep` (`price` is then its default amount, when the API gives one).
    """

    id: int
    sku: str | None = None
    productCode: str | None = None
    name: str | None = None
    brand: str | None = None
    country: str | None = None
    category: str | None = None
    categories: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    denominationType: str = "fixed"
    price: int | None = None
    currency: str | None = None
    denominationMin: int | None = None
    denominationMax: int | None = None
    denominationStep: int | None = None
    buyingPrice: int | None = None
    status: str | None = None

    @property
    def is_open(self) -> bool:
        return self.denominationType == "open"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in _LIST_FIELDS:
            data[name] = list(data[name])
        return data

    @classmethod
    def from_json(cls, data: Any) -> Product:
        """The inverse of `to_json` (the cache's files); anything else raises ValueError."""
        if not isinstance(data, dict) or set(data) != _FIELD_NAMES:
            raise ValueError("not a normalized product")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in _LIST_FIELDS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} is not a list of strings")
                values[name] = tuple(value)
            elif name in _INT_FIELDS:
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"{name} is not an integer")
                values[name] = value
            elif value is not None and not isinstance(value, str):
                raise ValueError(f"{name} is not a string")
            else:
                values[name] = value
        if not isinstance(values["id"], int) or not isinstance(values["denominationType"], str):
            raise ValueError("a product needs an id and a denomination type")
        return cls(**values)


_FIELD_NAMES = frozenset(f.name for f in fields(Product))
_LIST_FIELDS = ("categories", "languages", "tags")
_INT_FIELDS = frozenset(
    {"id", "price", "denominationMin", "denominationMax", "denominationStep", "buyingPrice"}
)
_LOCALE_SKU = re.compile(r"([A-Za-z]{2})-([A-Za-z]{2})-(.+)")


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _unique(values: Sequence[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if value and value.casefold() not in (v.casefold() for v in seen):
            seen[value] = None
    return tuple(seen)


def normalize_product(raw: Any) -> Product:
    """One product as the API sent it (v1 or v2) -> `Product`; ValueError if it is none."""
    if not isinstance(raw, dict):
        raise ValueError("a product is not a JSON object")
    product_id = as_int(raw.get("id", raw.get("productId")))
    if product_id is None or product_id < 1:
        raise ValueError("a product has no numeric id")
    languages = [entry for entry in raw.get("languages") or [] if isinstance(entry, dict)]
    sku = _text(raw.get("sku")) or next(
        (text for entry in languages if (text := _text(entry.get("sku")))), None
    )
    codes = [_text(entry.get("languageCode")) for entry in languages]
    locale = _LOCALE_SKU.fullmatch(sku) if sku else None
    if not any(codes) and locale:
        codes = [locale.group(2)]
    kind = (_text(raw.get("denominationType")) or "fixed").lower()
    tags = raw.get("tags")
    main = _text(raw.get("mainCategory")) or _text(raw.get("category"))
    return Product(
        id=product_id,
        sku=sku,
        productCode=_text(raw.get("productCode")) or _text(raw.get("ean")),
        name=_text(raw.get("name")),
        brand=_text(raw.get("brand")),
        country=(_text(raw.get("countryCode")) or _text(raw.get("country")) or "").upper() or None,
        category=main,
        categories=_unique(
            [main, _text(raw.get("subCategory")), _text(raw.get("productCategory"))]
        ),
        languages=_unique([code.lower() for code in codes if code]),
        tags=_unique(
            [tag for tag in tags if isinstance(tag, str)] if isinstance(tags, list) else []
        ),
        denominationType=kind,
        price=as_int(raw.get("price")),
        currency=(_text(raw.get("currencyCode")) or _text(raw.get("currency")) or "").upper()
        or None,
        denominationMin=as_int(raw.get("denominationMinValue")) if kind == "open" else None,
        denominationMax=as_int(raw.get("denominationMaxValue")) if kind == "open" else None,
        denominationStep=as_int(raw.get("denominationStep")) if kind == "open" else None,
        buyingPrice=as_int(raw.get("buyingPrice")),
        status=_text(raw.get("status")),
    )


def normalize_product_list(body: Any, *, skip: int, take: int) -> tuple[int, list[Product]]:
    """A list answer -> (count, products): `{"count", "products": [...]}` or a bare list.

    A bare list has no count: a full page means there may be more, so the count claims one
    more than this page reaches. Products that are not products are skipped with a log line.
    """
    if isinstance(body, dict) and isinstance(body.get("products"), list):
        items: list[Any] = body["products"]
        count = as_int(body.get("count"))
        if count is None:
            count = skip + len(items) + (1 if len(items) >= take else 0)
    elif isinstance(body, list):
        items = body
        count = skip + len(items) + (1 if len(items) >= take else 0)
    else:
        raise ValueError("the answer is not a product list")
    products: list[Product] = []
    for index, item in enumerate(items):
        try:
            products.append(normalize_product(item))
        except ValueError as exc:
            log.info("skipping product %d of the page at %d: %s", index, skip, exc)
    return max(count, 0), products


# --------------------------------------------------------------------------------------
# Filters.

FILTER_FIELDS = ("country", "language", "brand", "category", "tag")


def split_list(text: str | None, flag: str) -> tuple[str, ...]:
    """`--country GB, IE` -> ("GB", "IE"); blank entries dropped, at least one required."""
    if text is None:
        return ()
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values:
        raise UsageError(
            f"{flag} {text!r} names nothing",
            hint=f"give one value or a comma list, such as {flag} GB,IE",
        )
    return values


@dataclass(frozen=True)
class CatalogFilters:
    """The v2 catalog filters: any value of a field matches (OR), every field must (AND)."""

    country: tuple[str, ...] = ()
    language: tuple[str, ...] = ()
    brand: tuple[str, ...] = ()
    category: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    search: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        country: str | None = None,
        language: str | None = None,
        brand: str | None = None,
        category: str | None = None,
        tag: str | None = None,
        search: str | None = None,
    ) -> CatalogFilters:
        if search is not None and not search.strip():
            raise UsageError("--search is empty", hint="give a word of the name or a code")
        return cls(
            country=split_list(country, "--country"),
            language=split_list(language, "--language"),
            brand=split_list(brand, "--brand"),
            category=split_list(category, "--category"),
            tag=split_list(tag, "--tag"),
            search=search.strip() if search is not None else None,
        )

    @property
    def empty(self) -> bool:
        return not (any(getattr(self, name) for name in FILTER_FIELDS) or self.search)

    def params(self) -> dict[str, str]:
        """The v2 query parameters: comma lists, only the fields given."""
        params = {
            name: ",".join(getattr(self, name)) for name in FILTER_FIELDS if getattr(self, name)
        }
        if self.search:
            params["search"] = self.search
        return params

    def key(self) -> dict[str, Any]:
        """The filters for a cache key: order and case of values do not matter."""
        key: dict[str, Any] = {
            name: sorted({v.casefold() for v in getattr(self, name)}) for name in FILTER_FIELDS
        }
        key["search"] = self.search.casefold() if self.search else None
        return key

    def matches(self, product: Product) -> bool:
        """The same test v2 makes on the server, for v1 (which has no filters), made here."""

        def any_of(wanted: tuple[str, ...], have: Sequence[str | None]) -> bool:
            folded = {h.casefold() for h in have if h}
            return not wanted or any(w.casefold() in folded for w in wanted)

        if not (
            any_of(self.country, [product.country])
            and any_of(self.language, product.languages)
            and any_of(self.brand, [product.brand])
            and any_of(self.category, product.categories)
            and any_of(self.tag, product.tags)
        ):
            return False
        if self.search:
            needle = self.search.casefold()
            haystack = (product.name, product.productCode, product.sku)
            return any(needle in text.casefold() for text in haystack if text)
        return True


# --------------------------------------------------------------------------------------
# Paging.

FetchPage = Callable[[int, int], tuple[int, list[Product]]]


class CatalogPages:
    """The products `fetch(skip, take)` gives, page by page, until `limit` or the count.

    Iterate once; the pages are fetched as the iteration reaches them, so a caller printing
    rows as they come never holds the catalog. `skip` advances by `take` whatever a page
    holds: a v1 page filtered here may hold fewer products than it covered. With
    `short_page_ends` (products filtered by the server, or not at all) a short page is the
    last even when the count says otherwise. Afterwards `count` is the last count the API
    gave and `more` says whether products were left unlisted because of `limit`.
    """

    def __init__(
        self,
        fetch: FetchPage,
        *,
        limit: int | None = None,
        page_size: int | None = None,
        short_page_ends: bool = True,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("limit must be positive")
        self._fetch = fetch
        self.limit = limit
        self.take = max(1, min(page_size or PAGE_SIZE, PAGE_SIZE))
        self.short_page_ends = short_page_ends
        self.count: int | None = None
        self.listed = 0
        self.more = False

    def __iter__(self) -> Iterator[Product]:
        skip = 0
        while True:
            count, products = self._fetch(skip, self.take)
            self.count = count
            for index, product in enumerate(products):
                self.listed += 1
                yield product
                if self.limit is not None and self.listed >= self.limit:
                    self.more = index + 1 < len(products) or skip + self.take < count
                    return
            skip += self.take
            if skip >= count or (self.short_page_ends and len(products) < self.take):
                return
