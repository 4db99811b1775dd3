"""`kalixo orders sync`: every non-final journal row asked about and recorded, v1 and v2."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import Result

from kalixo_cli.sandbox.faults import Faults
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_sqlite import Journal
from tests.helpers import Clock, run
from tests.test_journal import claim_and_die

EXAMPLE = Path(__file__).parent.parent / "examples" / "order.json"
SLOW = {"productId": 9003, "price": 1000, "sku": "KTEST-SLOW", "quantity": 1}


def body(code: str, *lines: dict[str, Any]) -> dict[str, Any]:
    products = list(lines) or json.loads(EXAMPLE.read_text())["orderProducts"]
    return {
        "externalOrderCode": code,
        "currency": "GBP",
        "price": sum(line["price"] * line["quantity"] for line in products),
        "orderProducts": [{**line, "currency": "GBP"} for line in products],
    }


def place(code: str, *lines: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    file = tmp_path / f"{code}.json"
    file.write_text(json.dumps(body(code, *lines)))
    result = run(["place-order", str(file), "-o", "json"])
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def api_key() -> str:
    listed = json.loads(run(["orders", "list", "-o", "json"]).stdout)
    return str(listed[0]["api"]) if listed else ""


def make_unknown(
    code: str,
    api: str,
    *,
    sending: bool = False,
    age: float = 3600.0,
    order_id: int | None = None,
    lines: tuple[dict[str, Any], ...] = (),
) -> None:
    """A journal row as a crash or a timeout leaves it: sent, outcome unknown."""
    if sending:  # claimed by a process that is gone now (a kill -9 mid-request)
        claim_and_die(default_journal_path(), api, code, body(code, *lines))
    with Journal(default_journal_path()) as journal:
        if not sending:
            assert journal.claim(api, code, body(code, *lines)).won
            journal.finish(
                api,
                code,
                "unknown",
                order_id=order_id,
                error_kind="OutcomeUnknown",
                error="no answer within 30 s",
            )
    stamp = time.time() - age
    with closing(sqlite3.connect(default_journal_path())) as db, db:
        db.execute(
            "UPDATE orders SET created_at = ?, updated_at = ? WHERE api = ? AND code = ?",
            (stamp, stamp, api, code),
        )


def rows(result: Result) -> dict[str, dict[str, Any]]:
    return {record["externalOrderCode"]: record for record in json.loads(result.stdout)}


def lose_the_answer(
    code: str, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Place `code` with the connection cut after the API committed it: exit 6, unknown."""
    file = tmp_path / f"{code}.json"
    file.write_text(json.dumps(body(code)))
    sandbox.faults = Faults(drop_after_commit_rate=1.0)
    monkeypatch.setenv("KALIXO_RETRIES", "0")
    try:
        result = run(["place-order", str(file), "-o", "json"])
    finally:
        sandbox.faults = Faults()
        monkeypatch.setenv("KALIXO_RETRIES", "2")
    assert result.exit_code == 6, result.stderr


