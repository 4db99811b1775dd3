"""One GET to see whether the API answers, lets kalixo in and agrees on the time.

For `kalixo ping` and `kalixo doctor` only: its own module, so that no other command loads it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from kalixo_cli.api.http import Transport
from kalixo_cli.domain.errors import APIError, KalixoError, TransportError

if TYPE_CHECKING:
    import requests


@dataclass(frozen=True)
class Probe:
    """One GET made to see whether the API answers, lets us in, and agrees on the time.

    `status` is the last HTTP status (None when nothing answered); `round_trip_ms` the last
    attempt's time to the answer's headers; `server_time` the server's clock (unix seconds,
    from the Date header, or better when the body carries one) and `received_at` ours when
    the answer came; `error` what the request raised, if anything.
    """

    url: str
    status: int | None
    round_trip_ms: float | None
    server_time: float | None
    received_at: float | None
    data: Any
    error: KalixoError | None

    @property
    def clock_skew(self) -> float | None:
        """Seconds the server's clock is ahead of ours (negative: behind)."""
        if self.server_time is None or self.received_at is None:
            return None
        half_trip = (self.round_trip_ms or 0.0) / 2000
        return self.server_time - (self.received_at - half_trip)


def http_date(value: str | None) -> float | None:
    """An HTTP Date header -> unix seconds; None when absent or not a date."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def probe(transport: Transport, path: str, params: Mapping[str, Any] | None = None) -> Probe:
    """GET `path` through the usual seam, watching the raw answers for their headers."""
    seen: list[tuple[requests.Response, float]] = []

    def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        seen.append((response, time.time()))

    # `Answer` carries no headers; a response hook on the GET session sees them all.
    hooks = transport._get.hooks["response"]
    hooks.append(remember)
    data: Any = None
    error: KalixoError | None = None
    try:
        data = transport.get(path, params).data
    except (APIError, TransportError) as exc:
        error = exc
    finally:
        hooks.remove(remember)
    if not seen:
        return Probe(transport.url(path), None, None, None, None, None, error)
    response, received_at = seen[-1]
    return Probe(
        url=transport.url(path),
        status=response.status_code,
        round_trip_ms=response.elapsed.total_seconds() * 1000,
        server_time=http_date(response.headers.get("date")),
        received_at=received_at,
        data=data,
        error=error,
    )
