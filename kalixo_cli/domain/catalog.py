"""The catalog: products in one shape, filters, paging, a local cache, orders from specs.

Kalixo's two API generations describe a product differently (v1 puts `sku` and `ean` at the
top; v2 keeps the SKU per language and calls the EAN `productCode`; range bounds may come as
numbers with a fraction part); `normalize_product` is the only place that knows. Everything
else here is pure as well: `CatalogPages` walks any `fetch(skip, take)`, `CatalogCache` is
files in a folder it is given with a clock it is given, and `request_from_products` builds an
order from `productId:quantity[:amount]` specs and a `lookup`. Nothing here imports requests,
rich or pydantic at import time.

The cache (Kalixo advises caching the catalog):

    <user cache dir>/catalog/<sha256 of the key>.json    0600 files in a 0700 folder
    key    = the API (its URL, or the sandbox's database) + API version + a fingerprint of
             the credential (accounts see their own prices) + what was asked: a page
             (filters, skip, take) or one product (id, EAN or SKU)
    file   = {"format": 1, "key": {...}, "savedAt": unix seconds, "count": n,
              "products": [normalized products]}
    fresh  while 0 <= now - savedAt < TTL: KALIXO_CATALOG_TTL seconds, default 3600;
           0 turns the cache off. `refresh=True` skips reading and writes what it fetched.
    A file that is missing, unreadable, corrupt, of another format or key, or stale is a
    miss, never an error; a write that fails is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kalixo_cli.domain.errors import ConfigError, InputError, Problem, RequestRejected, UsageError
from kalixo_cli.domain.normalize import as_int
from kalixo_cli.store.config import APP_NAME
from kalixo_cli.terminal.views import format_amount

if TYPE_CHECKING:
    from rich.console import RenderableType

    from kalixo_cli.domain.models import OrderRequest

log = logging.getLogger("kalixo.catalog")

PAGE_SIZE = 100  # the most products the API gives per request (`take`)
ENV_CATALOG_TTL = "KALIXO_CATALOG_TTL"
DEFAULT_TTL = 3600.0
CACHE_FORMAT = 1

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
_INT_FIELDS = frozenset({"id", "price", "denominationMin", "denominationMax",
                         "denominationStep", "buyingPrice"})
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
        country=(_text(raw.get("countryCode")) or _text(raw.get("country")) or "").upper()
        or None,
        category=main,
        categories=_unique([main, _text(raw.get("subCategory")),
                            _text(raw.get("productCategory"))]),
        languages=_unique([code.lower() for code in codes if code]),
        tags=_unique([tag for tag in tags if isinstance(tag, str)]
                     if isinstance(tags, list) else []),
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
        raise UsageError(f"{flag} {text!r} names nothing",
                         hint=f"give one value or a comma list, such as {flag} GB,IE")
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
    def parse(cls, *, country: str | None = None, language: str | None = None,
              brand: str | None = None, category: str | None = None, tag: str | None = None,
              search: str | None = None) -> CatalogFilters:
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
        params = {name: ",".join(getattr(self, name)) for name in FILTER_FIELDS
                  if getattr(self, name)}
        if self.search:
            params["search"] = self.search
        return params

    def key(self) -> dict[str, Any]:
        """The filters for a cache key: order and case of values do not matter."""
        key: dict[str, Any] = {name: sorted({v.casefold() for v in getattr(self, name)})
                               for name in FILTER_FIELDS}
        key["search"] = self.search.casefold() if self.search else None
        return key

    def matches(self, product: Product) -> bool:
        """The same test v2 makes on the server, for v1 (which has no filters), made here."""

        def any_of(wanted: tuple[str, ...], have: Sequence[str | None]) -> bool:
            folded = {h.casefold() for h in have if h}
            return not wanted or any(w.casefold() in folded for w in wanted)

        if not (any_of(self.country, [product.country])
                and any_of(self.language, product.languages)
                and any_of(self.brand, [product.brand])
                and any_of(self.category, product.categories)
                and any_of(self.tag, product.tags)):
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

    def __init__(self, fetch: FetchPage, *, limit: int | None = None,
                 page_size: int | None = None, short_page_ends: bool = True) -> None:
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


# --------------------------------------------------------------------------------------
# The cache.


def catalog_ttl(env: Mapping[str, str]) -> float:
    """Seconds a cached catalog answer stays fresh: KALIXO_CATALOG_TTL, else one hour."""
    text = env.get(ENV_CATALOG_TTL, "").strip()
    if not text:
        return DEFAULT_TTL
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{ENV_CATALOG_TTL} {text!r} is not a number of seconds",
                          where=f"env {ENV_CATALOG_TTL}",
                          hint=f"set {ENV_CATALOG_TTL} to 0 (no cache) or more; "
                          f"unset, it is {DEFAULT_TTL:g}")
    return value


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME)) / "catalog"


def credential_fingerprint(credential: str) -> str:
    """Tells accounts apart in cache keys; cannot be turned back into the credential."""
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class CacheHit:
    count: int | None
    products: list[Product]
    age: float  # seconds since it was fetched


class CatalogCache:
    """Catalog answers in files under `folder`, fresh for `ttl` seconds by `clock`."""

    def __init__(self, folder: Path, ttl: float, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.ttl = ttl
        self._clock = clock

    @staticmethod
    def _canonical(key: Mapping[str, Any]) -> Any:
        return json.loads(json.dumps(key, sort_keys=True))

    def path(self, key: Mapping[str, Any]) -> Path:
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return self.folder / f"{hashlib.sha256(text.encode('utf-8')).hexdigest()}.json"

    def get(self, key: Mapping[str, Any]) -> CacheHit | None:
        if self.ttl <= 0:
            return None
        path = self.path(key)
        try:
            data = json.loads(path.read_bytes())
            if (not isinstance(data, dict) or data.get("format") != CACHE_FORMAT
                    or data.get("key") != self._canonical(key)):
                return None
            saved_at, count, items = data["savedAt"], data["count"], data["products"]
            if (isinstance(saved_at, bool) or not isinstance(saved_at, (int, float))
                    or not isinstance(items, list)
                    or (count is not None and (isinstance(count, bool)
                                               or not isinstance(count, int)))):
                return None
            age = self._clock() - saved_at
            if not 0 <= age < self.ttl:
                return None
            products = [Product.from_json(item) for item in items]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, RecursionError) as exc:
            log.debug("ignoring the catalog cache file %s: %s", path, exc)
            return None
        return CacheHit(count, products, age)

    def put(self, key: Mapping[str, Any], count: int | None,
            products: Sequence[Product]) -> None:
        if self.ttl <= 0:
            return
        path = self.path(key)
        body = json.dumps({
            "format": CACHE_FORMAT, "key": self._canonical(key), "savedAt": self._clock(),
            "count": count, "products": [product.to_json() for product in products],
        }, ensure_ascii=False, separators=(",", ":"))
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(descriptor, 0o600)  # whatever the umask
                os.write(descriptor, body.encode("utf-8"))
            finally:
                os.close(descriptor)
            os.replace(temporary, path)
        except OSError as exc:
            log.debug("not caching the catalog in %s: %s", path, exc)
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------
# A client's catalog, through the cache.


class CatalogClient(Protocol):
    """What `api.v1.V1Client` and `api.v2.V2Client` offer for the catalog."""

    def catalog_page(self, skip: int, take: int,
                     filters: CatalogFilters | None = None) -> tuple[int, list[Product]]: ...

    def catalog_product(self, product_id: int) -> Product: ...

    def catalog_product_by_code(self, *, ean: str | None = None,
                                sku: str | None = None) -> Product: ...


class CatalogSource:
    """The catalog as the commands read it: a client's answers, kept in a `CatalogCache`.

    `version` says who filters (v2: the server; v1: `CatalogFilters.matches`, here, in
    the client) and how one product is found by id (v2: its own route; v1: by walking the
    product list). `fetched` and `hits` count requests made and answers the cache gave;
    `oldest` is the age in seconds of the oldest cached answer used.
    """

    def __init__(self, client: CatalogClient, *, api: str, version: str, account: str,
                 cache: CatalogCache | None, refresh: bool = False) -> None:
        self.client = client
        self.api = api
        self.version = version
        self.account = account
        self.cache = cache
        self.refresh = refresh
        self.fetched = 0
        self.hits = 0
        self.oldest: float | None = None

    @property
    def filters_on_server(self) -> bool:
        return self.version != "v1"

    def _key(self, **what: Any) -> dict[str, Any]:
        return {"api": self.api, "version": self.version, "account": self.account, **what}

    def _cached(self, key: dict[str, Any]) -> CacheHit | None:
        if self.cache is None or self.refresh:
            return None
        hit = self.cache.get(key)
        if hit is not None:
            self.hits += 1
            self.oldest = hit.age if self.oldest is None else max(self.oldest, hit.age)
        return hit

    def _keep(self, key: dict[str, Any], count: int | None,
              products: Sequence[Product]) -> None:
        if self.cache is not None:
            self.cache.put(key, count, products)

    def page(self, skip: int, take: int,
             filters: CatalogFilters | None = None) -> tuple[int, list[Product]]:
        filters = filters or CatalogFilters()
        key = self._key(page={"filters": filters.key(), "skip": skip, "take": take})
        hit = self._cached(key)
        if hit is not None and hit.count is not None:
            return hit.count, hit.products
        self.fetched += 1
        count, products = self.client.catalog_page(skip, take, filters)
        self._keep(key, count, products)
        return count, products

    def pages(self, filters: CatalogFilters | None = None, *, limit: int | None = None,
              page_size: int | None = None) -> CatalogPages:
        filters = filters or CatalogFilters()
        short_page_ends = self.filters_on_server or filters.empty
        if not short_page_ends:
            page_size = None  # matches are sparse: fetch as much as a request allows
        return CatalogPages(lambda skip, take: self.page(skip, take, filters), limit=limit,
                            page_size=page_size, short_page_ends=short_page_ends)

    def product(self, product_id: int) -> Product:
        """One product by id: what `request_from_products` takes as its `lookup`."""
        if self.version == "v1":
            return self._scan_for(product_id)
        key = self._key(product=product_id)
        hit = self._cached(key)
        if hit is not None and len(hit.products) == 1:
            return hit.products[0]
        self.fetched += 1
        product = self.client.catalog_product(product_id)
        self._keep(key, None, [product])
        return product

    def _scan_for(self, product_id: int) -> Product:
        """v1 reads no product by id: walk the list (cached), then once more afresh."""
        hits_before = self.hits
        found = next((p for p in self.pages() if p.id == product_id), None)
        if found is None and self.hits > hits_before and not self.refresh:
            self.refresh = True  # the product may be newer than the cache
            try:
                found = next((p for p in self.pages() if p.id == product_id), None)
            finally:
                self.refresh = False
        if found is None:
            raise RequestRejected(
                f"product {product_id} is not in the catalog", status=404,
                hint="`kalixo catalog list` shows the products you can order",
            )
        return found

    def product_by_code(self, *, ean: str | None = None, sku: str | None = None) -> Product:
        key = self._key(ean=ean, sku=sku)
        hit = self._cached(key)
        if hit is not None and len(hit.products) == 1:
            return hit.products[0]
        self.fetched += 1
        product = self.client.catalog_product_by_code(ean=ean, sku=sku)
        self._keep(key, None, [product])
        return product


# --------------------------------------------------------------------------------------
# Orders from the command line: --product productId:quantity[:amount].

SPEC_FLAG = "--product"
_SPEC_SHAPE = "productId:quantity, or productId:quantity:amount for an open-denomination product"


@dataclass(frozen=True)
class ProductSpec:
    text: str
    product_id: int
    quantity: int
    amount: int | None


def _spec_number(text: str, what: str) -> int:
    value = text.strip()
    if not value.isdigit() or not value.isascii():
        if re.fullmatch(r"\d*\.\d+", value):
            raise ValueError(f"the {what} {value} is not a whole number: amounts are in "
                             f"minor units (5050 is 50.50)")
        raise ValueError(f"the {what} {value!r} is not a whole number")
    return int(value)


def parse_product_spec(text: str) -> ProductSpec:
    """`814:2` or `814:1:5050` -> ProductSpec; ValueError saying what is wrong."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"expected {_SPEC_SHAPE}")
    product_id = _spec_number(parts[0], "productId")
    quantity = _spec_number(parts[1], "quantity")
    if product_id < 1:
        raise ValueError("the productId must be 1 or more")
    if quantity < 1:
        raise ValueError("the quantity must be 1 or more")
    amount = _spec_number(parts[2], "amount") if len(parts) == 3 else None
    return ProductSpec(text, product_id, quantity, amount)


