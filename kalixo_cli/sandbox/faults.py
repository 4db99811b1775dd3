"""Fault injection for the sandbox: slow, failing, rate-limited, hung and dropped requests.

`Faults` says what to inject and how often; `FaultInjector` is what a running server
consults for each request (the seeded decisions, the rate-limit windows, the counts). Both
are stdlib only, so ``kalixo sandbox serve`` validates its flags without the server stack;
the ASGI middleware that acts on a `Plan` lives in app.py.

A request meets the faults in this order:

    latency      every request first waits ``latency_ms`` plus up to ``latency_jitter_ms``
    rate limit   requests under /v1/ count against their bearer token's quota per minute,
                 requests under /v2/ against their x-api-key's; every answer carries
                 X-RateLimit-Limit/-Remaining/-Reset, and one over the quota is a 429
                 with Retry-After (it is not counted itself). Kalixo documents 60 a
                 minute per key on v2; the sandbox has no limit unless one is set, as
                 test suites place thousands of orders a minute
    one draw     u in [0, 1) picks at most one of, in this order of bands:
                   error_500 / error_502  answered at once, before any processing
                   hang                   no answer for ``hang_seconds`` (or until the
                                          client gives up), then dropped after a bare
                                          504 head: ASGI cannot close without a word
                   drop_after_commit      place-order runs (the order is committed), the
                                          answer's head (real status and Content-Length)
                                          and half its body are sent, and the connection
                                          is dropped; requests raises
                                          ChunkedEncodingError. An answer other than 2xx
                                          (nothing committed) is sent whole.
                 errors and hangs apply to ``fault_paths`` (prefixes: by default the
                 order routes of both generations), the drop to the place-orders
                 (``POST /v1/orders/place-order``, ``POST /v2/orders``) only; a band
                 that does not apply to the
                 request means no fault, so each rate is the share of the requests it
                 applies to.

With a ``seed``, request n (counted from the last configuration or reset) decides with
``random.Random(f"{seed}:{n}")``: each decision is independent of the others and a test that
sends the same requests in the same order meets the same faults.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Literal, TypedDict, Unpack

PLACE_ORDER_PATH = "/v1/orders/place-order"
V2_PLACE_ORDER_PATH = "/v2/orders"
PLACE_ORDER_PATHS = (PLACE_ORDER_PATH, V2_PLACE_ORDER_PATH)
"""The paths a POST to places an order: drop-after-commit and attempt counting apply."""
RATE_LIMITED_PREFIXES = ("/v1/", "/v2/")
RATE_LIMIT_PERIOD_SECONDS = 60
KALIXO_V2_RATE_LIMIT_PER_MINUTE = 60
"""Kalixo's documented v2 limit per key; the sandbox's is off unless configured."""
DEFAULT_FAULT_PATHS = ("/v1/orders/", "/v2/orders")

FaultKind = Literal[
    "latency", "rate_limited", "error_500", "error_502", "hang", "drop_after_commit"
]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "latency",
    "rate_limited",
    "error_500",
    "error_502",
    "hang",
    "drop_after_commit",
)
Window = Literal["fixed", "sliding"]

_RATE_FIELDS = ("error_rate_500", "error_rate_502", "hang_rate", "drop_after_commit_rate")
_MAX_TRACKED_CREDENTIALS = 1024

logger = logging.getLogger("kalixo.sandbox")


class DroppedConnection(Exception):
    """Raised by the fault middleware after a partial answer, so the server cuts the
    connection; the server's own error log is told to ignore it (see app.py)."""


