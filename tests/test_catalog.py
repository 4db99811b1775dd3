"""The catalog: normalized products, filters, paging, the local cache, `catalog list/show`
against the live sandbox (v1 and v2), and orders built from `--product` specs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import kalixo_cli.domain.catalog as catalog
from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.catalog import (
    CatalogFilters,
    CatalogPages,
    Product,
    normalize_product,
    normalize_product_list,
)
from kalixo_cli.domain.errors import ConfigError, ExitCode, InputError, RequestRejected, UsageError
from kalixo_cli.domain.models import OrderRequest
from kalixo_cli.inputs.product_spec import request_from_products
from kalixo_cli.sandbox import KTEST_OPEN_ID
from kalixo_cli.sandbox.catalog import PRODUCTS
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.catalog_cache import CatalogCache, catalog_ttl
from kalixo_cli.terminal.views import CSV_FIELDS, price_label
from tests.helpers import run

V1_LIST = "/v1/catalog/products"
V2_LIST = "/v2/catalog/products"
ALL_IDS = [product.id for product in PRODUCTS]


@pytest.fixture(autouse=True)
def cache_home(isolated: Path) -> Path:
    """Where the catalog cache is (conftest puts XDG_CACHE_HOME under the test's folder)."""
    return isolated / "xdg-cache" / "kalixo" / "catalog"


def listed(args: list[str]) -> list[dict[str, Any]]:
    result = run(["catalog", "list", *args, "-o", "json"])
    assert result.exit_code == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


# --------------------------------------------------------------------------------------
# Normalizing: one shape from either API.

V2_EXAMPLE: dict[str, Any] = {
    "id": 2,
    "productCode": "10020000213575",
    "name": "Sony PlayStation®Network Wallet Top-Up £100",
    "price": 10000,
    "currencyCode": "GBP",
    "buyingPrice": 9500,
    "denominationType": "fixed",
    "denominationMinValue": None,
    "denominationMaxValue": None,
    "denominationStep": None,
    "brand": "PlayStation",
    "countryCode": "GB",
    "mainCategory": "Gaming",
    "subCategory": "PlayStation",
    "productCategory": "PlayStation",
    "tags": ["bestseller", "gaming"],
    "status": "active",
    "languages": [{"languageCode": "en", "sku": "GB-EN-10020000213575"}],
}


def test_a_v2_product_takes_its_sku_from_its_language() -> None:
    product = normalize_product(V2_EXAMPLE)
    assert product.to_json() == {
        "id": 2,
        "sku": "GB-EN-10020000213575",
        "productCode": "10020000213575",
        "name": "Sony PlayStation®Network Wallet Top-Up £100",
        "brand": "PlayStation",
        "country": "GB",
        "category": "Gaming",
        "categories": ["Gaming", "PlayStation"],
        "languages": ["en"],
        "tags": ["bestseller", "gaming"],
        "denominationType": "fixed",
        "price": 10000,
        "currency": "GBP",
        "denominationMin": None,
        "denominationMax": None,
        "denominationStep": None,
        "buyingPrice": 9500,
        "status": "active",
    }


def test_a_v1_product_keeps_its_sku_ean_and_an_open_range_given_as_floats() -> None:
    product = normalize_product(
        {
            "id": "814",
            "sku": "GB-EN-123",
            "ean": "123",
            "currencyCode": "gbp",
            "price": 2500,
            "denominationType": "open",
            "denominationMinValue": 500.0,
            "denominationMaxValue": 10000,
            "denominationStep": 100.0,
        }
    )
    assert (product.id, product.sku, product.productCode, product.currency) == (
        814,
        "GB-EN-123",
        "123",
        "GBP",
    )
    assert (product.denominationMin, product.denominationMax, product.denominationStep) == (
        500,
        10000,
        100,
    )
    assert product.languages == ("en",)  # from the locale SKU, as v2 spells it
    assert product.is_open


@pytest.mark.parametrize("raw", [None, [], "2", {"name": "no id"}, {"id": 0}, {"id": True}])
def test_what_is_not_a_product_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError):
        normalize_product(raw)


