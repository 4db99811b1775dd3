"""Every failure kalixo expects, and the exit code each one ends the process with.

Commands raise these; `KalixoGroup.invoke` in kalixo_cli/cli.py is the one place that turns
them into a line on stderr (plus a JSON object with ``-o json``) and an exit code. Foreign
exceptions (requests, OSError, pydantic) are translated where they arise, never leaked to the
user.

    KalixoError
    ├── UsageError            2  bad flag, file or value; nothing was sent
    │   ├── InputError        2  the order file is unreadable or invalid (located problems)
    │   └── ConfigError       2  the config file or a setting is wrong
    ├── CredentialsMissing    4  no token anywhere
    ├── CredentialsMalformed  4  a stored token or key cannot be a credential (never echoed)
    ├── APIError                 the server answered with an error status
    │   ├── RequestRejected   3  400, 404, 409, 422
    │   │   └── OrderExists   3  a place-order's code is taken (v2 409): look it up by code
    │   ├── AuthRejected      4  401, 403
    │   └── ServiceUnavailable 5  429 or 5xx after retries; nothing was placed
    ├── TransportError        5  no usable answer (network, timeout, bad body); nothing was placed
    ├── AlreadyPlaced         3  the journal knows the code as placed; not sent again
    ├── CodeTaken             3  the API holds a different order under this code
    ├── OutcomeUnknown        6  a place-order may have been placed; check before retrying
    │   └── CodeBusy          6  another live kalixo process is sending this code
    ├── OrderUnsuccessful     7  the order ended failed, cancelled or in error
    ├── StillProcessing       8  --wait ran out of --timeout while the order was processing
    ├── FilterFailed          9  --jq failed on the result; the unfiltered JSON was printed
    ├── PlacedNotRecorded    10  the order was placed but the journal could not record it
    ├── JournalUnusable      11  the journal cannot be opened or written; nothing was sent
    │   └── JournalUnreachable 5  the shared journal (PostgreSQL) cannot be reached, refused
    │                             the credentials or lost the connection; nothing was sent
    ├── PartiallyCompleted   12  some codes delivered, not all (keep them; do not re-order)
    └── PinsNotSaved         13  placed, PINs printed, but --pins-out/--results not written

A closed stdout (`| head -1`) ends quietly with 141, as `cat` does (128 + SIGPIPE).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Documented exit statuses; scripts branch on these, so they never change meaning."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    REJECTED = 3
    AUTH = 4
    TEMPORARY = 5
    OUTCOME_UNKNOWN = 6
    ORDER_UNSUCCESSFUL = 7
    STILL_PROCESSING = 8
    FILTER_FAILED = 9
    PLACED_NOT_RECORDED = 10
    JOURNAL_UNUSABLE = 11
    PARTIALLY_COMPLETED = 12
    PINS_NOT_SAVED = 13
    INTERRUPTED = 130
    BROKEN_PIPE = 141


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.UNEXPECTED: "unexpected error (a bug; no traceback unless --verbose)",
    ExitCode.USAGE: "invalid usage or input; nothing was sent",
    ExitCode.REJECTED: "the API refused the request (400, 404, 409, 422); nothing was placed",
    ExitCode.AUTH: "no credentials, or the API refused them (401, 403)",
    ExitCode.TEMPORARY: (
        "temporary failure (network, timeout, 429 or 5xx after retries); nothing was placed"
    ),
    ExitCode.OUTCOME_UNKNOWN: (
        "outcome unknown: the order may have been placed; check before retrying"
    ),
    ExitCode.ORDER_UNSUCCESSFUL: (
        "the order ended unsuccessfully (failed, cancelled, error); "
        "retrieve-order only with --exit-status"
    ),
    ExitCode.STILL_PROCESSING: (
        "still processing when --wait reached its --timeout (the order as it stands is printed)"
    ),
    ExitCode.FILTER_FAILED: (
        "--jq failed on the result: the command ran (an order may have been placed) and its "
        "unfiltered JSON was printed instead"
    ),
    ExitCode.PLACED_NOT_RECORDED: (
        "the order was placed (its id and PINs are printed) but the journal could not "
        "record it; settle it with `kalixo orders resolve`"
    ),
    ExitCode.JOURNAL_UNUSABLE: (
        "the journal cannot be opened or written (corrupt, read-only, disk full); nothing was sent"
    ),
    ExitCode.PARTIALLY_COMPLETED: (
        "the order was partially completed: some PINs delivered (printed), the rest never "
        "will be; retrieve-order only with --exit-status"
    ),
    ExitCode.PINS_NOT_SAVED: (
        "the order was placed and its PINs printed, but --pins-out (place-orders: --results) "
        "could not be written"
    ),
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.BROKEN_PIPE: "stdout was closed early (`| head`); quiet, as cat",
}


@dataclass(frozen=True)
class Problem:
    """One located validation problem: what is wrong, and where (file:line:col, field)."""

    message: str
    where: str | None = None
    field: str | None = None

    def describe(self) -> str:
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{what} ({self.where})" if self.where else what


class KalixoError(Exception):
    exit_code: ExitCode = ExitCode.UNEXPECTED
    kind: str = "error"

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def lines(self) -> list[str]:
        """The error as the lines printed after ``kalixo: error: ``."""
        return [f"{self.message} ({self.where})" if self.where else self.message]

    def to_json(self) -> dict[str, Any]:
        return {
            "error": {
                "kind": self.kind,
                "exitCode": int(self.exit_code),
                "message": self.message,
                "where": self.where,
                "hint": self.hint,
            }
        }


class UsageError(KalixoError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class InputError(UsageError):
    """The order input is unreadable or invalid; carries every located problem found."""

    kind = "invalid_input"

    def __init__(self, problems: list[Problem], *, hint: str | None = None):
        if not problems:
            raise ValueError("InputError needs at least one problem")
        first = problems[0]
        super().__init__(
            f"{first.field}: {first.message}" if first.field else first.message,
            where=first.where,
            hint=hint,
        )
        self.problems = problems

    def lines(self) -> list[str]:
        return [problem.describe() for problem in self.problems]

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["error"]["problems"] = [
            {"message": p.message, "where": p.where, "field": p.field} for p in self.problems
        ]
        return data


class ConfigError(UsageError):
    kind = "config"


class CredentialsMissing(KalixoError):
    exit_code = ExitCode.AUTH
    kind = "no_credentials"


class CredentialsMalformed(KalixoError):
    """A token or key holds what no credential holds (a line break, a space, non-ASCII).

    Refused before any request: sent, it would break the request and be quoted in the error.
    """

    exit_code = ExitCode.AUTH
    kind = "malformed_credentials"


class APIError(KalixoError):
    """The server answered with an error status; keeps what support needs to find it."""

    kind = "api"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        server_message: str | None = None,
        correlation_key: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(message, where=where, hint=hint)
        self.status = status
        self.server_message = server_message
        self.correlation_key = correlation_key

    def lines(self) -> list[str]:
        detail = f"{self.message}: {self.server_message}" if self.server_message else self.message
        extras = [self.where] if self.where else []
        if self.correlation_key:
            extras.append(f"correlation key {self.correlation_key}")
        return [f"{detail} ({'; '.join(extras)})" if extras else detail]

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["error"].update(
            status=self.status,
            serverMessage=self.server_message,
            correlationKey=self.correlation_key,
        )
        return data


class AlreadyPlaced(KalixoError):
    """The journal knows this code as placed: it is not sent again."""

    exit_code = ExitCode.REJECTED
    kind = "already_placed"


class RequestRejected(APIError):
    exit_code = ExitCode.REJECTED
    kind = "rejected"


class OrderExists(RequestRejected):
    """The API already has an order with this externalOrderCode (v2 answers 409).

    A signal more than an error: the v2 client catches it and fetches the order by `code`,
    since an earlier attempt or run may have placed it. Uncaught, it ends like any 409.
    """

    kind = "order_exists"

    def __init__(
        self,
        code: str,
        *,
        status: int = 409,
        server_message: str | None = None,
        correlation_key: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ):
        super().__init__(
            f"an order with the externalOrderCode {code} already exists (HTTP {status}); "
            "nothing new was placed",
            status=status,
            server_message=server_message,
            correlation_key=correlation_key,
            where=where,
            hint=hint or f"retrieve the existing order {code}, or give a new --external-order-code",
        )
        self.code = code


class AuthRejected(APIError):
    exit_code = ExitCode.AUTH
    kind = "auth_rejected"


class ServiceUnavailable(APIError):
    exit_code = ExitCode.TEMPORARY
    kind = "temporary"


class TransportError(KalixoError):
    exit_code = ExitCode.TEMPORARY
    kind = "transport"


class SendCancelled(KalixoError):
    """The run stopped (Ctrl-C, refused credentials) while a request waited for its turn."""

    exit_code = ExitCode.INTERRUPTED
    kind = "cancelled"


class OutcomeUnknown(KalixoError):
    exit_code = ExitCode.OUTCOME_UNKNOWN
    kind = "outcome_unknown"

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        hint: str | None = None,
        status: int | None = None,
        correlation_key: str | None = None,
    ):
        super().__init__(message, where=where, hint=hint)
        self.status = status
        self.correlation_key = correlation_key

    def lines(self) -> list[str]:
        extras = [self.where] if self.where else []
        if self.correlation_key:
            extras.append(f"correlation key {self.correlation_key}")
        return [f"{self.message} ({'; '.join(extras)})" if extras else self.message]


class CodeBusy(OutcomeUnknown):
    """Another kalixo process, alive now, holds this code's claim: it is sending it."""

    kind = "busy"


