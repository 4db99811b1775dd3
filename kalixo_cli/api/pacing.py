"""Client-side rate pacing: the server's newest X-RateLimit-* headers are the truth.

Kalixo allows 60 requests a minute per API key (v2), so for a batch the rate limit, not
latency, sets the pace. The rule (`PaceRule`):

- The newest answer, by arrival, says the state of the window: `X-RateLimit-Limit`,
  `-Remaining`, and `-Reset` (when the window ends; with a sliding window, when the next slot
  frees). Nothing else is remembered: a remaining count may rise (a sliding window, or another
  process's window ending), and the pacer never invents a window of its own.
- Requests are spread evenly over what is left: after the last request, the next goes once
  (Reset - last) / (budget + 1) has passed, the budget being Remaining less the requests
  still in flight (the server may not have counted them yet), so the budget is used up just
  before Reset. Spreading instead of bursting then
  waiting keeps a sliding window full and leaves room for other processes on the same key,
  whose use the headers show.
- With no budget left, a request waits for the announced Reset. Once Reset has passed, the
  old state says nothing about the new window: one request goes alone, and its answer paces
  the others. The same holds before the first answer.
- An answer without the headers means a server that does not say: requests go unpaced, and
  a 429's Retry-After (which then holds back every worker) is the only brake.
- A 429's Retry-After wins over everything. Every wait taken from a header is capped at
  `MAX_WAIT` (one of Kalixo's windows), so a Reset in the year 2100 cannot stall a run, and a
  lone request whose answer never comes holds the others back no longer than that.

Times are unix seconds on this machine's clock, compared with the server's Reset: a clock
far off the server's makes pacing too eager (429s, then Retry-After) or too slow.
`PaceRule` is pure (time is an argument); `RatePacer` shares one between worker threads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kalixo_cli.api.retry import reset_delay, retry_after_delay
from kalixo_cli.domain.errors import SendCancelled

__all__ = ["MAX_WAIT", "Pace", "PaceRule", "RatePacer", "Window", "read_window"]

MAX_WAIT = 60.0
"""Seconds: the longest wait any header can cause (Kalixo's window is a minute)."""


@dataclass(frozen=True)
class Window:
    """The rate-limit state one answer announced."""

    limit: int
    remaining: int
    reset: float  # unix seconds, capped at arrival + MAX_WAIT


def _count(headers: Mapping[str, str], name: str) -> int | None:
    wanted = name.lower()
    value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    try:
        return int(value.strip()) if isinstance(value, str) else None
    except ValueError:
        return None


def read_window(
    headers: Mapping[str, str], now: float, *, max_wait: float = MAX_WAIT
) -> Window | None:
    """The window an answer arriving at `now` announces; None unless all three headers
    are there and readable. A Reset further than `max_wait` away counts as `max_wait`."""
    limit = _count(headers, "X-RateLimit-Limit")
    remaining = _count(headers, "X-RateLimit-Remaining")
    delay = reset_delay(headers, now)
    if limit is None or remaining is None or delay is None or limit < 1:
        return None
    return Window(limit, min(max(remaining, 0), limit), now + min(delay, max_wait))


class PaceRule:
    """When may the next request go? Pure: every method takes the time; not thread-safe."""

    def __init__(self, *, max_wait: float = MAX_WAIT) -> None:
        self.max_wait = max_wait
        self.window: Window | None = None
        self.headerless = False  # answers came without the headers: nothing to pace by
        self.in_flight = 0
        self.last_event = 0.0  # when a request last left or an answer last came
        self.last_sent: float | None = None
        self.blocked_until = 0.0  # a 429's Retry-After

    def admit(self, now: float) -> float:
        """0.0: the request goes now (and is counted in flight); otherwise the seconds to
        wait before asking again (sooner if an answer arrives)."""
        if now < self.blocked_until:
            return self.blocked_until - now
        window = self.window
        if window is None and self.headerless:
            return self._send(now)
        if window is None or now >= window.reset:
            # Nothing is known about the window now in force: the answers on their way may
            # tell; else one request goes alone to ask. (Bounded: an answer that never
            # comes holds the others back `max_wait` at most.)
            if self.in_flight > 0 and now < self.last_event + self.max_wait:
                return self.last_event + self.max_wait - now
            return self._send(now)
        budget = window.remaining - self.in_flight
        if budget <= 0:
            return window.reset - now
        if self.last_sent is not None:
            # `budget` requests evenly in (last, Reset), the last one before Reset
            due = self.last_sent + (window.reset - self.last_sent) / (budget + 1)
            if due > now:
                return due - now
        return self._send(now)

    def _send(self, now: float) -> float:
        self.in_flight += 1
        self.last_sent = self.last_event = now
        return 0.0

    def answered(self, now: float, status: int, headers: Mapping[str, str]) -> None:
        """An answer arrived at `now`: its headers, if any, are the new state."""
        self.in_flight = max(0, self.in_flight - 1)
        self.last_event = now
        window = read_window(headers, now, max_wait=self.max_wait)
        if window is not None:
            self.window, self.headerless = window, False
        elif status < 429 and (self.window is None or now >= self.window.reset):
            # The API itself answered without them (a gateway's 502 says nothing).
            self.window, self.headerless = None, True
        if status != 429:
            return
        asked = retry_after_delay(headers, now)
        if asked is not None:
            self.blocked_until = now + min(asked, self.max_wait)
            if self.window is not None:  # Retry-After wins: then one request asks again
                self.window = Window(
                    self.window.limit, 0, min(self.window.reset, self.blocked_until)
                )
        elif self.window is not None and window is None:  # the server disagrees: none left
            self.window = Window(self.window.limit, 0, self.window.reset)

    def released(self) -> None:
        """A request got no answer: it is no longer in flight, and tells nothing."""
        self.in_flight = max(0, self.in_flight - 1)


@dataclass(frozen=True)
class Pace:
    """What the progress bar says about pacing."""

    limit: int | None  # the server's X-RateLimit-Limit, when it sends one
    paced: bool  # requests waited for their turn lately
    per_minute: float | None  # requests sent per minute lately


class RatePacer:
    """A `PaceRule` shared by the workers of a bulk run (thread-safe; `retry.Pacer`).

    Waiting workers wake when an answer arrives (the state may let them go sooner) and when
    `stop` is set, which cancels every wait: the request is not sent (`SendCancelled`).
    """

    RECENT = 20.0  # seconds of sends that the progress bar's rate is measured over

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        max_wait: float = MAX_WAIT,
        wait: Callable[[threading.Condition, float], object] | None = None,
    ) -> None:
        self._rule = PaceRule(max_wait=max_wait)
        self._clock = clock
        self._stop = stop
        self._changed = threading.Condition()
        self._wait = wait or (lambda condition, seconds: condition.wait(seconds))
        self._sent: deque[float] = deque()
        self._last_delay_at: float | None = None
        self.waited = 0.0

    def before_request(self) -> None:
        with self._changed:
            while True:
                if self._stop is not None and self._stop.is_set():
                    raise SendCancelled(
                        "the run stopped before this request was sent; nothing was placed"
                    )
                now = self._clock()
                delay = self._rule.admit(now)
                if delay <= 0:
                    break
                self._last_delay_at = now
                # Stop is polled: an Event cannot wake a Condition.
                seconds = min(delay, 0.25) if self._stop is not None else delay
                self._wait(self._changed, seconds)
                self.waited += max(0.0, self._clock() - now)
            self._sent.append(now)
            while self._sent and self._sent[0] < now - self.RECENT:
                self._sent.popleft()

    def after_response(self, status: int, headers: Mapping[str, str]) -> None:
        with self._changed:
            self._rule.answered(self._clock(), status, headers)
            self._changed.notify_all()

    def release(self) -> None:
        with self._changed:
            self._rule.released()
            self._changed.notify_all()

    def pace(self) -> Pace:
        with self._changed:
            now = self._clock()
            window = self._rule.window
            paced = self._last_delay_at is not None and now - self._last_delay_at < 5.0
            recent = [t for t in self._sent if t >= now - self.RECENT]
            rate = None
            if len(recent) >= 2 and recent[-1] > recent[0]:
                rate = (len(recent) - 1) / (recent[-1] - recent[0]) * 60
            return Pace(window.limit if window is not None else None, paced, rate)