def _range_text(product: Product) -> str:
    low = format_amount(product.denominationMin, product.currency)
    high = format_amount(product.denominationMax, product.currency)
    step = format_amount(product.denominationStep, product.currency)
    return f"{low} to {high} in steps of {step}"


def _unit_price(spec: ProductSpec, product: Product) -> int:
    """The line's unit price from the catalog, checked as Kalixo checks it; else ValueError."""
    if not product.is_open:
        if spec.amount is not None:
            raise ValueError(
                f"product {product.id} has a fixed price "
                f"({format_amount(product.price, product.currency)}); give "
                f"{spec.product_id}:{spec.quantity} without an amount")
        if product.price is None:
            raise ValueError(f"the catalog gives product {product.id} no price")
        return product.price
    low, high, step = product.denominationMin, product.denominationMax, product.denominationStep
    if low is None or high is None:
        raise ValueError(f"the catalog gives open-denomination product {product.id} no range")
    bounds = f"range {low}-{high}"
    if spec.amount is None:
        raise ValueError(
            f"product {product.id} is open-denomination ({_range_text(product)}): give the "
            f"amount in minor units, such as {spec.product_id}:{spec.quantity}:{low}")
    if not low <= spec.amount <= high:
        raise ValueError(f"{spec.amount} is outside the {bounds}"
                         f"{f', step {step}' if step else ''} of product {product.id}")
    if step and spec.amount % step:
        raise ValueError(f"{spec.amount} is not a multiple of the step {step} ({bounds})")
    return spec.amount


