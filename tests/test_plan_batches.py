"""Planning a batch a few thousand orders at a time (one journal query, one insert per
batch) judges every order as one at a time did: duplicates across batch boundaries, orders
the journal already knows, and problems in file order with their lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.inputs.json_order import JsonState
from kalixo_cli.inputs.order_file import parse_batch_json_order
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_sqlite import Journal
from tests.helpers import run

API = "https://api.kalixo.io/v1"
LINE = {"productId": 6, "price": 839, "sku": "GB-EN-4251604133182", "quantity": 1}


def order(code: str, **changes: Any) -> dict[str, Any]:
    return {"externalOrderCode": code, "currency": "GBP", "orderProducts": [{**LINE, **changes}]}


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kalixo_cli.workflows.bulk.PLAN_BATCH", 3)


def test_problems_across_batches_are_listed_in_file_order(
    isolated: Path, tmp_path: Path, small_batches: None
) -> None:
    lines = [order(f"PB-{i}") for i in range(10)]
    lines[1] = order("PB-1", price=8.39)  # invalid, batch 1
    lines[4] = order("PB-0")  # duplicate of line 1, batch 2
    lines[8] = order("PB-6")  # duplicate within batch 3 (line 7)
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run(["place-orders", str(path), "--dry-run"])
    assert result.exit_code == ExitCode.USAGE
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "o.jsonl:2" in errors[0] and "minor units" in errors[0]
    assert "o.jsonl:5" in errors[1] and "appears twice" in errors[1] and "o.jsonl:1" in errors[1]
    assert "o.jsonl:9" in errors[2] and "appears twice" in errors[2] and "o.jsonl:7" in errors[2]
    assert len(errors) == 3


def test_orders_the_journal_knows_are_judged_in_every_batch(
    isolated: Path, tmp_path: Path, small_batches: None
) -> None:
    bodies = [order(f"PJ-{i}") for i in range(8)]
    with Journal(default_journal_path()) as journal:
        for index in (0, 4, 7):  # in the first, second and third batches
            sent = parse_batch_json_order(
                json.dumps(bodies[index]), name="o", line=1, column=1, state=JsonState()
            ).body()
            journal.claim(API, f"PJ-{index}", sent)  # as sent: skipped, not a conflict
            journal.finish(API, f"PJ-{index}", "placed", order_id=70000 + index)
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(body) + "\n" for body in bodies))
    result = run(["place-orders", str(path), "--dry-run", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "valid": 8,
        "toSend": 5,
        "skipped": 3,
        "skippedUnknown": 0,
        "skippedBusy": 0,
    }


def test_a_code_the_journal_holds_for_another_order_is_refused_in_a_later_batch(
    isolated: Path, tmp_path: Path, small_batches: None
) -> None:
    with Journal(default_journal_path()) as journal:
        journal.claim(API, "PC-5", order("PC-5", quantity=2))
        journal.finish(API, "PC-5", "placed", order_id=70005)
    path = tmp_path / "o.jsonl"
    path.write_text("".join(json.dumps(order(f"PC-{i}")) + "\n" for i in range(7)))
    result = run(["place-orders", str(path), "--dry-run"])
    assert result.exit_code == ExitCode.USAGE
    assert "o.jsonl:6" in result.stderr and "already sent with a different order" in result.stderr
