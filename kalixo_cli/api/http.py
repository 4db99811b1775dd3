"""The HTTP seam: requests.Sessions, the retry loop, timeouts, and error translation.

Every `requests`/`urllib3` exception and every error status is turned into a
`kalixo_cli.domain.errors` exception here and nowhere else. Which failures are retried, and how
long to wait, is decided by the pure rules in `kalixo_cli.api.retry` (per method and API
generation); this module only runs the loop: classify the failure, ask `retry.decide`,
sleep, try again. urllib3's own retries are off (`max_retries=0`), so there is one policy.

A GET is safe to repeat. A v1 POST that spends money is repeated only when it never left
this machine; v2 rules (idempotent by externalOrderCode) also repeat it after a timeout or a
5xx, and turn a 409 into `OrderExists` so the caller looks the order up by code.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests

from kalixo_cli import __version__
from kalixo_cli.api.limits import (
    MAX_BODY_BYTES,
    BodyTooLarge,
    BoundedAdapter,
    TotalTimeout,
    bounded,
    cap_redirect_body,
    complete,
    describe_size,
    read_capped,
)
from kalixo_cli.api.retry import (
    V1_RULES,
    Action,
    Decision,
    Failure,
    FailureKind,
    Pacer,
    RetryBudget,
    RetryRules,
    Rng,
    decide,
)
from kalixo_cli.domain.errors import (
    APIError,
    AuthRejected,
    KalixoError,
    OrderExists,
    OutcomeUnknown,
    RequestRejected,
    ServiceUnavailable,
    TransportError,
    UsageError,
)
from kalixo_cli.domain.redact import Redactor

__all__ = [
    "CORRELATION_HEADER",
    "Answer",
    "Pacer",
    "Transport",
    "classify_failure",
]

log = logging.getLogger("kalixo.http")

CORRELATION_HEADER = "fhp-codehype-correlation-key"
CONNECT_TIMEOUT = 5.0
MAX_REDIRECTS = 5
USER_AGENT = f"kalixo-cli/{__version__} python-requests/{requests.__version__}"

# Failures that say something about the connection, so another attempt may fare better.
# Anything else requests raises (a bad URL, too many redirects) would fail the same way again.
_TRANSIENT_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass(frozen=True)
class Answer:
    """A successful response: its parsed JSON, its raw text, and what support needs."""

    status: int
    data: Any
    text: str
    correlation_key: str | None


def _server_message(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, list):
            message = "; ".join(str(item) for item in message)
        if isinstance(message, str) and message.strip():
            return message.strip()[:500]
    return None


def _describe_body(response: requests.Response) -> str:
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    if not response.content:
        return "an empty body"
    return f"a body that is not valid JSON ({kind}, {len(response.content)} bytes)"


def _retry_after(response: requests.Response) -> str | None:
    value = response.headers.get("retry-after")
    return value.strip() if value else None


class _Answered:
    """The attempts ended with an answer: below 400, or a status not (or no more) retried.

    (Plain classes, not dataclasses: every command imports this module, and a dataclass
    costs start-up time to build.)"""

    __slots__ = ("decision", "doubt", "failure", "response")

    def __init__(
        self,
        response: requests.Response,
        failure: Failure | None,
        decision: Decision | None,
        doubt: Failure | None,
    ) -> None:
        self.response = response
        self.failure = failure  # None when the status is below 400
        self.decision = decision  # why a failing status was not retried
        self.doubt = doubt  # an earlier, retried failure after which a POST may have landed


class _Unanswered:
    """The attempts ended with no answer to read: the last one raised."""

    __slots__ = ("decision", "doubt", "error", "failure")

    def __init__(
        self,
        error: requests.exceptions.RequestException,
        failure: Failure,
        decision: Decision,
        doubt: Failure | None,
    ) -> None:
        self.error = error
        self.failure = failure
        self.decision = decision
        self.doubt = doubt


_Outcome = _Answered | _Unanswered


API_KEY_HEADER = "x-api-key"


def _no_netrc(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Session-wide auth that adds nothing: its presence stops requests reading ~/.netrc."""
    return request


