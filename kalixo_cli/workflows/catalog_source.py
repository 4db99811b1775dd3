"""A client's catalog as the commands read it: answers from the API, kept in the cache."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kalixo_cli.domain.api_version import ApiVersion
from kalixo_cli.domain.catalog import CatalogFilters, CatalogPages, Product
from kalixo_cli.domain.errors import RequestRejected
from kalixo_cli.store.catalog_cache import CacheHit, CatalogCache

if TYPE_CHECKING:
    from kalixo_cli.api.base import CatalogClient

log = logging.getLogger("kalixo.catalog")


# --------------------------------------------------------------------------------------
# A client's catalog, through the cache.


class CatalogSource:
    """The catalog as the commands read it: a client's answers, kept in a `CatalogCache`.

    `version` says who filters (v2: the server; v1: `CatalogFilters.matches`, here, in
    the client) and how one product is found by id (v2: its own route; v1: by walking the
    product list). `fetched` and `hits` count requests made and answers the cache gave;
    `oldest` is the age in seconds of the oldest cached answer used.
    """

    def __init__(
        self,
        client: CatalogClient,
        *,
        api: str,
        version: ApiVersion,
        account: str,
        cache: CatalogCache | None,
        refresh: bool = False,
    ) -> None:
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
        return self.version is not ApiVersion.V1

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

    def _keep(self, key: dict[str, Any], count: int | None, products: Sequence[Product]) -> None:
        if self.cache is not None:
            self.cache.put(key, count, products)

    def page(
        self, skip: int, take: int, filters: CatalogFilters | None = None
    ) -> tuple[int, list[Product]]:
        filters = filters or CatalogFilters()
        key = self._key(page={"filters": filters.key(), "skip": skip, "take": take})
        hit = self._cached(key)
        if hit is not None and hit.count is not None:
            return hit.count, hit.products
        self.fetched += 1
        count, products = self.client.catalog_page(skip, take, filters)
        self._keep(key, count, products)
        return count, products

    def pages(
        self,
        filters: CatalogFilters | None = None,
        *,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> CatalogPages:
        filters = filters or CatalogFilters()
        short_page_ends = self.filters_on_server or filters.empty
        if not short_page_ends:
            page_size = None  # matches are sparse: fetch as much as a request allows
        return CatalogPages(
            lambda skip, take: self.page(skip, take, filters),
            limit=limit,
            page_size=page_size,
            short_page_ends=short_page_ends,
        )

    def product(self, product_id: int) -> Product:
        """One product by id: what `request_from_products` takes as its `lookup`."""
        if self.version is ApiVersion.V1:
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
                f"product {product_id} is not in the catalog",
                status=404,
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