class CodeTaken(KalixoError):
    """The API holds an order under this code that is not this request: a different
    order, whose PINs are not this run's to show."""

    exit_code = ExitCode.REJECTED
    kind = "code_taken"

    def __init__(
        self, code: str, order_id: int | None, difference: str, *, where: str | None = None
    ) -> None:
        super().__init__(
            f"code {code} already holds a different order (id {order_id}): {difference}; "
            "nothing was sent and its PINs are not shown",
            where=where,
            hint="give this order a new --external-order-code; `kalixo retrieve-order "
            f"{order_id}` shows the existing one if it is yours",
        )
        self.code = code
        self.order_id = order_id


class PlacedNotRecorded(KalixoError):
    """The order was placed and its answer printed, but the journal could not record it."""

    exit_code = ExitCode.PLACED_NOT_RECORDED
    kind = "placed_not_recorded"

    def __init__(
        self, code: str, order_id: int | None, reason: str, *, where: str | None = None
    ) -> None:
        super().__init__(
            f"order {code} was placed as order {order_id} but the journal could not record "
            f"it ({reason})",
            where=where,
            hint=f"fix the journal (see the reason), then record it with `kalixo orders "
            f"resolve {code} --order-id {order_id}`; do not place {code} again",
        )
        self.code = code
        self.order_id = order_id
        self.result: Any = None  # the answer in hand (an OrderResult), for the caller to print

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["error"].update(externalOrderCode=self.code, orderId=self.order_id)
        return data