def request_from_products(specs: list[str], *, lookup: Callable[[int], Product],
                          currency: str | None, code: str) -> OrderRequest:
    """An order from `--product` specs, priced and labelled from the catalog.

    Each spec is `productId:quantity`, or `productId:quantity:amount` (minor units) for an
    open-denomination product. Price, SKU and currency come from `lookup` (a catalog
    product by id; a `RequestRejected` 404 means "not in the catalog"); the amount of an
    open product is checked against its range and step here, before anything is sent.
    `currency`, when given, is the currency every product must be priced in; without it the
    products' own currency is the order's, and they must agree. Every problem is reported
    at once as an `InputError` whose fields name the specs (`--product 814:1:5050`).
    """
    from pydantic import ValidationError

    from kalixo_cli.domain.models import OrderLine, OrderRequest

    if not specs:
        raise UsageError(f"no products: give {SPEC_FLAG} {_SPEC_SHAPE.split(',')[0]} "
                         "at least once")
    wanted = currency.strip().upper() if currency else None
    problems: list[Problem] = []
    lines: list[tuple[ProductSpec, Product, int]] = []
    for text in specs:
        where = f"{SPEC_FLAG} {text}"
        try:
            spec = parse_product_spec(text)
        except ValueError as exc:
            problems.append(Problem(str(exc), field=where))
            continue
        try:
            product = lookup(spec.product_id)
        except RequestRejected as exc:
            if exc.status != 404:
                raise
            problems.append(Problem(f"product {spec.product_id} is not in the catalog",
                                    field=where))
            continue
        try:
            price = _unit_price(spec, product)
            if not product.sku:
                raise ValueError(f"the catalog gives product {product.id} no SKU")
            if not product.currency:
                raise ValueError(f"the catalog gives product {product.id} no currency")
            if wanted is not None and product.currency != wanted:
                raise ValueError(f"product {product.id} is priced in {product.currency}, "
                                 f"not {wanted} (--currency)")
        except ValueError as exc:
            problems.append(Problem(str(exc), field=where))
            continue
        lines.append((spec, product, price))
    currencies = list(dict.fromkeys(product.currency for _, product, _ in lines
                                    if product.currency))
    if not problems and len(currencies) > 1:
        by_currency = "; ".join(
            f"{c}: {', '.join(s.text for s, p, _ in lines if p.currency == c)}"
            for c in currencies)
        problems.append(Problem(
            f"the products are priced in {' and '.join(currencies)} ({by_currency}); one "
            "order holds one currency", field=SPEC_FLAG))
    if problems:
        raise InputError(problems, hint=f"{SPEC_FLAG} takes {_SPEC_SHAPE}; "
                         "`kalixo catalog show ID` shows a product's price or range")
    order_currency = wanted or currencies[0]
    try:
        order_lines = [
            OrderLine(productId=product.id, price=price, sku=product.sku or "",
                      currency=order_currency, quantity=spec.quantity)
            for spec, product, price in lines
        ]
        return OrderRequest(
            externalOrderCode=code, currency=order_currency,
            price=sum(line.total for line in order_lines), orderProducts=order_lines,
        )
    except ValidationError as exc:
        raise InputError([
            Problem(error["msg"], field=_field_name(error["loc"], lines))
            for error in exc.errors()
        ]) from None


