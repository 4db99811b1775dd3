"""The journal and the exactly-once rules (pure and on disk)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kalixo_cli.store.journal import request_hash
from kalixo_cli.store.journal_sqlite import Journal
from kalixo_cli.workflows.placement import verdict
from tests.helpers import run

API = "https://api.example/v1"
BODY = {"externalOrderCode": "J-1", "price": 1, "currency": "GBP", "orderProducts": []}


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.sqlite3")


def claim_and_die(path: Path, api: str, code: str, body: dict[str, object]) -> None:
    """Claim `code` from a real process that then exits without an outcome (a kill -9
    mid-request looks the same to the journal)."""
    script = (
        "import json, sys; from pathlib import Path; "
        "from kalixo_cli.store.journal_sqlite import Journal; "
        "j = Journal(Path(sys.argv[1])); "
        "assert j.claim(sys.argv[2], sys.argv[3], json.loads(sys.argv[4])).won; "
        "import os; os._exit(0)"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(path), api, code, json.dumps(body)],
        check=True,
        timeout=60,
    )


def test_the_journal_file_is_private_under_umask_000(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        assert Journal(tmp_path / "j" / "journal.sqlite3").claim(API, "J-1", BODY).won
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "j" / "journal.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "j").stat().st_mode) == 0o700


def test_intent_is_on_disk_before_the_request(journal: Journal, tmp_path: Path) -> None:
    assert journal.claim(API, "J-1", BODY).won
    other = Journal(tmp_path / "journal.sqlite3")  # another connection sees the same
    entry = other.get(API, "J-1")
    assert entry is not None and entry.state == "sending"
    assert entry.effective_state == "sending"  # its owner (this process) is alive
    assert entry.hash == request_hash(BODY)


def test_a_claim_whose_process_died_reads_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    claim_and_die(path, API, "J-1", BODY)
    entry = Journal(path).get(API, "J-1")
    assert entry is not None and entry.state == "sending"
    assert entry.effective_state == "unknown" and not entry.held


def test_states_and_verdicts(journal: Journal, tmp_path: Path) -> None:
    digest = request_hash(BODY)
    assert verdict(None, digest).kind == "send"
    assert journal.claim(API, "J-1", BODY).won
    assert verdict(journal.get(API, "J-1"), digest).kind == "busy"  # in flight, owner alive
    journal.finish(API, "J-1", "rejected", error_kind="RequestRejected", error="price")
    assert verdict(journal.get(API, "J-1"), "another-payload").kind == "send"  # fixed input
    assert journal.claim(API, "J-1", BODY).won
    journal.finish(API, "J-1", "failed")
    assert verdict(journal.get(API, "J-1"), digest).kind == "send"
    assert journal.claim(API, "J-1", BODY).won
    journal.finish(API, "J-1", "placed", order_id=7, status="completed")
    assert verdict(journal.get(API, "J-1"), digest).kind == "placed"
    assert verdict(journal.get(API, "J-1"), "another-payload").kind == "conflict"
    entry = journal.get(API, "J-1")
    assert entry is not None and entry.attempts == 3 and entry.order_id == 7


def test_entries_are_per_api_and_filterable(journal: Journal, tmp_path: Path) -> None:
    journal.claim(API, "A-1", BODY)
    journal.finish(API, "A-1", "placed", order_id=1)
    journal.close()
    claim_and_die(tmp_path / "journal.sqlite3", API, "A-2", BODY)
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.claim("https://other/v1", "A-3", BODY)
    assert [e.code for e in journal.entries(API)] == ["A-1", "A-2"]
    assert [e.code for e in journal.entries(API, state="unknown")] == ["A-2"]
    assert [e.code for e in journal.entries(API, code_like="A-1")] == ["A-1"]


def test_abandon_in_flight_marks_unknown_with_the_reason(journal: Journal) -> None:
    journal.claim(API, "A-1", BODY)
    journal.abandon_in_flight(API, ["A-1"], "interrupted twice")
    entry = journal.get(API, "A-1")
    assert entry is not None and entry.state == "unknown" and entry.error == "interrupted twice"


def test_orders_resolve_and_list_via_the_cli(isolated: Path) -> None:
    from kalixo_cli.store.journal import default_journal_path

    claim_and_die(default_journal_path(), "https://api.kalixo.io/v1", "R-1", BODY)
    listed = json.loads(run(["orders", "list", "-o", "json"]).stdout)
    assert [(e["externalOrderCode"], e["state"]) for e in listed] == [("R-1", "unknown")]
    shown = run(["orders", "show", "R-1"])
    assert "kalixo orders resolve R-1" in shown.stderr
    assert run(["orders", "resolve", "R-1"]).exit_code == 2
    assert run(["orders", "resolve", "R-1", "--order-id", "59400"]).exit_code == 0
    entry = json.loads(run(["orders", "show", "R-1", "-o", "json"]).stdout)
    assert (entry["state"], entry["orderId"]) == ("placed", 59400)
    assert run(["orders", "resolve", "R-1", "--not-placed"]).exit_code == 2
    assert json.loads(run(["orders", "list", "--state", "placed", "-o", "json"]).stdout)
    assert run(["orders", "list", "--state", "bogus"]).exit_code == 2
    assert run(["orders", "list", "--since", "yesterday"]).exit_code == 2


def test_orders_show_names_a_code_it_does_not_know() -> None:
    result = run(["orders", "show", "NOPE-1"])
    assert result.exit_code == 2
    assert "no order NOPE-1" in result.stderr


def test_processes_started_together_on_a_new_journal_all_open_it(tmp_path: Path) -> None:
    """While one process switches a new file to WAL, SQLite can answer "locked" at once,
    without its busy handler: a cron job and a terminal started together on a new journal
    must both open it and claim, not one of them exit 11."""
    script = (
        "import sys; from kalixo_cli.store.journal_url import locate, open_journal; "
        "j = open_journal(locate('sqlite://' + sys.argv[1])); "
        "[j.claim(sys.argv[2], f'C-{n}', {}) for n in range(40)]; j.close()"
    )
    for round_ in range(12):
        path = tmp_path / f"round-{round_}" / "journal.sqlite3"
        started = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(path), API], stderr=subprocess.PIPE, text=True
            )
            for _ in range(3)
        ]
        failures = [
            err
            for process in started
            for err in [process.communicate(timeout=120)[1]]
            if process.returncode
        ]
        assert failures == []
        assert len(list(Journal(path).entries())) == 40


def test_a_lock_taken_without_the_busy_handler_is_waited_out() -> None:
    """SQLite answers "database is locked" at once while another process turns a new file
    to WAL; `_while_busy` tries again, but lets any other error through at once, and gives
    up (raising the lock error) once its patience is spent."""
    import sqlite3

    from kalixo_cli.store.journal_sqlite import _while_busy

    tries: list[int] = []

    def locked_twice() -> None:
        tries.append(1)
        if len(tries) <= 2:
            raise sqlite3.OperationalError("database is locked")

    _while_busy(locked_twice)
    assert len(tries) == 3

    def broken() -> None:
        tries.append(1)
        raise sqlite3.OperationalError("no such table: orders")

    tries.clear()
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        _while_busy(broken)
    assert len(tries) == 1

    def always_locked() -> None:
        tries.append(1)
        raise sqlite3.OperationalError("database is locked")

    tries.clear()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _while_busy(always_locked, patience=0.0)
    assert 1 <= len(tries) <= 2


def test_a_journal_that_cannot_take_the_final_status_warns_and_keeps_the_order(
    tmp_path: Path,
) -> None:
    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.domain.order import Order
    from kalixo_cli.workflows.placement import record_final

    body = {
        **BODY,
        "price": 3299,
        "orderProducts": [
            {"productId": 2, "price": 3299, "sku": "GB-EN-1", "currency": "GBP", "quantity": 1}
        ],
    }
    request = OrderRequest.model_validate(body)
    journal = Journal(tmp_path / "journal.sqlite3")
    assert journal.claim(API, "J-1", request.body()).won
    journal.finish(API, "J-1", "placed", order_id=7)
    journal.close()  # as a journal gone bad after the order was placed
    order = Order(orderId=7, externalOrderCode="J-1", status="completed")
    warnings: list[str] = []
    record_final(journal, API, request, order, warn=warnings.append)
    assert order.currency == "GBP" and order.price == 3299  # completed from the request
    assert len(warnings) == 1 and "could not record order 7's final status" in warnings[0]