@dataclass(frozen=True)
class Faults:
    """What the sandbox injects. The default injects nothing; invalid values raise
    ValueError naming the field."""

    latency_ms: float = 0.0
    """Added to every request before it is handled (asyncio.sleep: other requests go on)."""
    latency_jitter_ms: float = 0.0
    """A uniform extra of 0..this on top of ``latency_ms``."""
    error_rate_500: float = 0.0
    """Share of ``fault_paths`` requests answered 500 ``{statusCode, message}`` at once."""
    error_rate_502: float = 0.0
    """Share of ``fault_paths`` requests answered 502 ``{statusCode, error, message}``."""
    hang_rate: float = 0.0
    """Share of ``fault_paths`` requests never answered: held ``hang_seconds``, dropped."""
    hang_seconds: float = 30.0
    drop_after_commit_rate: float = 0.0
    """Share of place-order requests whose order is committed, then the answer cut off."""
    rate_limit_per_minute: int | None = None
    """Requests per minute per bearer token under /v1/ and per API key under /v2/ (Kalixo
    documents `KALIXO_V2_RATE_LIMIT_PER_MINUTE`); None: no limit, no headers."""
    rate_limit_window: Window = "fixed"
    """``fixed``: a minute from the token's first request (whole seconds); ``sliding``:
    the requests of the last 60 s."""
    rate_limit_period_seconds: int = RATE_LIMIT_PERIOD_SECONDS
    """The limiter's minute: tests shorten it (20 per 2 s) to see many windows quickly."""
    fault_paths: tuple[str, ...] = DEFAULT_FAULT_PATHS
    """Path prefixes the 500, 502 and hang faults apply to."""
    seed: int | None = None
    """Makes the decisions reproducible (see the module docstring)."""

    def __post_init__(self) -> None:
        for name in ("latency_ms", "latency_jitter_ms"):
            value = getattr(self, name)
            if not _finite(value) or value < 0:
                raise ValueError(f"{name} must be a number of milliseconds >= 0, not {value!r}")
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not _finite(value) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a share between 0 and 1, not {value!r}")
        total = sum(getattr(self, name) for name in _RATE_FIELDS)
        if total > 1 + 1e-9:
            raise ValueError(
                f"{' + '.join(_RATE_FIELDS)} is {total:g}: a request meets at most one of "
                "these faults, so they must add up to 1 at most"
            )
        if not _finite(self.hang_seconds) or self.hang_seconds <= 0:
            raise ValueError(f"hang_seconds must be > 0, not {self.hang_seconds!r}")
        limit = self.rate_limit_per_minute
        if limit is not None and (not _integer(limit) or limit < 1):
            raise ValueError(f"rate_limit_per_minute must be an integer >= 1, not {limit!r}")
        period = self.rate_limit_period_seconds
        if not _integer(period) or period < 1:
            raise ValueError(f"rate_limit_period_seconds must be an integer >= 1, not {period!r}")
        if self.rate_limit_window not in ("fixed", "sliding"):
            raise ValueError(
                f"rate_limit_window must be 'fixed' or 'sliding', not {self.rate_limit_window!r}"
            )
        if isinstance(self.fault_paths, str) or not all(
            isinstance(path, str) and path.startswith("/") for path in self.fault_paths
        ):
            raise ValueError(
                f"fault_paths must be a tuple of path prefixes starting with '/', "
                f"not {self.fault_paths!r}"
            )
        if self.seed is not None and not _integer(self.seed):
            raise ValueError(f"seed must be an integer, not {self.seed!r}")

    @property
    def active(self) -> bool:
        """Whether anything is injected at all (the server skips the machinery if not)."""
        return bool(
            self.latency_ms
            or self.latency_jitter_ms
            or self.rate_limit_per_minute is not None
            or any(getattr(self, name) for name in _RATE_FIELDS)
        )

    def describe(self) -> list[str]:
        """One line per fault that is on, for the startup banner; empty when none is."""
        lines: list[str] = []
        if self.latency_ms or self.latency_jitter_ms:
            jitter = f" + 0-{self.latency_jitter_ms:g} ms" if self.latency_jitter_ms else ""
            lines.append(f"latency {self.latency_ms:g} ms{jitter} on every request")
        if self.rate_limit_per_minute is not None:
            period = (
                "a minute"
                if self.rate_limit_period_seconds == RATE_LIMIT_PERIOD_SECONDS
                else f"{self.rate_limit_period_seconds} s"
            )
            lines.append(
                f"rate limit {self.rate_limit_per_minute} requests {period} per token "
                f"({self.rate_limit_window} window), then 429"
            )
        where = ", ".join(f"{path}*" for path in self.fault_paths)
        for rate, what in (
            (self.error_rate_500, f"500 on {{}} of {where}"),
            (self.error_rate_502, f"502 on {{}} of {where}"),
            (self.hang_rate, f"no answer for {self.hang_seconds:g} s on {{}} of {where}"),
            (
                self.drop_after_commit_rate,
                "order committed, then the connection dropped, on {} of place-orders",
            ),
        ):
            if rate:
                lines.append(what.format(f"{round(rate * 100, 2):g}%"))
        if lines and self.seed is not None:
            lines.append(f"seed {self.seed}")
        return lines


