"""Many orders from one file, streamed: the reader behind ``kalixo place-orders FILE|-``.

Three formats, each order holding its own ``externalOrderCode`` (a re-run recognises what
it already placed by it, so a batch never gets generated codes):

- ``json``: one JSON array of order objects, ``[{...}, {...}]``.
- ``jsonl`` (also ``.ndjson``): one order object per line; blank lines are skipped.
- ``csv``: a header, then one row per order line, with an ``externalOrderCode`` column:
  consecutive rows with the same code form one order. A code that comes back later, after
  other orders, starts a second order with that code; the caller refuses it as a duplicate.

Every order is checked by the rules of a single order (`order_file.py`, which does the work):
computed or checked total, inherited line currency, one currency per order, 64-bit
amounts, typo suggestions and the minor-units hint. `iter_bulk_orders` yields, in file
order, a `BulkOrder` for each valid order and an `InputError` with every located problem
for each invalid one, so the caller can report them all. A problem that leaves the rest of
the file unreadable (bad UTF-8, a NUL byte, broken JSON array syntax, a bad CSV header or
row, an over-long line) ends the iteration with one last `InputError`; an order it cut
short is not yielded. Nothing else escapes, whatever the bytes.

The usual order (complete, or needing only its total and currencies filled in, with plain
integers and plain text) is checked first by `fast_orders.py`, without pydantic, at about
the speed of parsing; any other order, valid or not, takes the path above, so every problem
is still worded and placed by it.

Memory stays constant whatever the file size: text is read in chunks or lines, only the
order at hand is kept, and positions are indexed only for an order that has problems.
A line, or a JSON order, may be up to 1 MiB; a CSV order up to 10,000 rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, TextIO

from kalixo_cli.domain.errors import InputError, Problem, UsageError
from kalixo_cli.domain.models import OrderRequest
from kalixo_cli.inputs.csv_order import csv_delimiter
from kalixo_cli.inputs.fast_orders import (
    CsvLayout,
    csv_layout,
    fast_csv_order,
    fast_json_order,
    fast_order,
)
from kalixo_cli.inputs.json_order import JsonState, json_hint, nested_too_deeply
from kalixo_cli.inputs.order_file import csv_columns, parse_batch_csv_order, parse_batch_json_order

BulkFormat = Literal["json", "jsonl", "csv"]
BULK_FORMATS: tuple[BulkFormat, ...] = ("json", "jsonl", "csv")
BULK_FORMAT_HINT = "--format json|jsonl|csv"
_EXTENSIONS: dict[str, BulkFormat] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}

MAX_LINE_CHARS = 1024 * 1024  # also the longest order of a JSON array
MAX_ORDER_ROWS = 10_000
_CHUNK = 64 * 1024
# A JSON syntax error this close to the end of what was read may just need more text.
_LOOKAHEAD = 16

_WS = re.compile(r"[ \t\n\r]*")
_JSON_WS = " \t\n\r"
# Bytes that are not UTF-8 come through "surrogateescape" as U+DC80..U+DCFF.
_BAD_TEXT = re.compile("[\x00\udc80-\udcff]")

_EXAMPLES: dict[BulkFormat, str] = {
    "json": 'a batch is a JSON array of orders such as [{"externalOrderCode": "O-1", '
    '"currency": "GBP", "orderProducts": [...]}, ...]',
    "jsonl": 'a JSON Lines batch holds one order per line, such as {"externalOrderCode": '
    '"O-1", "currency": "GBP", "orderProducts": [...]}',
    "csv": "a batch is a header row such as externalOrderCode,productId,quantity,price,sku,"
    "currency and then one row per product; consecutive rows with the same code form an order",
}
_TRUNCATED = "the file looks truncated; check that it was written or copied completely"


@dataclass(slots=True)  # not frozen: a frozen dataclass costs a microsecond to build
class BulkOrder:
    """A valid order of a batch: its code, its request body (JSON, as
    ``OrderRequest.model_dump_json()`` writes it), where it starts in the file, and its
    0-based position."""

    code: str
    body: str
    where: str
    index: int

    @property
    def request(self) -> OrderRequest:
        """The request as a model (validated again from `body`: for callers that need one)."""
        return OrderRequest.model_validate_json(self.body)

    @classmethod
    def of(cls, request: OrderRequest, where: str, index: int) -> BulkOrder:
        return cls(request.externalOrderCode, request.model_dump_json(), where, index)


def detect_bulk_format(name: str, explicit: BulkFormat | None) -> BulkFormat:
    """The explicit format, else the one the extension names (.json, .jsonl/.ndjson, .csv)."""
    if explicit is not None:
        if explicit not in BULK_FORMATS:
            raise UsageError(f"unknown orders format {explicit!r}", hint=BULK_FORMAT_HINT)
        return explicit
    if name not in ("-", "<stdin>"):
        dot = name.rfind(".")
        fmt = _EXTENSIONS.get(name[dot:].lower()) if dot >= 0 else None
        if fmt is not None:
            return fmt
        raise UsageError(
            f"cannot tell whether {name} is JSON, JSON Lines or CSV",
            hint=f"pass {BULK_FORMAT_HINT}",
        )
    raise UsageError(
        "cannot tell whether the orders on stdin are JSON, JSON Lines or CSV",
        hint=f"pass {BULK_FORMAT_HINT}",
    )


def iter_bulk_orders(
    stream: BinaryIO, *, name: str, fmt: BulkFormat, currency: str | None = None
) -> Iterator[BulkOrder | InputError]:
    """Each order of `stream`, in file order: a `BulkOrder`, or an `InputError` if invalid.

    `name` is the file's name for messages; `currency` (the command line's) fills in and
    checks each order's. The stream is read, never closed.
    """
    if fmt not in BULK_FORMATS:
        raise UsageError(f"unknown orders format {fmt!r}", hint=BULK_FORMAT_HINT)
    if currency is not None:
        currency = currency.strip().upper()
    return _iterate(stream, name, fmt, currency)


class _Unreadable(Exception):
    """The rest of the file cannot be read; carries the error to yield last."""

    def __init__(self, error: InputError) -> None:
        super().__init__(error.message)
        self.error = error


def _iterate(
    stream: BinaryIO, name: str, fmt: BulkFormat, currency: str | None
) -> Iterator[BulkOrder | InputError]:
    # "\n" only for JSON: a lone "\r" is white space there, and JSON counts lines by "\n".
    text = io.TextIOWrapper(
        stream,
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="" if fmt == "csv" else "\n",
    )
    try:
        if fmt == "json":
            yield from _JsonArray(text, name, currency).orders()
        elif fmt == "jsonl":
            yield from _json_lines(text, name, currency)
        else:
            yield from _csv_orders(text, name, currency)
    except _Unreadable as exc:
        yield exc.error
    finally:
        with contextlib.suppress(ValueError, OSError):
            text.detach()  # the caller's stream stays open


def _one(message: str, where: str, hint: str | None = None) -> InputError:
    return InputError([Problem(message, where=where)], hint=hint)


def _empty(name: str, blank: bool, fmt: BulkFormat) -> InputError:
    what = "blank: it holds only white space" if blank else "empty"
    return _one(f"the file is {what}; a batch holds at least one order", name, _EXAMPLES[fmt])


def _bad_text(text: str, at_start: bool) -> tuple[int, str, str] | None:
    """The first NUL or non-UTF-8 byte in `text`: (index, message, hint), else None."""
    match = _BAD_TEXT.search(text)
    if match is None:
        return None
    if at_start and text.startswith(("\udcff\udcfe", "\udcfe\udcff")):
        return 0, "not UTF-8 text: it starts with a UTF-16 byte order mark", "save it as UTF-8"
    char = match.group()
    if char == "\x00":
        return (
            match.start(),
            "contains a NUL byte; this looks like a binary file",
            "give a UTF-8 text file",
        )
    return match.start(), f"not UTF-8 text (byte 0x{ord(char) - 0xDC00:02X})", "save it as UTF-8"


def _read_error(name: str, exc: OSError) -> InputError:
    return _one(f"cannot read {name}: {exc.strerror or exc}", name)


def _lines(text: TextIO, name: str) -> Iterator[str]:
    """The lines of `text`; raises `_Unreadable` at a bad byte or an over-long line."""
    readline = text.readline
    number = 0
    while True:
        try:
            line = readline(MAX_LINE_CHARS + 2)
        except OSError as exc:
            raise _Unreadable(_read_error(name, exc)) from None
        if not line:
            return
        number += 1
        if not line.isascii() or "\x00" in line:
            bad = _bad_text(line, at_start=number == 1)
            if bad is not None:
                offset, message, hint = bad
                raise _Unreadable(_one(message, f"{name}:{number}:{offset + 1}", hint))
        if len(line) > MAX_LINE_CHARS and len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
            raise _Unreadable(
                _one(
                    f"line is longer than {MAX_LINE_CHARS} characters",
                    f"{name}:{number}",
                    "is this really an orders file?",
                )
            )
        yield line


# ----------------------------------------------------------------------------------------
# JSON Lines


def _json_lines(text: TextIO, name: str, currency: str | None) -> Iterator[BulkOrder | InputError]:
    state = JsonState()
    index = 0
    blank = False
    for number, line in enumerate(_lines(text, name), start=1):
        if not line.strip(_JSON_WS):
            blank = True
            continue
        item: BulkOrder | InputError
        order_text = line.rstrip("\r\n")
        fast = fast_json_order(order_text, currency)
        if fast is not None:
            yield BulkOrder(fast[0], fast[1], f"{name}:{number}", index)
            index += 1
            continue
        try:
            request = parse_batch_json_order(
                order_text,
                name=name,
                line=number,
                column=1,
                state=state,
                currency=currency,
            )
        except InputError as exc:
            item = exc
            exc.hint = _jsonl_hint(line) or exc.hint
        else:
            item = BulkOrder.of(request, f"{name}:{number}", index)
        yield item
        index += 1
    if index == 0:
        yield _empty(name, blank, "jsonl")


def _jsonl_hint(line: str) -> str | None:
    stripped = line.strip(_JSON_WS)
    if stripped.startswith("["):
        return "this looks like a JSON array; pass --format json"
    if stripped.endswith(","):
        return "JSON Lines has one order per line and no commas between them"
    return None


# ----------------------------------------------------------------------------------------
# A JSON array


class _JsonArray:
    """Decodes ``[order, order, ...]`` one element at a time over a sliding buffer.

    ``buf[pos:]`` is what is not consumed yet; `line` is the file's line at `pos` and
    `line_start` the buffer offset where that line starts (negative once trimmed away).
    """

    def __init__(self, text: TextIO, name: str, currency: str | None) -> None:
        self.text = text
        self.name = name
        self.currency = currency
        self.state = JsonState()
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.line_start = 0
        self.eof = False
        self.read_any = False
        self.stop: InputError | None = None  # why the readable text ends early

    # -- reading and positions -----------------------------------------------------------

    def fill(self) -> bool:
        """Append the next chunk to the buffer; False once the readable text has ended."""
        if self.eof:
            return False
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.line_start -= self.pos
            self.pos = 0
        try:
            chunk = self.text.read(_CHUNK)
        except OSError as exc:
            chunk, self.stop = "", _read_error(self.name, exc)
        if not chunk:
            self.eof = True
            return False
        if not chunk.isascii() or "\x00" in chunk:
            bad = _bad_text(chunk, at_start=not self.read_any)
            if bad is not None:
                offset, message, hint = bad
                self.buf += chunk[:offset]
                self.eof = True
                self.stop = _one(message, self.where(len(self.buf)), hint)
                self.read_any = True
                return offset > 0
        self.read_any = True
        self.buf += chunk
        return True

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) in the file of a buffer offset at or after `pos`."""
        newlines = self.buf.count("\n", self.pos, offset)
        if newlines:
            return self.line + newlines, offset - self.buf.rfind("\n", self.pos, offset)
        return self.line, offset - self.line_start + 1

    def where(self, offset: int) -> str:
        line, col = self.position(offset)
        return f"{self.name}:{line}:{col}"

    def advance(self, to: int) -> None:
        newlines = self.buf.count("\n", self.pos, to)
        if newlines:
            self.line += newlines
            self.line_start = self.buf.rfind("\n", self.pos, to) + 1
        self.pos = to

    def peek(self) -> str:
        """The next character that is not white space (consuming the white space), or ""."""
        while True:
            self.advance(_WS.match(self.buf, self.pos).end())  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def truncated(self, message: str) -> InputError:
        return self.stop or _one(message, self.where(len(self.buf)), _TRUNCATED)

    # -- the array -----------------------------------------------------------------------

    def orders(self) -> Iterator[BulkOrder | InputError]:
        char = self.peek()
        if not char:
            yield self.stop or _empty(self.name, self.read_any, "json")
            return
        if char != "[":
            yield self.not_an_array(char)
            return
        self.advance(self.pos + 1)
        char = self.peek()
        if char == "]":
            yield _one("no orders: the array is empty", self.where(self.pos), _EXAMPLES["json"])
            return
        index = 0
        while True:
            if not char:
                yield self.truncated("the file ends before the array is closed with ']'")
                return
            element = self.element()
            if isinstance(element, InputError):
                yield element
                return
            yield self.order(*element, index)
            index += 1
            char = self.peek()
            if char == ",":
                self.advance(self.pos + 1)
                char = self.peek()
                if char == "]":
                    yield _one(
                        "invalid JSON: a comma before ']'",
                        self.where(self.pos),
                        "remove the comma before the closing bracket; "
                        "JSON allows no trailing commas",
                    )
                    return
            elif char == "]":
                self.advance(self.pos + 1)
                yield from self.after_the_array()
                return
            elif not char:
                yield self.truncated("the file ends before the array is closed with ']'")
                return
            else:
                yield _one(
                    "invalid JSON: Expecting ',' delimiter between orders",
                    self.where(self.pos),
                    "separate the orders with commas",
                )
                return

    def element(self) -> tuple[Any, int] | InputError:
        """Decode the value at `pos`: (value, end offset), or the error that ends the file.

        An order that is too long but complete comes back as an `InputError` value.

        Reading more moves the buffer, so the value is decoded again after every read.
        """
        final = False  # nothing more to read
        while True:
            self.state.reset()
            try:
                value, end = self.state.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                unterminated = exc.msg.startswith("Unterminated string")
                if not final and (unterminated or exc.pos >= len(self.buf) - _LOOKAHEAD):
                    final = not self.more()
                    error = (self.too_long() or self.stop) if final else None
                    if error is not None:
                        return error
                    continue
                if unterminated or not self.buf[exc.pos :].strip(_JSON_WS):
                    return _one(
                        f"the file ends inside an order: {exc.msg}",
                        self.where(exc.pos),
                        _TRUNCATED,
                    )
                return _one(
                    f"invalid JSON: {exc.msg}", self.where(exc.pos), json_hint(self.buf, exc)
                )
            except RecursionError:
                line, col = self.position(self.pos)
                return nested_too_deeply(self.buf[self.pos :], _shifted(self.name, line, col))
            if not final and end == len(self.buf) and not isinstance(value, dict | list):
                final = not self.more()  # a number at the end may go on in the next chunk
                continue
            if end - self.pos > MAX_LINE_CHARS:
                return _one(
                    f"the order is longer than {MAX_LINE_CHARS} characters",
                    self.where(self.pos),
                    "an order in a batch is at most 1 MiB of JSON",
                ), end
            return value, end

    def more(self) -> bool:
        """Read more of the element at `pos`, unless it is already too long."""
        return len(self.buf) - self.pos <= MAX_LINE_CHARS and self.fill()

    def too_long(self) -> InputError | None:
        if len(self.buf) - self.pos <= MAX_LINE_CHARS:
            return None
        return _one(
            f"the order is longer than {MAX_LINE_CHARS} characters",
            self.where(self.pos),
            "an order in a batch is at most 1 MiB of JSON",
        )

    def order(self, value: Any, end: int, index: int) -> BulkOrder | InputError:
        if isinstance(value, InputError):
            self.advance(end)
            return value
        line, col = self.position(self.pos)
        text = self.buf[self.pos : end]
        self.advance(end)
        state = self.state
        if not (state.odd or state.duplicates or "\\" in text):
            fast = fast_order(value, self.currency)
            if fast is not None:
                return BulkOrder(fast[0], fast[1], f"{self.name}:{line}:{col}", index)
        try:
            request = parse_batch_json_order(
                text,
                name=self.name,
                line=line,
                column=col,
                state=self.state,
                value=value,
                currency=self.currency,
            )
        except InputError as exc:
            return exc
        return BulkOrder.of(request, f"{self.name}:{line}:{col}", index)

    def after_the_array(self) -> Iterator[InputError]:
        char = self.peek()
        if char:
            hint = (
                "a batch is one JSON array: merge the arrays, or give one order per line "
                "with --format jsonl"
                if char in "[{"
                else None
            )
            yield _one("invalid JSON: unexpected text after the array", self.where(self.pos), hint)
        elif self.stop is not None:
            yield self.stop

    def not_an_array(self, char: str) -> InputError:
        where = self.where(self.pos)
        if char == "{":
            return _one(
                "a JSON batch is an array of orders [...], not a single object",
                where,
                "wrap the orders in [ ]; for one order per line pass --format jsonl; "
                "for a single order use `kalixo place-order`",
            )
        first_line = self.buf[self.pos :].split("\n", 1)[0].lower()
        hint = (
            "this looks like CSV; pass --format csv"
            if "productid" in first_line and "," in first_line
            else _EXAMPLES["json"]
        )
        return _one("a JSON batch is an array of orders [...]", where, hint)