class _Session(requests.Session):
    """Credentials come from kalixo's settings only.

    With `trust_env` (kept on: proxies and CA bundles from the environment are what users
    need), requests would put a ~/.netrc entry for the host in place of the v1 bearer token
    or beside the v2 key, and add one for the new host on a redirect. Not here: a session
    `auth` that adds nothing turns the look-up off, and a redirect to another host or
    scheme drops both Authorization and the v2 key, adding nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.auth = _no_netrc

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        old_url, new_url = response.request.url or "", prepared_request.url or ""
        if self.should_strip_auth(old_url, new_url):  # type: ignore[no-untyped-call]
            prepared_request.headers.pop("Authorization", None)
            prepared_request.headers.pop(API_KEY_HEADER, None)


def is_loopback_url(url: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves this machine."""
    import ipaddress

    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_url(url: str) -> bool:
    """Plain http:// to a host that is not this machine: a credential would go in clear."""
    return urlsplit(url).scheme.lower() == "http" and not is_loopback_url(url)


class Transport:
    """Talks to one API base URL with one credential, retrying as `rules` say.

    Not thread-safe: a bulk run gives each worker thread its own Transport. What the workers
    share, a `RetryBudget` and a `Pacer`, is thread-safe. `deadline` is seconds for the whole
    command from construction: no retry is started whose wait would end after it (a request
    in flight is bounded by `timeout`, not by the deadline). `retries` (KALIXO_RETRIES) is
    the number of attempts after the first and overrides `rules.max_attempts`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float,
        retries: int,
        rules: RetryRules = V1_RULES,
        deadline: float | None = None,
        budget: RetryBudget | None = None,
        pacer: Pacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Rng | None = None,
        api_key: str | None = None,
        allow_plain_http: bool = False,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        if insecure_url(base_url) and not allow_plain_http:
            raise UsageError(
                f"refusing to send credentials in clear to {base_url} (plain http:// to a "
                "host that is not this machine); nothing was sent",
                hint="use the https:// address; only if you must (a test rig on a trusted "
                "network), set KALIXO_ALLOW_INSECURE_HTTP=1",
            )
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._api_key = api_key
        self._redact = Redactor()
        self._redact.add(token)
        self._redact.add(api_key)
        self._timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self._rules = replace(rules, max_attempts=max(retries, 0) + 1)
        self._budget = budget
        self._pacer = pacer
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng: Rng = rng if rng is not None else random.Random()
        self._deadline_at = None if deadline is None else clock() + deadline
        self._max_body = max_body
        self._get = self._session()
        self._get.max_redirects = MAX_REDIRECTS
        self._post = self._session()

    def _session(self) -> requests.Session:
        session = _Session()
        adapter = BoundedAdapter(max_retries=0)  # the loop in _exchange retries, nothing else
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        if self._token:
            session.headers["Authorization"] = f"Bearer {self._token}"
        if self._api_key:
            session.headers[API_KEY_HEADER] = self._api_key
        session.hooks["response"].extend([cap_redirect_body, self._log_response])
        return session

    def close(self) -> None:
        self._get.close()
        self._post.close()

    @contextmanager
    def _scrubbed(self) -> Iterator[None]:
        """Errors leave with every credential redacted, whatever the server echoed back:
        they are printed, put in JSON and journaled."""
        try:
            yield
        except KalixoError as exc:
            for name in ("message", "where", "hint", "server_message", "correlation_key"):
                value = getattr(exc, name, None)
                if isinstance(value, str):
                    setattr(exc, name, self._redact(value))
            exc.args = (exc.message,)
            raise

    @staticmethod
    def _log_response(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        key = response.headers.get(CORRELATION_HEADER)
        log.info(
            "< %s %s %s in %.0f ms%s",
            response.status_code,
            response.reason,
            response.request.method,
            response.elapsed.total_seconds() * 1000,
            f" (correlation key {key})" if key else "",
        )

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # ----------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        """GET, following redirects (credentials are dropped when the host changes)."""
        with self._scrubbed():
            return self._get_answer(path, params)

    def _get_answer(self, path: str, params: Mapping[str, Any] | None) -> Answer:
        url = self.url(path)
        log.info("> GET %s", url)
        started = self._clock()
        outcome = self._exchange(
            "GET",
            url,
            lambda: self._get.get(url, params=params, timeout=self._timeout, stream=True),
        )
        if isinstance(outcome, _Unanswered):
            raise self._unanswered(outcome, url) from outcome.error
        response = outcome.response
        log.debug("GET took %.0f ms in all", (self._clock() - started) * 1000)
        if response.status_code >= 400:
            raise self._status_error(response, url=url, placing=False)
        return self._answer(response, url=url, placing=False)

    def set_token(self, token: str) -> None:
        """A refreshed access token, for the requests that follow."""
        self._token = token
        self._redact.add(token)
        for session in (self._get, self._post):
            session.headers["Authorization"] = f"Bearer {token}"

    def post_json(
        self, path: str, body: Mapping[str, Any] | None = None, *, bearer: str | None = None
    ) -> Answer:
        """A POST that buys nothing (login, refresh): errors as for a GET."""
        with self._scrubbed():
            return self._post_json(path, body, bearer=bearer)

    def _post_json(
        self, path: str, body: Mapping[str, Any] | None, *, bearer: str | None
    ) -> Answer:
        url = self.url(path)
        log.info("> POST %s", url)
        headers = {"Content-Type": "application/json"}
        if bearer is not None:
            self._redact.add(bearer)
            headers["Authorization"] = f"Bearer {bearer}"
        data = json.dumps(body or {}).encode("utf-8")
        outcome = self._exchange(
            "POST",
            url,
            lambda: self._post.post(
                url,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            ),
        )
        if isinstance(outcome, _Unanswered):
            raise self._unanswered(outcome, url) from outcome.error
        response = outcome.response
        if 300 <= response.status_code < 400:
            raise self._redirect_error(response, url, "kalixo did not follow it")
        if response.status_code >= 400:
            raise self._status_error(response, url=url, placing=False)
        return self._answer(response, url=url, placing=False)

    def post_order(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        code: str,
        on_send: Callable[[], None] | None = None,
    ) -> Answer:
        """POST an order: any doubt about whether it arrived becomes OutcomeUnknown.

        Redirects are never followed (the body would be re-sent somewhere unchecked). When
        the rules say a status means "look it up" (v2: 409), raises `OrderExists(code)`.
        `on_send` runs once, after any pacing wait and right before the first attempt is
        written (the journal's intent): an order that waited and was never sent leaves no
        trace; if it raises, nothing is sent.
        """
        with self._scrubbed():
            return self._post_order(path, body, code=code, on_send=on_send)

    def _post_order(
        self, path: str, body: Mapping[str, Any], *, code: str, on_send: Callable[[], None] | None
    ) -> Answer:
        url = self.url(path)
        log.info("> POST %s", url)
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        outcome = self._exchange(
            "POST",
            url,
            lambda: self._post.post(
                url,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            ),
            on_send=on_send,
        )
        response = outcome.response if isinstance(outcome, _Answered) else None
        cause = outcome.error if isinstance(outcome, _Unanswered) else None
        key = response.headers.get(CORRELATION_HEADER) if response is not None else None
        if (
            response is not None
            and outcome.decision is not None
            and outcome.decision.action is Action.LOOK_UP
        ):
            raise OrderExists(
                code,
                status=response.status_code,
                where=url,
                server_message=_server_message(response),
                correlation_key=key,
            )
        if outcome.doubt is not None and (response is None or response.status_code >= 300):
            last = (
                outcome.failure.describe()
                if outcome.failure is not None
                else f"HTTP {response.status_code if response is not None else '?'}"
            )
            raise _unknown(
                f"an earlier attempt ended with {outcome.doubt.describe()}, the last with {last}",
                code=code,
                url=url,
                correlation_key=key,
                status=response.status_code if response is not None else None,
            ) from cause
        if isinstance(outcome, _Unanswered):
            if isinstance(outcome.error, BodyTooLarge):
                raise _unknown(
                    f"the API's answer was not read: {outcome.error}; kalixo keeps at most "
                    f"{describe_size(outcome.error.limit)} of one answer",
                    code=code,
                    url=url,
                    correlation_key=key,
                    status=None,
                ) from outcome.error
            reason = outcome.failure.reason
            if outcome.failure.kind is FailureKind.CONNECT:
                raise TransportError(
                    f"could not connect to {self._host}: {reason}; nothing was placed",
                    where=url,
                    hint="check the network and --api-url, then run the same command again",
                ) from outcome.error
            if outcome.failure.kind is FailureKind.TIMEOUT:
                raise _unknown(
                    f"no answer within {self._timeout[1]:g} s", code=code, url=url
                ) from outcome.error
            raise _unknown(
                f"the connection broke before an answer ({reason})", code=code, url=url
            ) from outcome.error
        response = outcome.response
        if 300 <= response.status_code < 400:
            raise self._redirect_error(response, url, "nothing was placed")
        if response.status_code >= 500:
            raise _unknown(
                f"the API answered HTTP {response.status_code}",
                code=code,
                url=url,
                status=response.status_code,
                correlation_key=key,
                server_message=_server_message(response),
            )
        if response.status_code >= 400:
            raise self._status_error(response, url=url, placing=True)
        return self._answer(response, url=url, placing=True, code=code)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Any request, for `kalixo api`: the last response whatever its status (the caller
        prints it), retried as the rules say for `method`. A GET follows redirects as `get`
        does; nothing else does. The body is bounded as every answer is (time and size).
        Raises TransportError only when nothing usable answered."""
        with self._scrubbed():
            return self._request(method.upper(), path, params=params, body=body, headers=headers)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        url = self.url(path)
        log.info("> %s %s", method, url)
        session = self._get if method == "GET" else self._post
        outcome = self._exchange(
            method,
            url,
            lambda: session.request(
                method,
                url,
                params=params,
                data=body,
                headers=dict(headers or {}),
                timeout=self._timeout,
                allow_redirects=method == "GET",
                stream=True,
            ),
        )
        if isinstance(outcome, _Answered):
            sent = outcome.response.request
            for name, value in sent.headers.items():
                secret = name.lower() in ("authorization", API_KEY_HEADER, "cookie")
                log.debug("> %s: %s", name, "[REDACTED]" if secret else value)
            return outcome.response
        if isinstance(outcome.error, BodyTooLarge):
            raise self._too_large(outcome.error, url) from outcome.error
        maybe = (
            ""
            if method in ("GET", "HEAD") or outcome.failure.kind is FailureKind.CONNECT
            else "; the server may have acted on it"
        )
        raise TransportError(
            f"{method} {url}: no answer ({outcome.failure.reason}){maybe}",
            where=url,
            hint="check the network and --api-url; KALIXO_TIMEOUT allows more time",
        ) from outcome.error

    def raise_for(self, response: requests.Response) -> None:
        """Raise the error an answer's status means (3, 4 or 5), as for any command's
        request, credentials redacted; nothing for a status below 400."""
        if response.status_code >= 400:
            with self._scrubbed():
                raise self._status_error(response, url=response.url, placing=False)

    def _exchange(
        self,
        method: str,
        url: str,
        send: Callable[[], requests.Response],
        *,
        on_send: Callable[[], None] | None = None,
    ) -> _Outcome:
        """Attempt `send` until an answer or a failure that `retry.decide` will not retry.

        `on_send` runs before the first attempt only, after the pacer let it go."""
        if self._budget is not None:
            self._budget.deposit()
        rule = self._rules.for_method(method)
        doubt: Failure | None = None
        attempt = 1
        while True:
            if self._pacer is not None:
                self._pacer.before_request()
            if on_send is not None and attempt == 1:
                try:
                    on_send()
                except BaseException:
                    if self._pacer is not None:  # the slot it was given goes unused
                        self._pacer.release()
                    raise
            response: requests.Response | None = None
            error: requests.exceptions.RequestException | None = None
            try:
                response = self._attempt(send)
            except requests.exceptions.RequestException as exc:
                if self._pacer is not None:
                    self._pacer.release()
                error = exc
                stage, reason = classify_failure(exc)
                failure = Failure(FailureKind(stage), reason=reason)
            else:
                if self._pacer is not None:
                    self._pacer.after_response(response.status_code, response.headers)
                if response.status_code < 400:
                    return _Answered(response, None, None, doubt)
                failure = Failure.http(response.status_code, response.headers)
            if error is not None and not isinstance(error, _TRANSIENT_ERRORS):
                decision = Decision(Action.GIVE_UP, reason="it would fail the same way again")
            else:
                now = self._wall_clock()
                deadline = (
                    None if self._deadline_at is None else now + self._deadline_at - self._clock()
                )
                decision = decide(
                    self._rules,
                    method,
                    failure,
                    attempt,
                    now=now,
                    deadline=deadline,
                    budget=self._budget,
                    rng=self._rng,
                )
            if not decision.retry:
                log.log(
                    logging.INFO if rule.retries(failure) else logging.DEBUG,
                    "not retrying %s %s after %s: %s",
                    method,
                    url,
                    failure.describe(),
                    decision.reason,
                )
                if error is not None:
                    return _Unanswered(error, failure, decision, doubt)
                assert response is not None  # an attempt either answers or raises
                return _Answered(response, failure, decision, doubt)
            if doubt is None and method == "POST" and failure.doubtful:
                doubt = failure
            log.info(
                "retrying %s %s after %s in %.1f s (attempt %d of %d)",
                method,
                url,
                failure.describe(),
                decision.delay,
                attempt + 1,
                self._rules.max_attempts,
            )
            if response is not None:
                response.close()
            self._sleep(decision.delay)
            attempt += 1

    # ----------------------------------------------------------------------------------

    def _attempt(self, send: Callable[[], requests.Response]) -> requests.Response:
        """One request and its whole body, within `timeout` seconds all told and
        `max_body` bytes (`kalixo_cli.api.limits`)."""
        with bounded(self._timeout[1]) as watch:
            response = send()
            read_capped(response, self._max_body)
            if watch.finish() and not complete(response):  # cut, e.g. in its headers
                response.close()
                raise TotalTimeout(f"no complete answer within {self._timeout[1]:g} s")
        return response

    def _unanswered(self, outcome: _Unanswered, url: str) -> TransportError:
        """The error of a request that buys nothing (a GET, a login) when nothing answered."""
        if isinstance(outcome.error, BodyTooLarge):
            return self._too_large(outcome.error, url)
        if outcome.failure.kind is FailureKind.TIMEOUT:
            return TransportError(
                f"the API did not answer within {self._timeout[1]:g} s",
                where=url,
                hint="try again, or allow more time with KALIXO_TIMEOUT or "
                "`kalixo config set timeout`",
            )
        return TransportError(
            f"cannot reach {self._host}: {outcome.failure.reason}",
            where=url,
            hint="check the network and --api-url",
        )

    def _too_large(self, error: BodyTooLarge, url: str) -> TransportError:
        return TransportError(
            f"the API's answer is too large: {error}; kalixo keeps at most "
            f"{describe_size(error.limit)} of one answer",
            where=url,
            hint="check --api-url: a proxy or captive portal may be answering",
        )

    def _redirect_error(self, response: requests.Response, url: str, what: str) -> TransportError:
        """A POST is never re-sent where a server points: say where, and that the address
        is the server's word, not a reason to send the credential there."""
        location = response.headers.get("location")
        return TransportError(
            f"the API answered with a redirect (HTTP {response.status_code}) to "
            f"{location or 'nowhere'}; {what}",
            where=url,
            hint="kalixo does not follow redirects of a POST. Check the API address with "
            "Kalixo's documentation or support before changing --api-url: do not point it "
            "(and your credential) at an address only this answer names",
        )

    @property
    def _host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _answer(
        self, response: requests.Response, *, url: str, placing: bool, code: str | None = None
    ) -> Answer:
        key = response.headers.get(CORRELATION_HEADER)
        try:
            data = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            what = f"the API answered HTTP {response.status_code} with {_describe_body(response)}"
            if placing and code is not None:
                raise _unknown(
                    what, code=code, url=url, status=response.status_code, correlation_key=key
                ) from None
            raise TransportError(
                what, where=url, hint="a proxy or gateway may be in the way; check --api-url"
            ) from None
        return Answer(response.status_code, data, response.text, key)

    def _status_error(self, response: requests.Response, *, url: str, placing: bool) -> APIError:
        status = response.status_code
        key = response.headers.get(CORRELATION_HEADER)
        message = _server_message(response)
        common = dict(status=status, server_message=message, correlation_key=key, where=url)
        if status in (401, 403):
            return AuthRejected(
                f"the API refused the credentials (HTTP {status})",
                hint=(
                    "set a valid token with `kalixo auth set-token` or KALIXO_TOKEN"
                    if status == 401
                    else "API ordering may be disabled for this account"
                ),
                **common,  # type: ignore[arg-type]
            )
        if status == 429 or status >= 500:
            wait = _retry_after(response)
            nothing = "; nothing was placed" if placing else ""
            return ServiceUnavailable(
                f"the API is unavailable (HTTP {status}{', rate limited' if status == 429 else ''})"
                f"{nothing}",
                hint=(
                    f"the server asks to wait {wait} s before retrying"
                    if wait
                    else "try again in a moment"
                ),
                **common,  # type: ignore[arg-type]
            )
        if status == 409 and placing:
            return RequestRejected(
                "an order with this externalOrderCode already exists (HTTP 409); "
                "nothing new was placed",
                hint="give a new --external-order-code, or retrieve the existing order",
                **common,  # type: ignore[arg-type]
            )
        return RequestRejected(
            f"the API rejected the request (HTTP {status})",
            hint=None,
            **common,  # type: ignore[arg-type]
        )


def _causes(exc: BaseException) -> list[BaseException]:
    """The chain requests and urllib3 wrap a socket error in, outermost first."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        reason = getattr(current, "reason", None)
        first = current.args[0] if current.args else None
        if isinstance(reason, BaseException):
            current = reason
        elif isinstance(first, BaseException):
            current = first
        else:
            current = current.__cause__ or current.__context__
    return chain


def classify_failure(exc: BaseException) -> tuple[str, str]:
    """(stage, reason): stage "connect" means the request provably never left this machine.

    Any other stage ("timeout": sent, no answer in time; "broken": the connection failed
    after it was made) leaves a POST's outcome unknown.
    """
    from urllib3.exceptions import (
        ConnectTimeoutError,
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
    )

    if isinstance(exc, TotalTimeout):
        return "timeout", "timed out"
    chain = _causes(exc)
    stage = "broken"
    if any(isinstance(c, ReadTimeoutError) for c in chain):
        stage = "timeout"
    elif isinstance(exc, requests.exceptions.ConnectTimeout) or (
        any(isinstance(c, (NewConnectionError, ConnectTimeoutError)) for c in chain)
        and not any(isinstance(c, ProtocolError) for c in chain)
    ):
        stage = "connect"
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        stage = "timeout"
    innermost = chain[-1]
    if any(isinstance(c, ConnectionRefusedError) for c in chain):
        reason = "connection refused"
    elif any(isinstance(c, ConnectionResetError) for c in chain):
        reason = "connection reset by peer"
    elif stage == "timeout":
        reason = "timed out"
    else:
        text = str(innermost) or type(innermost).__name__
        if "Failed to resolve" in text or "Name or service not known" in text:
            reason = "host name not found"
        elif "Connection refused" in text:
            reason = "connection refused"
        else:
            reason = text.split(": ", 1)[-1][:200]
    return stage, reason


def _unknown(
    what: str,
    *,
    code: str,
    url: str,
    status: int | None = None,
    correlation_key: str | None = None,
    server_message: str | None = None,
) -> OutcomeUnknown:
    detail = f"{what}: {server_message}" if server_message else what
    return OutcomeUnknown(
        f"{detail}; the order {code} may have been placed",
        where=url,
        status=status,
        correlation_key=correlation_key,
        hint=(
            f"do not place it again under a new code. Find out whether {code} was placed "
            f"(Kalixo support can, with the correlation key), then record the answer with "
            f"`kalixo orders resolve {code} --order-id N` or `--not-placed`; until then "
            f"kalixo will not send it again"
        ),
    )