def test_a_list_skips_broken_products_and_a_bare_list_guesses_whether_more_follow() -> None:
    assert normalize_product_list(
        {"count": 7, "products": [{"id": 1}, "junk"]}, skip=0, take=2
    ) == (7, [Product(id=1)])
    assert normalize_product_list([{"id": 1}, {"id": 2}], skip=4, take=2)[0] == 7
    assert normalize_product_list([{"id": 1}], skip=4, take=2)[0] == 5
    with pytest.raises(ValueError):
        normalize_product_list({"items": []}, skip=0, take=2)


def test_a_product_round_trips_through_its_json() -> None:
    product = normalize_product(V2_EXAMPLE)
    assert Product.from_json(json.loads(json.dumps(product.to_json()))) == product
    with pytest.raises(ValueError):
        Product.from_json({**product.to_json(), "price": "10000"})


def test_prices_read_in_major_units_and_open_ranges_with_their_step() -> None:
    assert price_label(Product(id=1, price=3299, currency="GBP")) == "32.99 GBP"
    open_product = Product(
        id=2,
        denominationType="open",
        currency="GBP",
        price=2500,
        denominationMin=500,
        denominationMax=10000,
        denominationStep=100,
    )
    assert price_label(open_product) == "5.00-100.00 GBP, step 1.00"
    assert (
        price_label(
            Product(
                id=3,
                denominationType="open",
                currency="JPY",
                denominationMin=500,
                denominationMax=90000,
            )
        )
        == "500-90,000 JPY"
    )


# --------------------------------------------------------------------------------------
# Filters.


def test_filters_are_or_within_a_field_and_and_across_fields() -> None:
    filters = CatalogFilters.parse(country="gb, ie", brand="Xbox,Roblox", tag="gaming")
    assert filters.params() == {"country": "gb,ie", "brand": "Xbox,Roblox", "tag": "gaming"}
    xbox = Product(id=2, brand="Xbox", country="GB", tags=("gaming",))
    assert filters.matches(xbox)
    assert not filters.matches(Product(id=2, brand="Xbox", country="FR", tags=("gaming",)))
    assert not filters.matches(Product(id=2, brand="Xbox", country="GB", tags=("music",)))
    assert CatalogFilters.parse(search="pass").matches(
        Product(id=2, name="Xbox Game Pass", productCode="42")
    )
    assert CatalogFilters.parse(search="42").matches(Product(id=2, productCode="0042"))


def test_filter_keys_ignore_order_and_case() -> None:
    assert (
        CatalogFilters.parse(country="GB,IE").key() == CatalogFilters.parse(country="ie,gb").key()
    )


