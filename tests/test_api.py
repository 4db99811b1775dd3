"""`kalixo api`: any path of the configured API, authenticated, printed as received; order
writes refused; credentials never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kalixo_cli.commands.api import api_path, writes_orders
from kalixo_cli.domain.errors import UsageError
from kalixo_cli.sandbox import SANDBOX_API_KEY, SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_TOKEN
from kalixo_cli.sandbox.server import RunningSandbox
from tests.faultserver import FaultServer, Reply
from tests.helpers import Clock, run

EXAMPLE = Path(__file__).parent.parent / "examples" / "order.json"
# catalog, up one, orders: spelt with join, as tests/test_hermetic.py flags a literal climb.
CLIMB = "/".join(("catalog", "..", "orders"))


# -- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "orders/place-order"),
        ("POST", "/orders"),
        ("post", "v2/orders"),
        ("PUT", "orders/59401"),
        ("DELETE", "orders/KX-1"),
        ("PATCH", "ORDERS"),
        ("POST", CLIMB),
        ("POST", "orders%2Fplace-order"),
        ("POST", "%6Frders"),
        ("POST", "//orders/"),
        ("POST", "orders;x=1"),
        ("POST", "orders?x=1"),
        ("POST", "v1/./orders/place-order"),
        ("POST", "orders%252F"),
        ("POST", "catalog\\..\\orders"),
    ],
)
def test_every_spelling_of_an_order_write_is_caught(method: str, path: str) -> None:
    assert writes_orders(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "orders/59401"),
        ("HEAD", "orders"),
        ("POST", "auth/login"),
        ("POST", "catalog/orders"),
        ("GET", "orders/retrieve-order?id=1"),
    ],
)
def test_reads_and_other_paths_are_not_order_writes(method: str, path: str) -> None:
    assert not writes_orders(method, path)


def test_paths_are_relative_to_the_base_url() -> None:
    base = "https://api.kalixo.io/v1"
    assert api_path("/orders/1", base) == "orders/1"
    assert api_path("v1/orders/1", base) == "orders/1"
    assert api_path("https://api.kalixo.io/v1/catalog?take=1", base) == "catalog?take=1"
    with pytest.raises(UsageError, match="not under the configured API"):
        api_path("https://evil.example/v1/catalog", base)
    with pytest.raises(UsageError, match="not under the configured API"):
        api_path("https://api.kalixo.io.evil.example/v1/catalog", base)


# -- against the sandbox --------------------------------------------------------------------


def test_a_get_prints_the_body_as_received(sandbox: RunningSandbox) -> None:
    result = run(["api", "catalog/products", "-f", "take=2"])
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["take"] == 2 and len(body["products"]) == 2
    filtered = run(["api", "/v1/catalog/products", "-f", "take=3", "--jq", ".products[].sku"])
    assert filtered.exit_code == 0, filtered.stderr
    assert len(filtered.stdout.splitlines()) == 3


def test_include_shows_status_and_headers_never_the_credential(sandbox: RunningSandbox) -> None:
    placed = run(["place-order", str(EXAMPLE), "-o", "json"])
    order_id = json.loads(placed.stdout)["orderId"]
    result = run(["api", "orders/retrieve-order", "-f", f"id={order_id}", "-i"])
    assert result.exit_code == 0, result.stderr
    head, _, body = result.stdout.partition("\n\n")
    assert head.startswith("HTTP/1.1 200 OK\n")
    assert "fhp-codehype-correlation-key: " in head.lower()
    assert json.loads(body)["orderId"] == order_id
    assert SANDBOX_TOKEN not in result.stdout + result.stderr


def test_verbose_masks_the_credential(sandbox: RunningSandbox) -> None:
    result = run(["--verbose", "api", "catalog/products", "-f", "take=1"])
    assert result.exit_code == 0, result.stderr
    assert "Authorization: [REDACTED]" in result.stderr
    assert SANDBOX_TOKEN not in result.stderr + result.stdout


def test_v2_with_its_api_key(v2: RunningSandbox) -> None:
    placed = json.loads(
        run(["place-order", str(EXAMPLE), "-o", "json", "--external-order-code", "API-V2-1"]).stdout
    )
    result = run(["--verbose", "api", "orders/API-V2-1", "-i", "--jq", ".externalOrderCode"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith("\n\nAPI-V2-1\n")
    assert placed["externalOrderCode"] == "API-V2-1"
    assert SANDBOX_API_KEY not in result.stdout + result.stderr
    assert "x-api-key: [REDACTED]" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["-X", "POST", "orders/place-order", "--input", str(EXAMPLE)],
        ["-X", "POST", "/v1/orders/place-order", "-f", "price=1"],
        ["--input", str(EXAMPLE), f"{CLIMB}/place-order"],
    ],
)
def test_order_writes_are_refused_before_anything_is_sent(
    sandbox: RunningSandbox, args: list[str]
) -> None:
    result = run(["api", *args])
    assert result.exit_code == 2
    assert "kalixo api does not send POST" in result.stderr
    assert "kalixo place-order" in result.stderr
    assert sandbox.request_count() == 0


def test_v2_order_writes_are_refused(v2: RunningSandbox) -> None:
    result = run(["api", "--input", str(EXAMPLE), "orders"])
    assert result.exit_code == 2
    assert v2.request_count() == 0


def test_a_post_elsewhere_sends_the_fields_as_json(sandbox: RunningSandbox) -> None:
    result = run(
        [
            "api",
            "-X",
            "POST",
            "auth/login",
            "-f",
            "email=sandbox@kalixo.test",
            "-f",
            "password=sandbox-password",
            "--jq",
            "keys",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert "accessToken" in result.stdout


def test_an_error_status_prints_the_body_and_exits_as_any_command(sandbox: RunningSandbox) -> None:
    result = run(["api", "orders/retrieve-order", "-f", "id=999999"])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["statusCode"] == 404
    assert "HTTP 404" in result.stderr


def test_bad_input_is_exit_2(sandbox: RunningSandbox, tmp_path: Path) -> None:
    bad = tmp_path / "body.json"
    bad.write_text("{nope")
    result = run(["api", "-X", "POST", "auth/login", "--input", str(bad)])
    assert result.exit_code == 2 and "--input is not JSON" in result.stderr
    assert run(["api", "catalog", "-f", "novalue"]).exit_code == 2
    assert run(["api", "-X", "BREW", "catalog"]).exit_code == 2
    assert run(["api", "-X", "GET", "catalog", "--input", str(EXAMPLE)]).exit_code == 2
    assert run(["api", "https://elsewhere.example/v1/catalog"]).exit_code == 2
    assert sandbox.request_count() == 0


# -- retries and credentials, against the fault server --------------------------------------


def test_get_is_retried_and_post_is_not(faults: FaultServer) -> None:
    faults.on("/v1/things", Reply(503, {"message": "busy"}), Reply(200, {"ok": True}))
    result = run(["api", "things"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": True}
    assert faults.count("GET") == 2
    faults.on("/v1/things", Reply(503, {"message": "busy"}), Reply(200, {"ok": True}))
    posted = run(["api", "-X", "POST", "things", "-F", "n=3"])
    assert posted.exit_code == 5
    assert faults.count("POST") == 1
    assert json.loads(faults.seen[-1].body) == {"n": 3}


def test_a_refused_credential_is_exit_4(faults: FaultServer) -> None:
    faults.on("/v1/things", Reply(401, {"message": "Invalid token"}))
    result = run(["api", "things"])
    assert result.exit_code == 4
    assert "fault-server-token" not in result.stdout + result.stderr
    assert faults.seen[-1].headers.get("Authorization") == "Bearer fault-server-token-0123456789"


def test_a_stored_v1_token_is_refreshed_as_for_any_command(
    sandbox: RunningSandbox, sandbox_clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KALIXO_TOKEN")
    login = run(
        ["auth", "login", "--email", SANDBOX_EMAIL, "--password-stdin"],
        input=SANDBOX_PASSWORD + "\n",
    )
    assert login.exit_code == 0, login.stderr
    sandbox_clock.advance(5 * 3600)  # past the access token's ~4 h, within the refresh's
    sandbox.reset_counts()
    result = run(["api", "catalog/products", "-f", "take=1", "--jq", ".take"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1\n"
    assert sandbox.request_count("POST", "/v1/auth/refresh") == 1
    assert sandbox.request_count("GET", "/v1/catalog/products") == 2