class JournalUnusable(KalixoError):
    """The journal cannot be opened or written. Nothing is sent without it."""

    exit_code = ExitCode.JOURNAL_UNUSABLE
    kind = "journal"


class JournalUnreachable(JournalUnusable):
    """The shared journal cannot be reached now: refused connection, refused credentials,
    a connection lost. Temporary; nothing is sent without a claim, and there is no
    fall-back to the local file (it would not know the other machines' orders)."""

    exit_code = ExitCode.TEMPORARY
    kind = "journal_unreachable"


class OrderUnsuccessful(KalixoError):
    exit_code = ExitCode.ORDER_UNSUCCESSFUL
    kind = "order_unsuccessful"


class StillProcessing(KalixoError):
    exit_code = ExitCode.STILL_PROCESSING
    kind = "still_processing"


class FilterFailed(KalixoError):
    """--jq compiled but failed on the data (`.a` of an array): raised after the command ran,
    whose result was printed unfiltered, so that an order's answer is never lost to a typo."""

    exit_code = ExitCode.FILTER_FAILED
    kind = "jq_failed"


class PartiallyCompleted(KalixoError):
    """Some units were delivered and the rest never will be: not success, not failure."""

    exit_code = ExitCode.PARTIALLY_COMPLETED
    kind = "partially_completed"


class PinsNotSaved(KalixoError):
    """The PINs could not be saved after the order was placed (they are in the output)."""

    exit_code = ExitCode.PINS_NOT_SAVED
    kind = "pins_file"
