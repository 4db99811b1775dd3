"""When to try a request again, and how long to wait first: pure functions, no I/O.

The HTTP seam (`kalixo_cli.api.http`) classifies each failed attempt as a `Failure` and asks
`decide` what to do next; it does the sleeping. Nothing here sleeps, reads a clock or draws
a random number on its own: the time, the deadline and the random source are arguments, so
every rule is a plain unit test.

Why the rules differ by method and API generation: a GET is safe to repeat. A v1 place-order
spends money and has no way to ask "did my order arrive?", so it is repeated only when the
request provably never left this machine; after a timeout, a broken connection or a 5xx the
outcome is unknown and a person must check. A v2 order is idempotent by its
externalOrderCode, so its POST may be repeated with the same body, and a 409 means "it is
there already: look it up by code".

Waiting: exponential backoff with *full jitter* (a uniform draw in [0, min(cap, base * 2^n)]),
which spreads a crowd of clients out best and needs no state between attempts. On 429 and 503
the server's own wait (`Retry-After`, else `X-RateLimit-Reset`) is a floor: the delay is the
larger of it and the backoff, so a server that says "0" still gets backoff, and one that says
"5" is never asked before 5 s. The server's wait is capped at `RetryRules.max_wait`. A retry
whose wait would end after the command's deadline is not made.

A `RetryBudget` shared by the workers of a bulk run bounds the retries of all of them
together, so an outage is not multiplied by the number of attempts per request.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

__all__ = [
    "ALWAYS_TRANSIENT",
    "V1_RULES",
    "V2_RULES",
    "Action",
    "Decision",
    "Failure",
    "FailureKind",
    "MethodRule",
    "Pacer",
    "RetryBudget",
    "RetryRules",
    "Rng",
    "backoff_delay",
    "decide",
    "reset_delay",
    "retry_after_delay",
    "server_delay",
]


class FailureKind(Enum):
    """How far an attempt got before it failed: what decides whether a POST may be repeated."""

    CONNECT = "connect"  # no connection was made: the request never left this machine
    TIMEOUT = "timeout"  # sent, and no answer came in time
    BROKEN = "broken"  # the connection failed after it was made
    STATUS = "status"  # the server answered with an error status


class Failure:
    """One failed attempt, as the HTTP seam saw it.

    (Failure and Decision are plain slotted classes, not dataclasses: every command
    imports this module, and start-up pays for a dataclass's generated code.)"""

    __slots__ = ("headers", "kind", "reason", "status")

    def __init__(
        self,
        kind: FailureKind,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        reason: str = "",
    ) -> None:
        self.kind = kind
        self.status = status
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.reason = reason

    def __repr__(self) -> str:
        return f"Failure({self.kind.value}, status={self.status}, reason={self.reason!r})"

    @classmethod
    def connect(cls, reason: str = "") -> Failure:
        return cls(FailureKind.CONNECT, reason=reason)

    @classmethod
    def timeout(cls, reason: str = "timed out") -> Failure:
        return cls(FailureKind.TIMEOUT, reason=reason)

    @classmethod
    def broken(cls, reason: str = "") -> Failure:
        return cls(FailureKind.BROKEN, reason=reason)

    @classmethod
    def http(cls, status: int, headers: Mapping[str, str] | None = None) -> Failure:
        return cls(FailureKind.STATUS, status=status, headers=headers or {})

    def describe(self) -> str:
        """For log lines: "HTTP 503", "a timeout", "connection refused"."""
        if self.kind is FailureKind.STATUS:
            return f"HTTP {self.status}"
        if self.kind is FailureKind.TIMEOUT:
            return "a timeout"
        return self.reason or self.kind.value

    @property
    def doubtful(self) -> bool:
        """True when a POST that failed this way may still have been carried out."""
        if self.kind is FailureKind.STATUS:
            return self.status is not None and self.status >= 500
        return self.kind is not FailureKind.CONNECT


ALWAYS_TRANSIENT = frozenset({FailureKind.CONNECT, FailureKind.TIMEOUT, FailureKind.BROKEN})


@dataclass(frozen=True)
class MethodRule:
    """What is retried for one HTTP method, and which statuses mean "look it up instead"."""

    retry_kinds: frozenset[FailureKind] = frozenset()
    retry_statuses: frozenset[int] = frozenset()
    look_up_statuses: frozenset[int] = frozenset()

    def retries(self, failure: Failure) -> bool:
        if failure.kind is FailureKind.STATUS:
            return failure.status in self.retry_statuses
        return failure.kind in self.retry_kinds


NEVER = MethodRule()


@dataclass(frozen=True)
class RetryRules:
    """One API generation's retry policy. `max_attempts` counts the first attempt too."""

    name: str
    get: MethodRule
    post: MethodRule
    max_attempts: int = 3
    base_delay: float = 0.5  # seconds; the first retry waits up to this
    max_delay: float = 8.0  # cap on the backoff
    max_wait: float = 30.0  # cap on a wait the server asks for (Retry-After, X-RateLimit-Reset)
    server_wait_statuses: frozenset[int] = frozenset({429, 503})

    def for_method(self, method: str) -> MethodRule:
        """Methods without a rule are never retried: the safe default for anything new."""
        return {"GET": self.get, "POST": self.post}.get(method.upper(), NEVER)


_GET = MethodRule(retry_kinds=ALWAYS_TRANSIENT, retry_statuses=frozenset({429, 500, 502, 503, 504}))

V1_RULES = RetryRules(
    name="v1",
    get=_GET,
    # Place-order is not idempotent in v1: only a request that never left is repeated. A 429
    # is not retried either: nothing was placed, and the user decides when to try again.
    post=MethodRule(retry_kinds=frozenset({FailureKind.CONNECT})),
)

V2_RULES = RetryRules(
    name="v2",
    get=_GET,
    # Idempotent by externalOrderCode: the same body may be sent again after any transient
    # failure; a 409 means an earlier attempt (or run) placed it, so look it up by code.
    post=MethodRule(
        retry_kinds=ALWAYS_TRANSIENT,
        retry_statuses=frozenset({429, 500, 502, 503, 504}),
        look_up_statuses=frozenset({409}),
    ),
)


class Action(Enum):
    RETRY = "retry"
    GIVE_UP = "give_up"
    LOOK_UP = "look_up"  # the order exists already: fetch it by its code instead


class Decision:
    """What to do after a failed attempt; `delay` is the wait before a retry, in seconds."""

    __slots__ = ("action", "delay", "reason")

    def __init__(self, action: Action, delay: float = 0.0, reason: str = "") -> None:
        self.action = action
        self.delay = delay
        self.reason = reason

    def __repr__(self) -> str:
        return f"Decision({self.action.name}, delay={self.delay:g}, reason={self.reason!r})"

    @property
    def retry(self) -> bool:
        return self.action is Action.RETRY


def _give_up(reason: str) -> Decision:
    return Decision(Action.GIVE_UP, reason=reason)


class Rng(Protocol):
    """The part of `random.Random` that jitter needs; pass a seeded one in tests."""

    def uniform(self, a: float, b: float) -> float: ...


class Pacer(Protocol):
    """Client-side rate pacing around every attempt; shared ones must be thread-safe."""

    def before_request(self) -> None:
        """Called before each attempt; may block until a request is allowed."""

    def after_response(self, status: int, headers: Mapping[str, str]) -> None:
        """Called with every response, so the pacer can follow X-RateLimit-* headers."""

    def release(self) -> None:
        """Called instead of `after_response` when an attempt got no answer at all."""


class RetryBudget:
    """A token bucket of retries, shared by every worker of a bulk run (thread-safe).

    Each first attempt deposits `ratio` of a token (up to `max_tokens`, by default the larger
    of `initial` and 10, so a long calm run does not bank a storm's worth of retries); each
    retry takes one whole token and is refused when there is none. So across any run,
    retries are at most `initial + ratio * requests`: a storm of failures costs ~20 % more
    requests, not 3x. The same scheme as Finagle's RetryBudget and gRPC's retry throttling.
    """

    _UNIT = 1000  # tokens are counted in thousandths, so 5 x 0.2 is exactly 1

    def __init__(
        self, *, ratio: float = 0.2, initial: float = 10.0, max_tokens: float | None = None
    ) -> None:
        if ratio < 0 or initial < 0:
            raise ValueError("ratio and initial must not be negative")
        self._lock = threading.Lock()
        self._deposit = round(ratio * self._UNIT)
        ceiling = max(initial, 10.0) if max_tokens is None else max_tokens
        self._max = round(ceiling * self._UNIT)
        self._units = min(round(initial * self._UNIT), self._max)

    @property
    def tokens(self) -> float:
        return self._units / self._UNIT

    def deposit(self) -> None:
        """Record a first attempt."""
        with self._lock:
            self._units = min(self._units + self._deposit, self._max)

    def withdraw(self) -> bool:
        """Take one retry's token; False (and nothing taken) when the budget is spent."""
        with self._lock:
            if self._units < self._UNIT:
                return False
            self._units -= self._UNIT
            return True


def backoff_delay(attempt: int, *, base: float, cap: float, rng: Rng) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): full jitter, capped.

    uniform(0, min(cap, base * 2 ** (attempt - 1))): the expected wait doubles per attempt,
    and clients that failed together do not come back together.
    """
    exponent = min(max(attempt - 1, 0), 32)  # 2 ** 32 * base exceeds any sane cap
    ceiling = min(cap, base * 2.0**exponent)
    return rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on a plain dict too."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _retry_after(value: str, now: float) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # only for the rare HTTP-date form

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" dates come back naive; HTTP dates are GMT
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


_EPOCH_FLOOR = 1_000_000_000  # 2001-09-09: a reset below this is a number of seconds, not a time


def _rate_limit_reset(value: str, now: float) -> float | None:
    try:
        reset = float(value)
    except ValueError:
        return None
    if reset != reset or reset < 0:  # NaN or negative
        return None
    return max(0.0, reset - now) if reset >= _EPOCH_FLOOR else reset


def server_delay(headers: Mapping[str, str], now: float) -> float | None:
    """The wait the server asks for, in seconds, or None when it asks for none.

    `Retry-After` (seconds or an HTTP date) wins; otherwise `X-RateLimit-Reset`, which the API
    documents as unix seconds (a small value is read as seconds from now, as some gateways
    send). `now` is wall-clock unix time. Uncapped: `decide` applies `RetryRules.max_wait`.
    """
    retry_after = _header(headers, "Retry-After")
    if retry_after is not None:
        delay = _retry_after(retry_after, now)
        if delay is not None:
            return delay
    reset = _header(headers, "X-RateLimit-Reset")
    return _rate_limit_reset(reset, now) if reset is not None else None


def retry_after_delay(headers: Mapping[str, str], now: float) -> float | None:
    """`Retry-After` alone, in seconds from `now` (uncapped); None when absent or unreadable."""
    value = _header(headers, "Retry-After")
    return None if value is None else _retry_after(value, now)


def reset_delay(headers: Mapping[str, str], now: float) -> float | None:
    """`X-RateLimit-Reset` alone, in seconds from `now` (uncapped), read as `server_delay`
    reads it; None when absent or unreadable."""
    value = _header(headers, "X-RateLimit-Reset")
    return None if value is None else _rate_limit_reset(value, now)


def decide(
    rules: RetryRules,
    method: str,
    failure: Failure,
    attempt: int,
    *,
    now: float,
    deadline: float | None = None,
    budget: RetryBudget | None = None,
    rng: Rng,
) -> Decision:
    """Retry (after `delay` s), give up, or look the order up, after attempt `attempt` failed.

    `now` and `deadline` are wall-clock unix times (the server's headers are too); with no
    deadline the wait is bounded only by the caps. The budget is consulted last, so a token is
    spent only on a retry that will really be made.
    """
    rule = rules.for_method(method)
    if failure.kind is FailureKind.STATUS and failure.status in rule.look_up_statuses:
        return Decision(Action.LOOK_UP, reason=f"HTTP {failure.status}: the order exists")
    if not rule.retries(failure):
        return _give_up(f"{failure.describe()} is not retried for {method} ({rules.name})")
    if attempt >= rules.max_attempts:
        return _give_up(f"no attempts left ({rules.max_attempts} made)")
    delay = backoff_delay(attempt, base=rules.base_delay, cap=rules.max_delay, rng=rng)
    if failure.status in rules.server_wait_statuses:
        asked = server_delay(failure.headers, now)
        if asked is not None:
            delay = max(delay, min(asked, rules.max_wait))
    if deadline is not None and now + delay > deadline:
        return _give_up(f"waiting {delay:.1f} s would pass the deadline")
    if budget is not None and not budget.withdraw():
        return _give_up("the retry budget is spent")
    return Decision(Action.RETRY, delay=delay)
