"""Exactly once against two processes, a server that accepts a reused code, a code that holds
another order, generated codes, a full disk and a journal that cannot be used (issue 11)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.store.journal import default_journal_path
from kalixo_cli.store.journal_sqlite import Journal
from tests.faultserver import Reply, Seen, fault_server
from tests.helpers import run
from tests.test_journal import claim_and_die

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LINE = {"productId": 6, "price": 839, "sku": "GB-EN-4251604133182", "quantity": 1}


def order(code: str | None, *, product: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"currency": "GBP", "orderProducts": [product or LINE]}
    if code is not None:
        body["externalOrderCode"] = code
    return body


def write_jsonl(path: Path, codes: list[str]) -> str:
    path.write_text("".join(json.dumps(order(code)) + "\n" for code in codes))
    return str(path)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    """Wait for an event (polled), never for a fixed time; fail saying what never came."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class LaxServer:
    """A server without idempotency: it places every POST, a reused code too, and counts
    POSTs per code. Each POST is held in flight until `gate` opens, but for the next `free`
    ones, answered at once (a client's pacer sends one request alone until an answer
    comes)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.gate = threading.Event()
        self.on_post: Callable[[], None] | None = None
        self.free = 0
        self._lock = threading.Lock()
        self._next_id = 5000

    def __call__(self, seen: Seen) -> Reply:
        body = json.loads(seen.body)
        code = body["externalOrderCode"]
        with self._lock:
            self.counts[code] += 1
            self._next_id += 1
            order_id = self._next_id
            hold = self.free <= 0
            self.free -= not hold
            self.in_flight += hold
        try:
            if self.on_post is not None:
                self.on_post()
            if hold:
                self.gate.wait(120)
        finally:
            with self._lock:
                self.in_flight -= hold
        products = [
            {
                "productId": line["productId"],
                "price": line["price"],
                "quantity": line["quantity"],
                "pin": [{"PIN": f"PIN-{order_id}-{n}"} for n in range(line["quantity"])],
            }
            for line in body["orderProducts"]
        ]
        if self.version == "v1":
            return Reply(201, {"orderId": str(order_id), "products": products})
        return Reply(
            202,
            {
                "orderId": order_id,
                "externalOrderCode": code,
                "status": "completed",
                "products": products,
            },
        )


@pytest.fixture(params=["v1", "v2"])
def lax(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[LaxServer]:
    version = request.param
    server = LaxServer(version)
    with fault_server() as faults:
        faults.respond("/v1/orders/place-order" if version == "v1" else "/v2/orders", server)
        monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/{version}")
        if version == "v1":
            monkeypatch.setenv("KALIXO_TOKEN", "lax-server-token-0123456789")
        else:
            monkeypatch.setenv("KALIXO_API_VERSION", "v2")
            monkeypatch.setenv("KALIXO_API_KEY", "lax-server-key-0123456789")
        try:
            yield server
        finally:
            server.gate.set()


def kalixo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kalixo_cli", *args],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- 1. two runs at once --------------------------------------------------------------------


def test_two_place_orders_runs_at_once_post_every_code_exactly_once(
    lax: LaxServer, tmp_path: Path
) -> None:
    codes = [f"TWO-{i:02d}" for i in range(10)]
    path = write_jsonl(tmp_path / "batch.jsonl", codes)
    lax.free = 1  # the first run's first POST is answered: its pacer then lets three go
    first = kalixo("place-orders", path, "-c", "3", "-o", "jsonl")
    wait_until(lambda: lax.in_flight == 3, "the first run's three POSTs in flight")
    lax.free = 1  # and so is the second run's first
    second = kalixo("place-orders", path, "-c", "3", "-o", "jsonl")
    # The second run claims what the first has not, and holds those POSTs too.
    wait_until(lambda: lax.in_flight == 6 or second.poll() is not None, "the second run's POSTs")
    lax.gate.set()
    out_first, err_first = first.communicate(timeout=120)
    out_second, err_second = second.communicate(timeout=120)
    assert dict(lax.counts) == dict.fromkeys(codes, 1), (err_first, err_second)
    lines = [json.loads(line) for line in (out_first + out_second).splitlines()]
    placed = sorted(line["externalOrderCode"] for line in lines if line["outcome"] == "placed")
    assert placed == codes  # each placed by exactly one of the runs, with its PINs
    assert {line["outcome"] for line in lines} <= {"placed", "skipped", "skipped_busy"}
    assert {first.returncode, second.returncode} <= {ExitCode.OK, ExitCode.OUTCOME_UNKNOWN}
    with Journal(default_journal_path()) as journal:
        assert {journal.get(journal_key(lax), c).state for c in codes} == {"placed"}  # type: ignore[union-attr]


def journal_key(lax: LaxServer) -> str:
    return os.environ["KALIXO_API_URL"]


def test_place_order_while_another_process_sends_the_code_exits_6(
    lax: LaxServer, tmp_path: Path
) -> None:
    file = tmp_path / "order.json"
    file.write_text(json.dumps(order("ONE-1")))
    first = kalixo("place-order", str(file), "-o", "json")
    wait_until(lambda: lax.in_flight == 1, "the first process's POST")
    second = kalixo("place-order", str(file), "-o", "json")
    out, err = second.communicate(timeout=120)
    assert second.returncode == ExitCode.OUTCOME_UNKNOWN, err
    assert f"being sent by another kalixo process (pid {first.pid})" in err
    assert out == ""
    lax.gate.set()
    out_first, err_first = first.communicate(timeout=120)
    assert first.returncode == 0, err_first
    assert json.loads(out_first)["externalOrderCode"] == "ONE-1"
    assert dict(lax.counts) == {"ONE-1": 1}


def test_two_place_orders_of_a_file_without_a_code_buy_it_once(
    lax: LaxServer, tmp_path: Path
) -> None:
    file = tmp_path / "order.json"
    file.write_text(json.dumps(order(None)))
    first = kalixo("place-order", str(file), "-o", "json")
    wait_until(lambda: lax.in_flight == 1, "the first process's POST")
    second = kalixo("place-order", str(file), "-o", "json")
    _, err = second.communicate(timeout=120)
    assert second.returncode == ExitCode.OUTCOME_UNKNOWN, err
    lax.gate.set()
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert sum(lax.counts.values()) == 1


def test_a_claim_is_won_by_exactly_one_of_many_processes(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    script = (
        "import sys, json; from pathlib import Path; "
        "from kalixo_cli.store.journal_sqlite import Journal; "
        "j = Journal(Path(sys.argv[1])); "
        "print(json.dumps(j.claim('api', 'RACE-1', {'n': 1}).won)); sys.stdout.flush(); "
        "sys.stdin.read()"
    )  # stay alive, holding the claim, until told to go
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    try:
        won = [json.loads(racer.stdout.readline()) for racer in racers]  # type: ignore[union-attr]
    finally:
        for racer in racers:
            racer.communicate("", timeout=60)
    assert won.count(True) == 1


def test_a_claim_from_another_machine_holds_while_its_lease_runs(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        assert journal.claim("api", "M-1", {"n": 1}).won
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "UPDATE orders SET owner_token = 'other', owner_host = 'elsewhere', "
            "owner_pid = 1, owner_boot = 'another-boot', lease_until = ?",
            (time.time() + 30,),
        )
    with Journal(path) as journal:
        entry = journal.get("api", "M-1")
        assert entry is not None and entry.effective_state == "sending"
        claim = journal.claim("api", "M-1", {"n": 1})
        assert not claim.won and claim.verdict.kind == "busy"
        assert claim.entry is not None and claim.entry.owner_text == "pid 1 on elsewhere"
    with db:
        db.execute("UPDATE orders SET lease_until = ?", (time.time() - 1,))
    db.close()
    with Journal(path) as journal:  # the lease ran out: nobody knows, never sent blindly
        entry = journal.get("api", "M-1")
        assert entry is not None and entry.effective_state == "unknown"
        assert journal.claim("api", "M-1", {"n": 1}).verdict.kind == "unknown"
        assert journal.claim("api", "M-1", {"n": 1}, can_look_up=True).won  # v2: look it up


def test_a_claim_of_a_pid_that_now_belongs_to_another_process_is_not_held(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        assert journal.claim("api", "P-1", {"n": 1}).won
    db = sqlite3.connect(path)
    with db:  # same machine and pid (this process), but another process start: pid reused
        db.execute("UPDATE orders SET owner_token = 'gone', owner_start = '1'")
    db.close()
    with Journal(path) as journal:
        entry = journal.get("api", "P-1")
        assert entry is not None and entry.effective_state == "unknown"


# -- 2. generated codes ---------------------------------------------------------------------


def test_a_rerun_of_a_file_without_a_code_places_no_second_order(sandbox: RunningSandbox) -> None:
    first = run(["place-order", str(EXAMPLES / "order.json"), "-o", "json"])
    assert first.exit_code == 0, first.stderr
    code = json.loads(first.stdout)["externalOrderCode"]
    assert "from the order's content and today's date" in first.stderr
    again = run(["place-order", str(EXAMPLES / "order.json"), "-o", "json"])
    assert again.exit_code in (ExitCode.OK, ExitCode.REJECTED)  # a replay, never a purchase
    assert code in again.stderr
    assert sandbox.place_attempts() == {code: 1}
    assert len(sandbox.store.orders_by_code(code)) == 1
    # Buying the same content again takes an explicit flag, and gets a code of its own.
    bought = run(["place-order", str(EXAMPLES / "order.json"), "-o", "json", "--new-code"])
    assert bought.exit_code == 0, bought.stderr
    assert json.loads(bought.stdout)["externalOrderCode"] != code
    assert sum(sandbox.place_attempts().values()) == 2


def test_generated_codes_depend_on_content_day_and_journal() -> None:
    from datetime import date

    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.inputs.order_file import content_code

    def request(code: str, quantity: int = 1) -> OrderRequest:
        line = {**LINE, "currency": "GBP", "quantity": quantity}
        return OrderRequest.model_validate(
            {
                "externalOrderCode": code,
                "currency": "GBP",
                "price": 839 * quantity,
                "orderProducts": [line],
            }
        )

    day = date(2026, 12, 2)
    code = content_code(request("A"), salt="s", day=day)
    assert code.startswith("KX-20261202-")
    assert content_code(request("B"), salt="s", day=day) == code  # the code is not content
    assert content_code(request("A", 2), salt="s", day=day) != code
    assert content_code(request("A"), salt="s", day=date(2026, 12, 3)) != code
    assert content_code(request("A"), salt="another journal", day=day) != code


def test_new_code_and_a_given_code_do_not_mix(sandbox: RunningSandbox) -> None:
    result = run(
        ["place-order", str(EXAMPLES / "order.json"), "--new-code", "--external-order-code", "X-1"]
    )
    assert result.exit_code == ExitCode.USAGE
    assert sandbox.request_count() == 0


# -- 3. a code that holds another order -----------------------------------------------------


def other_machine_places(tmp_path: Path, code: str, product: dict[str, Any]) -> dict[str, Any]:
    """Place `code` from another machine: its own data folder, so its own journal."""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "other-machine")}
    file = tmp_path / f"{code}.json"
    file.write_text(json.dumps(order(code, product=product)))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kalixo_cli",
            "place-order",
            str(file),
            "-o",
            "json",
            "--wait",
            "--poll-interval",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


OTHER_LINE = {"productId": 2, "price": 3299, "sku": "GB-EN-4251604177278", "quantity": 1}


def test_a_409_for_a_code_that_holds_another_order_exits_3_without_its_pins(
    v2: RunningSandbox, tmp_path: Path
) -> None:
    theirs = other_machine_places(tmp_path, "TAKEN-1", OTHER_LINE)
    their_pins = [pin for product in theirs["products"] for pin in product["pins"]]
    assert their_pins
    file = tmp_path / "mine.json"
    file.write_text(json.dumps(order("TAKEN-1", product={**LINE, "quantity": 3})))
    result = run(["place-order", str(file), "-o", "json"])
    assert result.exit_code == ExitCode.REJECTED, result.stderr
    assert f"code TAKEN-1 already holds a different order (id {theirs['orderId']})" in result.stderr
    assert not any(pin in result.stdout + result.stderr for pin in their_pins)
    entry = json.loads(run(["orders", "show", "TAKEN-1", "-o", "json"]).stdout)
    assert (entry["state"], entry["errorKind"]) == ("rejected", "CodeTaken")


def test_the_look_up_that_settles_an_unknown_outcome_applies_the_same_rule(
    v2: RunningSandbox, tmp_path: Path
) -> None:
    theirs = other_machine_places(tmp_path, "TAKEN-2", OTHER_LINE)
    mine = order("TAKEN-2")
    request = {**mine, "price": 839, "orderProducts": [{**LINE, "currency": "GBP"}]}
    claim_and_die(default_journal_path(), v2.v2_url, "TAKEN-2", request)  # unknown outcome
    file = tmp_path / "mine.json"
    file.write_text(json.dumps(mine))
    result = run(["place-order", str(file), "-o", "json"])
    assert result.exit_code == ExitCode.REJECTED, result.stderr
    assert f"already holds a different order (id {theirs['orderId']})" in result.stderr
    assert v2.place_attempts().get("TAKEN-2", 0) == 1  # theirs only: ours was never sent


def test_place_orders_reports_a_code_holding_another_order_as_rejected(
    v2: RunningSandbox, tmp_path: Path
) -> None:
    theirs = other_machine_places(tmp_path, "TAKEN-3", OTHER_LINE)
    their_pins = [pin for product in theirs["products"] for pin in product["pins"]]
    path = write_jsonl(tmp_path / "b.jsonl", ["TAKEN-3", "FREE-3"])
    result = run(["place-orders", path, "-o", "jsonl"])
    assert result.exit_code == ExitCode.REJECTED
    lines = {
        line["externalOrderCode"]: line for line in map(json.loads, result.stdout.splitlines())
    }
    assert lines["TAKEN-3"]["outcome"] == "rejected"
    assert lines["TAKEN-3"]["error"]["kind"] == "code_taken"
    assert lines["TAKEN-3"]["order"] is None
    assert lines["FREE-3"]["outcome"] == "placed"
    assert not any(pin in result.stdout for pin in their_pins)


def test_a_replay_of_the_same_order_under_the_code_is_this_order() -> None:
    from kalixo_cli.domain.models import OrderRequest
    from kalixo_cli.domain.order import Order, OrderProduct
    from kalixo_cli.workflows.placement import order_difference

    request = OrderRequest.model_validate(
        {
            "externalOrderCode": "R",
            "currency": "GBP",
            "price": 3 * 839,
            "orderProducts": [{**LINE, "currency": "GBP", "quantity": 3}],
        }
    )
    same = Order(orderId=1, products=[OrderProduct(productId=6, quantity=3, price=839)])
    assert order_difference(same, request) is None
    assert order_difference(Order(orderId=1), request) is None  # v2 states nothing to compare
    other = Order(orderId=2, products=[OrderProduct(productId=6, quantity=1)])
    assert order_difference(other, request) == "it holds 1 x product 6; this order is 3 x product 6"
    assert order_difference(Order(currency="EUR"), request) is not None
    assert order_difference(Order(price=1), request) is not None
    priced = Order(products=[OrderProduct(productId=6, quantity=3, price=1)])
    assert order_difference(priced, request) is not None


# -- 4. a full disk mid-flight --------------------------------------------------------------


@pytest.fixture
def small_disk(isolated: Path) -> Iterator[Path]:
    """XDG_DATA_HOME on a 1 MiB tmpfs of its own (root only: mount)."""
    folder = isolated / "xdg-data"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write until the disk is full."""
    chunk = b"\0" * 65536
    with open(folder / "filler", "ab") as handle:
        while True:
            try:
                handle.write(chunk)
                handle.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    with open(folder / "filler", "ab") as handle:  # the last bytes too, unbuffered
        for _ in range(64):
            try:
                os.write(handle.fileno(), b"\0" * 512)
            except OSError:
                break