@pytest.mark.parametrize("kwargs", [{"country": ","}, {"tag": " "}, {"search": "  "}])
def test_an_empty_filter_is_a_usage_error(kwargs: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        CatalogFilters.parse(**kwargs)


# --------------------------------------------------------------------------------------
# Paging.


def pager(
    total: int, calls: list[tuple[int, int]], keep: Callable[[int], bool] = lambda _: True
) -> Callable[[int, int], tuple[int, list[Product]]]:
    def fetch(skip: int, take: int) -> tuple[int, list[Product]]:
        calls.append((skip, take))
        ids = range(skip + 1, min(skip + take, total) + 1)
        return total, [Product(id=i) for i in ids if keep(i)]

    return fetch


def test_pages_are_fetched_until_the_count_is_reached() -> None:
    calls: list[tuple[int, int]] = []
    pages = CatalogPages(pager(250, calls))
    assert [p.id for p in pages] == list(range(1, 251))
    assert calls == [(0, 100), (100, 100), (200, 100)]
    assert not pages.more and pages.count == 250


def test_pages_are_fetched_only_as_the_iteration_reaches_them() -> None:
    calls: list[tuple[int, int]] = []
    products = iter(CatalogPages(pager(250, calls)))
    next(products)
    assert calls == [(0, 100)]


def test_a_limit_stops_early_and_says_more_were_left() -> None:
    calls: list[tuple[int, int]] = []
    pages = CatalogPages(pager(250, calls), limit=30, page_size=30)
    assert len(list(pages)) == 30 and pages.more and calls == [(0, 30)]
    exact = CatalogPages(pager(30, []), limit=30, page_size=30)
    assert len(list(exact)) == 30 and not exact.more


def test_pages_filtered_here_go_on_past_short_pages_until_the_count() -> None:
    calls: list[tuple[int, int]] = []
    pages = CatalogPages(pager(250, calls, keep=lambda i: i % 50 == 0), short_page_ends=False)
    assert [p.id for p in pages] == [50, 100, 150, 200, 250]
    assert len(calls) == 3


def test_a_short_page_ends_the_listing_even_if_the_count_says_more() -> None:
    calls: list[tuple[int, int]] = []

    def lying(skip: int, take: int) -> tuple[int, list[Product]]:
        calls.append((skip, take))
        return 10_000, [Product(id=1)] if skip == 0 else []

    assert len(list(CatalogPages(lying))) == 1 and calls == [(0, 100)]


# --------------------------------------------------------------------------------------
# The cache, with a clock of our own.


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


KEY = {"api": "https://api.kalixo.io/v2", "page": {"skip": 0, "take": 100}}


def test_a_cached_page_is_fresh_until_the_ttl_then_a_miss(tmp_path: Path) -> None:
    clock = Clock()
    cache = CatalogCache(tmp_path / "c", 3600, clock=clock)
    assert cache.get(KEY) is None
    cache.put(KEY, 12, [Product(id=1, price=5)])
    clock.now += 3599
    hit = cache.get(KEY)
    assert hit is not None and hit.count == 12 and hit.products == [Product(id=1, price=5)]
    assert hit.age == 3599
    clock.now += 1
    assert cache.get(KEY) is None
    clock.now -= 7200  # a cache file from the future (the clock went back) is no use either
    assert cache.get(KEY) is None


def test_cache_files_are_0600_in_a_0700_folder(tmp_path: Path) -> None:
    os.umask(0o022)
    cache = CatalogCache(tmp_path / "c", 3600)
    cache.put(KEY, 1, [Product(id=1)])
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    assert stat.S_IMODE(cache.path(KEY).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"\xff\xfe",
        b"[]",
        b'{"format": 1}',
        b'{"format": 1, "key": null, "savedAt": 1, "count": 1, "products": []}',
    ],
)
def test_a_corrupt_or_foreign_cache_file_is_a_miss(tmp_path: Path, content: bytes) -> None:
    cache = CatalogCache(tmp_path, 3600)
    cache.path(KEY).write_bytes(content)
    assert cache.get(KEY) is None


def test_a_cache_entry_with_a_broken_product_is_a_miss(tmp_path: Path) -> None:
    cache = CatalogCache(tmp_path, 3600)
    cache.put(KEY, 1, [Product(id=1)])
    data = json.loads(cache.path(KEY).read_text())
    data["products"][0]["id"] = "one"
    cache.path(KEY).write_text(json.dumps(data))
    assert cache.get(KEY) is None


def test_ttl_zero_turns_the_cache_off(tmp_path: Path) -> None:
    cache = CatalogCache(tmp_path / "c", 0)
    cache.put(KEY, 1, [Product(id=1)])
    assert cache.get(KEY) is None and not (tmp_path / "c").exists()


def test_an_unwritable_cache_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    CatalogCache(tmp_path / "file" / "c", 3600).put(KEY, 1, [Product(id=1)])


def test_the_ttl_comes_from_the_environment() -> None:
    assert catalog_ttl({}) == 3600
    assert catalog_ttl({"KALIXO_CATALOG_TTL": "90"}) == 90
    assert catalog_ttl({"KALIXO_CATALOG_TTL": "0"}) == 0
    for bad in ("soon", "-1", "nan", "inf"):
        with pytest.raises(ConfigError, match="KALIXO_CATALOG_TTL"):
            catalog_ttl({"KALIXO_CATALOG_TTL": bad})


# --------------------------------------------------------------------------------------
# kalixo catalog list, API v1 (filters applied here).


