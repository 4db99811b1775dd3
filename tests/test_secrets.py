"""Credentials come from kalixo's settings only, never go out in clear, never come back out.

Against the fault server: what reached it (headers), and the exact bytes kalixo printed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kalixo_cli.domain.errors import ExitCode
from tests.faultserver import FaultServer, Reply, fault_server
from tests.helpers import run

RETRIEVE = "/v1/orders/retrieve-order"
PLACE = "/v1/orders/place-order"
ORDER = str(Path(__file__).parent.parent / "examples" / "order.json")
TOKEN = "fault-server-token-0123456789"
RETRIEVED = {
    "orderId": 59400,
    "orderStatus": "completed",
    "externalOrderCode": "O-1",
    "products": [{"productId": 2, "price": 3299, "quantity": 1, "pin": [{"pin": "AAAAA-BBBBB"}]}],
}


def netrc_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *hosts: str) -> None:
    path = tmp_path / "netrc"
    path.write_text(
        "".join(f"machine {host} login netrc-user password netrc-secret-pw\n" for host in hosts)
    )
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))


# ---------------------------------------------------------------------------------------
# ~/.netrc


def test_netrc_never_replaces_the_v1_token(
    faults: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc_for(tmp_path, monkeypatch, "127.0.0.1")
    faults.on(RETRIEVE, Reply(200, RETRIEVED))
    result = run(["retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert faults.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "netrc-secret-pw" not in json.dumps(faults.seen[0].headers)


def test_netrc_adds_nothing_beside_the_v2_key(
    faults: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc_for(tmp_path, monkeypatch, "127.0.0.1")
    monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/v2")
    monkeypatch.setenv("KALIXO_API_KEY", "kal_test_0123456789abcdef")
    faults.on("/v2/wallet", Reply(200, {"balances": {"GBP": 10.0}}))
    run(["wallet", "-o", "json"])
    assert faults.seen, "the request never reached the server"
    headers = faults.seen[0].headers
    assert headers["x-api-key"] == "kal_test_0123456789abcdef"
    assert "Authorization" not in headers


def test_a_redirect_adds_no_netrc_entry_for_the_new_host(
    faults: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc_for(tmp_path, monkeypatch, "localhost")
    with fault_server() as elsewhere:
        elsewhere.on(RETRIEVE, Reply(200, RETRIEVED))
        moved = elsewhere.url.replace("127.0.0.1", "localhost")
        faults.on(RETRIEVE, Reply(302, b"", {"Location": f"{moved}{RETRIEVE}?id=59400"}))
        result = run(["retrieve-order", "59400", "-o", "json"])
        assert result.exit_code == 0, result.stderr
        assert "Authorization" not in elsewhere.seen[0].headers


def test_proxies_from_the_environment_still_apply(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fault_server() as proxy:
        proxy.on(f"{faults.url}{RETRIEVE}", Reply(200, RETRIEVED))
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = run(["retrieve-order", "59400", "-o", "json"])
        assert result.exit_code == 0, result.stderr
        assert proxy.count("GET") == 1 and faults.count() == 0
        assert proxy.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


# ---------------------------------------------------------------------------------------
# Plain http://


def test_plain_http_to_another_host_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KALIXO_TOKEN", TOKEN)
    result = run(["--api-url", "http://api.kalixo.invalid/v1", "retrieve-order", "1"])
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    assert result.stderr.splitlines()[:2] == [
        "kalixo: error: refusing to send credentials in clear to http://api.kalixo.invalid/v1 "
        "(plain http:// to a host that is not this machine); nothing was sent",
        "kalixo: hint: use the https:// address; only if you must (a test rig on a trusted "
        "network), set KALIXO_ALLOW_INSECURE_HTTP=1",
    ]
    login = run(
        [
            "--api-url",
            "http://api.kalixo.invalid/v1",
            "auth",
            "login",
            "--email",
            "a@b.example",
            "--password-stdin",
        ],
        input="pw\n",
    )
    assert login.exit_code == ExitCode.USAGE
    assert "refusing to send credentials in clear" in login.stderr


def test_loopback_http_is_allowed(faults: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    faults.on(RETRIEVE, Reply(200, RETRIEVED))
    for host in ("127.0.0.1", "localhost"):
        monkeypatch.setenv("KALIXO_API_URL", f"{faults.url.replace('127.0.0.1', host)}/v1")
        result = run(["retrieve-order", "59400", "-o", "json"])
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""


def test_the_opt_out_warns_on_every_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_TOKEN", TOKEN)
    monkeypatch.setenv("KALIXO_ALLOW_INSECURE_HTTP", "1")
    monkeypatch.setenv("KALIXO_RETRIES", "0")
    for args in (["retrieve-order", "1", "-o", "json"], ["catalog", "list", "-o", "json"]):
        result = run(["--api-url", "http://api.kalixo.invalid/v1", *args])
        assert result.stderr.splitlines()[0] == (
            "kalixo: warning: http://api.kalixo.invalid/v1 is plain http://: the credential "
            "and every PIN cross the network unencrypted (KALIXO_ALLOW_INSECURE_HTTP is set)"
        )
        assert result.exit_code == ExitCode.TEMPORARY  # it tried: the host does not exist


# ---------------------------------------------------------------------------------------
# Malformed credentials, and credentials echoed back


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("abc\nX-Evil: 1", "it holds a line break"),
        ("abc def", "it holds white space"),
        ("abcé", "it holds a character that is not ASCII"),
        ("abc\x1bdef", "it holds a control character"),
    ],
)
def test_a_malformed_token_is_refused_and_never_echoed(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch, token: str, problem: str
) -> None:
    monkeypatch.setenv("KALIXO_TOKEN", token)
    result = run(["retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == ExitCode.AUTH
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"kalixo: error: the token in KALIXO_TOKEN is malformed ({problem})"
    assert json.loads(lines[-1])["error"]["kind"] == "malformed_credentials"
    assert "abc" not in result.stderr
    assert faults.count() == 0


def test_a_malformed_key_in_the_config_file_names_the_file(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALIXO_TOKEN")
    monkeypatch.setenv("KALIXO_API_URL", f"{faults.url}/v2")
    assert run(["config", "set", "api_version", "v2"]).exit_code == 0
    from kalixo_cli.store.config import config_path

    path = config_path()
    path.write_text(path.read_text() + 'api_key = "kal_test_abc\\u2028def"\n')
    result = run(["wallet", "-o", "json"])
    assert result.exit_code == ExitCode.AUTH
    assert result.stderr.startswith(
        f"kalixo: error: the API key in config {path} is malformed (it holds a line break)\n"
    )
    assert "kal_test_abc" not in result.stderr
    assert faults.count() == 0


def test_a_credential_echoed_by_the_server_is_redacted_everywhere(
    faults: FaultServer,
) -> None:
    echo = {"statusCode": 400, "message": f"bad token Bearer {TOKEN} ({TOKEN})"}
    faults.on(PLACE, Reply(400, echo, {"fhp-codehype-correlation-key": f"k-{TOKEN}"}))
    result = run(["place-order", ORDER, "--external-order-code", "O-E-1", "-o", "json"])
    assert result.exit_code == ExitCode.REJECTED
    assert TOKEN not in result.stderr + result.stdout
    assert "bad token Bearer [REDACTED] ([REDACTED])" in result.stderr
    error = json.loads(result.stderr.splitlines()[-1])["error"]
    assert error["serverMessage"] == "bad token Bearer [REDACTED] ([REDACTED])"
    assert error["correlationKey"] == "k-[REDACTED]"
    journaled = run(["orders", "show", "O-E-1", "-o", "json"])
    assert TOKEN not in journaled.stdout
    assert json.loads(journaled.stdout)["error"] == "bad token Bearer [REDACTED] ([REDACTED])"


def test_bulk_result_lines_are_redacted(faults: FaultServer, tmp_path: Path) -> None:
    faults.on(PLACE, Reply(400, {"statusCode": 400, "message": f"echo {TOKEN}"}))
    order = json.loads(Path(ORDER).read_text())
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps({**order, "externalOrderCode": "B-E-1"}) + "\n")
    result = run(["place-orders", str(batch), "-o", "jsonl"])
    assert result.exit_code == ExitCode.REJECTED
    assert TOKEN not in result.stdout + result.stderr
    line = json.loads(result.stdout.splitlines()[0])
    assert line["error"]["serverMessage"] == "echo [REDACTED]"


# ---------------------------------------------------------------------------------------
# A redirect answered to a POST


def test_a_post_redirect_names_the_target_but_does_not_send_you_there(
    faults: FaultServer,
) -> None:
    faults.on(PLACE, Reply(307, b"", {"Location": "https://evil.example/v1/orders/place-order"}))
    result = run(["place-order", ORDER, "--external-order-code", "O-R-1", "-o", "json"])
    assert result.exit_code == ExitCode.TEMPORARY
    lines = result.stderr.splitlines()
    assert lines[0] == (
        "kalixo: error: the API answered with a redirect (HTTP 307) to "
        "https://evil.example/v1/orders/place-order; nothing was placed "
        f"({faults.url}{PLACE})"
    )
    assert lines[1] == (
        "kalixo: hint: kalixo does not follow redirects of a POST. Check the API address with "
        "Kalixo's documentation or support before changing --api-url: do not point it (and "
        "your credential) at an address only this answer names"
    )
    assert faults.count("POST") == 1


def test_an_order_code_shaped_like_a_pin_is_shown_whole_in_errors(sandbox: object) -> None:
    """PINs are masked in errors, but the user's own order code is what the error is about:
    SHOP-2026-0042 has the shape of a PIN and must still be shown whole."""
    code = "SHOP-2026-0042"
    first = run(["place-order", "examples/order.json", "--external-order-code", code, "-o", "json"])
    assert first.exit_code == 0, first.stderr
    clash = run(["place-order", "examples/order.csv", "--external-order-code", code, "-o", "json"])
    assert clash.exit_code == ExitCode.USAGE
    assert code in clash.stderr and "SHOP-****" not in clash.stderr
    error = json.loads(clash.stderr.strip().splitlines()[-1])["error"]  # -o json: on stderr
    assert code in error["message"]
    missing = run(["orders", "show", "SHOP-2026-9999"])
    assert "SHOP-2026-9999" in missing.stderr
    # a PIN in the same message is still masked
    from kalixo_cli.domain.redact import Redactor

    redact = Redactor()
    redact.allow(code)
    assert redact(f"{code} holds ABCDE-FGHIJ-KLMNO") == f"{code} holds ABCDE-*****-KLMNO"