def test_v2_settles_unknowns_and_pending_orders(
    v2: RunningSandbox, tmp_path: Path, sandbox_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = place("SYNC-SLOW", SLOW, tmp_path=tmp_path)  # processing for 10 s on v2
    assert placed["status"] == "processing"
    api = api_key()
    lose_the_answer("SYNC-LOST", v2, tmp_path, monkeypatch)  # placed; this machine unsure
    [lost] = v2.store.orders_by_code("SYNC-LOST")
    make_unknown("SYNC-NEVER", api)  # sent, but it never reached the API
    place("SYNC-DONE", tmp_path=tmp_path)  # v2 orders start processing too
    sandbox_clock.advance(11)
    v2.reset_counts()

    result = run(["orders", "sync", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    changes = rows(result)
    assert set(changes) == {"SYNC-SLOW", "SYNC-LOST", "SYNC-NEVER", "SYNC-DONE"}
    assert changes["SYNC-SLOW"]["statusBefore"] == "processing"
    assert changes["SYNC-SLOW"]["status"] == "completed" and changes["SYNC-SLOW"]["changed"]
    assert changes["SYNC-LOST"]["stateBefore"] == "unknown"
    assert changes["SYNC-LOST"]["state"] == "placed"
    assert changes["SYNC-LOST"]["orderId"] == lost.order_id
    assert changes["SYNC-NEVER"]["state"] == "failed"
    assert v2.request_count("POST") == 0  # sync never places anything
    schema = json.loads(run(["schema", "sync-result"]).stdout)
    for record in changes.values():
        Draft202012Validator(schema).validate(record)

    journal = rows(run(["orders", "list", "-o", "json"]))
    assert journal["SYNC-LOST"]["state"] == "placed"
    assert journal["SYNC-LOST"]["orderId"] == changes["SYNC-LOST"]["orderId"]
    assert journal["SYNC-SLOW"]["status"] == "completed"
    assert journal["SYNC-NEVER"]["state"] == "failed"
    # Everything final now: nothing to ask.
    again = run(["orders", "sync", "-o", "json"])
    assert again.exit_code == 0 and json.loads(again.stdout) == []
    # The settled code is sent again, once, by place-order:
    never = tmp_path / "never.json"
    never.write_text(json.dumps(body("SYNC-NEVER")))
    assert run(["place-order", str(never), "-o", "json"]).exit_code == 0


def test_v2_leaves_a_row_being_sent_alone(v2: RunningSandbox) -> None:
    make_unknown("SYNC-INFLIGHT", v2.v2_url, sending=True, age=1.0)
    result = run(["orders", "sync", "-o", "json"])
    assert result.exit_code == 6
    change = rows(result)["SYNC-INFLIGHT"]
    assert change["state"] == "unknown" and not change["changed"]
    assert "being sent" in change["detail"]


def test_v1_updates_what_it_can_and_exits_6_for_the_rest(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    placed = place("SYNC-V1", tmp_path=tmp_path)
    api = api_key()
    make_unknown("SYNC-V1-UNKNOWN", api)  # no order id: v1 cannot look it up
    make_unknown("SYNC-V1-KNOWN", api, order_id=placed["orderId"])
    result = run(["orders", "sync", "-o", "json"])
    assert result.exit_code == 6
    changes = rows(result)
    assert set(changes) == {"SYNC-V1-UNKNOWN", "SYNC-V1-KNOWN"}
    assert changes["SYNC-V1-KNOWN"]["state"] == "placed"
    assert changes["SYNC-V1-KNOWN"]["status"] == "completed"
    assert changes["SYNC-V1-UNKNOWN"]["state"] == "unknown"
    assert "orders resolve SYNC-V1-UNKNOWN" in changes["SYNC-V1-UNKNOWN"]["detail"]
    assert "1 order still has an unknown outcome" in result.stderr
    assert sandbox.request_count("POST") == 1  # the one place-order above


def test_since_and_code_choose_the_rows(sandbox: RunningSandbox, tmp_path: Path) -> None:
    placed = place("SYNC-F", tmp_path=tmp_path)
    api = api_key()
    make_unknown("batch-1-a", api, order_id=placed["orderId"])
    make_unknown("batch-2-a", api, order_id=placed["orderId"])
    make_unknown("batch-1-old", api, order_id=placed["orderId"], age=86400 * 30)
    result = run(
        [
            "orders",
            "sync",
            "--code",
            "batch-1-*",
            "--since",
            time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400)),
            "-o",
            "jsonl",
            "--jq",
            ".externalOrderCode",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "batch-1-a\n"


def test_a_failure_to_ask_keeps_the_row_and_says_so(
    sandbox: RunningSandbox, tmp_path: Path, sandbox_clock: Clock
) -> None:
    placed = place("SYNC-E", SLOW, tmp_path=tmp_path)  # v1: requested, then processing
    assert placed["status"] in ("processing", "requested")
    sandbox.faults = Faults(error_rate_500=1.0, fault_paths=("/v1/orders/retrieve-order",))
    try:
        result = run(["orders", "sync", "-o", "json"])
    finally:
        sandbox.faults = Faults()
    assert result.exit_code == 5
    change = rows(result)["SYNC-E"]
    assert not change["changed"] and change["errorKind"] == "temporary"
    assert rows(run(["orders", "list", "-o", "json"]))["SYNC-E"]["status"] == placed["status"]
    sandbox_clock.advance(11)
    settled = run(["orders", "sync", "-o", "json"])
    assert settled.exit_code == 0, settled.stderr
    assert rows(settled)["SYNC-E"]["status"] == "completed"


def test_table_output(sandbox: RunningSandbox, tmp_path: Path) -> None:
    placed = place("SYNC-T", tmp_path=tmp_path)
    make_unknown("SYNC-T2", api_key(), order_id=placed["orderId"])
    result = run(["orders", "sync", "-o", "table"])
    assert result.exit_code == 0, result.stderr
    assert "SYNC-T2" in result.stdout and "placed completed" in result.stdout
    assert "looked at 1, changed 1, still unknown 0" in result.stderr