def test_list_prints_the_whole_small_catalog_as_normalized_json(sandbox: RunningSandbox) -> None:
    products = listed([])
    assert [p["id"] for p in products] == ALL_IDS
    assert set(products[0]) == {f.name for f in dataclasses.fields(Product)}
    xbox = next(p for p in products if p["id"] == 2)
    assert (xbox["sku"], xbox["price"], xbox["currency"]) == ("GB-EN-4251604177278", 3299, "GBP")
    opened = next(p for p in products if p["id"] == KTEST_OPEN_ID)
    assert (
        opened["denominationType"],
        opened["denominationMin"],
        opened["denominationMax"],
        opened["denominationStep"],
    ) == ("open", 500, 10000, 100)


def test_a_second_list_comes_from_the_cache_without_a_request(sandbox: RunningSandbox) -> None:
    assert listed([]) and sandbox.request_count("GET", V1_LIST) == 1
    result = run(["catalog", "list", "-o", "json"])
    assert result.exit_code == 0
    assert [p["id"] for p in json.loads(result.stdout)] == ALL_IDS
    assert sandbox.request_count("GET", V1_LIST) == 1
    assert "from the local catalog cache" in result.stderr and "--refresh" in result.stderr


def test_refresh_bypasses_the_cache_and_refreshes_it(sandbox: RunningSandbox) -> None:
    listed([])
    result = run(["catalog", "list", "--refresh", "-o", "json"])
    assert result.exit_code == 0 and "cache" not in result.stderr
    assert sandbox.request_count("GET", V1_LIST) == 2
    listed([])
    assert sandbox.request_count("GET", V1_LIST) == 2


