"""Fault injection in the sandbox, over real HTTP with requests: latency, 500/502 before any
processing, the rate limit and its headers, answers dropped after the order is committed,
hangs, changing faults on a running server, and the `kalixo sandbox serve` flags."""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import requests

from kalixo_cli.sandbox import SANDBOX_EMAIL, SANDBOX_PASSWORD, SANDBOX_TOKEN
from kalixo_cli.sandbox.faults import FAULT_KINDS, FaultInjector, FaultOptions, Faults, Window
from kalixo_cli.sandbox.server import RunningSandbox, running_sandbox
from tests.helpers import FakeClock, run

START = 1_800_000_000.25
"""A sandbox time a quarter second into a whole second, so rounding shows."""
PLACE = "/v1/orders/place-order"
CORRELATION = "fhp-codehype-correlation-key"
LINE_6 = {"productId": 6, "price": 839, "currency": "GBP", "quantity": 1}


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture(scope="module")
def _server(tmp_path_factory: pytest.TempPathFactory, clock: FakeClock) -> Iterator[RunningSandbox]:
    db = tmp_path_factory.mktemp("sandbox-faults") / "sandbox.sqlite3"
    with running_sandbox(db, clock=clock) as running:
        yield running


@pytest.fixture
def live(_server: RunningSandbox, clock: FakeClock) -> Iterator[RunningSandbox]:
    """One server for the module; each test starts with no faults, zero counts, START."""
    clock.now = START
    _server.faults.clear()
    _server.reset_counts()
    yield _server
    _server.faults.clear()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def auth(token: str = SANDBOX_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_code() -> str:
    return f"F-{uuid.uuid4().hex[:12]}"


def order(code: str | None = None) -> dict[str, Any]:
    return {"externalOrderCode": code or new_code(), "currency": "GBP", "orderProducts": [LINE_6]}


def place(
    live: RunningSandbox, http: requests.Session, body: dict[str, Any], timeout: float = 5
) -> requests.Response:
    return http.post(f"{live.base_url}{PLACE}", json=body, headers=auth(), timeout=timeout)


def get(
    live: RunningSandbox, http: requests.Session, path: str, token: str = SANDBOX_TOKEN
) -> requests.Response:
    return http.get(f"{live.base_url}{path}", headers=auth(token), timeout=5)


def rate_headers(response: requests.Response) -> tuple[int, int, int]:
    h = response.headers
    return (
        int(h["X-RateLimit-Limit"]),
        int(h["X-RateLimit-Remaining"]),
        int(h["X-RateLimit-Reset"]),
    )


# -- off by default ---------------------------------------------------------------------------


def test_without_faults_answers_are_plain_and_nothing_is_counted(
    live: RunningSandbox, http: requests.Session
) -> None:
    response = place(live, http, order())
    assert response.status_code == 201
    assert not any(name.lower().startswith("x-ratelimit") for name in response.headers)
    assert live.fault_counts() == dict.fromkeys(FAULT_KINDS, 0)
    assert live.faults.config == Faults()


# -- latency ----------------------------------------------------------------------------------


def test_latency_delays_every_request_by_at_least_the_injected_time(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(latency_ms=200)
    for path in ("/v1/catalog", "/v1/no/such/route"):
        started = time.monotonic()
        get(live, http, path)
        assert time.monotonic() - started >= 0.2
    assert live.fault_counts()["latency"] == 2


def test_latency_does_not_hold_up_other_requests(live: RunningSandbox) -> None:
    live.faults.update(latency_ms=300)
    statuses: list[int] = []

    def fetch() -> None:
        response = requests.get(f"{live.v1_url}/catalog", headers=auth(), timeout=5)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert statuses == [200] * 6
    assert 0.3 <= elapsed < 0.9  # one delay, not six in a row


def test_jitter_adds_between_zero_and_the_jitter_on_top_of_the_latency() -> None:
    injector = FaultInjector(Faults(latency_ms=50, latency_jitter_ms=100, seed=1))
    delays = [injector.plan("GET", "/v1/catalog", "t", START).delay_seconds for _ in range(50)]
    assert all(0.05 <= delay <= 0.15 for delay in delays)
    assert len(set(delays)) == 50


# -- 500 and 502 ------------------------------------------------------------------------------


def statuses_for(live: RunningSandbox, http: requests.Session, codes: list[str]) -> list[int]:
    return [place(live, http, order(code)).status_code for code in codes]


def test_500_and_502_come_in_their_shares_before_anything_is_committed(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults = Faults(error_rate_500=0.25, error_rate_502=0.25, seed=3)
    before = live.store.count_orders()
    codes = [new_code() for _ in range(40)]
    statuses = statuses_for(live, http, codes)
    seen = Counter(statuses)
    assert set(seen) == {201, 500, 502}
    assert 5 <= seen[500] <= 15 and 5 <= seen[502] <= 15
    counts = live.fault_counts()
    assert (counts["error_500"], counts["error_502"]) == (seen[500], seen[502])
    assert live.store.count_orders() == before + seen[201]
    for code, status in zip(codes, statuses, strict=True):
        assert live.place_attempts()[code] == 1
        assert len(live.store.orders_by_code(code)) == (1 if status == 201 else 0)


def test_injected_errors_have_kalixos_shape_and_a_correlation_key(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(error_rate_500=1.0)
    five_hundred = place(live, http, order())
    live.faults.update(error_rate_500=0.0, error_rate_502=1.0)
    five_oh_two = get(live, http, "/v1/orders/retrieve-order?id=59401")
    assert five_hundred.status_code == 500
    assert five_hundred.json() == {"statusCode": 500, "message": "Internal server error"}
    assert five_oh_two.status_code == 502
    assert five_oh_two.json() == {
        "statusCode": 502,
        "error": "Bad Gateway",
        "message": "Order processing unavailable, please retry",
    }
    assert five_hundred.headers[CORRELATION] and five_oh_two.headers[CORRELATION]


def test_the_same_seed_gives_the_same_faults_again(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults = Faults(error_rate_500=0.3, error_rate_502=0.3, seed=42)
    first = statuses_for(live, http, [new_code() for _ in range(15)])
    live.reset_counts()
    second = statuses_for(live, http, [new_code() for _ in range(15)])
    live.faults.update(seed=43)
    third = statuses_for(live, http, [new_code() for _ in range(15)])
    assert first == second != third


def test_errors_hit_the_order_routes_unless_told_other_paths(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(error_rate_502=1.0)
    assert get(live, http, "/v1/catalog").status_code == 200
    assert get(live, http, "/v1/orders/retrieve-order?id=1").status_code == 502
    live.faults.update(fault_paths=("/v1/catalog",))
    assert get(live, http, "/v1/catalog").status_code == 502
    assert get(live, http, "/v1/orders/retrieve-order?id=1").status_code == 404


# -- rate limit -------------------------------------------------------------------------------


def test_rate_limit_headers_count_down_then_429_with_retry_after(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    live.faults.update(rate_limit_per_minute=3)
    reset = math.floor(START) + 60
    answers = [get(live, http, "/v1/catalog") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [rate_headers(a) for a in answers] == [(3, 2, reset), (3, 1, reset), (3, 0, reset)]
    assert all("Retry-After" not in a.headers for a in answers)

    code = new_code()
    limited = place(live, http, order(code))
    assert limited.status_code == 429
    assert rate_headers(limited) == (3, 0, reset)
    assert limited.headers["Retry-After"] == "60"  # ceil(reset - START)
    assert limited.json() == {
        "statusCode": 429,
        "error": "Too Many Requests",
        "message": "Rate limit exceeded. Retry after 60s.",
    }
    assert limited.headers[CORRELATION]

    clock.advance(30)
    assert get(live, http, "/v1/catalog").headers["Retry-After"] == "30"
    clock.now = reset - 0.2
    almost = get(live, http, "/v1/catalog")
    assert almost.headers["Retry-After"] == "1"
    assert almost.json()["message"] == "Rate limit exceeded. Retry after 1s."
    assert live.fault_counts()["rate_limited"] == 3
    assert live.store.orders_by_code(code) == []


def test_the_window_resets_at_the_reset_time_and_rejections_do_not_count(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    live.faults.update(rate_limit_per_minute=2)
    first = get(live, http, "/v1/catalog")
    get(live, http, "/v1/catalog")
    for _ in range(5):
        assert get(live, http, "/v1/catalog").status_code == 429
    clock.now = rate_headers(first)[2]
    again = get(live, http, "/v1/catalog")
    assert again.status_code == 200
    assert rate_headers(again) == (2, 1, math.floor(clock.now) + 60)


def test_waiting_retry_after_is_always_enough(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    windows: tuple[Window, ...] = ("fixed", "sliding")
    for window in windows:
        live.faults = Faults(rate_limit_per_minute=2, rate_limit_window=window)
        clock.now = START
        allowed = 0
        for _ in range(12):
            response = get(live, http, "/v1/catalog")
            if response.status_code == 429:
                wait = int(response.headers["Retry-After"])
                assert wait >= 1
                assert wait == math.ceil(int(response.headers["X-RateLimit-Reset"]) - clock.now)
                clock.advance(wait)
                assert get(live, http, "/v1/catalog").status_code == 200, window
            else:
                allowed += 1
            clock.advance(7.3)
        assert allowed >= 2


def test_the_sliding_window_frees_a_slot_when_the_oldest_request_is_a_minute_old(
    live: RunningSandbox, http: requests.Session, clock: FakeClock
) -> None:
    live.faults.update(rate_limit_per_minute=2, rate_limit_window="sliding")
    first = get(live, http, "/v1/catalog")
    clock.advance(10)
    second = get(live, http, "/v1/catalog")
    clock.advance(10)
    limited = get(live, http, "/v1/catalog")
    oldest_leaves = math.ceil(START + 60)
    assert rate_headers(first) == (2, 1, oldest_leaves)
    assert rate_headers(second) == (2, 0, oldest_leaves)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == str(math.ceil(oldest_leaves - clock.now))
    clock.now = START + 60
    freed = get(live, http, "/v1/catalog")
    assert freed.status_code == 200
    assert rate_headers(freed) == (2, 0, math.ceil(START + 10 + 60))


def test_each_token_has_its_own_quota_and_only_v1_routes_count(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(rate_limit_per_minute=1)
    login = http.post(
        f"{live.v1_url}/auth/login",
        json={"email": SANDBOX_EMAIL, "password": SANDBOX_PASSWORD},
        timeout=5,
    )
    assert login.status_code == 201 and rate_headers(login)[1] == 0
    assert get(live, http, "/v1/catalog").status_code == 200
    assert get(live, http, "/v1/catalog").status_code == 429
    jwt = login.json()["accessToken"]
    assert get(live, http, "/v1/catalog", token=jwt).status_code == 200
    missing = get(live, http, "/v1/nowhere", token=jwt)
    assert missing.status_code == 429  # 404s under /v1/ count too
    outside = get(live, http, "/health")
    assert outside.status_code == 404
    assert "X-RateLimit-Limit" not in outside.headers


def test_rate_limited_place_orders_are_attempts_but_not_orders(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(rate_limit_per_minute=1)
    code = new_code()
    statuses = [place(live, http, order(code)).status_code for _ in range(3)]
    assert statuses == [201, 429, 429]
    assert live.place_attempts()[code] == 3
    assert len(live.store.orders_by_code(code)) == 1
    assert live.store.order_codes()[-1] == code


# -- drop after commit ------------------------------------------------------------------------


def test_a_dropped_answer_is_a_broken_connection_but_the_order_is_committed(
    live: RunningSandbox, http: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    live.faults.update(drop_after_commit_rate=1.0)
    code = new_code()
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="Connection broken"):
        place(live, http, order(code))
    [committed] = live.store.orders_by_code(code)
    assert committed.lines[0].pins
    assert live.fault_counts()["drop_after_commit"] == 1

    retried = place(live, http, order(code))  # not 2xx: answered whole, not dropped
    assert retried.status_code == 409
    assert len(live.store.orders_by_code(code)) == 1
    assert live.place_attempts()[code] == 2
    assert live.fault_counts()["drop_after_commit"] == 1

    logged = [record.getMessage() for record in caplog.records]
    assert any(f"injected drop_after_commit: POST {PLACE}" in m for m in logged)
    assert not any("Exception in ASGI application" in m for m in logged)
    assert not any(record.exc_info for record in caplog.records)


def test_a_streaming_client_sees_the_real_status_and_length_then_the_break(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(drop_after_commit_rate=1.0)
    code = new_code()
    response = http.post(
        f"{live.v1_url}/orders/place-order",
        json=order(code),
        headers=auth(),
        timeout=5,
        stream=True,
    )
    assert response.status_code == 201
    assert int(response.headers["Content-Length"]) > 0
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = response.content
    assert len(live.store.orders_by_code(code)) == 1


def test_only_place_order_answers_are_dropped(live: RunningSandbox, http: requests.Session) -> None:
    live.faults.update(drop_after_commit_rate=1.0)
    assert get(live, http, "/v1/catalog").status_code == 200
    assert get(live, http, "/v1/orders/retrieve-order?id=1").status_code == 404
    assert live.fault_counts()["drop_after_commit"] == 0


# -- hang -------------------------------------------------------------------------------------


def test_a_hung_request_is_a_client_read_timeout_and_places_nothing(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(hang_rate=1.0)
    code = new_code()
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        place(live, http, order(code), timeout=0.3)
    assert time.monotonic() - started < 2
    assert live.store.orders_by_code(code) == []
    assert live.place_attempts()[code] == 1
    assert live.fault_counts()["hang"] == 1
    live.faults.clear()
    assert get(live, http, "/v1/catalog").status_code == 200


def test_a_hang_ends_in_a_dropped_connection(live: RunningSandbox, http: requests.Session) -> None:
    live.faults.update(hang_rate=1.0, hang_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(live, http, "/v1/orders/retrieve-order?id=1")
    assert 0.3 <= time.monotonic() - started < 2


# -- configuring ------------------------------------------------------------------------------


def test_faults_change_while_serving_and_bad_changes_are_refused(
    live: RunningSandbox, http: requests.Session
) -> None:
    live.faults.update(error_rate_502=1.0)
    assert get(live, http, "/v1/orders/retrieve-order?id=1").status_code == 502
    with pytest.raises(ValueError, match="add up to 1 at most"):
        live.faults.update(error_rate_500=0.5)
    with pytest.raises(TypeError, match="no field error_rate"):
        # A misspelt field, which mypy refuses too: this is the check for callers without it.
        live.faults.update(error_rate=0.1)  # type: ignore[call-arg]
    assert live.faults.config == Faults(error_rate_502=1.0)
    live.faults = Faults()
    assert get(live, http, "/v1/orders/retrieve-order?id=1").status_code == 404


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"error_rate_500": 1.5}, "error_rate_500 must be a share between 0 and 1"),
        ({"hang_rate": -0.1}, "hang_rate must be a share"),
        ({"drop_after_commit_rate": float("nan")}, "drop_after_commit_rate must be a share"),
        ({"error_rate_500": 0.6, "hang_rate": 0.6}, "add up to 1 at most"),
        ({"latency_ms": -1}, "latency_ms must be a number of milliseconds >= 0"),
        ({"hang_seconds": 0}, "hang_seconds must be > 0"),
        ({"rate_limit_per_minute": 0}, "rate_limit_per_minute must be an integer >= 1"),
        ({"rate_limit_window": "rolling"}, "rate_limit_window must be 'fixed' or 'sliding'"),
        ({"fault_paths": "/v1/orders"}, "fault_paths must be a tuple"),
        ({"seed": 1.5}, "seed must be an integer"),
    ],
)
def test_invalid_faults_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Faults(**changes)


def test_exclusive_shares_may_add_up_to_exactly_one() -> None:
    Faults(error_rate_500=0.1, error_rate_502=0.2, hang_rate=0.3, drop_after_commit_rate=0.4)


def test_running_sandbox_takes_faults_as_keyword_arguments(tmp_path: Path) -> None:
    assert set(FaultOptions.__annotations__) == {field.name for field in fields(Faults)}
    with running_sandbox(
        tmp_path / "kw.sqlite3", faults=Faults(latency_ms=5), error_rate_502=1.0, seed=9
    ) as running:
        assert running.faults.config == Faults(latency_ms=5, error_rate_502=1.0, seed=9)
        response = requests.post(
            f"{running.v1_url}/orders/place-order", json=order(), headers=auth(), timeout=5
        )
        assert response.status_code == 502
        assert running.store.count_orders() == 0
        assert running.fault_counts()["error_502"] == 1


def test_describe_names_each_fault_that_is_on() -> None:
    assert Faults().describe() == []
    assert Faults(
        latency_ms=20,
        latency_jitter_ms=5,
        error_rate_500=0.05,
        error_rate_502=0.125,
        hang_rate=0.01,
        hang_seconds=9,
        drop_after_commit_rate=0.5,
        rate_limit_per_minute=60,
        seed=7,
    ).describe() == [
        "latency 20 ms + 0-5 ms on every request",
        "rate limit 60 requests a minute per token (fixed window), then 429",
        "500 on 5% of /v1/orders/*, /v2/orders*",
        "502 on 12.5% of /v1/orders/*, /v2/orders*",
        "no answer for 9 s on 1% of /v1/orders/*, /v2/orders*",
        "order committed, then the connection dropped, on 50% of place-orders",
        "seed 7",
    ]


# -- kalixo sandbox serve ---------------------------------------------------------------------


FLAGS_AND_VARIABLES = [
    ("--latency-ms", "KALIXO_SANDBOX_LATENCY_MS"),
    ("--latency-jitter-ms", "KALIXO_SANDBOX_LATENCY_JITTER_MS"),
    ("--error-rate-500", "KALIXO_SANDBOX_ERROR_RATE_500"),
    ("--error-rate-502", "KALIXO_SANDBOX_ERROR_RATE_502"),
    ("--rate-limit", "KALIXO_SANDBOX_RATE_LIMIT"),
    ("--rate-limit-window", "KALIXO_SANDBOX_RATE_LIMIT_WINDOW"),
    ("--drop-after-commit", "KALIXO_SANDBOX_DROP_AFTER_COMMIT"),
    ("--hang-rate", "KALIXO_SANDBOX_HANG_RATE"),
    ("--hang-seconds", "KALIXO_SANDBOX_HANG_SECONDS"),
    ("--seed", "KALIXO_SANDBOX_SEED"),
]


def test_serve_help_documents_every_fault_flag_and_its_variable() -> None:
    result = run(["sandbox", "serve", "--help"])
    assert result.exit_code == 0
    entries: dict[str, str] = {}  # flag -> its help, wrapped lines joined
    flag = ""
    for line in result.output.splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            entries[flag] = line
        elif flag and line.startswith("    "):
            entries[flag] += " " + line.strip()
    for flag, variable in FLAGS_AND_VARIABLES:
        assert f"[env var: {variable}" in entries[flag]
        assert len(entries[flag].split(".  [")[0].split()) >= 4  # a one-line summary


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Faults]:
    """What `kalixo sandbox serve` would serve with, instead of serving."""
    calls: list[Faults] = []

    def fake_serve(host: str, port: int, db_path: Path, faults: Faults | None = None) -> None:
        assert faults is not None
        calls.append(faults)

    monkeypatch.setattr("kalixo_cli.sandbox.server.serve", fake_serve)
    return calls


def test_serve_flags_and_variables_make_the_faults(
    served: list[Faults], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KALIXO_SANDBOX_ERROR_RATE_502", "0.2")
    monkeypatch.setenv("KALIXO_SANDBOX_SEED", "5")
    monkeypatch.setenv("KALIXO_SANDBOX_RATE_LIMIT", "30")
    result = run(
        [
            "sandbox",
            "serve",
            "--latency-ms",
            "15",
            "--drop-after-commit",
            "0.1",
            "--hang-rate",
            "0.05",
            "--hang-seconds",
            "2",
            "--rate-limit-window",
            "sliding",
            "--seed",
            "6",
        ]
    )
    assert result.exit_code == 0, result.output
    assert served == [
        Faults(
            latency_ms=15,
            error_rate_502=0.2,
            drop_after_commit_rate=0.1,
            hang_rate=0.05,
            hang_seconds=2,
            rate_limit_per_minute=30,
            rate_limit_window="sliding",
            seed=6,
        )
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--error-rate-500", "0.7", "--hang-rate", "0.4"], "is 1.1"),
        (["--error-rate-502", "1.5"], "1.5 is not in the range 0.0<=x<=1.0"),
        (["--rate-limit", "0"], "0 is not in the range x>=1"),
        (["--latency-ms", "nan"], "--latency-ms must be a number of milliseconds >= 0"),
    ],
)
def test_serve_refuses_bad_fault_flags(served: list[Faults], args: list[str], message: str) -> None:
    result = run(["sandbox", "serve", *args])
    assert result.exit_code == 2
    assert message in result.output
    if message == "is 1.1":  # the sum is named with the flags to lower
        assert "--error-rate-500" in result.output and "--hang-rate" in result.output
    assert served == []


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child is POSIX")
def test_serve_announces_its_faults_injects_them_and_logs_them(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KALIXO_SANDBOX_ERROR_RATE_502": "1",
        "KALIXO_SANDBOX_RATE_LIMIT": "100",
        "NO_COLOR": "1",
    }
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kalixo_cli",
            "sandbox",
            "serve",
            "--port",
            "0",
            "--db",
            str(tmp_path / "serve.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stderr is not None
        banner = [child.stderr.readline() for _ in range(9)]
        match = re.search(r"at (http://127\.0\.0\.1:\d+)/v1$", banner[0].strip())
        assert match, banner
        assert "  fault: rate limit 100 requests a minute per token (fixed window), then 429\n" in (
            banner
        )
        assert "  fault: 502 on 100% of /v1/orders/*, /v2/orders*\n" in banner
        response = requests.get(
            f"{match.group(1)}/v1/orders/retrieve-order?id=1", headers=auth(), timeout=5
        )
        assert response.status_code == 502
        assert response.headers["X-RateLimit-Remaining"] == "99"
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, stderr
    assert stdout == ""
    assert "injected error_502: GET /v1/orders/retrieve-order" in stderr
    assert "Traceback" not in stderr
