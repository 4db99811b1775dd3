"""`orders list` streams: JSON arrays written as the journal yields rows, byte for byte what
a whole-list dump would print; at a terminal a table shows the newest page and says how to
see the rest; `--all` streams a table of any length."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kalixo_cli.commands.orders import TABLE_PAGE
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_sqlite import Journal
from kalixo_cli.terminal.output import print_json_array
from tests.helpers import run

API = "https://api.kalixo.io/v1"


def _body(code: str) -> dict[str, Any]:
    return {
        "externalOrderCode": code,
        "currency": "GBP",
        "orderProducts": [{"productId": 6, "price": 839, "quantity": 1}],
    }


def _fill(count: int) -> list[str]:
    codes = [f"L-{index:04d}" for index in range(count)]
    with Journal(default_journal_path()) as journal:
        for index, code in enumerate(codes):
            assert journal.claim(API, code, _body(code)).won
            journal.finish(API, code, "placed", order_id=60000 + index, status="completed")
    return codes


@pytest.mark.parametrize(
    "items",
    [
        [],
        [1],
        [{"a": "é", "b": None}],
        [[1, [2, {}]], {"x": {"y": []}}],
        [{"code": f"C-{i}", "n": i, "f": i / 3} for i in range(700)],  # more than one chunk
    ],
)
def test_a_streamed_array_is_the_text_of_the_whole_list(
    items: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    print_json_array(iter(items), chunk=256)
    assert out.getvalue() == json.dumps(items, indent=2, ensure_ascii=False) + "\n"


def test_a_streamed_array_is_written_before_the_items_run_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    seen_while_producing: list[int] = []

    def items() -> Iterator[int]:
        for index in range(1000):
            seen_while_producing.append(len(out.getvalue()))
            yield index

    print_json_array(items(), chunk=100)
    assert seen_while_producing[150] > 0  # the first chunk was out before item 150 was made
    assert json.loads(out.getvalue()) == list(range(1000))


def test_json_lists_every_entry_oldest_first(isolated: Path) -> None:
    codes = _fill(45)
    listed = json.loads(run(["orders", "list", "-o", "json"]).stdout)
    assert [entry["externalOrderCode"] for entry in listed] == codes
    lines = run(["orders", "list", "-o", "jsonl"]).stdout.splitlines()
    assert [json.loads(line)["externalOrderCode"] for line in lines] == codes
    assert json.loads(run(["orders", "list", "--limit", "3", "-o", "json"]).stdout) == listed[:3]


def test_csv_lists_every_entry_in_its_columns(isolated: Path) -> None:
    import csv

    codes = _fill(12)
    result = run(["orders", "list", "-o", "csv"])
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["externalOrderCode"] for row in rows] == codes
    assert rows[0]["state"] == "placed"
    shown = run(["orders", "show", codes[0], "-o", "csv"])
    assert shown.exit_code == 0, shown.stderr
    assert next(csv.DictReader(io.StringIO(shown.stdout)))["orderId"] == "60000"


def test_all_and_limit_together_are_refused(isolated: Path) -> None:
    result = run(["orders", "list", "--all", "--limit", "5"])
    assert result.exit_code == 2
    assert "--all and --limit" in result.stderr


def _at_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run kalixo with stdout on a real pseudo-terminal; returns (exit, stdout, stderr)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kalixo_cli", *args],
        stdout=follower,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, b"".join(chunks).decode(), stderr.decode()


def test_a_table_at_a_terminal_shows_the_newest_page_and_says_how_to_see_more(
    isolated: Path,
) -> None:
    codes = _fill(TABLE_PAGE + 15)
    code, out, err = _at_a_terminal(["orders", "list"])
    assert code == 0, err
    shown = [c for c in codes if c in out]
    assert shown == codes[-TABLE_PAGE:]
    assert f"showing the newest {TABLE_PAGE} of {TABLE_PAGE + 15} orders; --all" in err

    code, out, err = _at_a_terminal(["orders", "list", "--all"])
    assert code == 0, err
    assert [c for c in codes if c in out] == codes
    assert out.count("Code") == 1  # one header, however many chunks
    assert "showing the newest" not in err


def test_a_piped_table_lists_everything_in_chunks_with_one_header_and_steady_columns(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kalixo_cli.commands.orders.TABLE_CHUNK", 10)
    codes = _fill(TABLE_PAGE + 5)
    result = run(["orders", "list", "-o", "table"])
    assert result.exit_code == 0
    assert [c for c in codes if c in result.stdout] == codes
    lines = result.stdout.splitlines()
    assert sum(line.lstrip().startswith("Code") for line in lines) == 1
    rows = [line for line in lines if line.startswith("L-")]
    assert len(rows) == len(codes)
    assert len({row.index("placed") for row in rows}) == 1
