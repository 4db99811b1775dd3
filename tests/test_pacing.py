"""Rate pacing: the pure rule on a fake clock, and real runs against the sandbox's limiters."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from kalixo_cli.api.http import Transport
from kalixo_cli.api.v1 import V1Client
from kalixo_cli.journal import Journal
from kalixo_cli.models import OrderRequest
from kalixo_cli.placement import place
from kalixo_cli.sandbox.server import RunningSandbox

LINE = {"productId": 6, "price": 839, "sku": "GB-EN-4251604133182", "quantity": 1,
        "currency": "GBP"}


def order_request(code: str) -> OrderRequest:
    return OrderRequest.model_validate({"externalOrderCode": code, "price": 839,
                                        "currency": "GBP", "orderProducts": [LINE]})


# -- the journal's intent is written after the pacing wait ----------------------------------


class WatchingPacer:
    """Records what the journal held for the code while the request waited for its turn."""

    def __init__(self, journal: Journal, api: str, code: str, *,
                 interrupt: bool = False) -> None:
        self.journal, self.api, self.code, self.interrupt = journal, api, code, interrupt
        self.while_waiting: list[str | None] = []
        self.on_answer: list[str | None] = []
        self.released = 0

    def _state(self) -> str | None:
        entry = self.journal.get(self.api, self.code)
        return entry.state if entry is not None else None

    def before_request(self) -> None:
        self.while_waiting.append(self._state())
        if self.interrupt:
            raise KeyboardInterrupt  # Ctrl-C during the pacing wait

    def after_response(self, status: int, headers: Mapping[str, str]) -> None:
        self.on_answer.append(self._state())

    def release(self) -> None:
        self.released += 1


def test_intent_is_journaled_after_the_pacing_wait_right_before_sending(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    from kalixo_cli.sandbox import SANDBOX_TOKEN

    journal = Journal(tmp_path / "journal.sqlite3")
    pacer = WatchingPacer(journal, sandbox.v1_url, "PACE-1")
    client = V1Client(Transport(sandbox.v1_url, SANDBOX_TOKEN, timeout=5, retries=0,
                                pacer=pacer))
    place(journal, sandbox.v1_url, client, order_request("PACE-1"))
    assert pacer.while_waiting == [None]  # nothing journaled while it waited for its turn
    assert pacer.on_answer == ["sending"]  # the intent was on disk when the answer came
    entry = journal.get(sandbox.v1_url, "PACE-1")
    assert entry is not None and entry.state == "placed"


def test_an_order_interrupted_while_paced_was_never_sent_and_leaves_no_row(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    from kalixo_cli.sandbox import SANDBOX_TOKEN

    journal = Journal(tmp_path / "journal.sqlite3")
    pacer = WatchingPacer(journal, sandbox.v1_url, "PACE-2", interrupt=True)
    client = V1Client(Transport(sandbox.v1_url, SANDBOX_TOKEN, timeout=5, retries=0,
                                pacer=pacer))
    sandbox.reset_counts()
    with pytest.raises(KeyboardInterrupt):
        place(journal, sandbox.v1_url, client, order_request("PACE-2"))
    assert journal.get(sandbox.v1_url, "PACE-2") is None  # not `unknown`: it never left
    assert sandbox.request_count() == 0
    assert sandbox.store.orders_by_code("PACE-2") == []
