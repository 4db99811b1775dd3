"""The HTTP seam: one requests.Session, retries, timeouts, and error translation.

Every `requests`/`urllib3` exception and every error status is turned into a
`kalixo_cli.errors` exception here and nowhere else. Retries are urllib3's `Retry`
(maintained, with backoff, jitter and Retry-After), configured per method: a GET is
safe to repeat; a POST that spends money is repeated only when it never left this
machine (the connection was refused or never established).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from kalixo_cli import __version__
from kalixo_cli.errors import (
    APIError,
    AuthRejected,
    OutcomeUnknown,
    RequestRejected,
    ServiceUnavailable,
    TransportError,
)

log = logging.getLogger("kalixo.http")

CORRELATION_HEADER = "fhp-codehype-correlation-key"
CONNECT_TIMEOUT = 5.0
RETRY_AFTER_CAP = 30.0
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
USER_AGENT = f"kalixo-cli/{__version__} python-requests/{requests.__version__}"


class _LoggedRetry(Retry):
    """urllib3's Retry, with each retry reported and Retry-After capped."""

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), RETRY_AFTER_CAP)

    def increment(self, method: str | None = None, url: str | None = None,
                  response: Any = None, error: Exception | None = None,
                  _pool: Any = None, _stacktrace: Any = None) -> Self:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        cause = f"HTTP {response.status}" if response is not None else type(error).__name__
        log.info("retrying %s %s after %s (%d so far)", method, url, cause, len(new.history))
        return new


