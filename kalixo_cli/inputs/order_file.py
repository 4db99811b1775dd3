"""Order files (JSON or CSV, from a path or stdin) -> a validated `OrderRequest`.

The rules live in `domain/models.py`; this module gets bytes into their shape and, when they do
not fit, says where. Every problem found is reported at once (up to `MAX_PROBLEMS`), each
with a place (``orders.json:7:18`` or ``orders.csv:4, row 3``) and a field
(``orderProducts[1].price`` or ``row 3 price``), because fixing an order file one error
per run is slow and the user is about to spend money.

Before validation the optional parts of the body are filled in, as v2 does server-side:
the order ``price`` (the lines' total), the order ``currency`` (from the command line or
the lines), each line's ``currency`` (the order's), and ``externalOrderCode`` (from the
command line, else generated). A JSON ``null`` in one of those fields counts as absent.
Nothing here touches the network, and nothing but `InputError` / `UsageError` escapes.

`bulk_file.py` streams batches of orders and hands each one, with where it starts in
the file, to `parse_batch_json_order` / `parse_batch_csv_order`: the same completion,
validation and wording, except that a batch order must carry its own externalOrderCode.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, BinaryIO

from kalixo_cli.domain.errors import UsageError
from kalixo_cli.domain.models import OrderRequest
from kalixo_cli.inputs.completion import _complete
from kalixo_cli.inputs.csv_order import _csv_columns, _csv_lines, _read_csv, csv_delimiter
from kalixo_cli.inputs.fields import (
    CODE_REQUIRED,
    CSV_CODE_HINT,
    FORMAT_HINT,
    FORMATS,
    MAX_INPUT_BYTES,
    OrderFormat,
)
from kalixo_cli.inputs.json_order import (
    JsonState,
    _decode_json,
    _json_order,
    _read_json,
    json_hint,
    nested_too_deeply,
)
from kalixo_cli.inputs.problems import _CsvSource, _decode, _JsonSource, _Report


@dataclass(frozen=True)
class ParsedOrder:
    """A validated request, and whether its externalOrderCode was made up here."""

    request: OrderRequest
    generated_code: bool


def generate_order_code() -> str:
    """A fresh, readable order code: UTC time plus 60 random bits.

    The random part is long enough that scripts placing many orders a second never collide.
    """
    now = datetime.now(UTC)
    return f"KX-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(8).upper()[:15]}"


def content_code(request: OrderRequest, *, salt: str, day: date | None = None) -> str:
    """The code of an order given without one: its content, the day (UTC) and the journal's
    salt, hashed. The same order on the same day gets the same code, so a re-run is
    recognised by the journal (and by the API) instead of being bought again; another
    journal (another machine) gets other codes, so two machines never share one.
    """
    body = request.body()
    body.pop("externalOrderCode", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    today = day or datetime.now(UTC).date()
    digest = hashlib.sha256(f"{salt}|{today:%Y-%m-%d}|{canonical}".encode()).hexdigest()
    return f"KX-{today:%Y%m%d}-{digest[:20].upper()}"


def sniff_format(data: bytes) -> OrderFormat:
    """Stdin has no extension: a first non-blank `{` or `[` is JSON, anything else CSV
    (no CSV header of an order starts with either: its first column is a field name)."""
    text = data.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise UsageError("the order on stdin is empty", hint="pipe a JSON or CSV order into -")
    return "json" if text[:1] in (b"{", b"[") else "csv"


def detect_format(
    name: str, explicit: OrderFormat | None, data: bytes | None = None
) -> OrderFormat:
    """The explicit format, else the one the file extension names, else (stdin, whose
    bytes are given) the one its first character shows."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise UsageError(f"unknown order format {explicit!r}", hint=FORMAT_HINT)
        return explicit
    if name in ("-", "<stdin>") and data is not None:
        return sniff_format(data)
    lowered = name.lower()
    for fmt in FORMATS:
        if name not in ("-", "<stdin>") and lowered.endswith(f".{fmt}"):
            return fmt
    what = "the order on stdin" if name in ("-", "<stdin>") else name
    raise UsageError(f"cannot tell whether {what} is JSON or CSV", hint=f"pass {FORMAT_HINT}")


