"""The retry policy: every rule, the waits, the deadline and the budget; then the seam using it."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from kalixo_cli.api.http import Transport
from kalixo_cli.api.retry import (
    V1_RULES,
    V2_RULES,
    Action,
    Decision,
    Failure,
    RetryBudget,
    RetryRules,
    backoff_delay,
    decide,
    server_delay,
)
from kalixo_cli.domain.errors import ExitCode, OrderExists, OutcomeUnknown, ServiceUnavailable
from tests.faultserver import FaultServer, Reply, fault_server

NOW = 1_750_000_000.0  # a fixed wall-clock time, unix seconds

TRANSIENT = [
    Failure.connect("connection refused"),
    Failure.timeout(),
    Failure.broken("connection reset by peer"),
]
RETRIED_STATUSES = [429, 500, 502, 503, 504]
NEVER_RETRIED_STATUSES = [400, 401, 403, 404, 409, 422]


class Top:
    """An rng whose jitter always lands on the ceiling, so delays are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def ask(
    rules: RetryRules,
    method: str,
    failure: Failure,
    attempt: int = 1,
    *,
    now: float = NOW,
    deadline: float | None = None,
    budget: RetryBudget | None = None,
) -> Decision:
    return decide(
        rules,
        method,
        failure,
        attempt,
        now=now,
        deadline=deadline,
        budget=budget,
        rng=random.Random(7),
    )


def test_the_policy_module_does_not_import_requests() -> None:
    code = "import sys, kalixo_cli.api.retry; print('requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- which failures are retried ---------------------------------------------------------------


@pytest.mark.parametrize("rules", [V1_RULES, V2_RULES], ids=["v1", "v2"])
@pytest.mark.parametrize(
    "failure", TRANSIENT + [Failure.http(s) for s in RETRIED_STATUSES], ids=lambda f: f.describe()
)
def test_get_retries_network_failures_and_transient_statuses(
    rules: RetryRules, failure: Failure
) -> None:
    assert ask(rules, "GET", failure).action is Action.RETRY


@pytest.mark.parametrize("rules", [V1_RULES, V2_RULES], ids=["v1", "v2"])
@pytest.mark.parametrize("status", NEVER_RETRIED_STATUSES)
def test_get_never_retries_a_client_error_nor_looks_it_up(rules: RetryRules, status: int) -> None:
    assert ask(rules, "GET", Failure.http(status)).action is Action.GIVE_UP


def test_v1_post_retries_a_connect_failure_because_nothing_left() -> None:
    assert ask(V1_RULES, "POST", Failure.connect("connection refused")).retry


@pytest.mark.parametrize(
    "failure",
    [
        Failure.timeout(),
        Failure.broken("connection reset by peer"),
        *[Failure.http(s) for s in RETRIED_STATUSES + NEVER_RETRIED_STATUSES],
    ],
    ids=lambda f: f.describe(),
)
def test_v1_post_gives_up_on_everything_else(failure: Failure) -> None:
    decision = ask(V1_RULES, "POST", failure)
    assert decision.action is Action.GIVE_UP
    assert "not retried for POST (v1)" in decision.reason


@pytest.mark.parametrize(
    "failure", TRANSIENT + [Failure.http(s) for s in RETRIED_STATUSES], ids=lambda f: f.describe()
)
def test_v2_post_is_idempotent_so_transient_failures_are_retried(failure: Failure) -> None:
    assert ask(V2_RULES, "POST", failure).retry


def test_v2_post_409_means_look_the_order_up() -> None:
    decision = ask(V2_RULES, "POST", Failure.http(409))
    assert decision.action is Action.LOOK_UP
    assert decision.delay == 0


def test_v2_post_409_is_looked_up_even_on_the_last_attempt() -> None:
    assert ask(V2_RULES, "POST", Failure.http(409), attempt=3).action is Action.LOOK_UP


def test_v1_post_409_is_a_plain_rejection() -> None:
    assert ask(V1_RULES, "POST", Failure.http(409)).action is Action.GIVE_UP


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_v2_post_rejections_are_not_retried(status: int) -> None:
    assert ask(V2_RULES, "POST", Failure.http(status)).action is Action.GIVE_UP


def test_a_method_without_a_rule_is_never_retried() -> None:
    assert ask(V2_RULES, "DELETE", Failure.connect()).action is Action.GIVE_UP


def test_method_names_are_case_insensitive() -> None:
    assert ask(V1_RULES, "get", Failure.http(503)).retry


