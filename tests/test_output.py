"""Output modes, colour, quiet, PIN files and masking, and secrets that never show."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from kalixo_cli.domain.errors import ExitCode
from kalixo_cli.domain.redact import Redactor, mask_pin
from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.terminal.output import Output, OutputFormat
from tests.faultserver import FaultServer, Reply
from tests.helpers import run

EXAMPLES = Path(__file__).parent.parent / "examples"
ORDER_CSV = str(EXAMPLES / "order.csv")


@pytest.fixture
def umask_000() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def place(*extra: str) -> Result:
    result = run(["place-order", ORDER_CSV, "--new-code", *extra])  # a new order each time
    assert result.exit_code == 0, result.stderr
    return result


def placed_order(sandbox: RunningSandbox) -> dict[str, Any]:
    return dict(json.loads(place("-o", "json").stdout))


def all_pins(order: dict[str, Any]) -> list[str]:
    return [pin for product in order["products"] for pin in product["pins"]]


def test_jsonl_is_one_compact_line(sandbox: RunningSandbox) -> None:
    out = place("-o", "jsonl").stdout
    assert out.count("\n") == 1
    assert json.loads(out)["price"] == 4977


def test_csv_is_one_row_per_pin(sandbox: RunningSandbox) -> None:
    order = placed_order(sandbox)
    out = run(["retrieve-order", str(order["orderId"]), "-o", "csv"]).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["pin"] for row in rows] == all_pins(order)
    assert rows[0].keys() >= {"orderId", "productId", "sku", "pin", "status"}


def test_csv_does_not_go_with_raw_or_config(sandbox: RunningSandbox) -> None:
    assert run(["retrieve-order", "1", "--raw", "-o", "csv"]).exit_code == ExitCode.USAGE
    assert run(["config", "show", "-o", "csv"]).exit_code == ExitCode.USAGE
    assert sandbox.request_count() == 0


def test_tables_piped_have_no_ansi_and_no_rules(sandbox: RunningSandbox) -> None:
    out = place("-o", "table").stdout
    assert "\x1b[" not in out
    assert "─" not in out and "━" not in out
    assert "SANDBOX-" in out


def test_force_color_brings_colour_and_no_color_removes_it(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[32m" in place("-o", "table").stdout  # completed, in green
    assert "\x1b[32m" not in run(["--no-color", "place-order", ORDER_CSV, "-o", "table"]).stdout
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[32m" not in place("-o", "table").stdout


@pytest.mark.parametrize("width", ["40", "60", "80"])
def test_narrow_terminals_never_cut_a_pin(
    sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch, width: str
) -> None:
    order = placed_order(sandbox)
    monkeypatch.setenv("COLUMNS", width)
    out = run(["retrieve-order", str(order["orderId"]), "-o", "table"]).stdout
    for pin in all_pins(order):
        assert pin in out


def test_mask_pins_masks_tables_only(sandbox: RunningSandbox) -> None:
    order = placed_order(sandbox)
    table = run(["retrieve-order", str(order["orderId"]), "-o", "table", "--mask-pins"]).stdout
    for pin in all_pins(order):
        assert pin not in table
        assert mask_pin(pin) in table
    as_json = run(["retrieve-order", str(order["orderId"]), "-o", "json", "--mask-pins"]).stdout
    assert all_pins(json.loads(as_json)) == all_pins(order)


def test_mask_pin_keeps_first_and_last_group() -> None:
    assert mask_pin("ABCDE-FGHIJ-KLMNO-PQRST-UVWXY") == "ABCDE-*****-*****-*****-UVWXY"
    assert mask_pin("ABCD1234EFGH") == "ABCD****EFGH"
    assert mask_pin("SHORT") == "*****"


def test_quiet_prints_results_only(sandbox: RunningSandbox) -> None:
    result = run(["-q", "place-order", ORDER_CSV, "-o", "json"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(result.stdout)["status"] == "completed"
    failing = run(["place-order", "missing.json", "-q"])
    assert failing.stderr.startswith("kalixo: error: ")


def test_pins_out_csv_is_0600_under_umask_000(
    sandbox: RunningSandbox, tmp_path: Path, umask_000: None
) -> None:
    target = tmp_path / "pins.csv"
    order = json.loads(place("-o", "json", "--pins-out", str(target)).stdout)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert list(rows[0]) == ["orderId", "productId", "sku", "pin"]
    assert [row["pin"] for row in rows] == all_pins(order)
    assert {row["orderId"] for row in rows} == {str(order["orderId"])}


def test_pins_out_json_by_extension(sandbox: RunningSandbox, tmp_path: Path) -> None:
    target = tmp_path / "pins.json"
    order = placed_order(sandbox)
    run(["retrieve-order", str(order["orderId"]), "--pins-out", str(target)])
    saved = json.loads(target.read_text())
    assert [entry["pin"] for entry in saved] == all_pins(order)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_pins_out_never_overwrites_and_refuses_before_placing(
    sandbox: RunningSandbox, tmp_path: Path, umask_000: None
) -> None:
    target = tmp_path / "pins.csv"
    target.write_text("earlier export\n")
    result = run(["place-order", ORDER_CSV, "--pins-out", str(target)])
    assert result.exit_code == ExitCode.USAGE
    assert "--force" in result.stderr
    assert sandbox.request_count() == 0
    assert target.read_text() == "earlier export\n"
    place("--pins-out", str(target), "--force")
    assert "SANDBOX-" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_redactor_masks_secrets_bearer_keys_and_pins() -> None:
    redact = Redactor()
    redact.add("s3cret-token-value")
    text = redact(
        "t=s3cret-token-value Authorization: Bearer abc.def key=kal_live_ABC123 "
        "pin ABCDE-FGHIJ-KLMNO-PQRST-UVWXY"
    )
    assert "s3cret-token-value" not in text
    assert "abc.def" not in text
    assert "kal_live_ABC123" not in text
    assert "ABCDE-*****-*****-*****-UVWXY" in text


CANARY_TOKEN = "canary-token-7f3e9b2c1d0a4e5f8a6b"
CANARY_PIN = "CANRY-PIN00-SECRT-VALUE-ZZZZZ"


def test_canary_secrets_never_leak(
    faults: FaultServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command at full verbosity through success, 401, 500 and a bug: the planted
    token is nowhere in stdout, stderr or any file but the config that holds it, and PINs
    never reach stderr."""
    monkeypatch.setenv("KALIXO_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("KALIXO_DEBUG", "1")
    run(["auth", "set-token", "--with-token"], input=CANARY_TOKEN)
    placed = {
        "orderId": "1",
        "products": [{"productId": 2, "price": 3299, "quantity": 1, "pin": [{"PIN": CANARY_PIN}]}],
    }
    retrieved = {
        "orderId": 1,
        "orderStatus": "completed",
        "products": [{"productId": 2, "quantity": 1, "pin": [{"PIN": CANARY_PIN}]}],
    }
    outputs: list[str] = []

    def go(*args: str, stdin: str | None = None) -> None:
        result = run(list(args), input=stdin)
        outputs.append(result.stdout + result.stderr)
        assert CANARY_PIN not in result.stderr

    faults.on("/v1/orders/place-order", Reply(201, placed))
    faults.on("/v1/orders/retrieve-order", Reply(200, retrieved))
    pins = isolated / "pins.csv"
    go("place-order", ORDER_CSV, "-o", "json", "--pins-out", str(pins))
    go("retrieve-order", "1", "-o", "table")
    go("retrieve-order", "1", "--raw")
    faults.on("/v1/orders/retrieve-order", Reply(401, {"statusCode": 401, "message": "nope"}))
    go("retrieve-order", "1", "-o", "json")
    faults.on("/v1/orders/retrieve-order", Reply(500, {"statusCode": 500, "message": "boom"}))
    go("retrieve-order", "1")
    faults.on("/v1/orders/place-order", Reply(500, {"statusCode": 500}))
    go("place-order", ORDER_CSV)
    faults.on("/v1/orders/retrieve-order", Reply(200, ["not", "an", "order", CANARY_TOKEN]))
    go("retrieve-order", "1")
    go("auth", "status", "-o", "json")
    go("auth", "status")
    go("config", "show")
    go("config", "show", "-o", "json")
    go("--sandbox", "place-order", ORDER_CSV, "-o", "json")
    go("place-order", ORDER_CSV, "--dry-run")
    go("config", "set", "token", "x")
    for output in outputs:
        assert CANARY_TOKEN not in output
    for path in isolated.rglob("*"):
        if path.is_file() and path.name != "config.toml":
            assert CANARY_TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("json", '{\n  "code": "A-1"\n}\n'),
        ("jsonl", '{"code":"A-1"}\n'),
        ("csv", "code\nA-1\n"),
        ("table", "code A-1\n"),
    ],
)
def test_one_result_call_prints_the_chosen_form(
    fmt: OutputFormat, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = Output()
    out.use(fmt, explicit=True)
    record = {"code": "A-1"}
    out.result(record, csv=(["code"], [record]), view=lambda plain, width: "code A-1")
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_a_form_not_given_prints_nothing_in_its_format(
    fmt: OutputFormat, capsys: pytest.CaptureFixture[str]
) -> None:
    out = Output()
    out.use(fmt, explicit=True)
    out.result({"code": "A-1"}, jsonl=())  # as `orders sync`: its lines went out already
    assert capsys.readouterr().out == ""


def test_quiet_silences_notes_and_warnings_never_errors(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(quiet=True)
    out.note("a note")
    out.warn("a warning")
    out.error(["it failed\x1b[2J"], "try again")
    assert capsys.readouterr().err == (
        "kalixo: error: it failed\\x1b[2J\nkalixo: hint: try again\n"
    )