def read_source(path: str, stdin: BinaryIO) -> tuple[bytes, str]:
    """The bytes of the order file and the name to show in messages; ``-`` is stdin."""
    limit_hint = "an order file is at most 16 MiB; split the order"
    if path == "-":
        try:
            data = stdin.read(MAX_INPUT_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"cannot read the order from stdin: {exc.strerror or exc}") from None
        if len(data) > MAX_INPUT_BYTES:
            raise UsageError("the order on stdin is larger than 16 MiB", hint=limit_hint)
        return data, "<stdin>"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(
            f"order file not found: {path}", hint="check the path, or pass - to read stdin"
        ) from None
    except IsADirectoryError:
        raise UsageError(
            f"{path} is a directory, not an order file",
            hint="give the path of a .json or .csv file",
        ) from None
    except PermissionError:
        raise UsageError(
            f"permission denied reading {path}", hint="check the file's permissions"
        ) from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read {path}: {reason}", hint="check the path") from None
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{path} is larger than 16 MiB", hint=limit_hint)
    return data, path


def parse_order(
    data: bytes,
    *,
    name: str,
    fmt: OrderFormat,
    external_order_code: str | None = None,
    currency: str | None = None,
    code_factory: Callable[[], str] = generate_order_code,
) -> ParsedOrder:
    """Parse, complete and validate one order; raise `InputError` listing every problem.

    `external_order_code` and `currency` come from the command line: they fill in what the
    file leaves out and must agree with what it states.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown order format {fmt!r}", hint=FORMAT_HINT)
    text = _decode(data, name, fmt)
    if currency is not None:
        currency = currency.strip().upper()
    if fmt == "json":
        body, source, report = _read_json(text, name)
    else:
        body, source, report = _read_csv(text, name)
    request, generated = _complete(
        body,
        source,
        report,
        external_order_code=external_order_code,
        currency=currency,
        code_factory=code_factory,
    )
    return ParsedOrder(request=request, generated_code=generated)


# ----------------------------------------------------------------------------------------
# One order of a batch: the same rules, for an order a streaming reader cut out of a file


_UNDECODED: Any = object()


def parse_batch_json_order(
    text: str,
    *,
    name: str,
    line: int,
    column: int,
    state: JsonState,
    value: Any = _UNDECODED,
    currency: str | None = None,
) -> OrderRequest:
    """Validate one order of a batch, given as the JSON `text` found at `line`:`column` of `name`.

    `value` is `text` already decoded by ``state.decoder`` (with `state` not reset since);
    without it the text is decoded here. `currency` (the command line's, normalized) fills
    in and checks as for one order; the order must carry its own externalOrderCode.
    Raises `InputError` with every problem, placed in the file.
    """
    source = _JsonSource(name, text, line, column)
    if value is _UNDECODED:
        value = _decode_json(source, state)
    report = _Report(source)
    body = _json_order(value, source, state, report)
    return _complete(
        body, source, report, external_order_code=None, currency=currency, code_factory=None
    )[0]


def csv_columns(header: list[str], *, name: str, line: int) -> list[str]:
    """The columns a batch CSV header names (an externalOrderCode column is required).

    Raises `InputError` with every header problem, at ``name:line``.
    """
    report = _Report(_CsvSource(name))
    columns = _csv_columns(header, f"{name}:{line}", line, report, batch=True)
    report.raise_if_any()
    return columns


def parse_batch_csv_order(
    rows: Sequence[tuple[int, int, list[str]]],
    columns: Sequence[str | None],
    *,
    name: str,
    code: str,
    currency: str | None = None,
) -> OrderRequest:
    """Validate one order of a batch CSV: its rows as (row number, line, stripped cells).

    `columns` are the header's, with `None` for the externalOrderCode column, whose value
    (`code`, empty when the cells are) the caller grouped the rows by. Order-level problems
    are placed at the first row. Raises `InputError` with every problem.
    """
    source = _CsvSource(name, order_row=(rows[0][0], rows[0][1]))
    report = _Report(source)
    lines = _csv_lines(columns, rows, source, report)
    if not lines:
        raise report.fail()
    body: dict[str, Any] = {"orderProducts": lines}
    if code:
        body["externalOrderCode"] = code
    else:
        report.hint = CSV_CODE_HINT
    return _complete(
        body, source, report, external_order_code=None, currency=currency, code_factory=None
    )[0]


__all__ = [
    "CODE_REQUIRED",
    "FORMATS",
    "MAX_INPUT_BYTES",
    "JsonState",
    "OrderFormat",
    "ParsedOrder",
    "content_code",
    "csv_columns",
    "csv_delimiter",
    "detect_format",
    "generate_order_code",
    "json_hint",
    "nested_too_deeply",
    "parse_batch_csv_order",
    "parse_batch_json_order",
    "parse_order",
    "read_source",
    "sniff_format",
]