def test_an_expired_cache_is_fetched_again(
    sandbox: RunningSandbox, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed([])
    for path in cache_home.iterdir():  # fetched two hours ago
        data = json.loads(path.read_text())
        data["savedAt"] -= 7200
        path.write_text(json.dumps(data))
    listed([])
    assert sandbox.request_count("GET", V1_LIST) == 2
    monkeypatch.setenv("KALIXO_CATALOG_TTL", "0")
    listed([])
    listed([])
    assert sandbox.request_count("GET", V1_LIST) == 4


def test_a_bad_ttl_setting_is_a_usage_error(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_CATALOG_TTL", "an hour")
    result = run(["catalog", "list"])
    assert result.exit_code == ExitCode.USAGE
    assert "KALIXO_CATALOG_TTL" in result.stderr
    assert sandbox.request_count() == 0


def test_cache_files_written_by_list_are_0600(sandbox: RunningSandbox, cache_home: Path) -> None:
    listed([])
    files = list(cache_home.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    text = "".join(f.read_text() for f in files)
    from kalixo_cli.sandbox import SANDBOX_TOKEN

    assert SANDBOX_TOKEN not in text


def test_a_corrupt_cache_is_a_miss_not_an_error(sandbox: RunningSandbox, cache_home: Path) -> None:
    listed([])
    for path in cache_home.iterdir():
        path.write_bytes(b'{"format": 1, "products": [')
    assert [p["id"] for p in listed([])] == ALL_IDS
    assert sandbox.request_count("GET", V1_LIST) == 2


def test_v1_filters_are_applied_here(sandbox: RunningSandbox) -> None:
    assert [p["id"] for p in listed(["--brand", "xbox,ROBLOX"])] == [2, 6]
    assert [p["id"] for p in listed(["--category", "gaming", "--tag", "bestseller"])] == [2]
    assert [p["id"] for p in listed(["--search", "ktest-o"])] == [9001, KTEST_OPEN_ID]
    assert [
        p["id"] for p in listed(["--country", "GB", "--language", "en", "--search", "spotify"])
    ] == [1]
    result = run(["catalog", "list", "--country", "IE", "-o", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert "no products match" in result.stderr


def test_different_filters_are_cached_apart(sandbox: RunningSandbox) -> None:
    listed(["--brand", "xbox"])
    listed(["--brand", "roblox"])
    listed(["--brand", "Xbox"])
    assert sandbox.request_count("GET", V1_LIST) == 2


def test_all_pages_through_the_catalog(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "PAGE_SIZE", 3)
    result = run(["catalog", "list", "--all", "-o", "jsonl"])
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ALL_IDS
    assert sandbox.request_count("GET", V1_LIST) == 4  # 3 + 3 + 3 + 1 of 10


def test_limit_lists_that_many_and_says_how_many_there_are(sandbox: RunningSandbox) -> None:
    result = run(["catalog", "list", "--limit", "4", "-o", "json"])
    assert [p["id"] for p in json.loads(result.stdout)] == ALL_IDS[:4]
    assert f"showing 4 of {len(ALL_IDS)} products" in result.stderr


def test_all_and_limit_together_are_a_usage_error(sandbox: RunningSandbox) -> None:
    result = run(["catalog", "list", "--all", "--limit", "3"])
    assert result.exit_code == ExitCode.USAGE and sandbox.request_count() == 0


def test_the_table_shows_major_units_and_open_ranges(sandbox: RunningSandbox) -> None:
    result = run(["catalog", "list", "-o", "table"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "SKU", "Name", "Brand", "Country", "Price"]
    assert any("Xbox Game Pass" in line and line.endswith("32.99 GBP") for line in lines)
    assert any(
        "KTEST-OPEN" in line and line.endswith("5.00-100.00 GBP, step 1.00") for line in lines
    )


def test_csv_has_a_header_and_a_row_a_product(sandbox: RunningSandbox) -> None:
    result = run(["catalog", "list", "--brand", "xbox", "-o", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == list(CSV_FIELDS)
    assert rows == [{**rows[0], "id": "2", "price": "3299", "tags": "bestseller gaming"}]


def test_jsonl_is_one_product_a_line(sandbox: RunningSandbox) -> None:
    result = run(["catalog", "list", "--tag", "test", "-o", "jsonl"])
    lines = result.stdout.splitlines()
    assert len(lines) == 7 and all(json.loads(line)["brand"] == "Kalixo Sandbox" for line in lines)


# --------------------------------------------------------------------------------------
# kalixo catalog show, API v1.


def test_show_finds_a_v1_product_by_id_in_the_list(sandbox: RunningSandbox) -> None:
    result = run(["catalog", "show", str(KTEST_OPEN_ID), "-o", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sku"] == "KTEST-OPEN"
    table = run(["catalog", "show", str(KTEST_OPEN_ID), "-o", "table"]).stdout
    assert "5.00-100.00 GBP, step 1.00" in table and "Default amount" in table
    assert sandbox.request_count("GET", V1_LIST) == 1  # the second came from the cache


def test_show_by_ean_and_sku_use_the_v1_product_route(sandbox: RunningSandbox) -> None:
    by_ean = run(["catalog", "show", "--ean", "4251604177278", "-o", "json"])
    by_sku = run(["catalog", "show", "--sku", "GB-EN-4251604133182", "-o", "json"])
    assert json.loads(by_ean.stdout)["id"] == 2 and json.loads(by_sku.stdout)["id"] == 6
    assert sandbox.request_count("GET", "/v1/catalog/product") == 2


def test_show_of_an_unknown_product_exits_3(sandbox: RunningSandbox) -> None:
    result = run(["catalog", "show", "999"])
    assert result.exit_code == ExitCode.REJECTED
    assert "product 999 is not in the catalog" in result.stderr


@pytest.mark.parametrize("args", [[], ["2", "--ean", "1"], ["--ean", " "], ["0"]])
def test_show_needs_exactly_one_way_to_find_the_product(
    sandbox: RunningSandbox, args: list[str]
) -> None:
    assert run(["catalog", "show", *args]).exit_code == ExitCode.USAGE
    assert sandbox.request_count() == 0


# --------------------------------------------------------------------------------------
# API v2: the server filters and reads a product by id.


def test_v2_lists_with_server_side_filters(v2: RunningSandbox) -> None:
    assert [p["id"] for p in listed([])] == ALL_IDS
    assert [p["id"] for p in listed(["--brand", "xbox,roblox"])] == [2, 6]
    assert [p["id"] for p in listed(["--search", "4251604160010"])] == [1]
    assert v2.request_count("GET", V2_LIST) == 3 and v2.request_count("GET", V1_LIST) == 0


def test_v2_products_are_normalized_like_v1_ones(
    v2: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_v2 = listed([])
    monkeypatch.setenv("KALIXO_API_URL", v2.v1_url)
    monkeypatch.setenv("KALIXO_API_VERSION", "v1")
    from kalixo_cli.sandbox import SANDBOX_TOKEN

    monkeypatch.setenv("KALIXO_TOKEN", SANDBOX_TOKEN)
    assert listed([]) == from_v2


def test_v2_all_pages_and_caches_each_page(
    v2: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "PAGE_SIZE", 4)
    assert [p["id"] for p in listed(["--all"])] == ALL_IDS
    assert v2.request_count("GET", V2_LIST) == 3
    assert [p["id"] for p in listed(["--all"])] == ALL_IDS
    assert v2.request_count("GET", V2_LIST) == 3


def test_v2_show_reads_the_product_route_and_caches_it(v2: RunningSandbox) -> None:
    first = run(["catalog", "show", str(KTEST_OPEN_ID), "-o", "json"])
    second = run(["catalog", "show", str(KTEST_OPEN_ID), "-o", "json"])
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert json.loads(first.stdout)["denominationType"] == "open"
    assert v2.request_count("GET", f"{V2_LIST}/{KTEST_OPEN_ID}") == 1
    assert "from the local catalog cache" in second.stderr


def test_v2_show_by_ean_and_sku_searches(v2: RunningSandbox) -> None:
    by_ean = run(["catalog", "show", "--ean", "4251604177278", "-o", "json"])
    by_sku = run(["catalog", "show", "--sku", "GB-EN-4251604133182", "-o", "json"])
    assert json.loads(by_ean.stdout)["id"] == 2 and json.loads(by_sku.stdout)["id"] == 6
    missing = run(["catalog", "show", "--sku", "GB-EN-0000"])
    assert missing.exit_code == ExitCode.REJECTED


def test_v2_unknown_product_exits_3(v2: RunningSandbox) -> None:
    assert run(["catalog", "show", "999"]).exit_code == ExitCode.REJECTED


def test_v1_and_v2_answers_are_cached_apart(
    v2: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed([])
    monkeypatch.setenv("KALIXO_API_URL", v2.v1_url)
    monkeypatch.setenv("KALIXO_API_VERSION", "v1")
    from kalixo_cli.sandbox import SANDBOX_TOKEN

    monkeypatch.setenv("KALIXO_TOKEN", SANDBOX_TOKEN)
    listed([])
    assert v2.request_count("GET", V2_LIST) == 1 and v2.request_count("GET", V1_LIST) == 1


# --------------------------------------------------------------------------------------
# request_from_products: --product productId:quantity[:amount].

CATALOG = {
    2: Product(id=2, sku="GB-EN-4251604177278", price=3299, currency="GBP"),
    6: Product(id=6, sku="GB-EN-4251604133182", price=839, currency="GBP"),
    7: Product(id=7, sku="IE-EN-77", price=1500, currency="EUR"),
    814: Product(
        id=814,
        sku="GB-EN-814",
        price=2500,
        currency="GBP",
        denominationType="open",
        denominationMin=500,
        denominationMax=10000,
        denominationStep=100,
    ),
}


def lookup(product_id: int) -> Product:
    if product_id not in CATALOG:
        raise RequestRejected(f"Product {product_id} was not found", status=404)
    return CATALOG[product_id]


def order(*specs: str, currency: str | None = None, code: str = "O-1") -> OrderRequest:
    return request_from_products(list(specs), lookup=lookup, currency=currency, code=code)


def problems(*specs: str, currency: str | None = None) -> list[str]:
    with pytest.raises(InputError) as caught:
        order(*specs, currency=currency)
    return caught.value.lines()


def test_an_order_takes_price_sku_and_currency_from_the_catalog() -> None:
    request = order("2:2", "814:1:5000", "6:1")
    assert request.body() == {
        "externalOrderCode": "O-1",
        "price": 2 * 3299 + 5000 + 839,
        "currency": "GBP",
        "orderProducts": [
            {
                "productId": 2,
                "price": 3299,
                "sku": "GB-EN-4251604177278",
                "currency": "GBP",
                "quantity": 2,
            },
            {"productId": 814, "price": 5000, "sku": "GB-EN-814", "currency": "GBP", "quantity": 1},
            {
                "productId": 6,
                "price": 839,
                "sku": "GB-EN-4251604133182",
                "currency": "GBP",
                "quantity": 1,
            },
        ],
    }


def test_an_open_amount_off_the_step_names_the_spec_the_step_and_the_range() -> None:
    assert problems("814:1:5050") == [
        "--product 814:1:5050: 5050 is not a multiple of the step 100 (range 500-10000)"
    ]


@pytest.mark.parametrize("spec", ["814:1:400", "814:1:10100"])
def test_an_open_amount_outside_the_range_is_refused(spec: str) -> None:
    (line,) = problems(spec)
    assert line.startswith(f"--product {spec}: ") and "outside the range 500-10000" in line


def test_an_open_product_needs_an_amount() -> None:
    (line,) = problems("814:1")
    assert "open-denomination" in line and "814:1:500" in line


def test_a_fixed_product_given_an_amount_is_refused() -> None:
    (line,) = problems("2:1:3299")
    assert line.startswith("--product 2:1:3299: product 2 has a fixed price (32.99 GBP)")


def test_mixed_currencies_are_refused() -> None:
    (line,) = problems("2:1", "7:1")
    assert "GBP and EUR" in line and "one order holds one currency" in line


def test_a_currency_given_must_be_every_products() -> None:
    assert order("7:1", currency="eur").currency == "EUR"
    (line,) = problems("2:1", currency="EUR")
    assert line == "--product 2:1: product 2 is priced in GBP, not EUR (--currency)"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("2", "productId:quantity"),
        ("2:1:2:3", "productId:quantity"),
        ("x:1", "productId"),
        ("2:0", "quantity must be 1 or more"),
        ("0:1", "productId must be 1 or more"),
        ("814:1:50.50", "minor units"),
        ("2:-1", "quantity"),
        ("814:1:", "amount"),
    ],
)
def test_malformed_specs_say_what_is_wrong(spec: str, says: str) -> None:
    (line,) = problems(spec)
    assert line.startswith(f"--product {spec}: ") and says in line


def test_every_bad_spec_is_reported_at_once() -> None:
    lines = problems("2:0", "999:1", "814:1:5050", "6:1")
    assert [line.split(": ", 1)[0] for line in lines] == [
        "--product 2:0",
        "--product 999:1",
        "--product 814:1:5050",
    ]
    assert "product 999 is not in the catalog" in lines[1]


def test_no_specs_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        order()


def test_a_bad_order_code_is_reported_as_the_flag() -> None:
    with pytest.raises(InputError) as caught:
        order("2:1", code=" padded ")
    assert caught.value.lines()[0].startswith("--external-order-code: ")


def test_lookup_failures_other_than_not_found_propagate() -> None:
    def broken(product_id: int) -> Product:
        raise RequestRejected("bad", status=400)

    with pytest.raises(RequestRejected):
        request_from_products(["2:1"], lookup=broken, currency=None, code="O-1")


def test_a_product_without_a_sku_cannot_be_ordered() -> None:
    def bare(product_id: int) -> Product:
        return Product(id=product_id, price=100, currency="GBP")

    with pytest.raises(InputError, match="no SKU"):
        request_from_products(["3:1"], lookup=bare, currency=None, code="O-1")


def test_the_sandbox_catalog_source_is_a_lookup(sandbox: RunningSandbox) -> None:
    """What place-order's --product will pass: the cached catalog of the API in force."""
    from kalixo_cli.api.http import Transport
    from kalixo_cli.api.v1 import V1Client
    from kalixo_cli.sandbox import SANDBOX_TOKEN
    from kalixo_cli.workflows.catalog_source import CatalogSource

    client = V1Client(Transport(sandbox.v1_url, SANDBOX_TOKEN, timeout=5, retries=0))
    source = CatalogSource(
        client, api=sandbox.v1_url, version=ApiVersion.V1, account="a", cache=None
    )
    request = request_from_products(
        [f"{KTEST_OPEN_ID}:2:2500", "2:1"], lookup=source.product, currency=None, code="O-2"
    )
    assert request.price == 2 * 2500 + 3299 and request.orderProducts[0].sku == "KTEST-OPEN"
    with pytest.raises(InputError, match="not in the catalog"):
        request_from_products(["999:1"], lookup=source.product, currency=None, code="O-3")
