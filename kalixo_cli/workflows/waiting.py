"""--wait: poll an order until it leaves `processing`, politely.

Kalixo asks clients to poll no earlier than `estimatedReadyAt`, then about once a minute,
never in a tight loop. The first poll waits for `estimatedReadyAt`; later ones keep to the
interval; a 429's Retry-After is honoured by the HTTP seam's retries. Time and sleep are
injected so the rules are tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from kalixo_cli.domain.errors import StillProcessing
from kalixo_cli.domain.order import Order

PENDING = frozenset({"processing", "requested"})
MIN_INTERVAL = 1.0


def seconds_until(stamp: str | None, now: float) -> float:
    """Seconds from `now` (unix) to an ISO 8601 time, 0 if past or unreadable."""
    if not stamp:
        return 0.0
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, moment.timestamp() - now)


def wait_for_order(
    order: Order,
    fetch: Callable[[], Order],
    *,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    on_poll: Callable[[Order, float], None] | None = None,
) -> Order:
    """The order once it is no longer pending; StillProcessing (exit 8) at `timeout`."""
    interval = max(interval, MIN_INTERVAL)
    deadline = clock() + timeout
    delay = seconds_until(order.estimatedReadyAt, wall_clock())
    while (order.status or "") in PENDING:
        left = deadline - clock()
        if left <= 0 or delay > left:
            raise StillProcessing(
                f"order {order.externalOrderCode or order.orderId} is still {order.status} "
                f"after {timeout:g} s",
                hint=f"check later with `kalixo retrieve-order "
                f"{order.orderId or order.externalOrderCode}` (add --wait to keep polling)",
            )
        if on_poll is not None:
            on_poll(order, delay)
        sleep(delay)
        order = fetch()
        delay = interval
    return order
