"""API v2 end to end: the same script gives the same JSON as v1, every v2 status is
rendered, and exactly-once placement settles unknown outcomes by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.sandbox import (
    KTEST_FAIL_ID,
    KTEST_OK_ID,
    KTEST_PARTIAL_ID,
    SANDBOX_API_KEY,
    SANDBOX_TOKEN,
)
from kalixo_cli.sandbox.faults import Faults
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_sqlite import Journal
from tests.helpers import kill_repeatedly, run

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "order.json")
POST_V2 = "/v2/orders"


def test_order(product_id: int, sku: str, quantity: int = 1) -> str:
    return json.dumps(
        {
            "currency": "GBP",
            "orderProducts": [
                {"productId": product_id, "price": 1000, "sku": sku, "quantity": quantity}
            ],
        }
    )


test_order.__test__ = False  # type: ignore[attr-defined]


def comparable(order: dict[str, Any]) -> dict[str, Any]:
    """What must match across API generations: everything but ids, codes and PIN values."""
    shown = {
        k: v
        for k, v in order.items()
        if k not in ("orderId", "externalOrderCode", "estimatedReadyAt")
    }
    shown["products"] = [{**p, "pins": len(p["pins"])} for p in order["products"]]
    return shown


def test_the_same_script_gives_the_same_json_on_v1_and_v2(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    script = ["place-order", EXAMPLE, "--wait", "--poll-interval", "1", "-o", "json"]
    monkeypatch.setenv("KALIXO_API_URL", sandbox.v1_url)
    monkeypatch.setenv("KALIXO_TOKEN", SANDBOX_TOKEN)
    v1 = run(script)
    assert v1.exit_code == 0, v1.stderr
    monkeypatch.delenv("KALIXO_TOKEN")
    monkeypatch.setenv("KALIXO_API_URL", sandbox.v2_url)
    monkeypatch.setenv("KALIXO_API_KEY", SANDBOX_API_KEY)
    v2 = run(script)
    assert v2.exit_code == 0, v2.stderr
    first, second = json.loads(v1.stdout), json.loads(v2.stdout)
    assert comparable(first) == comparable(second)
    assert second["status"] == "completed"
    assert all(pin.startswith("SANDBOX-") for p in second["products"] for pin in p["pins"])


def test_without_wait_a_v2_order_is_processing_and_says_how_to_follow(v2: RunningSandbox) -> None:
    result = run(["place-order", EXAMPLE, "-o", "json"])
    assert result.exit_code == 0, result.stderr
    order = json.loads(result.stdout)
    assert order["status"] == "processing" and order["estimatedReadyAt"]
    assert [p["sku"] for p in order["products"]] == ["GB-EN-4251604177278", "GB-EN-4251604133182"]
    assert "--wait" in result.stderr
    by_code = run(["retrieve-order", order["externalOrderCode"], "-o", "json"])
    assert json.loads(by_code.stdout)["orderId"] == order["orderId"]


def test_wait_times_out_with_exit_8(v2: RunningSandbox) -> None:
    from kalixo_cli.sandbox import KTEST_SLOW_ID

    path = v2.store  # noqa: F841 - the fixture's sandbox is the server in use
    result = run(
        ["place-order", "-", "--format", "json", "--wait", "--timeout", "1", "-o", "json"],
        input=test_order(KTEST_SLOW_ID, "KTEST-SLOW"),
    )
    assert result.exit_code == ExitCode.STILL_PROCESSING
    assert "still processing" in result.stderr
    # the order in hand is printed before the exit 8: a script gets its orderId and status
    order = json.loads(result.stdout)
    assert order["status"] == "processing" and order["orderId"]
    retrieved = run(
        ["retrieve-order", str(order["orderId"]), "--wait", "--timeout", "1", "-o", "json"]
    )
    assert retrieved.exit_code == ExitCode.STILL_PROCESSING
    assert json.loads(retrieved.stdout)["orderId"] == order["orderId"]


@pytest.mark.parametrize(
    ("product_id", "sku", "quantity", "status"),
    [
        (KTEST_OK_ID, "KTEST-OK", 1, "completed"),
        (KTEST_PARTIAL_ID, "KTEST-PARTIAL", 2, "partially_completed"),
        (KTEST_FAIL_ID, "KTEST-FAIL", 1, "failed"),
    ],
)
def test_every_v2_status_is_rendered(
    v2: RunningSandbox, product_id: int, sku: str, quantity: int, status: str
) -> None:
    placed = run(
        ["place-order", "-", "--format", "json", "--wait", "--poll-interval", "1", "-o", "json"],
        input=test_order(product_id, sku, quantity),
    )
    """place-order exits 0, 12 or 7 by the final status, and prints exactly what
    retrieve-order prints: currency, total and SKUs come from the journal's request, and a
    failed order keeps the lines ordered (without PINs)."""
    order = json.loads(placed.stdout)
    assert order["status"] == status, placed.stderr
    assert (
        placed.exit_code
        == {
            "completed": ExitCode.OK,
            "partially_completed": ExitCode.PARTIALLY_COMPLETED,
            "failed": ExitCode.ORDER_UNSUCCESSFUL,
        }[status]
    )
    assert (order["currency"], order["price"]) == ("GBP", 1000 * quantity)
    assert [(p["productId"], p["sku"], p["quantity"]) for p in order["products"]] == [
        (product_id, sku, quantity)
    ]
    for reference in (str(order["orderId"]), order["externalOrderCode"]):
        retrieved = run(["retrieve-order", reference, "-o", "json"])
        assert retrieved.exit_code == ExitCode.OK
        assert json.loads(retrieved.stdout) == order
    with Journal(default_journal_path()) as journal:
        entry = journal.get(v2.v2_url, order["externalOrderCode"])
    assert entry is not None and entry.status == status
    table = run(["retrieve-order", str(order["orderId"]), "-o", "table"])
    assert status in table.stdout
    if status == "partially_completed":
        assert (order["delivered"], order["total"]) == (1, 2)
        assert "do not re-order" in placed.stderr and "1 of 2" in placed.stderr
        assert len(order["products"][0]["pins"]) == 1
        checked = run(["retrieve-order", str(order["orderId"]), "--exit-status"])
        assert checked.exit_code == ExitCode.PARTIALLY_COMPLETED
    if status == "failed":
        assert order["products"][0]["pins"] == []
        assert order["reason"] and order["reason"] in placed.stderr
        checked = run(["retrieve-order", str(order["orderId"]), "--exit-status"])
        assert checked.exit_code == ExitCode.ORDER_UNSUCCESSFUL


def test_low_balance_is_a_warning(v2: RunningSandbox) -> None:
    balances = v2.balances()
    try:
        v2.set_balance("GBP", 12_000)  # 120.00: 78.62 after this order, below 100.00
        result = run(["place-order", EXAMPLE, "-o", "json"])
        assert result.exit_code == 0
        assert "wallet is low" in result.stderr
    finally:
        for currency, amount in balances.items():
            v2.set_balance(currency, amount)


def write_jsonl(path: Path, codes: list[str]) -> str:
    line = {"productId": 6, "price": 839, "sku": "GB-EN-4251604133182", "quantity": 1}
    path.write_text(
        "".join(
            json.dumps({"externalOrderCode": c, "currency": "GBP", "orderProducts": [line]}) + "\n"
            for c in codes
        )
    )
    return str(path)


def test_v2_1000_orders_with_drops_and_502s_end_placed_exactly_once(
    v2: RunningSandbox, tmp_path: Path
) -> None:
    codes = [f"V2K-{i:04d}" for i in range(1000)]
    v2.faults = Faults(drop_after_commit_rate=0.3, error_rate_502=0.1, seed=5)
    try:
        result = run(["place-orders", write_jsonl(tmp_path / "o.jsonl", codes), "-c", "8"])
    finally:
        counts = v2.fault_counts()
        v2.faults = Faults()
    assert result.exit_code == 0, result.stderr[-2000:]
    assert counts["drop_after_commit"] > 200 and counts["error_502"] > 50
    assert {code: len(v2.store.orders_by_code(code)) for code in codes} == dict.fromkeys(codes, 1)
    outcomes = {json.loads(line)["outcome"] for line in result.stdout.splitlines()}
    assert outcomes == {"placed"}


def test_v2_sigkill_mid_batch_then_rerun_places_everything_exactly_once(
    v2: RunningSandbox, tmp_path: Path
) -> None:
    codes = [f"V2S-{i:03d}" for i in range(300)]
    path = write_jsonl(tmp_path / "o.jsonl", codes)
    v2.faults = Faults(latency_ms=40)
    env = dict(os.environ)
    command = [sys.executable, "-m", "kalixo_cli", "-q", "place-orders", path, "-c", "4"]
    try:
        kills = kill_repeatedly(command, env, seed=3)
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    finally:
        v2.faults = Faults()
    assert kills >= 2
    assert final.returncode == 0, final.stderr
    with Journal(default_journal_path()) as journal:
        states = {
            journal.get(v2.v2_url, c).effective_state  # type: ignore[union-attr]
            for c in codes
        }
    assert states == {"placed"}
    ledger = {code: len(v2.store.orders_by_code(code)) for code in codes}
    assert ledger == dict.fromkeys(codes, 1)