def test_attempts_are_bounded_by_max_attempts() -> None:
    rules = replace(V1_RULES, max_attempts=3)
    assert ask(rules, "GET", Failure.http(500), attempt=1).retry
    assert ask(rules, "GET", Failure.http(500), attempt=2).retry
    last = ask(rules, "GET", Failure.http(500), attempt=3)
    assert last.action is Action.GIVE_UP
    assert "no attempts left" in last.reason


def test_one_attempt_means_no_retry() -> None:
    rules = replace(V1_RULES, max_attempts=1)
    assert ask(rules, "GET", Failure.http(500)).action is Action.GIVE_UP


def test_only_post_failures_after_sending_are_doubtful() -> None:
    assert not Failure.connect().doubtful
    assert Failure.timeout().doubtful
    assert Failure.broken().doubtful
    assert Failure.http(502).doubtful
    assert not Failure.http(429).doubtful


# -- backoff ----------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(1, 9))
def test_backoff_stays_within_zero_and_the_capped_exponential(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(8.0, 0.5 * 2 ** (attempt - 1))
    delays = [backoff_delay(attempt, base=0.5, cap=8.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)


def test_full_jitter_spreads_over_the_whole_range() -> None:
    rng = random.Random(42)
    delays = [backoff_delay(3, base=0.5, cap=8.0, rng=rng) for _ in range(5000)]
    assert min(delays) < 0.05 * 2.0
    assert max(delays) > 0.95 * 2.0
    assert sum(delays) / len(delays) == pytest.approx(1.0, abs=0.05)


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    first = [backoff_delay(n, base=0.5, cap=8.0, rng=random.Random(3)) for n in range(1, 6)]
    again = [backoff_delay(n, base=0.5, cap=8.0, rng=random.Random(3)) for n in range(1, 6)]
    assert first == again


def test_backoff_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    ceilings = [backoff_delay(n, base=0.5, cap=8.0, rng=Top()) for n in range(1, 8)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_survives_absurd_attempt_numbers() -> None:
    assert backoff_delay(10_000, base=0.5, cap=8.0, rng=Top()) == 8.0
    assert backoff_delay(0, base=0.5, cap=8.0, rng=Top()) == 0.5


def test_zero_base_means_no_wait() -> None:
    assert backoff_delay(4, base=0.0, cap=8.0, rng=random.Random(1)) == 0.0


# -- the server's wait ------------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert server_delay({"Retry-After": "7"}, NOW) == 7.0


def test_retry_after_header_name_is_case_insensitive() -> None:
    assert server_delay({"retry-after": " 3 "}, NOW) == 3.0


def test_retry_after_as_an_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 30, tz=UTC)
    assert server_delay({"Retry-After": format_datetime(when, usegmt=True)}, NOW) == 30.0


def test_retry_after_date_in_the_past_means_now() -> None:
    when = datetime.fromtimestamp(NOW - 100, tz=UTC)
    assert server_delay({"Retry-After": format_datetime(when, usegmt=True)}, NOW) == 0.0


def test_negative_retry_after_means_now() -> None:
    assert server_delay({"Retry-After": "-5"}, NOW) == 0.0


def test_rate_limit_reset_in_unix_seconds() -> None:
    assert server_delay({"X-RateLimit-Reset": str(int(NOW) + 12)}, NOW) == 12.0


def test_rate_limit_reset_in_the_past_means_now() -> None:
    assert server_delay({"X-RateLimit-Reset": str(int(NOW) - 5)}, NOW) == 0.0


def test_small_rate_limit_reset_is_read_as_seconds_from_now() -> None:
    assert server_delay({"x-ratelimit-reset": "20"}, NOW) == 20.0


def test_retry_after_wins_over_rate_limit_reset() -> None:
    headers = {"Retry-After": "2", "X-RateLimit-Reset": str(int(NOW) + 50)}
    assert server_delay(headers, NOW) == 2.0


def test_unreadable_retry_after_falls_back_to_rate_limit_reset() -> None:
    headers = {"Retry-After": "soon", "X-RateLimit-Reset": str(int(NOW) + 9)}
    assert server_delay(headers, NOW) == 9.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Retry-After": "soon"},
        {"Retry-After": ""},
        {"X-RateLimit-Reset": "nan"},
        {"X-RateLimit-Reset": "x"},
    ],
)
def test_no_usable_header_means_no_server_wait(headers: Mapping[str, str]) -> None:
    assert server_delay(headers, NOW) is None