def _field_name(loc: tuple[int | str, ...],
                lines: list[tuple[ProductSpec, Product, int]]) -> str:
    """Where pydantic found a problem, in the user's words: the spec, or the order code."""
    if len(loc) >= 2 and loc[0] == "orderProducts" and isinstance(loc[1], int) \
            and loc[1] < len(lines):
        return f"{SPEC_FLAG} {lines[loc[1]][0].text}"
    if loc and loc[0] == "externalOrderCode":
        return "--external-order-code"
    return ".".join(str(part) for part in loc) or "order"


# --------------------------------------------------------------------------------------
# Rendering: pure, for output.py to print.

CSV_FIELDS = ("id", "sku", "productCode", "name", "brand", "country", "category",
              "languages", "tags", "denominationType", "price", "currency",
              "denominationMin", "denominationMax", "denominationStep", "buyingPrice", "status")


def csv_row(product: Product) -> dict[str, Any]:
    """One CSV row: lists joined by spaces, amounts in minor units as everywhere."""
    data = product.to_json()
    row = {name: data[name] for name in CSV_FIELDS}
    for name in ("languages", "tags"):
        row[name] = " ".join(data[name])
    return row


def price_label(product: Product) -> str:
    """'32.99 GBP', or for an open denomination '5.00-100.00 GBP, step 1.00'."""
    if not product.is_open:
        return format_amount(product.price, product.currency)
    unit = f" {product.currency}" if product.currency else ""
    low = format_amount(product.denominationMin, product.currency).removesuffix(unit)
    high = format_amount(product.denominationMax, product.currency)
    label = f"{low}-{high}"
    if product.denominationStep:
        step = format_amount(product.denominationStep, product.currency).removesuffix(unit)
        label += f", step {step}"
    return label


