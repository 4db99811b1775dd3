"""Bounds on one HTTP exchange: its total time, and the size of the body kept in memory.

requests' read timeout is per socket read, so a server that sends one byte (or one header
line) every few seconds holds a request open for ever; and a body is read whole into
memory, however large. Here:

- `Watchdog` (one daemon thread for the process) shuts the socket of an exchange that
  outlives its time, from connecting to the last byte of the body (redirects included);
  the blocked read then fails and the exchange ends as `TotalTimeout`, a read timeout.
- `read_capped` reads a streamed body up to `MAX_BODY_BYTES` (far above any real answer:
  catalog pages are capped one by one) and ends it with `BodyTooLarge` beyond.

`BoundedAdapter` is how the watchdog finds the sockets: each connection the pool hands out
during a watched exchange is registered with that exchange (a thread-local).
"""

from __future__ import annotations

import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import requests
from requests.adapters import HTTPAdapter

MAX_BODY_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


def describe_size(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


class TotalTimeout(requests.exceptions.ReadTimeout):
    """The whole exchange took longer than its time (a trickling server)."""


class BodyTooLarge(requests.exceptions.RequestException):
    """The answer's body is larger than kalixo keeps in memory."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        what = f"declares a body of {declared:,} bytes" if declared is not None else "sent a body"
        super().__init__(f"the answer {what}, over the {describe_size(limit)} limit")
        self.limit = limit
        self.declared = declared


class _Watch:
    """One exchange: its deadline and the connections it used."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.connections: list[Any] = []
        self.done = False
        self.fired = False
        self._lock = threading.Lock()

    def add(self, connection: Any) -> None:
        with self._lock:
            self.connections.append(connection)
            fired = self.fired
        if fired:
            _shut(connection)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            connections = list(self.connections)
        for connection in connections:
            _shut(connection)

    def finish(self) -> bool:
        """The exchange is over; True if the watchdog had to cut it."""
        with self._lock:
            self.done = True
            return self.fired


def _shut(connection: Any) -> None:
    # shutdown, never close: the reading thread owns the descriptor; a shut socket makes
    # its blocked read return end-of-file at once.
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """One thread for the process, waking at the earliest deadline of the open exchanges."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> _Watch:
        watch = _Watch(self._clock() + seconds)
        with self._condition:
            heapq.heappush(self._heap, (watch.deadline, next(self._order), watch))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kalixo-watchdog", daemon=True
                )
                self._thread.start()
            self._condition.notify()
        return watch

    def _run(self) -> None:
        with self._condition:
            while True:
                now = self._clock()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, watch = heapq.heappop(self._heap)
                    if not watch.done:
                        watch.fire()
                wait = self._heap[0][0] - now if self._heap else None
                self._condition.wait(wait)


WATCHDOG = Watchdog()
_current = threading.local()


@contextmanager
def bounded(seconds: float) -> Iterator[_Watch]:
    """Watch every connection this thread takes from a pool until the block ends; raise
    `TotalTimeout` for a request that failed because the watchdog cut it."""
    watch = WATCHDOG.arm(seconds)
    _current.watch = watch
    try:
        yield watch
    except requests.exceptions.RequestException as exc:
        if watch.finish() and not isinstance(exc, BodyTooLarge):
            raise TotalTimeout(f"no complete answer within {seconds:g} s") from exc
        raise
    finally:
        _current.watch = None
        watch.finish()


def complete(response: requests.Response) -> bool:
    """Whether a response read to its end is provably whole: its length was declared and
    met, or it was chunked (urllib3 raises on a cut chunked body). A body delimited by the
    connection closing, or headers cut by it, cannot be told from a cut answer."""
    if "chunked" in response.headers.get("transfer-encoding", "").lower():
        return True
    declared = response.headers.get("content-length", "").strip()
    return declared.isdigit() and int(declared) == len(response.content)


class BoundedAdapter(HTTPAdapter):
    """An adapter whose pools report each connection they hand out to the current watch."""

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> Any:
        pool = super().get_connection_with_tls_context(*args, **kwargs)
        if not getattr(pool, "_kalixo_watched", False):
            take = getattr(pool, "_get_conn")  # noqa: B009

            def get_conn(timeout: float | None = None) -> Any:
                connection = take(timeout)
                watch: _Watch | None = getattr(_current, "watch", None)
                if watch is not None:
                    watch.add(connection)
                return connection

            # urllib3 has no hook for "a connection was taken"; wrapping the pool's own
            # method is the narrowest seam, and it is the same for every pool class.
            setattr(pool, "_get_conn", get_conn)  # noqa: B010
            setattr(pool, "_kalixo_watched", True)  # noqa: B010
        return pool


def read_capped(response: requests.Response, limit: int = MAX_BODY_BYTES) -> None:
    """Read a streamed response's body into it (`.content`), or raise `BodyTooLarge`
    (the connection is closed, never reused) once it passes `limit` bytes."""
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise BodyTooLarge(limit, int(declared))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            response.close()
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    response._content = b"".join(chunks)
    setattr(response, "_content_consumed", True)  # noqa: B010


def cap_redirect_body(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """A response hook: requests reads a redirect's body whole before following it; read it
    here first, capped."""
    if response.is_redirect and getattr(response, "_content", None) is False:
        read_capped(response)