def retry_policy(method: str, attempts: int) -> Retry:
    """How often to try again, by method: see the module docstring for why."""
    if method == "GET":
        return _LoggedRetry(
            total=attempts, connect=attempts, read=attempts, status=attempts, other=0,
            allowed_methods=frozenset({"GET"}), status_forcelist=RETRYABLE_STATUSES,
            backoff_factor=0.5, backoff_max=8.0, backoff_jitter=0.25,
            respect_retry_after_header=True, raise_on_status=False, redirect=5,
        )
    return _LoggedRetry(
        total=attempts, connect=attempts, read=0, status=0, other=0, redirect=0,
        allowed_methods=None, backoff_factor=0.5, backoff_max=8.0,
        backoff_jitter=0.25, raise_on_status=False, respect_retry_after_header=False,
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


class Transport:
    """Talks to one API base URL with one credential."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float,
                 retries: int) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        self._retries = retries
        self._get = self._session("GET")
        self._post = self._session("POST")

    def _session(self, method: str) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry_policy(method, self._retries))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        session.headers["Accept"] = "application/json"
        if self._token:
            session.headers["Authorization"] = f"Bearer {self._token}"
        session.hooks["response"].append(self._log_response)
        return session

    def close(self) -> None:
        self._get.close()
        self._post.close()

    @staticmethod
    def _log_response(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        key = response.headers.get(CORRELATION_HEADER)
        log.info(
            "< %s %s %s in %.0f ms%s", response.status_code, response.reason,
            response.request.method, response.elapsed.total_seconds() * 1000,
            f" (correlation key {key})" if key else "",
        )

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # ----------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        url = self.url(path)
        log.info("> GET %s", url)
        started = time.monotonic()
        try:
            response = self._get.get(url, params=params, timeout=self._timeout)
        except requests.exceptions.RequestException as exc:
            stage, reason = classify_failure(exc)
            if stage == "timeout":
                raise TransportError(
                    f"the API did not answer within {self._timeout[1]:g} s", where=url,
                    hint="try again, or allow more time with KALIXO_TIMEOUT or "
                    "`kalixo config set timeout`",
                ) from exc
            raise TransportError(
                f"cannot reach {self._host}: {reason}", where=url,
                hint="check the network and --api-url",
            ) from exc
        log.debug("GET took %.0f ms in all", (time.monotonic() - started) * 1000)
        if response.status_code >= 400:
            raise self._status_error(response, url=url, placing=False)
        return self._answer(response, url=url, placing=False)

    def post_order(self, path: str, body: Mapping[str, Any], *, code: str) -> Answer:
        """POST an order: any doubt about whether it arrived becomes OutcomeUnknown."""
        url = self.url(path)
        log.info("> POST %s", url)
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        try:
            response = self._post.post(
                url, data=data, headers=headers, timeout=self._timeout, allow_redirects=False
            )
        except requests.exceptions.RequestException as exc:
            stage, reason = classify_failure(exc)
            if stage == "connect":
                raise TransportError(
                    f"could not connect to {self._host}: {reason}; nothing was placed",
                    where=url,
                    hint="check the network and --api-url, then run the same command again",
                ) from exc
            if stage == "timeout":
                raise _unknown(f"no answer within {self._timeout[1]:g} s", code=code,
                               url=url) from exc
            raise _unknown(f"the connection broke before an answer ({reason})",
                           code=code, url=url) from exc
        if 300 <= response.status_code < 400:
            raise TransportError(
                f"the API answered with a redirect (HTTP {response.status_code}) to "
                f"{response.headers.get('location', 'nowhere')}; nothing was placed",
                where=url, hint="set --api-url to the address it redirects to",
            )
        if response.status_code >= 500:
            raise _unknown(
                f"the API answered HTTP {response.status_code}", code=code, url=url,
                status=response.status_code,
                correlation_key=response.headers.get(CORRELATION_HEADER),
                server_message=_server_message(response),
            )
        if response.status_code >= 400:
            raise self._status_error(response, url=url, placing=True)
        return self._answer(response, url=url, placing=True, code=code)

    # ----------------------------------------------------------------------------------

    @property
    def _host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _answer(self, response: requests.Response, *, url: str, placing: bool,
                code: str | None = None) -> Answer:
        key = response.headers.get(CORRELATION_HEADER)
        try:
            data = response.json()
        except ValueError:
            what = f"the API answered HTTP {response.status_code} with {_describe_body(response)}"
            if placing and code is not None:
                raise _unknown(what, code=code, url=url, status=response.status_code,
                               correlation_key=key) from None
            raise TransportError(what, where=url, hint="a proxy or gateway may be in the way; "
                                 "check --api-url") from None
        return Answer(response.status_code, data, response.text, key)

    def _status_error(self, response: requests.Response, *, url: str,
                      placing: bool) -> APIError:
        status = response.status_code
        key = response.headers.get(CORRELATION_HEADER)
        message = _server_message(response)
        common = dict(status=status, server_message=message, correlation_key=key, where=url)
        if status in (401, 403):
            return AuthRejected(
                f"the API refused the credentials (HTTP {status})",
                hint=("set a valid token with `kalixo auth set-token` or KALIXO_TOKEN"
                      if status == 401 else "API ordering may be disabled for this account"),
                **common,  # type: ignore[arg-type]
            )
        if status == 429 or status >= 500:
            wait = _retry_after(response)
            nothing = "; nothing was placed" if placing else ""
            return ServiceUnavailable(
                f"the API is unavailable (HTTP {status}{', rate limited' if status == 429 else ''})"
                f"{nothing}",
                hint=(f"the server asks to wait {wait} s before retrying" if wait
                      else "try again in a moment"),
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
            hint=None, **common,  # type: ignore[arg-type]
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

    chain = _causes(exc)
    stage = "broken"
    if any(isinstance(c, ReadTimeoutError) for c in chain):
        stage = "timeout"
    elif isinstance(exc, requests.exceptions.ConnectTimeout) or (any(
        isinstance(c, (NewConnectionError, ConnectTimeoutError)) for c in chain
    ) and not any(isinstance(c, ProtocolError) for c in chain)):
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


def _unknown(what: str, *, code: str, url: str, status: int | None = None,
             correlation_key: str | None = None,
             server_message: str | None = None) -> OutcomeUnknown:
    detail = f"{what}: {server_message}" if server_message else what
    return OutcomeUnknown(
        f"{detail}; the order {code} may have been placed",
        where=url,
        status=status,
        correlation_key=correlation_key,
        hint=(
            f"do not place it under a new code. Run the same command again with "
            f"--external-order-code {code}: the API refuses a code it already has (HTTP 409), "
            f"so nothing is bought twice; or ask Kalixo support about externalOrderCode {code}"
        ),
    )