def test_429_waits_at_least_what_the_server_asks() -> None:
    decision = decide(
        V1_RULES, "GET", Failure.http(429, {"Retry-After": "5"}), 1, now=NOW, rng=Top()
    )
    assert decision.retry
    assert decision.delay == 5.0


def test_retry_after_zero_still_backs_off() -> None:
    decision = decide(
        V1_RULES, "GET", Failure.http(429, {"Retry-After": "0"}), 2, now=NOW, rng=Top()
    )
    assert decision.delay == 1.0  # the backoff ceiling for attempt 2


def test_the_larger_of_backoff_and_server_wait_is_taken() -> None:
    rules = replace(V1_RULES, base_delay=4.0, max_delay=8.0, max_attempts=5)
    decision = decide(rules, "GET", Failure.http(503, {"Retry-After": "1"}), 2, now=NOW, rng=Top())
    assert decision.delay == 8.0


def test_server_wait_is_capped_by_max_wait() -> None:
    decision = decide(
        V1_RULES, "GET", Failure.http(429, {"Retry-After": "3600"}), 1, now=NOW, rng=Top()
    )
    assert decision.delay == V1_RULES.max_wait


def test_a_rate_limit_reset_in_the_year_2100_is_capped_too() -> None:
    failure = Failure.http(429, {"X-RateLimit-Reset": "4102444800"})
    assert decide(V2_RULES, "POST", failure, 1, now=NOW, rng=Top()).delay == V2_RULES.max_wait


def test_503_honours_rate_limit_reset() -> None:
    failure = Failure.http(503, {"X-RateLimit-Reset": str(int(NOW) + 6)})
    assert decide(V1_RULES, "GET", failure, 1, now=NOW, rng=Top()).delay == 6.0


def test_retry_after_on_a_500_is_ignored() -> None:
    failure = Failure.http(500, {"Retry-After": "20"})
    assert decide(V1_RULES, "GET", failure, 1, now=NOW, rng=Top()).delay == 0.5


# -- the deadline -----------------------------------------------------------------------------


def test_a_retry_whose_wait_passes_the_deadline_is_not_made() -> None:
    failure = Failure.http(429, {"Retry-After": "10"})
    decision = ask(V1_RULES, "GET", failure, deadline=NOW + 5)
    assert decision.action is Action.GIVE_UP
    assert "deadline" in decision.reason


def test_a_retry_that_ends_before_the_deadline_is_made() -> None:
    failure = Failure.http(429, {"Retry-After": "4"})
    assert ask(V1_RULES, "GET", failure, deadline=NOW + 5).delay == 4.0


def test_a_deadline_already_passed_stops_retries() -> None:
    assert not ask(V1_RULES, "GET", Failure.http(500), deadline=NOW - 1).retry


# -- the retry budget -------------------------------------------------------------------------


def test_budget_allows_its_initial_tokens_then_refuses() -> None:
    budget = RetryBudget(ratio=0.2, initial=3)
    assert [budget.withdraw() for _ in range(4)] == [True, True, True, False]
    assert budget.tokens == 0


def test_budget_refills_a_fraction_per_first_attempt() -> None:
    budget = RetryBudget(ratio=0.2, initial=0)
    for _ in range(4):
        budget.deposit()
    assert not budget.withdraw()
    budget.deposit()
    assert budget.withdraw()  # five deposits of 0.2 make exactly one token
    assert not budget.withdraw()


def test_budget_never_holds_more_than_max_tokens() -> None:
    budget = RetryBudget(ratio=0.5, initial=2, max_tokens=3)
    for _ in range(100):
        budget.deposit()
    assert budget.tokens == 3


def test_budget_rejects_negative_settings() -> None:
    with pytest.raises(ValueError):
        RetryBudget(ratio=-0.1)


def test_decide_refuses_retries_once_the_budget_is_spent() -> None:
    budget = RetryBudget(initial=1)
    assert ask(V1_RULES, "GET", Failure.http(500), budget=budget).retry
    refused = ask(V1_RULES, "GET", Failure.http(500), budget=budget)
    assert refused.action is Action.GIVE_UP
    assert "budget" in refused.reason


def test_a_failure_that_is_not_retried_costs_no_token() -> None:
    budget = RetryBudget(initial=1)
    ask(V1_RULES, "GET", Failure.http(404), budget=budget)
    ask(V1_RULES, "GET", Failure.http(500), attempt=3, budget=budget)
    ask(V1_RULES, "GET", Failure.http(429, {"Retry-After": "60"}), deadline=NOW + 1, budget=budget)
    assert budget.tokens == 1


