"""The script contract: every command x every output mode parses, piped and at a terminal;
`| head -1` is quiet; exit codes mean one thing each (issue 10).

The matrix is derived from the CLI itself: `test_the_matrix_covers_every_command_and_mode`
fails when a command or an `-o` mode is added without a row here, so a new command cannot
ship a broken mode.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from kalixo_cli.cli import app
from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_sqlite import Journal
from tests.faultserver import FaultServer, Reply
from tests.helpers import Clock, record_exit, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "order.json"


@dataclass(frozen=True)
class Row:
    """One command of the matrix: its arguments and the text its table must show."""

    args: tuple[str, ...]
    table_shows: str
    v2_only: bool = False


def _orders_file(folder: Path, tag: str) -> str:
    path = folder / "batch.jsonl"
    body = json.loads(EXAMPLE.read_text())
    with path.open("w") as out:
        for index in range(2):
            out.write(json.dumps({**body, "externalOrderCode": f"MB-{tag}-{index}"}) + "\n")
    return str(path)


# {placeholders}: code (a fresh code for place-order), seen (a placed order's code),
# seen_id (its orderId), batch (a JSON Lines file of two new orders).
ROWS: dict[str, Row] = {
    "place-order": Row(("place-order", str(EXAMPLE), "--external-order-code", "{code}"), "{code}"),
    "retrieve-order": Row(("retrieve-order", "{seen_id}"), "{seen}"),
    "place-orders": Row(("place-orders", "{batch}"), "placed"),
    "wallet": Row(("wallet",), "GBP", v2_only=True),
    "ping": Row(("ping",), "ok", v2_only=True),
    "doctor": Row(("doctor",), "ok"),
    "orders list": Row(("orders", "list"), "{seen}"),
    "orders show": Row(("orders", "show", "{seen}"), "{seen}"),
    "auth status": Row(("auth", "status"), "env"),
    "config show": Row(("config", "show"), "api_url"),
    "config profiles": Row(("config", "profiles"), "default"),
    "catalog list": Row(("catalog", "list"), "GB-EN-4251604177278"),
    "catalog show": Row(("catalog", "show", "2"), "GB-EN-4251604177278"),
    "schema": Row(("schema", "--list"), "order-file"),
    # v2: the seeded order is still processing there, so sync has a row to show
    "orders sync": Row(("orders", "sync", "--code", "{seen}"), "{seen}", v2_only=True),
}


def _output_modes() -> dict[str, tuple[str, ...]]:
    """Every leaf command with an -o option, and the modes it documents."""
    found: dict[str, tuple[str, ...]] = {}

    def walk(group: Any, prefix: list[str]) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, [*prefix, name])
                continue
            for param in command.params:
                if "--output" in getattr(param, "opts", ()):
                    found[" ".join([*prefix, name])] = tuple(param.type.choices)

    walk(typer.main.get_command(app), [])
    return found


# Commands that work only on a shared PostgreSQL journal: their -o json is checked against
# a real PostgreSQL in tests/test_shared_journal.py, not against the sandbox's SQLite one.
ON_A_SHARED_JOURNAL = {"journal migrate", "journal import"}
MODES = {name: modes for name, modes in _output_modes().items() if name not in ON_A_SHARED_JOURNAL}
CASES = [
    (name, mode, api)
    for name, modes in MODES.items()
    if name in ROWS
    for mode in modes
    for api in ("v1", "v2")
    if api == "v2" or not ROWS[name].v2_only
]


def test_the_matrix_covers_every_command_and_mode() -> None:
    assert set(_output_modes()) >= ON_A_SHARED_JOURNAL
    assert sorted(MODES) == sorted(ROWS), "add a Row for every command with -o"
    v2_only = sum(len(MODES[name]) for name, row in ROWS.items() if row.v2_only)
    assert len(CASES) == 2 * sum(len(m) for m in MODES.values()) - v2_only


@dataclass
class Prepared:
    args: list[str]
    shows: str


@pytest.fixture
def seeded(sandbox: RunningSandbox, tmp_path: Path) -> Callable[[str], Prepared]:
    """One placed order in the journal (on the API the test chose first); gives the argv of
    a matrix row and the text its table must show. Codes are new in every test: the
    sandbox is shared by the whole session."""

    def prepare(name: str) -> Prepared:
        tag = uuid.uuid4().hex[:10]
        row = ROWS[name]
        values = {
            "code": f"M-{tag}",
            "seen": f"MATRIX-{tag}",
            "seen_id": "",
            "batch": _orders_file(tmp_path, tag) if name == "place-orders" else "",
        }
        if "{seen" in " ".join([*row.args, row.table_shows]):
            placed = run(
                ["place-order", str(EXAMPLE), "--external-order-code", values["seen"], "-o", "json"]
            )
            assert placed.exit_code == 0, placed.stderr
            values["seen_id"] = str(json.loads(placed.stdout)["orderId"])
        return Prepared(
            [arg.format(**values) for arg in row.args], row.table_shows.format(**values)
        )

    return prepare


def _use(api: str, request: pytest.FixtureRequest) -> None:
    if api == "v2":
        request.getfixturevalue("v2")


def check_output(mode: str, stdout: str, shows: str) -> None:
    """JSON parses, JSON Lines parse line by line, CSV has its header and rows, a table
    shows what it is about."""
    assert stdout.strip(), "no output"
    if mode == "json":
        json.loads(stdout)
    elif mode == "jsonl":
        lines = stdout.splitlines()
        assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    elif mode == "csv":
        reader = csv.DictReader(io.StringIO(stdout))
        rows = list(reader)
        assert reader.fieldnames and all(reader.fieldnames), stdout
        assert rows, "a header and no rows"
        assert all(None not in row for row in rows), "a row longer than the header"
    else:
        assert shows in stdout, stdout


@pytest.mark.parametrize(("name", "mode", "api"), CASES)
def test_every_command_in_every_output_mode(
    name: str,
    mode: str,
    api: str,
    seeded: Callable[[str], Prepared],
    request: pytest.FixtureRequest,
) -> None:
    _use(api, request)
    prepared = seeded(name)
    result = run([*prepared.args, "-o", mode])
    assert result.exit_code == 0, result.stderr
    check_output(mode, result.stdout, prepared.shows)


def _spawn(args: list[str], stdout: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kalixo_cli", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "160"},
    )


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_command_at_a_terminal_prints_its_table(
    name: str,
    seeded: Callable[[str], Prepared],
    request: pytest.FixtureRequest,
) -> None:
    _use("v2", request)
    prepared = seeded(name)
    leader, follower = pty.openpty()
    process = _spawn(prepared.args, follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()
    text = b"".join(chunks).decode()
    assert prepared.shows in text, text
    assert not text.lstrip().startswith(("{", "[")), "JSON at a terminal"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_closed_stdout_ends_quietly_as_cat_does(
    name: str,
    seeded: Callable[[str], Prepared],
    request: pytest.FixtureRequest,
) -> None:
    """`kalixo ... | head -1` when head has gone: no message, no "bug", exit 141."""
    _use("v2", request)
    prepared = seeded(name)
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before kalixo writes a byte
    process = _spawn(prepared.args, writer)
    os.close(writer)
    _, stderr = process.communicate(timeout=60)
    assert record_exit(process.returncode) == ExitCode.BROKEN_PIPE, stderr.decode()
    assert "error" not in stderr.decode() and "Traceback" not in stderr.decode()


def test_head_1_on_a_long_listing_is_quiet(sandbox: RunningSandbox) -> None:
    """The real pipeline. Whether kalixo is still writing when head leaves depends on the
    pipe's size (one write of a whole JSON document may fit it): 0 or 141, never a word."""
    with Journal(default_journal_path()) as journal:
        for index in range(400):  # well over a pipe's 64 KiB in every mode
            journal.claim(sandbox.v1_url, f"HEAD-{index:05d}", {"n": index})
    for mode in ("json", "jsonl", "csv", "table"):
        shell = subprocess.run(
            [
                "bash",
                "-c",
                'set -o pipefail; "$0" -m kalixo_cli orders list -o "$1" | '
                'head -1; echo "rc=${PIPESTATUS[0]}"',
                sys.executable,
                mode,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shell.stdout.splitlines()[-1] in ("rc=0", f"rc={int(ExitCode.BROKEN_PIPE)}")
        assert shell.stderr == ""
        assert shell.stdout.splitlines()[0].strip()


# -- exit codes -----------------------------------------------------------------------------


def test_orders_csv_has_the_json_fields(sandbox: RunningSandbox) -> None:
    from kalixo_cli.commands.orders import FIELDS

    placed = run(["place-order", str(EXAMPLE), "--external-order-code", "CSV-J-1", "-o", "json"])
    assert placed.exit_code == 0
    as_json = json.loads(run(["orders", "show", "CSV-J-1", "-o", "json"]).stdout)
    assert set(FIELDS) <= set(as_json)
    for args in (["orders", "list"], ["orders", "show", "CSV-J-1"]):
        result = run([*args, "-o", "csv"])
        assert result.exit_code == 0, result.stderr
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert rows[-1]["externalOrderCode"] == "CSV-J-1"
        assert rows[-1]["orderId"] == str(as_json["orderId"])


def test_a_wrong_token_in_the_environment_is_exit_4_naming_it_never_the_saved_one(
    sandbox: RunningSandbox,
    sandbox_clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A script meant for one account never acts as the account saved on the machine."""
    from kalixo_cli.sandbox import SANDBOX_EMAIL, SANDBOX_PASSWORD

    monkeypatch.delenv("KALIXO_TOKEN")
    login = run(
        ["auth", "login", "--email", SANDBOX_EMAIL, "--password-stdin"],
        input=SANDBOX_PASSWORD + "\n",
    )
    assert login.exit_code == 0, login.stderr
    monkeypatch.setenv("KALIXO_TOKEN", "not-a-valid-token-for-this-account")
    sandbox.reset_counts()
    result = run(["place-order", str(EXAMPLE), "-o", "json"])
    assert result.exit_code == ExitCode.AUTH
    assert "KALIXO_TOKEN" in result.stderr
    assert sandbox.request_count("POST", "/v1/auth/refresh") == 0
    assert sandbox.request_count("POST", "/v1/orders/place-order") == 1
    assert result.stdout == ""


def test_a_wrong_api_key_in_the_environment_is_exit_4_naming_it(
    v2: RunningSandbox, monkeypatch: Any
) -> None:
    monkeypatch.setenv("KALIXO_API_KEY", "kal_test_" + "x" * 24)
    result = run(["retrieve-order", "1", "-o", "json"])
    assert result.exit_code == ExitCode.AUTH
    assert "KALIXO_API_KEY" in result.stderr


NOT_AN_ORDER = [
    pytest.param({"orderId": None, "products": []}, id="orderId-null"),
    pytest.param({"products": [{"productId": 2, "quantity": 1, "pin": []}]}, id="no-orderId"),
    pytest.param({"orderId": "abc", "products": []}, id="orderId-not-a-number"),
    pytest.param({"orderId": 5, "products": "none"}, id="products-not-a-list"),
    pytest.param({"orderId": 5, "products": [7]}, id="a-product-not-an-object"),
    pytest.param([1, 2, 3], id="a-list"),
    pytest.param("<html>gateway</html>", id="html"),
    pytest.param("[" * 100_000 + "]" * 100_000, id="nested-100000-deep"),
]


@pytest.mark.parametrize("body", NOT_AN_ORDER)
def test_an_answer_to_a_post_that_is_not_an_order_is_outcome_unknown(
    faults: FaultServer,
    body: Any,
) -> None:
    faults.on("/v1/orders/place-order", Reply(200, body))
    result = run(
        ["place-order", str(EXAMPLE), "--external-order-code", "NOT-AN-ORDER", "-o", "json"]
    )
    assert result.exit_code == ExitCode.OUTCOME_UNKNOWN, result.stderr
    assert result.stdout == ""
    with Journal(default_journal_path()) as journal:
        entry = journal.get(f"{faults.url}/v1", "NOT-AN-ORDER")
    assert entry is not None and entry.effective_state == "unknown"


def test_pins_out_problems_known_before_sending_are_exit_2_and_nothing_is_sent(
    sandbox: RunningSandbox,
    tmp_path: Path,
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere" / "pins.csv")
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    cases = [
        (locked / "pins.csv", "is not writable"),
        (dangling, "does not exist"),
        (existing, "already exists"),
        (tmp_path / "no" / "pins.csv", "does not exist"),
    ]
    if os.geteuid() == 0:  # root writes anywhere: the folder check cannot be met
        cases = cases[1:]
    for target, message in cases:
        result = run(["place-order", str(EXAMPLE), "--pins-out", str(target)])
        assert result.exit_code == ExitCode.USAGE, (target, result.stderr)
        assert message in result.stderr and str(target) in result.stderr
    assert sandbox.request_count("POST") == 0
    assert existing.read_text() == "keep me\n"


def test_a_pins_file_that_fails_after_placing_is_exit_13_with_the_pins_on_stdout(
    sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    from kalixo_cli.terminal import pinfile

    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pinfile, "_create_private", full_disk)
    result = run(
        ["place-order", str(EXAMPLE), "--pins-out", str(tmp_path / "pins.csv"), "-o", "json"]
    )
    assert result.exit_code == ExitCode.PINS_NOT_SAVED
    order = json.loads(result.stdout)
    assert order["status"] == "completed" and all(p["pins"] for p in order["products"])
    assert "No space left on device" in result.stderr and "pins.csv" in result.stderr
    assert "bug" not in result.stderr


def test_orders_resolve_refuses_to_replace_another_order_id(sandbox: RunningSandbox) -> None:
    placed = json.loads(
        run(["place-order", str(EXAMPLE), "--external-order-code", "RES-1", "-o", "json"]).stdout
    )
    other = placed["orderId"] + 1000
    refused = run(["orders", "resolve", "RES-1", "--order-id", str(other)])
    assert refused.exit_code == ExitCode.USAGE
    assert f"as order {placed['orderId']}" in refused.stderr and "--force" in refused.stderr
    same = run(["orders", "resolve", "RES-1", "--order-id", str(placed["orderId"])])
    assert same.exit_code == 0
    forced = run(["orders", "resolve", "RES-1", "--order-id", str(other), "--force"])
    assert forced.exit_code == 0 and "warning" in forced.stderr
    shown = json.loads(run(["orders", "show", "RES-1", "-o", "json"]).stdout)
    assert shown["orderId"] == other


def test_v2_retrieve_without_a_journal_row_fills_from_the_catalog(
    v2: RunningSandbox,
    isolated: Path,
) -> None:
    placed = run(["place-order", str(EXAMPLE), "--wait", "--poll-interval", "1", "-o", "json"])
    assert placed.exit_code == 0, placed.stderr
    order = json.loads(placed.stdout)
    (isolated / "xdg-data" / "kalixo" / "journal.sqlite3").unlink()
    elsewhere = run(["retrieve-order", str(order["orderId"]), "-o", "json", "--exit-status"])
    assert elsewhere.exit_code == 0, elsewhere.stderr
    assert json.loads(elsewhere.stdout) == order


def test_replay_of_a_v2_code_prints_the_order_fresh_with_pins(v2: RunningSandbox) -> None:
    args = [
        "place-order",
        str(EXAMPLE),
        "--external-order-code",
        "REPLAY-V2",
        "--wait",
        "--poll-interval",
        "1",
        "-o",
        "json",
    ]
    first = run(args)
    assert first.exit_code == 0, first.stderr
    v2.reset_counts()
    again = run(args)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert v2.request_count("POST") == 0
    assert "not sent again" in again.stderr
