"""Server faults, each against a real local server: the exit code, the message, no traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import Result

from kalixo_cli.domain.errors import ExitCode
from tests.faultserver import FaultServer, Reply, fault_server
from tests.helpers import run

ORDER = str(Path(__file__).parent.parent / "examples" / "order.json")
PLACE = "/v1/orders/place-order"
RETRIEVE = "/v1/orders/retrieve-order"
TOKEN = "fault-server-token-0123456789"
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

PLACED = {
    "orderId": "59400",
    "products": [
        {"productId": 2, "price": 3299, "quantity": 1, "pin": [{"PIN": "AAAAA-BBBBB"}]},
        {"productId": 6, "price": 839, "quantity": 1, "pin": [{"PIN": "CCCCC-DDDDD"}]},
    ],
}
RETRIEVED = {
    "orderId": 59400,
    "orderStatus": "completed",
    "externalOrderCode": "O-1",
    "products": [{"productId": 2, "price": 3299, "quantity": 1, "pin": [{"pin": "AAAAA-BBBBB"}]}],
}


def error_of(kind: int, message: str) -> dict[str, object]:
    return {"statusCode": kind, "error": "Error", "message": message}


def place(*extra: str) -> Result:
    return run(["place-order", ORDER, "--external-order-code", "O-FAULT-1", "-o", "json", *extra])


def retrieve(*extra: str) -> Result:
    return run(["retrieve-order", "59400", "-o", "json", *extra])


def assert_clean_error(result: Result, code: ExitCode) -> None:
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("kalixo: error: ")
    assert TOKEN not in result.stderr


def test_place_order_sends_bearer_token_user_agent_and_json(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(201, PLACED, {"fhp-codehype-correlation-key": "abc-123"}))
    result = place()
    assert result.exit_code == 0, result.stderr
    request = faults.seen[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"].startswith("kalixo-cli/")
    body = json.loads(request.body)
    assert body["externalOrderCode"] == "O-FAULT-1"
    assert body["price"] == 4138
    out = json.loads(result.stdout)
    assert out["orderId"] == 59400
    assert out["status"] == "completed"
    assert out["products"][0]["sku"] == "GB-EN-4251604177278"
    assert out["products"][0]["pins"] == ["AAAAA-BBBBB"]


def test_401_exits_4_with_server_message_and_correlation_key(faults: FaultServer) -> None:
    faults.on(
        RETRIEVE,
        Reply(401, error_of(401, "Invalid token"), {"fhp-codehype-correlation-key": "corr-401"}),
    )
    result = retrieve()
    assert_clean_error(result, ExitCode.AUTH)
    assert "Invalid token" in result.stderr
    assert "corr-401" in result.stderr
    assert "kalixo auth set-token" in result.stderr


def test_403_exits_4(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(403, error_of(403, "API ordering disabled")))
    assert_clean_error(place(), ExitCode.AUTH)


def test_404_exits_3(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(404, error_of(404, "Order 59400 not found")))
    result = retrieve()
    assert_clean_error(result, ExitCode.REJECTED)
    assert "Order 59400 not found" in result.stderr


@pytest.mark.parametrize("status", [400, 409, 422])
def test_place_order_rejections_exit_3_after_one_post(faults: FaultServer, status: int) -> None:
    faults.on(PLACE, Reply(status, error_of(status, "nope")))
    result = place()
    assert_clean_error(result, ExitCode.REJECTED)
    assert faults.count("POST") == 1


def test_409_says_the_code_exists(faults: FaultServer) -> None:
    faults.on(
        PLACE, Reply(409, error_of(409, "An order with this external order code already exists."))
    )
    result = place()
    assert "already exists" in result.stderr
    assert "--external-order-code" in result.stderr


def test_json_mode_also_writes_a_json_error_object(faults: FaultServer) -> None:
    faults.on(
        RETRIEVE,
        Reply(404, error_of(404, "Order 59400 not found"), {"fhp-codehype-correlation-key": "k-1"}),
    )
    result = retrieve()
    last = json.loads(result.stderr.strip().splitlines()[-1])
    assert last["error"]["exitCode"] == 3
    assert last["error"]["status"] == 404
    assert last["error"]["serverMessage"] == "Order 59400 not found"
    assert last["error"]["correlationKey"] == "k-1"


def test_get_429_waits_for_retry_after_then_succeeds(faults: FaultServer) -> None:
    faults.on(
        RETRIEVE,
        Reply(429, error_of(429, "Rate limit exceeded. Retry after 1s."), {"Retry-After": "1"}),
        Reply(200, RETRIEVED),
    )
    result = retrieve()
    assert result.exit_code == 0, result.stderr
    assert faults.count("GET") == 2


def test_get_429_that_persists_exits_5(faults: FaultServer) -> None:
    faults.on(
        RETRIEVE,
        Reply(429, error_of(429, "Rate limit exceeded. Retry after 0s."), {"Retry-After": "0"}),
    )
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert "429" in result.stderr
    assert faults.count("GET") == 3  # KALIXO_RETRIES=2 in tests


def test_post_429_is_not_retried_and_exits_5(faults: FaultServer) -> None:
    faults.on(
        PLACE,
        Reply(429, error_of(429, "Rate limit exceeded. Retry after 7s."), {"Retry-After": "7"}),
    )
    result = place()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert faults.count("POST") == 1
    assert "nothing was placed" in result.stderr
    assert "wait 7 s" in result.stderr


@pytest.mark.parametrize("status", [500, 502])
def test_get_5xx_is_retried_then_exits_5(faults: FaultServer, status: int) -> None:
    faults.on(RETRIEVE, Reply(status, error_of(status, "boom")))
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert faults.count("GET") == 3


def test_get_5xx_then_success_recovers(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(500, error_of(500, "boom")), Reply(200, RETRIEVED))
    assert retrieve().exit_code == 0
    assert faults.count("GET") == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(500, {"statusCode": 500, "message": "Internal server error"}),
        Reply(502, HTML_502),
    ],
    ids=["500", "502-html"],
)
def test_post_5xx_is_not_retried_and_exits_6(faults: FaultServer, reply: Reply) -> None:
    faults.on(PLACE, reply)
    result = place()
    assert_clean_error(result, ExitCode.OUTCOME_UNKNOWN)
    assert faults.count("POST") == 1
    assert "may have been placed" in result.stderr
    assert "kalixo orders resolve O-FAULT-1" in result.stderr


def test_get_html_error_page_is_a_clear_error(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(502, HTML_502))
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert "HTTP 502" in result.stderr


def test_get_200_with_html_is_not_json(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(200, "<html>captive portal</html>"))
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert "not valid JSON" in result.stderr


def test_get_truncated_json_is_a_clear_error(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(200, json.dumps(RETRIEVED)[:40]))
    assert_clean_error(retrieve(), ExitCode.TEMPORARY)


def test_get_json_that_is_not_an_order_is_a_clear_error(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(200, [1, 2, 3]))
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert "not an order" in result.stderr


def test_post_truncated_json_means_outcome_unknown(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(201, json.dumps(PLACED)[:30]))
    result = place()
    assert_clean_error(result, ExitCode.OUTCOME_UNKNOWN)
    assert faults.count("POST") == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_exits_5(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_API_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("KALIXO_TOKEN", TOKEN)
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert "connection refused" in result.stderr


def test_post_connection_refused_exits_5_nothing_placed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_API_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    monkeypatch.setenv("KALIXO_TOKEN", TOKEN)
    result = place()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert "nothing was placed" in result.stderr


def test_get_connection_reset_is_retried_then_exits_5(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(action="reset"))
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert faults.count("GET") == 3


def test_post_connection_reset_exits_6_after_one_post(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(action="reset"))
    result = place()
    assert_clean_error(result, ExitCode.OUTCOME_UNKNOWN)
    assert faults.count("POST") == 1


def test_post_closed_without_answer_exits_6(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(action="close"))
    assert_clean_error(place(), ExitCode.OUTCOME_UNKNOWN)
    assert faults.count("POST") == 1


def test_get_read_timeout_exits_5(faults: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_TIMEOUT", "0.3")
    monkeypatch.setenv("KALIXO_RETRIES", "0")
    faults.on(RETRIEVE, Reply(action="hang"))
    result = retrieve()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert "0.3 s" in result.stderr


def test_post_read_timeout_exits_6(faults: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_TIMEOUT", "0.3")
    faults.on(PLACE, Reply(action="hang"))
    result = place()
    assert_clean_error(result, ExitCode.OUTCOME_UNKNOWN)
    assert faults.count("POST") == 1


def test_redirect_to_another_host_does_not_carry_the_token(faults: FaultServer) -> None:
    with fault_server() as elsewhere:
        elsewhere.on(RETRIEVE, Reply(200, RETRIEVED))
        faults.on(RETRIEVE, Reply(302, b"", {"Location": f"{elsewhere.url}{RETRIEVE}?id=59400"}))
        result = retrieve()
        assert result.exit_code == 0, result.stderr
        assert elsewhere.count("GET") == 1
        assert "Authorization" not in elsewhere.seen[0].headers
        assert TOKEN not in json.dumps(elsewhere.seen[0].headers)


def test_post_redirect_is_not_followed(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(301, b"", {"Location": "https://elsewhere.invalid/v1"}))
    result = place()
    assert_clean_error(result, ExitCode.TEMPORARY)
    assert faults.count("POST") == 1


def test_verbose_shows_the_exchange_but_never_the_token(faults: FaultServer) -> None:
    faults.on(
        RETRIEVE,
        Reply(500, error_of(500, "boom")),
        Reply(200, RETRIEVED, {"fhp-codehype-correlation-key": "corr-v"}),
    )
    result = run(["--verbose", "retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == 0
    assert "> GET" in result.stderr
    assert "retrying GET" in result.stderr
    assert "corr-v" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_global_options_are_accepted_after_the_command(faults: FaultServer) -> None:
    faults.on(RETRIEVE, Reply(200, RETRIEVED))
    result = run(["retrieve-order", "59400", "-o", "json", "--verbose"])
    assert result.exit_code == 0
    assert "> GET" in result.stderr


def test_missing_token_exits_4_before_any_request(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALIXO_TOKEN")
    result = retrieve()
    assert_clean_error(result, ExitCode.AUTH)
    assert "kalixo auth set-token" in result.stderr
    assert faults.count() == 0


def test_an_unknown_outcome_is_not_sent_again(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(500, error_of(500, "boom")))
    assert_clean_error(place(), ExitCode.OUTCOME_UNKNOWN)
    again = place()
    assert_clean_error(again, ExitCode.OUTCOME_UNKNOWN)
    assert "it was not sent again" in again.stderr
    assert "kalixo orders resolve O-FAULT-1" in again.stderr
    assert faults.count("POST") == 1


def test_a_known_code_with_another_order_is_refused(faults: FaultServer, tmp_path: Path) -> None:
    faults.on(PLACE, Reply(201, PLACED))
    assert place().exit_code == 0
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps(
            {
                "currency": "GBP",
                "orderProducts": [
                    {"productId": 2, "price": 3299, "sku": "GB-EN-4251604177278", "quantity": 2}
                ],
            }
        )
    )
    result = run(["place-order", str(other), "--external-order-code", "O-FAULT-1"])
    assert_clean_error(result, ExitCode.USAGE)
    assert "different order" in result.stderr
    assert faults.count("POST") == 1