def test_a_disk_filled_during_the_post_still_prints_the_order(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LaxServer("v1")
    server.gate.set()
    server.on_post = lambda: fill(small_disk)
    with fault_server() as faults:
        faults.respond("/v1/orders/place-order", server)
        monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/v1")
        monkeypatch.setenv("KALIXO_TOKEN", "lax-server-token-0123456789")
        file = tmp_path / "order.json"
        file.write_text(json.dumps(order("FULL-1")))
        result = run(["place-order", str(file), "-o", "json"])
        assert result.exit_code == ExitCode.PLACED_NOT_RECORDED, result.stderr
        printed = json.loads(result.stdout)
        assert printed["orderId"] == 5001 and printed["products"][0]["pins"] == ["PIN-5001-0"]
        assert "was placed as order 5001" in result.stderr
        assert "kalixo orders resolve FULL-1 --order-id 5001" in result.stderr
        assert dict(server.counts) == {"FULL-1": 1}
        # The intent row is on disk: once this process is gone a re-run does not buy again.
        os.unlink(small_disk / "filler")
        with Journal(default_journal_path()) as journal:
            entry = journal.get(f"{faults.url}/v1", "FULL-1")
            assert entry is not None and entry.state == "sending"


def test_a_disk_filled_during_a_bulk_run_still_writes_the_result_lines(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LaxServer("v1")
    server.gate.set()
    server.on_post = lambda: fill(small_disk)
    with fault_server() as faults:
        faults.respond("/v1/orders/place-order", server)
        monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/v1")
        monkeypatch.setenv("KALIXO_TOKEN", "lax-server-token-0123456789")
        path = write_jsonl(tmp_path / "b.jsonl", ["FULLB-1", "FULLB-2"])
        result = run(["place-orders", path, "-o", "jsonl", "-c", "1"])
        assert result.exit_code == ExitCode.PLACED_NOT_RECORDED, result.stderr
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        first = lines[0]
        assert first["outcome"] == "placed"
        assert first["error"]["exitCode"] == ExitCode.PLACED_NOT_RECORDED
        assert first["order"]["products"][0]["pins"] == ["PIN-5001-0"]
        assert sum(server.counts.values()) == 1  # the run stopped: nothing more was sent
        os.unlink(small_disk / "filler")


# -- 5. a journal that cannot be used -------------------------------------------------------


def test_a_corrupt_journal_is_named_with_a_fix_and_nothing_is_sent(sandbox: RunningSandbox) -> None:
    path = default_journal_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, it is a grocery list" * 100)
    result = run(["place-order", str(EXAMPLES / "order.json"), "--external-order-code", "C-1"])
    assert result.exit_code == ExitCode.JOURNAL_UNUSABLE
    assert str(path) in result.stderr and "damaged" in result.stderr
    assert "do not delete it" in result.stderr.lower()
    assert "this is a bug" not in result.stderr
    assert sandbox.request_count() == 0


def test_a_truncated_journal_is_named_with_a_fix(sandbox: RunningSandbox) -> None:
    path = default_journal_path()
    with Journal(path) as journal:
        for n in range(300):
            journal.claim("api", f"T-{n}", {"n": n, "pad": "x" * 200})
            journal.finish("api", f"T-{n}", "placed", order_id=n)
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 3)
    result = run(["orders", "list", "-o", "json"])
    assert result.exit_code == ExitCode.JOURNAL_UNUSABLE, result.stderr
    assert str(path) in result.stderr
    doctor = run(["--sandbox", "doctor", "-o", "json"])
    checks = {c["check"]: c for c in json.loads(doctor.stdout)}
    assert checks["journal"]["status"] == "fail"


@pytest.fixture
def read_only_data(isolated: Path) -> Iterator[Path]:
    """The data folder read-only, for root too (a read-only bind mount); chmod otherwise."""
    folder = default_journal_path().parent
    with Journal(default_journal_path()) as journal:
        journal.claim("https://api.kalixo.io/v1", "RO-1", {"n": 1})
        journal.finish("https://api.kalixo.io/v1", "RO-1", "placed", order_id=77)
    if os.geteuid() == 0:
        bound = subprocess.run(
            ["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True
        )
        if bound.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {bound.stderr.strip()}")
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        os.chmod(default_journal_path(), 0o400)
        os.chmod(folder, 0o500)
        try:
            yield folder
        finally:
            os.chmod(folder, 0o700)


def test_a_read_only_journal_is_read_but_not_sent_from(
    read_only_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_API_URL", "https://api.kalixo.io/v1")
    monkeypatch.setenv("KALIXO_TOKEN", "some-token-0123456789")
    listed = run(["orders", "list", "-o", "json"])
    assert listed.exit_code == 0, listed.stderr
    assert [(e["externalOrderCode"], e["orderId"]) for e in json.loads(listed.stdout)] == [
        ("RO-1", 77)
    ]
    shown = run(["orders", "show", "RO-1", "-o", "json"])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["state"] == "placed"
    result = run(["place-order", str(EXAMPLES / "order.json"), "--external-order-code", "RO-2"])
    assert result.exit_code == ExitCode.JOURNAL_UNUSABLE
    assert "read-only" in result.stderr and str(default_journal_path()) in result.stderr


def test_a_data_folder_that_cannot_be_created_is_named(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, sandbox: RunningSandbox
) -> None:
    blocker = isolated / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker / "data"))
    result = run(["place-order", str(EXAMPLES / "order.json"), "--external-order-code", "D-1"])
    assert result.exit_code == ExitCode.JOURNAL_UNUSABLE
    assert str(blocker) in result.stderr
    assert sandbox.request_count() == 0
    assert run(["orders", "list", "-o", "json"]).stdout.strip() == "[]"


def test_a_full_disk_before_sending_sends_nothing(
    small_disk: Path, sandbox: RunningSandbox
) -> None:
    with Journal(default_journal_path()):
        pass
    fill(small_disk)
    result = run(["place-order", str(EXAMPLES / "order.json"), "--external-order-code", "F-0"])
    assert result.exit_code == ExitCode.JOURNAL_UNUSABLE, result.stderr
    assert "no space left" in result.stderr and str(small_disk) in result.stderr
    assert sandbox.request_count() == 0


def test_doctor_checks_the_journal(sandbox: RunningSandbox) -> None:
    with Journal(default_journal_path()) as journal:
        journal.claim("api", "DOC-1", {"n": 1})
    result = run(["--sandbox", "doctor", "-o", "json"])
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    assert checks["journal"]["status"] == "ok", checks["journal"]
    assert str(default_journal_path()) in checks["journal"]["detail"]
    assert "free" in checks["journal"]["detail"]


# -- the format: an older journal is upgraded in place --------------------------------------

# The journal as kalixo wrote it before claims had owners (main at e5adffa).
PREVIOUS_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    api         TEXT NOT NULL,
    code        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL,
    order_id    INTEGER,
    status      TEXT,
    error_kind  TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (api, code)
);
CREATE INDEX IF NOT EXISTS orders_by_time ON orders (api, created_at);
"""


def test_a_journal_of_the_previous_version_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(PREVIOUS_SCHEMA)
    with db:
        db.execute(
            "INSERT INTO orders VALUES ('api', 'OLD-1', 'h1', '{}', 'placed', 41, "
            "'completed', NULL, NULL, 1, 1000.0, 1001.0)"
        )
        db.execute(
            "INSERT INTO orders VALUES ('api', 'OLD-2', 'h2', '{}', 'sending', NULL, "
            "NULL, NULL, NULL, 1, 1002.0, 1002.0)"
        )
    db.close()
    # Read-only commands read it as it is, before any upgrade.
    with Journal(path, readonly=True) as journal:
        assert [e.code for e in journal.entries("api")] == ["OLD-1", "OLD-2"]
    with Journal(path) as journal:
        placed = journal.get("api", "OLD-1")
        assert placed is not None and (placed.state, placed.order_id) == ("placed", 41)
        left = journal.get("api", "OLD-2")  # a killed process's row: nobody holds it
        assert left is not None and left.effective_state == "unknown"
        assert journal.health().schema == 2
        assert not journal.claim("api", "OLD-2", {}).won
        assert journal.claim("api", "NEW-1", {"n": 1}).won
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(orders)")}
    assert {"owner_token", "owner_host", "owner_pid", "lease_until", "rev"} <= columns
    with Journal(path) as journal:  # a second open changes nothing
        assert [e.code for e in journal.entries("api")] == ["OLD-1", "OLD-2", "NEW-1"]


# -- 6. plan files --------------------------------------------------------------------------


def test_plan_files_live_in_the_data_folder_and_stale_ones_are_removed(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    import socket

    from kalixo_cli.workflows.bulk import plan_folder

    folder = plan_folder()
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host = socket.gethostname().replace("_", "-")
    stale = folder / f"batch_{host}_{int(dead.stdout)}_0_abc.sqlite3"
    stale.write_text("order bodies of a killed run")
    live = folder / f"batch_{host}_{os.getpid()}_0_def.sqlite3"
    live.write_text("a run still going")
    path = write_jsonl(tmp_path / "b.jsonl", ["PLAN-1"])
    result = run(["place-orders", path, "-o", "jsonl"])
    assert result.exit_code == 0, result.stderr
    assert not stale.exists()
    assert live.exists()
    assert sorted(p.name for p in folder.iterdir()) == [live.name]  # its own is gone too


def test_a_full_disk_before_a_bulk_run_sends_nothing(
    small_disk: Path, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    with Journal(default_journal_path()):
        pass
    fill(small_disk)
    path = write_jsonl(tmp_path / "b.jsonl", ["FB-1", "FB-2"])
    result = run(["place-orders", path, "-o", "jsonl"])
    assert result.exit_code == ExitCode.JOURNAL_UNUSABLE, result.stderr
    assert str(small_disk) in result.stderr and "this is a bug" not in result.stderr
    assert sandbox.request_count() == 0


def test_a_running_process_renews_the_lease_of_its_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kalixo_cli.store.journal_sqlite as journal_module

    monkeypatch.setattr(journal_module, "HEARTBEAT_SECONDS", 0.05)
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal:
        assert journal.claim("api", "L-1", {"n": 1}).won
        first = journal.get("api", "L-1")
        assert first is not None and first.lease_until is not None

        def renewed() -> bool:
            entry = journal.get("api", "L-1")
            return entry is not None and (entry.lease_until or 0) > (first.lease_until or 0)

        wait_until(renewed, "the lease to be renewed")
        journal.finish("api", "L-1", "placed", order_id=1)
        done = journal.get("api", "L-1")
        assert done is not None and done.lease_until is None  # nothing left to hold


def test_unusable_journal_messages_name_the_file_and_never_say_delete(tmp_path: Path) -> None:
    from kalixo_cli.store.journal import unusable

    path = tmp_path / "journal.sqlite3"
    cases = {
        "no space left": sqlite3.OperationalError("database or disk is full"),
        "read-only": sqlite3.OperationalError("attempt to write a readonly database"),
        "damaged": sqlite3.DatabaseError("file is not a database"),
        "locked": sqlite3.OperationalError("database is locked"),
    }
    for words, exc in cases.items():
        error = unusable(path, exc, "write")
        assert words in error.message and str(path) in error.message, error.message
        assert error.exit_code == ExitCode.JOURNAL_UNUSABLE
        text = f"{error.message} {error.hint}".lower()
        assert "delete it" not in text or "do not delete it" in text