def _box(plain: bool) -> Any:
    from rich import box

    return None if plain else box.SIMPLE_HEAD


def catalog_view(products: Sequence[Product], *, plain: bool = False) -> RenderableType:
    """One row a product; the price column shows open-denomination ranges."""
    from rich.table import Table

    table = Table(box=_box(plain), show_edge=False, pad_edge=False)
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("SKU", overflow="fold")
    table.add_column("Name", overflow="fold")
    table.add_column("Brand", overflow="fold")
    table.add_column("Country", no_wrap=True)
    table.add_column("Price", justify="right", no_wrap=True)
    for product in products:
        table.add_row(str(product.id), product.sku or "-", product.name or "-",
                      product.brand or "-", product.country or "-", price_label(product))
    return table


def product_view(product: Product) -> RenderableType:
    """Every field of one product, a line each."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, str | None]] = [
        ("ID", str(product.id)),
        ("Name", product.name),
        ("SKU", product.sku),
        ("Product code", product.productCode),
        ("Brand", product.brand),
        ("Country", product.country),
        ("Category", " / ".join(product.categories) or None),
        ("Languages", ", ".join(product.languages) or None),
        ("Tags", ", ".join(product.tags) or None),
        ("Denomination", product.denominationType),
        ("Price" if not product.is_open else "Range", price_label(product)),
    ]
    if product.is_open and product.price is not None:
        rows.append(("Default amount", format_amount(product.price, product.currency)))
    rows.append(("Buying price", format_amount(product.buyingPrice, product.currency)
                 if product.buyingPrice is not None else None))
    rows.append(("Status", product.status))
    for label, value in rows:
        grid.add_row(label, value if value else "-")
    return grid


def summary_lines(pages: CatalogPages, *, filtered_here: bool,
                  cache_age: float | None) -> list[str]:
    """What a listing says on stderr once it is printed: what was left out, and whether
    the answer came from the cache."""
    lines: list[str] = []
    if pages.more:
        if filtered_here:
            lines.append(f"showing the first {pages.listed} matches; more may match: "
                         "--all lists every one")
        else:
            lines.append(f"showing {pages.listed} of {pages.count} products: --all lists "
                         "every one, --limit N another number")
    if cache_age is not None:
        lines.append(cache_note(cache_age))
    return lines


def cache_note(age: float) -> str:
    return f"from the local catalog cache ({_age_text(age)} old); --refresh fetches it again"


def _age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
