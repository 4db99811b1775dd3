"""--jq on every command that prints JSON, against the live sandbox (v1 and v2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kalixo_cli.sandbox.server import RunningSandbox
from kalixo_cli.terminal.jqfilter import compile_jq, result_line
from tests.helpers import run

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "order.json")


def lines(text: str) -> list[str]:
    return text.splitlines()


def placed(*extra: str) -> dict[str, object]:
    result = run(["place-order", EXAMPLE, "-o", "json", *extra])
    assert result.exit_code == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


# -- the rules ------------------------------------------------------------------------------


def test_results_follow_ghs_rules() -> None:
    program = compile_jq(".[]")
    assert program.apply(["a b", 1, None, {"k": [1, "é"]}, True]) == [
        "a b",
        "1",
        "null",
        '{"k":[1,"é"]}',
        "true",
    ]
    assert result_line("x\ny") == "x\ny"


def test_json_text_is_filtered_as_received() -> None:
    assert compile_jq(".a").apply(text='{"a": 1.50}') == ["1.5"]


# -- every command --------------------------------------------------------------------------


def test_place_order_prints_the_pins_one_a_line(sandbox: RunningSandbox) -> None:
    result = run(["place-order", EXAMPLE, "--jq", ".products[].pins[]"])
    assert result.exit_code == 0, result.stderr
    pins = lines(result.stdout)
    assert len(pins) == 2 and all(pin.startswith("SANDBOX-") for pin in pins)
    assert "{" not in result.stdout


def test_retrieve_order_filters_the_normalized_order(sandbox: RunningSandbox) -> None:
    order = placed()
    result = run(
        [
            "retrieve-order",
            str(order["orderId"]),
            "--jq",
            "[.orderId, .status, (.products | length)]",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f'[{order["orderId"]},"completed",2]\n'


def test_retrieve_order_raw_filters_the_servers_body(sandbox: RunningSandbox) -> None:
    order = placed()
    result = run(["retrieve-order", str(order["orderId"]), "--raw", "--jq", "keys | length"])
    assert result.exit_code == 0, result.stderr
    assert int(result.stdout) > 0


def test_jsonl_applies_the_filter_to_each_line(sandbox: RunningSandbox) -> None:
    first, second = placed("--new-code"), placed("--new-code")
    result = run(["orders", "list", "-o", "jsonl", "--jq", ".orderId"])
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == [str(first["orderId"]), str(second["orderId"])]


def test_orders_list_and_show(sandbox: RunningSandbox) -> None:
    order = placed("--external-order-code", "JQ-1")
    result = run(["orders", "list", "--jq", ".[].externalOrderCode"])
    assert result.exit_code == 0, result.stderr
    assert lines(result.stdout) == ["JQ-1"]
    shown = run(["orders", "show", "JQ-1", "--jq", ".orderId"])
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout == f"{order['orderId']}\n"


def test_place_orders_summary_and_lines(sandbox: RunningSandbox, tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    body = json.loads(Path(EXAMPLE).read_text())
    batch.write_text(
        "".join(json.dumps({**body, "externalOrderCode": f"JQB-{n}"}) + "\n" for n in range(3))
    )
    result = run(["place-orders", str(batch), "--jq", ".placed"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "3\n"
    again = run(
        [
            "place-orders",
            str(batch),
            "-o",
            "jsonl",
            "--jq",
            'select(.outcome == "skipped") | .externalOrderCode',
        ]
    )
    assert again.exit_code == 0, again.stderr
    assert sorted(lines(again.stdout)) == ["JQB-0", "JQB-1", "JQB-2"]


def test_catalog_list_and_show(sandbox: RunningSandbox) -> None:
    listed = run(["catalog", "list", "--jq", ".[] | select(.id == 2) | .sku"])
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout == "GB-EN-4251604177278\n"
    shown = run(["catalog", "show", "2", "--jq", ".sku"])
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout == "GB-EN-4251604177278\n"


def test_wallet_and_ping_on_v2(v2: RunningSandbox) -> None:
    wallet = run(["wallet", "--jq", ".balances.GBP > 0"])
    assert wallet.exit_code == 0, wallet.stderr
    assert wallet.stdout == "true\n"
    ping = run(["ping", "--jq", ".status"])
    assert ping.exit_code == 0, ping.stderr
    assert ping.stdout.strip() and not ping.stdout.startswith("{")


def test_config_show_and_auth_status(sandbox: RunningSandbox) -> None:
    shown = run(["config", "show", "--jq", ".api_url.source"])
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout == "env KALIXO_API_URL\n"
    status = run(["auth", "status", "--jq", "type"])
    assert status.exit_code == 0, status.stderr
    assert status.stdout == "object\n"


def test_doctor_and_profiles(sandbox: RunningSandbox) -> None:
    doctor = run(["doctor", "--jq", ".[].check"])
    assert doctor.exit_code == 0, doctor.stderr
    assert "connectivity" in lines(doctor.stdout)
    profiles = run(["config", "profiles", "--jq", ".[].profile"])
    assert profiles.exit_code == 0, profiles.stderr
    assert profiles.stdout == "default\n"


# -- failures -------------------------------------------------------------------------------


def test_an_invalid_expression_is_exit_2_before_anything_is_sent(sandbox: RunningSandbox) -> None:
    result = run(["place-order", EXAMPLE, "--jq", ".products["])
    assert result.exit_code == 2
    assert "--jq '.products[' is not a valid jq expression" in result.stderr
    assert result.stdout == ""
    assert sandbox.request_count() == 0
    assert run(["orders", "list", "-o", "json"]).stdout.strip() == "[]"


def test_jq_does_not_go_with_a_table_or_csv(sandbox: RunningSandbox) -> None:
    result = run(["orders", "list", "-o", "csv", "--jq", "."])
    assert result.exit_code == 2
    assert "--jq filters JSON" in result.stderr


def test_a_filter_failing_on_the_result_keeps_the_answer_and_exits_9(
    sandbox: RunningSandbox,
) -> None:
    result = run(["place-order", EXAMPLE, "--jq", ".products.pins"])
    assert result.exit_code == 9
    order = json.loads(result.stdout)  # printed unfiltered: the PINs are not lost
    assert order["status"] == "completed"
    assert all(product["pins"] for product in order["products"])
    assert "failed on the result: Cannot index array" in result.stderr
    assert "the command itself ran" in result.stderr


@pytest.mark.parametrize("expression", ["", "   "])
def test_an_empty_expression_is_refused(sandbox: RunningSandbox, expression: str) -> None:
    result = run(["orders", "list", "--jq", expression])
    assert result.exit_code == 2
    assert "--jq is empty" in result.stderr


def test_a_filter_and_its_failure_belong_to_their_own_run(sandbox: RunningSandbox) -> None:
    """--jq lives on the run's Output (`state.out`), not in the module: a failed filter in
    one run neither filters nor fails the next one in the same process."""
    order = placed()
    failed = run(["retrieve-order", str(order["orderId"]), "--jq", ".products.pins"])
    assert failed.exit_code == 9
    after = run(["retrieve-order", str(order["orderId"]), "-o", "json"])
    assert after.exit_code == 0, after.stderr
    assert json.loads(after.stdout)["orderId"] == order["orderId"]
    assert "--jq" not in after.stderr