def _storm(budget: RetryBudget, requests: int, rules: RetryRules) -> int:
    """Requests that always fail, each retried as often as decide allows; returns retries."""
    retries = 0
    for _ in range(requests):
        budget.deposit()
        attempt = 1
        while ask(rules, "GET", Failure.http(503), attempt=attempt, budget=budget).retry:
            retries += 1
            attempt += 1
    return retries


def test_a_storm_of_failures_cannot_exceed_ratio_times_requests_plus_initial() -> None:
    budget = RetryBudget(ratio=0.1, initial=10)
    rules = replace(V1_RULES, max_attempts=4)
    retries = _storm(budget, 1000, rules)
    assert retries <= 0.1 * 1000 + 10
    assert retries >= 0.1 * 1000  # and the budget is really spent, not hoarded
    assert retries < 3 * 1000 / 10  # against 3000 without a budget


def test_the_storm_bound_holds_across_threads() -> None:
    budget = RetryBudget(ratio=0.2, initial=10)
    rules = replace(V1_RULES, max_attempts=3)
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        count = _storm(budget, 250, rules)
        with lock:
            results.append(count)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) <= 0.2 * 2000 + 10
    assert budget.tokens >= 0


# -- the seam: Transport driven by the rules, against a real local server ---------------------


@dataclass
class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return NOW + self.now


@dataclass
class RecordingPacer:
    before: int = 0
    after: list[tuple[int, str | None]] = field(default_factory=list)
    released: int = 0

    def before_request(self) -> None:
        self.before += 1

    def release(self) -> None:
        self.released += 1

    def after_response(self, status: int, headers: Mapping[str, str]) -> None:
        self.after.append((status, headers.get("x-ratelimit-remaining")))


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with fault_server() as running:
        yield running


def transport(
    server: FaultServer, fake: FakeTime, *, version: str = "v1", retries: int = 2, **options: object
) -> Transport:
    return Transport(
        f"{server.url}/{version}",
        "tok",
        timeout=2.0,
        retries=retries,
        sleep=fake.sleep,
        clock=fake.clock,
        wall_clock=fake.wall,
        rng=random.Random(1),
        **options,  # type: ignore[arg-type]
    )


