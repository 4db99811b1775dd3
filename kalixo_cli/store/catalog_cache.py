"""The catalog cache: answers kept on disk for a while, per account.

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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalixo_cli.domain.catalog import Product
from kalixo_cli.domain.errors import ConfigError
from kalixo_cli.store.config import APP_NAME

log = logging.getLogger("kalixo.catalog")
ENV_CATALOG_TTL = "KALIXO_CATALOG_TTL"
DEFAULT_TTL = 3600.0
CACHE_FORMAT = 1


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
        raise ConfigError(
            f"{ENV_CATALOG_TTL} {text!r} is not a number of seconds",
            where=f"env {ENV_CATALOG_TTL}",
            hint=f"set {ENV_CATALOG_TTL} to 0 (no cache) or more; unset, it is {DEFAULT_TTL:g}",
        )
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

    def __init__(self, folder: Path, ttl: float, *, clock: Callable[[], float] = time.time) -> None:
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
            if (
                not isinstance(data, dict)
                or data.get("format") != CACHE_FORMAT
                or data.get("key") != self._canonical(key)
            ):
                return None
            saved_at, count, items = data["savedAt"], data["count"], data["products"]
            if (
                isinstance(saved_at, bool)
                or not isinstance(saved_at, (int, float))
                or not isinstance(items, list)
                or (count is not None and (isinstance(count, bool) or not isinstance(count, int)))
            ):
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

    def put(self, key: Mapping[str, Any], count: int | None, products: Sequence[Product]) -> None:
        if self.ttl <= 0:
            return
        path = self.path(key)
        body = json.dumps(
            {
                "format": CACHE_FORMAT,
                "key": self._canonical(key),
                "savedAt": self._clock(),
                "count": count,
                "products": [product.to_json() for product in products],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
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