def _shifted(name: str, line: int, col: int) -> Callable[[int, int], str]:
    """Maps a position in text that starts at `line`:`col` of the file to ``name:line:col``."""

    def where(at_line: int, at_col: int) -> str:
        column = at_col + col - 1 if at_line == 1 else at_col
        return f"{name}:{line + at_line - 1}:{column}"

    return where


# ----------------------------------------------------------------------------------------
# CSV


def _csv_orders(text: TextIO, name: str, currency: str | None) -> Iterator[BulkOrder | InputError]:
    lines = _lines(text, name)
    skipped = 0  # blank lines before the header
    for first in lines:
        if first.strip():
            break
        skipped += 1
    else:
        yield _empty(name, skipped > 0, "csv")
        return
    looks_like_json = first.lstrip()[:1] in ("{", "[")
    reader = csv.reader(itertools.chain((first,), lines), delimiter=csv_delimiter(first))
    last = skipped  # the line the previous row ended on
    try:
        for cells in reader:
            start, last = last + 1, skipped + reader.line_num
            header = [cell.strip() for cell in cells]
            if any(header):
                break
        else:
            yield _one(
                "no header row: the first line must name the columns", name, _EXAMPLES["csv"]
            )
            return
        try:
            columns = csv_columns(header, name=name, line=start)
        except InputError as exc:
            if looks_like_json:
                exc.hint = "this looks like JSON; pass --format json or --format jsonl"
            yield exc
            return
        if "currency" not in columns and currency is None:
            yield _one(
                "missing column: currency (or give the currency on the command line)",
                f"{name}:{start}",
                _EXAMPLES["csv"],
            )
            return
        code_at = columns.index("externalOrderCode")
        line_columns: list[str | None] = [
            None if at == code_at else column for at, column in enumerate(columns)
        ]
        header_line = start
        layout = csv_layout(line_columns)

        group: list[tuple[int, int, list[str]]] = []
        code = ""
        extra = 0  # rows beyond MAX_ORDER_ROWS, counted and dropped
        index = 0
        row_number = 0
        for cells in reader:
            start, last = last + 1, skipped + reader.line_num
            row = [cell.strip() for cell in cells]
            if not any(row):
                continue
            row_number += 1
            row_code = row[code_at] if code_at < len(row) else ""
            if not group or row_code != code:
                if group:
                    yield _csv_order(
                        group, extra, line_columns, layout, name, code, currency, index
                    )
                    index += 1
                group, code, extra = [(row_number, start, row)], row_code, 0
            elif len(group) < MAX_ORDER_ROWS:
                group.append((row_number, start, row))
            else:
                extra += 1
    except csv.Error as exc:
        # The order in progress may be cut short, so it is not yielded.
        yield _one(f"malformed CSV: {exc}", f"{name}:{skipped + reader.line_num}")
        return
    if not group:
        yield _one(
            "no orders: the header is not followed by any rows",
            f"{name}:{header_line}",
            _EXAMPLES["csv"],
        )
        return
    yield _csv_order(group, extra, line_columns, layout, name, code, currency, index)


def _csv_order(
    group: list[tuple[int, int, list[str]]],
    extra: int,
    columns: list[str | None],
    layout: CsvLayout | None,
    name: str,
    code: str,
    currency: str | None,
    index: int,
) -> BulkOrder | InputError:
    row_number, line, _ = group[0]
    where = f"{name}:{line}, row {row_number}"
    if extra:
        return InputError(
            [
                Problem(
                    f"the order has {len(group) + extra} rows; an order in a batch has at "
                    f"most {MAX_ORDER_ROWS}",
                    where=where,
                    field="externalOrderCode",
                )
            ],
            hint="split it into several orders, each with its own code",
        )
    fast = None if layout is None else fast_csv_order(group, layout, code, currency)
    if fast is not None:
        return BulkOrder(fast[0], fast[1], where, index)
    try:
        request = parse_batch_csv_order(group, columns, name=name, code=code, currency=currency)
    except InputError as exc:
        return exc
    return BulkOrder.of(request, where, index)


__all__ = [
    "BULK_FORMATS",
    "MAX_LINE_CHARS",
    "MAX_ORDER_ROWS",
    "BulkFormat",
    "BulkOrder",
    "detect_bulk_format",
    "iter_bulk_orders",
]