def test_get_5xx_is_retried_with_backoff_and_logged(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.on("/v1/x", Reply(500, {"message": "boom"}))
    fake = FakeTime()
    caplog.set_level(logging.INFO, logger="kalixo.http")
    with pytest.raises(ServiceUnavailable):
        transport(server, fake).get("x")
    assert server.count("GET") == 3
    assert len(fake.sleeps) == 2
    assert 0 <= fake.sleeps[0] <= 0.5 and 0 <= fake.sleeps[1] <= 1.0
    retried = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")]
    assert retried[0] == (
        f"retrying GET {server.url}/v1/x after HTTP 500 in {fake.sleeps[0]:.1f} s (attempt 2 of 3)"
    )
    assert retried[1].endswith("(attempt 3 of 3)")


def test_get_429_sleeps_for_retry_after(server: FaultServer) -> None:
    server.on("/v1/x", Reply(429, {}, {"Retry-After": "4"}), Reply(200, {"ok": True}))
    fake = FakeTime()
    assert transport(server, fake).get("x").data == {"ok": True}
    assert fake.sleeps == [4.0]


def test_retries_zero_means_one_attempt(server: FaultServer) -> None:
    server.on("/v1/x", Reply(503, {}))
    fake = FakeTime()
    with pytest.raises(ServiceUnavailable):
        transport(server, fake, retries=0).get("x")
    assert server.count("GET") == 1
    assert fake.sleeps == []


def test_the_deadline_stops_a_wait_that_would_pass_it(server: FaultServer) -> None:
    server.on("/v1/x", Reply(429, {}, {"Retry-After": "10"}))
    fake = FakeTime()
    with pytest.raises(ServiceUnavailable) as caught:
        transport(server, fake, deadline=5.0).get("x")
    assert server.count("GET") == 1
    assert fake.sleeps == []
    assert "wait 10 s" in (caught.value.hint or "")


def test_the_deadline_counts_from_construction(server: FaultServer) -> None:
    server.on("/v1/x", Reply(429, {}, {"Retry-After": "3"}), Reply(200, {}))
    fake = FakeTime()
    seam = transport(server, fake, deadline=5.0)
    fake.now += 3  # three seconds of the command already spent elsewhere
    with pytest.raises(ServiceUnavailable):
        seam.get("x")
    assert server.count("GET") == 1


def test_a_shared_budget_stops_retries_across_transports(server: FaultServer) -> None:
    server.on("/v1/x", Reply(500, {}))
    budget = RetryBudget(ratio=0.0, initial=2)
    fake = FakeTime()
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            transport(server, fake, budget=budget).get("x")
    assert server.count("GET") == 3 + 2  # three first attempts, two retries in all


def test_the_pacer_is_called_around_every_attempt(server: FaultServer) -> None:
    server.on(
        "/v1/x",
        Reply(502, {}, {"X-RateLimit-Remaining": "4"}),
        Reply(200, {}, {"X-RateLimit-Remaining": "3"}),
    )
    pacer = RecordingPacer()
    transport(server, FakeTime(), pacer=pacer).get("x")
    assert pacer.before == 2
    assert pacer.after == [(502, "4"), (200, "3")]
    assert pacer.released == 0


def test_an_attempt_without_an_answer_still_leaves_the_pacer(server: FaultServer) -> None:
    """Otherwise a shared pacer counts a dropped request as in flight for ever."""
    server.on("/v1/x", Reply(action="reset"), Reply(200, {}))
    pacer = RecordingPacer()
    transport(server, FakeTime(), pacer=pacer).get("x")
    assert (pacer.before, pacer.released, len(pacer.after)) == (2, 1, 1)


def test_v1_post_502_is_not_retried(server: FaultServer) -> None:
    server.on("/v1/orders", Reply(502, {}))
    fake = FakeTime()
    with pytest.raises(OutcomeUnknown):
        transport(server, fake).post_order("orders", {"externalOrderCode": "C-1"}, code="C-1")
    assert server.count("POST") == 1


def test_v2_post_502_is_retried_with_the_same_body(server: FaultServer) -> None:
    server.on("/v2/orders", Reply(502, {}), Reply(202, {"orderId": 7, "status": "processing"}))
    body = {"externalOrderCode": "C-2", "price": 100}
    answer = transport(server, FakeTime(), version="v2", rules=V2_RULES).post_order(
        "orders", body, code="C-2"
    )
    assert answer.data["orderId"] == 7
    assert server.count("POST") == 2
    assert server.seen[0].body == server.seen[1].body
    assert json.loads(server.seen[1].body) == body


def test_v2_post_409_raises_order_exists_with_the_code(server: FaultServer) -> None:
    server.on(
        "/v2/orders",
        Reply(409, {"message": "An order with this external order code already exists."}),
    )
    with pytest.raises(OrderExists) as caught:
        transport(server, FakeTime(), version="v2", rules=V2_RULES).post_order(
            "orders", {"externalOrderCode": "C-3"}, code="C-3"
        )
    assert caught.value.code == "C-3"
    assert caught.value.exit_code == ExitCode.REJECTED
    assert caught.value.server_message is not None
    assert server.count("POST") == 1


def test_v2_post_broken_then_409_is_an_order_to_look_up(server: FaultServer) -> None:
    server.on("/v2/orders", Reply(action="reset"), Reply(409, {}))
    with pytest.raises(OrderExists):
        transport(server, FakeTime(), version="v2", rules=V2_RULES).post_order(
            "orders", {}, code="C-4"
        )
    assert server.count("POST") == 2


def test_v2_post_that_ends_in_429_after_a_doubtful_attempt_is_outcome_unknown(
    server: FaultServer,
) -> None:
    server.on("/v2/orders", Reply(action="reset"), Reply(429, {}, {"Retry-After": "0"}))
    with pytest.raises(OutcomeUnknown) as caught:
        transport(server, FakeTime(), version="v2", rules=V2_RULES).post_order(
            "orders", {}, code="C-5"
        )
    assert server.count("POST") == 3
    assert "may have been placed" in caught.value.message
    assert "kalixo orders resolve C-5" in (caught.value.hint or "")


def test_v2_post_429_alone_placed_nothing(server: FaultServer) -> None:
    server.on("/v2/orders", Reply(429, {}, {"Retry-After": "1"}))
    fake = FakeTime()
    with pytest.raises(ServiceUnavailable) as caught:
        transport(server, fake, version="v2", rules=V2_RULES).post_order("orders", {}, code="C-6")
    assert "nothing was placed" in caught.value.message
    assert fake.sleeps == [1.0, 1.0]
