"""Bounded time and memory against hostile servers: trickling answers and huge bodies.

The fault server trickles for ever (one header line or one body byte at a time) or streams
hundreds of megabytes; kalixo must end on its own with the documented exit code and a line
naming the limit. No timing is asserted: a run that did not bound its time would not end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kalixo_cli.api.limits import MAX_BODY_BYTES
from kalixo_cli.domain.errors import ExitCode
from tests.faultserver import FaultServer, Reply
from tests.helpers import run

RETRIEVE = "/v1/orders/retrieve-order"
PLACE = "/v1/orders/place-order"
CATALOG = "/v1/catalog/products"
ORDER = str(Path(__file__).parent.parent / "examples" / "order.json")
HUGE = 200 * 1024 * 1024
HINT_TIME = (
    "kalixo: hint: try again, or allow more time with KALIXO_TIMEOUT or `kalixo config set timeout`"
)


@pytest.fixture(autouse=True)
def no_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALIXO_RETRIES", "0")


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 s timeout, for answers that never complete (the trickles go on for 30 s). The
    size tests keep the default 30 s, so a loaded machine streaming the first 8 MiB slowly
    still meets the size limit first."""
    monkeypatch.setenv("KALIXO_TIMEOUT", "1")


@pytest.mark.parametrize("action", ["trickle-headers", "trickle-body"])
@pytest.mark.usefixtures("quick")
def test_a_trickling_get_ends_after_the_timeout(faults: FaultServer, action: str) -> None:
    faults.on(RETRIEVE, Reply(action=action, trickle=0.1))
    result = run(["retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == ExitCode.TEMPORARY
    assert result.stdout == ""
    assert result.stderr.splitlines()[:2] == [
        f"kalixo: error: the API did not answer within 1 s ({faults.url}{RETRIEVE})",
        HINT_TIME,
    ]


def test_a_trickling_get_is_retried_within_the_deadline(
    faults: FaultServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_faults import RETRIEVED

    monkeypatch.setenv("KALIXO_TIMEOUT", "3")  # room for the good answer on a busy machine
    monkeypatch.setenv("KALIXO_RETRIES", "1")
    faults.on(RETRIEVE, Reply(action="trickle-body", trickle=0.1), Reply(200, RETRIEVED))
    result = run(["retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == 0, result.stderr
    assert faults.count("GET") == 2


@pytest.mark.parametrize("action", ["trickle-headers", "trickle-body"])
@pytest.mark.usefixtures("quick")
def test_a_trickling_answer_to_an_order_leaves_it_unknown(faults: FaultServer, action: str) -> None:
    faults.on(PLACE, Reply(action=action, trickle=0.1))
    result = run(["place-order", ORDER, "--external-order-code", "O-T-1", "-o", "json"])
    assert result.exit_code == ExitCode.OUTCOME_UNKNOWN
    assert result.stderr.startswith(
        "kalixo: error: no answer within 1 s; the order O-T-1 may have been placed "
        f"({faults.url}{PLACE})\n"
    )
    shown = json.loads(run(["orders", "show", "O-T-1", "-o", "json"]).stdout)
    assert shown["state"] == "unknown"


def too_large(declared: bool) -> str:
    what = f"declares a body of {HUGE:,} bytes" if declared else "sent a body"
    return f"the API's answer is too large: the answer {what}, over the 8 MiB limit"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_answer_to_a_get_exits_5_naming_the_limit(
    faults: FaultServer, chunked: bool
) -> None:
    faults.on(RETRIEVE, Reply(action="huge", size=HUGE, chunked=chunked))
    result = run(["retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == ExitCode.TEMPORARY
    assert result.stderr.splitlines()[0] == (
        f"kalixo: error: {too_large(not chunked)}; kalixo keeps at most 8 MiB of one answer "
        f"({faults.url}{RETRIEVE})"
    )
    # It stopped reading: what the server got out is the limit plus socket buffers.
    assert faults.streamed < MAX_BODY_BYTES + 16 * 1024 * 1024


def test_a_huge_answer_to_an_order_exits_6(faults: FaultServer) -> None:
    faults.on(PLACE, Reply(201, action="huge", size=HUGE, chunked=True))
    result = run(["place-order", ORDER, "--external-order-code", "O-H-9", "-o", "json"])
    assert result.exit_code == ExitCode.OUTCOME_UNKNOWN
    assert result.stderr.startswith(
        "kalixo: error: the API's answer was not read: the answer sent a body, over the "
        "8 MiB limit; kalixo keeps at most 8 MiB of one answer; the order O-H-9 may have been "
        f"placed ({faults.url}{PLACE})\n"
    )
    assert faults.count("POST") == 1


def test_a_huge_catalog_page_is_refused(faults: FaultServer) -> None:
    faults.on(CATALOG, Reply(action="huge", size=HUGE))
    result = run(["catalog", "list", "-o", "json", "--refresh"])
    assert result.exit_code == ExitCode.TEMPORARY
    assert "over the 8 MiB limit" in result.stderr.splitlines()[0]


def test_a_huge_redirect_body_is_not_read_whole(faults: FaultServer) -> None:
    faults.on(
        RETRIEVE,
        Reply(
            302,
            action="huge",
            size=HUGE,
            chunked=True,
            headers={"Location": f"{faults.url}/elsewhere"},
        ),
    )
    result = run(["retrieve-order", "59400", "-o", "json"])
    assert result.exit_code == ExitCode.TEMPORARY
    assert "over the 8 MiB limit" in result.stderr.splitlines()[0]
