"""kalixo from Python: the commands' work, with the same settings, journal, retries and errors.

    from kalixo_cli import Kalixo

    with Kalixo(profile="v2") as kalixo:
        order = kalixo.place_order("order.json")       # a path, a dict or an OrderRequest
        pins = [pin for line in order.products for pin in line.pins]
        again = kalixo.retrieve_order(order.orderId)   # the same Order shape
        for result in kalixo.place_orders(many):       # each exactly once, resumable
            print(result.code, result.outcome)

Every rule of the commands holds: an invalid order raises `InputError` naming the field and
is never sent; a code is claimed in the journal before its request leaves, so a re-run
replays instead of buying again; failures are the `KalixoError` hierarchy of
`kalixo_cli.domain.errors`, each with the exit code the command would end with. Warnings and
notes go to the `kalixo` logger unless `on_warning` / `on_note` say otherwise.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from kalixo_cli.domain.errors import UsageError
from kalixo_cli.workflows.session import Session, log_warning

if TYPE_CHECKING:
    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.domain.order import Order
    from kalixo_cli.workflows.bulk import Result


def _log_note(message: str) -> None:
    import logging

    logging.getLogger("kalixo").info("%s", message)


class Kalixo:
    """A session with the API of a profile (the config file's, as the commands use it).

    `profile`, `api_url` and `sandbox` are the `--profile`, `--api-url` and `--sandbox`
    flags; unset, the environment and the config file decide, as for the commands.
    Close it (or use `with`) to end its connections, its journal and its sandbox.
    """

    def __init__(
        self,
        *,
        profile: str | None = None,
        api_url: str | None = None,
        sandbox: bool = False,
        on_warning: Callable[[str], None] = log_warning,
        on_note: Callable[[str], None] = _log_note,
    ) -> None:
        if sandbox and api_url:
            raise UsageError("sandbox and api_url cannot be used together")
        self.session = Session(
            api_url_flag=api_url, profile_flag=profile, sandbox=sandbox, on_warning=on_warning
        )
        self._note = on_note

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Kalixo:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # -- one order ---------------------------------------------------------------------

    def order_request(
        self, order: OrderRequest | Mapping[str, Any] | str | Path, *, new_code: bool = False
    ) -> OrderRequest:
        """The validated request `place_order` would send (nothing is sent): an order file
        (JSON or CSV), a dict in the file's JSON shape, or an `OrderRequest`.

        Without an externalOrderCode, the code is made from the order's content and
        today's date (UTC), so the same order again today replays instead of buying twice;
        `new_code=True` buys it again under a fresh code."""
        from kalixo_cli.domain.models import OrderRequest
        from kalixo_cli.inputs import order_file

        if isinstance(order, OrderRequest):
            request, generated = order, False
        else:
            fmt: order_file.OrderFormat = "json"
            if isinstance(order, Mapping):
                data, name = json.dumps(dict(order)).encode("utf-8"), "<order>"
            else:
                name = str(order)
                fmt = order_file.detect_format(name, None)
                data, name = order_file.read_source(name, BytesIO())
            parsed = order_file.parse_order(data, name=name, fmt=fmt)
            request, generated = parsed.request, parsed.generated_code
        if new_code and not generated:
            raise UsageError(
                "new_code is for orders without a code, and this one gives "
                f"externalOrderCode {request.externalOrderCode}"
            )
        if generated and not new_code:
            code = order_file.content_code(request, salt=self.session.journal().code_salt())
            request = request.model_copy(update={"externalOrderCode": code})
        return request

    def place_order(
        self,
        order: OrderRequest | Mapping[str, Any] | str | Path,
        *,
        new_code: bool = False,
        wait: bool = False,
        timeout: float = 600.0,
        poll_interval: float = 15.0,
    ) -> Order:
        """Place the order exactly once and return it with its PINs (a code placed before
        is replayed: the order as the API has it now, nothing sent). `wait` polls a
        processing order until it is done, as `--wait` does."""
        from kalixo_cli.workflows.placement import place_or_replay, record_final

        request = self.order_request(order, new_code=new_code)
        session = self.session
        journal, api, client = session.journal(), session.endpoint().journal_key, session.client()
        result, _ = place_or_replay(journal, api, client, request, note=self._note)
        placed = result.order
        if wait:
            placed = self._wait(placed, timeout=timeout, interval=poll_interval)
        record_final(journal, api, request, placed, warn=session.on_warning)
        return placed

    def retrieve_order(
        self,
        reference: int | str,
        *,
        wait: bool = False,
        timeout: float = 600.0,
        poll_interval: float = 15.0,
    ) -> Order:
        """The order by its orderId (v2: or its externalOrderCode), in the shape
        `place_order` returns."""
        from kalixo_cli.workflows.placement import complete_retrieved

        client = self.session.client()
        order = client.retrieve_order(reference).order
        if wait:
            order = self._wait(order, timeout=timeout, interval=poll_interval)
        if client.can_look_up:  # v2 leaves out what the journal and the catalog know
            complete_retrieved(self.session.journal(), self.session.journal_key(), client, order)
        return order

    def _wait(self, order: Order, *, timeout: float, interval: float) -> Order:
        from kalixo_cli.workflows.waiting import PENDING, wait_for_order

        if (order.status or "") not in PENDING:
            return order
        reference = order.orderId if order.orderId is not None else order.externalOrderCode
        assert reference is not None
        client = self.session.client()
        return wait_for_order(
            order,
            lambda: client.retrieve_order(reference).order,
            timeout=timeout,
            interval=interval,
        )

    # -- many orders -------------------------------------------------------------------

    def place_orders(
        self,
        orders: Iterable[OrderRequest | Mapping[str, Any]],
        *,
        concurrency: int = 4,
        look_up: bool = True,
        max_problems: int = 50,
    ) -> list[Result]:
        """Place many orders, each exactly once, `concurrency` at a time: what
        `kalixo place-orders` does with a file. Every order is validated before anything
        is sent (an `InputError` lists the problems); each needs its own
        externalOrderCode. One `Result` an order: first those placed by an earlier run
        (looked up, unless `look_up=False`), then the others in the order they finished.
        Ctrl-C stops the run as it stops the command: what was not sent is not in the list."""
        from kalixo_cli.api.pacing import RatePacer
        from kalixo_cli.api.retry import RetryBudget
        from kalixo_cli.inputs.bulk_file import iter_bulk_orders
        from kalixo_cli.workflows.bulk import plan_batch, send_plan, skipped_results

        session = self.session
        lines = BytesIO(
            b"".join(json.dumps(_as_body(order)).encode("utf-8") + b"\n" for order in orders)
        )
        api, journal = session.journal_key(), session.journal()
        can_look_up = session.settings().version.finds_orders_by_code
        plan = plan_batch(
            iter_bulk_orders(lines, name="<orders>", fmt="jsonl"),
            journal=journal,
            api=api,
            max_problems=max_problems,
            can_look_up=can_look_up,
        )
        with contextlib.closing(plan):
            stop = threading.Event()
            pacer, budget = RatePacer(stop=stop), RetryBudget()
            if plan.to_send or (look_up and plan.skipped):
                session.endpoint()  # no credentials: fail before anything starts

            def client() -> Any:
                return session.new_client(pacer=pacer, budget=budget)

            done = list(
                skipped_results(
                    plan,
                    journal=journal,
                    api=api,
                    client_factory=client,
                    look_up=look_up,
                    concurrency=concurrency,
                )
            )
            send_plan(
                plan,
                journal=journal,
                api=api,
                client_factory=client,
                concurrency=concurrency,
                on_result=done.append,
                stop=stop,
                can_look_up=can_look_up,
            )
        return done


def _as_body(order: OrderRequest | Mapping[str, Any]) -> Mapping[str, Any]:
    from kalixo_cli.domain.models import OrderRequest

    return order.body() if isinstance(order, OrderRequest) else order