class FaultOptions(TypedDict, total=False):
    """`Faults`' fields as keyword arguments (``running_sandbox(db, error_rate_502=0.1)``)."""

    latency_ms: float
    latency_jitter_ms: float
    error_rate_500: float
    error_rate_502: float
    hang_rate: float
    hang_seconds: float
    drop_after_commit_rate: float
    rate_limit_per_minute: int | None
    rate_limit_window: Window
    rate_limit_period_seconds: int
    fault_paths: tuple[str, ...]
    seed: int | None


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- rate limiting --------------------------------------------------------------------------


@dataclass(frozen=True)
class RateDecision:
    """One request's standing against its quota, and the headers that say so."""

    allowed: bool
    limit: int
    remaining: int
    reset: int
    """Unix seconds: the end of the fixed window, or (sliding) when the oldest counted
    request leaves the window and frees a slot."""
    retry_after: int
    """Whole seconds to wait, ``ceil(reset - now)`` and at least 1; 0 when allowed."""

    def headers(self) -> list[tuple[str, str]]:
        headers = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset)),
        ]
        if not self.allowed:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers

    @property
    def message(self) -> str:
        return f"Rate limit exceeded. Retry after {self.retry_after}s."


class RateLimiter:
    """Per-credential quotas of ``limit`` requests per ``period`` seconds.

    Not thread-safe on its own: `FaultInjector` calls it under its lock. Rejected requests
    do not count, so a client that waits ``Retry-After`` always gets through.
    """

    def __init__(self, limit: int, window: Window, period: int = RATE_LIMIT_PERIOD_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self.period = period
        self._fixed: dict[str, tuple[int, int]] = {}  # credential -> (window start, count)
        self._sliding: dict[str, deque[float]] = {}

    def hit(self, credential: str, now: float) -> RateDecision:
        if self.window == "fixed":
            return self._hit_fixed(credential, now)
        return self._hit_sliding(credential, now)

    def _decision(self, allowed: bool, used: int, reset: int, now: float) -> RateDecision:
        retry_after = 0 if allowed else max(1, math.ceil(reset - now))
        return RateDecision(allowed, self.limit, self.limit - used, reset, retry_after)

    def _hit_fixed(self, credential: str, now: float) -> RateDecision:
        period = self.period
        start, count = self._fixed.get(credential, (0, 0))
        if now >= start + period:
            if len(self._fixed) >= _MAX_TRACKED_CREDENTIALS:
                self._fixed = {k: v for k, v in self._fixed.items() if now < v[0] + period}
            start, count = math.floor(now), 0
        allowed = count < self.limit
        if allowed:
            count += 1
        self._fixed[credential] = (start, count)
        return self._decision(allowed, count, start + period, now)

    def _hit_sliding(self, credential: str, now: float) -> RateDecision:
        period = self.period
        if credential not in self._sliding and len(self._sliding) >= _MAX_TRACKED_CREDENTIALS:
            self._sliding = {k: v for k, v in self._sliding.items() if v and now < v[-1] + period}
        seen = self._sliding.setdefault(credential, deque())
        while seen and seen[0] + period <= now:
            seen.popleft()
        allowed = len(seen) < self.limit
        if allowed:
            seen.append(now)
        return self._decision(allowed, len(seen), math.ceil(seen[0] + period), now)


# -- per-request decisions ------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What to do to one request: wait, answer with its quota, and at most one fault."""

    delay_seconds: float = 0.0
    rate: RateDecision | None = None
    fault: FaultKind | None = None
    hang_seconds: float = 0.0


NO_PLAN = Plan()


class FaultInjector:
    """The faults a running sandbox injects, changeable while it serves.

    ``RunningSandbox.faults`` is one of these: ``update(error_rate_502=0.2)`` changes some
    fields, ``configure(Faults(...))`` (or assigning ``running.faults = Faults(...)``)
    replaces them all, ``clear()`` turns everything off. A new configuration applies from
    the next request on, restarts the seeded sequence, and restarts the rate-limit windows
    when the limit or the window kind changed. Thread-safe: tests change it from their own
    thread while the server's event loop reads it.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults if faults is not None else Faults()
        self._limiter = self._new_limiter(self._faults)
        self._sequence = 0
        self._random = random.Random()
        self._counts: dict[FaultKind, int] = dict.fromkeys(FAULT_KINDS, 0)

    @property
    def config(self) -> Faults:
        """The `Faults` in force."""
        return self._faults

    def configure(self, faults: Faults) -> Faults:
        if not isinstance(faults, Faults):
            raise TypeError(f"expected Faults, not {type(faults).__name__}")
        with self._lock:
            old, self._faults = self._faults, faults
            rate_settings = (
                "rate_limit_per_minute",
                "rate_limit_window",
                "rate_limit_period_seconds",
            )
            if any(getattr(old, name) != getattr(faults, name) for name in rate_settings):
                self._limiter = self._new_limiter(faults)
            self._sequence = 0
        if faults != old:
            logger.info("faults: %s", "; ".join(faults.describe()) or "none")
        return faults

    def update(self, **changes: Unpack[FaultOptions]) -> Faults:
        """Change some fields (validated together); returns the new `Faults`."""
        known = {field.name for field in fields(Faults)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"Faults has no field {', '.join(unknown)}")
        return self.configure(replace(self._faults, **changes))

    def clear(self) -> Faults:
        return self.configure(Faults())

    def counts(self) -> dict[str, int]:
        """Faults injected since start or `reset`, by kind (every kind, zeros included)."""
        with self._lock:
            return {kind: count for kind, count in self._counts.items()}

    def reset(self) -> None:
        """Zero the counts and start over: seeded sequence and rate-limit windows."""
        with self._lock:
            self._counts = dict.fromkeys(FAULT_KINDS, 0)
            self._limiter = self._new_limiter(self._faults)
            self._sequence = 0

    def plan(self, method: str, path: str, credential: str, now: float) -> Plan:
        """Decide what happens to one request, arriving at ``now`` on the sandbox clock."""
        if not self._faults.active:
            return NO_PLAN
        with self._lock:
            faults = self._faults
            self._sequence += 1
            rng = (
                random.Random(f"{faults.seed}:{self._sequence}")
                if faults.seed is not None
                else self._random
            )
            draw = rng.random()
            jitter = rng.random() * faults.latency_jitter_ms
            rate = None
            if self._limiter is not None and path.startswith(RATE_LIMITED_PREFIXES):
                rate = self._limiter.hit(credential, now)
        delay = (faults.latency_ms + jitter) / 1000
        if rate is not None and not rate.allowed:
            return Plan(delay, rate, "rate_limited")
        return Plan(delay, rate, _pick(faults, draw, method, path), faults.hang_seconds)

    def record(self, kind: FaultKind, method: str, path: str, detail: str = "") -> None:
        """Count an injected fault and log it (logger ``kalixo.sandbox``)."""
        with self._lock:
            self._counts[kind] += 1
        level = logging.DEBUG if kind == "latency" else logging.INFO
        logger.log(level, "injected %s: %s %s%s", kind, method, path, detail and f" ({detail})")

    @staticmethod
    def _new_limiter(faults: Faults) -> RateLimiter | None:
        if faults.rate_limit_per_minute is None:
            return None
        return RateLimiter(
            faults.rate_limit_per_minute, faults.rate_limit_window, faults.rate_limit_period_seconds
        )


def _pick(faults: Faults, draw: float, method: str, path: str) -> FaultKind | None:
    """The fault whose band ``draw`` falls in, if that fault applies to this request."""
    in_fault_paths = path.startswith(faults.fault_paths)
    is_place_order = method == "POST" and path in PLACE_ORDER_PATHS
    edge = 0.0
    kind: FaultKind
    for kind, rate, applies in (
        ("error_500", faults.error_rate_500, in_fault_paths),
        ("error_502", faults.error_rate_502, in_fault_paths),
        ("hang", faults.hang_rate, in_fault_paths),
        ("drop_after_commit", faults.drop_after_commit_rate, is_place_order),
    ):
        edge += rate
        if draw < edge:
            return kind if applies else None
    return None
