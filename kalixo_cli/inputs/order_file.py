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

import codecs
import csv
import difflib
import hashlib
import io
import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, BinaryIO, Literal, TypeGuard

from pydantic import ValidationError

from kalixo_cli.domain.errors import InputError, Problem, UsageError
from kalixo_cli.domain.models import INT64_MAX, SCHEMA_KEY, OrderRequest
from kalixo_cli.inputs.jsonpos import JsonIndex, Path, deepest_nesting, index_json, position

OrderFormat = Literal["json", "csv"]
FORMATS: tuple[OrderFormat, ...] = ("json", "csv")

MAX_INPUT_BYTES = 16 * 1024 * 1024
MAX_PROBLEMS = 50
FORMAT_HINT = "--format json|csv"

ORDER_FIELDS = ("externalOrderCode", "price", "currency", "orderProducts")
LINE_FIELDS = ("productId", "price", "sku", "currency", "quantity")
CSV_COLUMNS = ("productId", "quantity", "price", "sku", "currency")
CSV_REQUIRED = ("productId", "quantity", "price", "sku")
_CSV_NUMERIC = frozenset({"productId", "quantity", "price"})

# Names people reach for that difflib would not connect to ours.
_ALIASES = {
    "qty": "quantity",
    "count": "quantity",
    "amount": "price",
    "unitprice": "price",
    "total": "price",
    "ean": "sku",
    "product": "productId",
    "id": "productId",
    "ccy": "currency",
    "products": "orderProducts",
    "lines": "orderProducts",
    "items": "orderProducts",
    "ordercode": "externalOrderCode",
    "reference": "externalOrderCode",
}

# Order-level fields a CSV row cannot carry, and where they come from instead.
_ORDER_LEVEL = {
    "externalordercode": "the order code is given on the command line (or generated)",
    "ordercode": "the order code is given on the command line (or generated)",
    "total": "the order total is computed from the rows",
}

# Batches (`bulk_file`): each order states its own code, and a CSV row names its order.
CODE_REQUIRED = (
    "every order in a batch needs an externalOrderCode, "
    "so that a re-run can recognise what it already placed"
)
BATCH_CSV_COLUMNS = ("externalOrderCode", *CSV_COLUMNS)
BATCH_CSV_REQUIRED = ("externalOrderCode", *CSV_REQUIRED)
_BATCH_ORDER_LEVEL = {"total": _ORDER_LEVEL["total"]}
CSV_CODE_HINT = (
    "give the order's externalOrderCode on every one of its rows: "
    "consecutive rows with the same code form one order"
)

_INT_CELL = re.compile(r"[+-]?[0-9]+")
_DECIMAL_CELL = re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+)")
_CURRENCY = re.compile(r"[A-Z]{3}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BROKEN_TEXT = "is not valid text (an unpaired \\ud800-\\udfff escape)"
# Numbers from 10**30 up cannot be amounts; refusing them early keeps huge literals such
# as 1e999999999 away from int() and Decimal arithmetic.
_LARGEST_EXPONENT = 29


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


def detect_format(name: str, explicit: OrderFormat | None,
                  data: bytes | None = None) -> OrderFormat:
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


# ----------------------------------------------------------------------------------------
# Text


_EXAMPLES = {
    "json": 'an order is a JSON object such as {"currency": "GBP", "orderProducts": [...]}',
    "csv": "an order is a header row such as productId,quantity,price,sku,currency "
    "and then one row per product",
}


def _decode(data: bytes, name: str, fmt: OrderFormat) -> str:
    """UTF-8 (a BOM is allowed) without NUL bytes and not blank, or a located `InputError`."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _one(
            "not UTF-8 text: it starts with a UTF-16 byte order mark", name, "save it as UTF-8"
        )
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    nul = data.find(b"\x00", skip)
    if nul >= 0:
        raise _one(
            f"contains a NUL byte (byte {nul}); this looks like a binary file",
            _byte_where(data, skip, nul, name),
            "give a UTF-8 text file: " + _EXAMPLES[fmt],
        )
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = skip + exc.start
        raise _one(
            f"not UTF-8 text (byte {bad})", _byte_where(data, skip, bad, name), "save it as UTF-8"
        ) from None
    if not text.strip():
        what = "empty" if not text else "blank: it holds only white space"
        raise _one(f"the order is {what}", name, _EXAMPLES[fmt])
    return text


def _byte_where(data: bytes, skip: int, offset: int, name: str) -> str:
    prefix = data[skip:offset].decode("utf-8", errors="replace")
    line, col = position(prefix, len(prefix))
    return f"{name}:{line}:{col}"


def _one(message: str, where: str, hint: str | None = None) -> InputError:
    return InputError([Problem(message, where=where)], hint=hint)


# ----------------------------------------------------------------------------------------
# Where problems are, and collecting them


class _Unusable:
    """Stands in for a value already reported (NaN, a huge number, broken text)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"<unusable: {self.message}>"


At = Literal["value", "key", "object"]


class _Source:
    """Turns body paths into places and field names; one subclass per format."""

    def __init__(self, name: str) -> None:
        self.name = name

    def locate(self, path: Path, at: At) -> tuple[int, str]:
        """A sort key (position in the file) and the ``where`` text for `path`."""
        raise NotImplementedError

    def field(self, path: Path) -> str | None:
        return _dotted(path)

    def line_ref(self, index: int) -> str:
        return f"orderProducts[{index}]"

    def missing(self, path: Path) -> str:
        return "missing"

    def show(self, value: Any) -> str:
        """A short description of a bad input value for messages."""
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f"the string {_quote(value)}"
        if isinstance(value, int | Decimal):
            return _number(value)
        if isinstance(value, list):
            return "an array"
        if isinstance(value, dict):
            return "an object"
        return "that value"


class _JsonSource(_Source):
    """`text` starts at `line`:`column` of the file (an element of a batch starts mid-file)."""

    def __init__(self, name: str, text: str, line: int = 1, column: int = 1) -> None:
        super().__init__(name)
        self.text = text
        self.line = line
        self.column = column
        self._index: JsonIndex | None = None

    @property
    def index(self) -> JsonIndex:
        """Built only when there is something to locate: it is a second pass over the text."""
        if self._index is None:
            self._index = index_json(self.text)
        return self._index

    def locate(self, path: Path, at: At) -> tuple[int, str]:
        if at == "key":
            offset = self.index.key_offset(path)
        elif at == "object":
            offset = self.index.value_offset(path[:-1])
        else:
            offset = self.index.value_offset(path)
        return offset, self.where(*self.index.position(offset))

    def where(self, line: int, col: int) -> str:
        """``name:line:col`` in the file for a 1-based position in `text`."""
        if line == 1:
            col += self.column - 1
        return f"{self.name}:{line + self.line - 1}:{col}"


class _CsvSource(_Source):
    """`order_row` (row number, line) places order-level fields; a single order has none."""

    def __init__(self, name: str, order_row: tuple[int, int] | None = None) -> None:
        super().__init__(name)
        self.rows: list[tuple[int, int]] = []  # (row number, line number) per order line
        self.order_row = order_row

    def _row(self, path: Path) -> tuple[int, int] | None:
        if (
            len(path) >= 2
            and path[0] == "orderProducts"
            and isinstance(path[1], int)
            and 0 <= path[1] < len(self.rows)
        ):
            return self.rows[path[1]]
        return None

    def locate(self, path: Path, at: At) -> tuple[int, str]:
        row = self._row(path) or self.order_row
        if row is None:
            return 0, self.name
        return row[1], f"{self.name}:{row[1]}, row {row[0]}"

    def field(self, path: Path) -> str | None:
        row = self._row(path)
        if row is None:
            return _dotted(path)
        return ".".join(str(part) for part in path[2:]) or f"row {row[0]}"

    def line_ref(self, index: int) -> str:
        return f"row {self.rows[index][0]}" if 0 <= index < len(self.rows) else "another row"

    def missing(self, path: Path) -> str:
        return "is empty" if self._row(path) is not None else "missing"

    def show(self, value: Any) -> str:
        return _quote(value) if isinstance(value, str) else super().show(value)


@dataclass
class _Report:
    """Problems so far; the first one reported for a place wins, later echoes are dropped."""

    source: _Source
    found: list[tuple[int, Problem]] = field(default_factory=list)
    seen: set[tuple[Path, str]] = field(default_factory=set)
    blocked: set[Path] = field(default_factory=set)
    hint: str | None = None

    def add(
        self, sort_key: int, message: str, where: str, problem_field: str | None = None
    ) -> None:
        """A problem that is not about one body path (syntax, CSV header, row shape)."""
        self.found.append((sort_key, Problem(message, where=where, field=problem_field)))

    def issue(self, path: Path, message: str, at: At = "value", kind: str = "value") -> None:
        """A problem with the body at `path`, unless that place already has one."""
        if (path, kind) in self.seen or self.is_blocked(path):
            return
        self.seen.add((path, kind))
        sort_key, where = self.source.locate(path, at)
        self.found.append((sort_key, Problem(message, where=where, field=self.source.field(path))))

    def unusable(self, path: Path, message: str) -> None:
        """Report a value that cannot be used at all, and silence echoes about it."""
        self.issue(path, message)
        self.blocked.add(path)

    def is_blocked(self, path: Path) -> bool:
        return any(path[: len(blocked)] == blocked for blocked in self.blocked)

    def fail(self) -> InputError:
        ordered = [problem for _, problem in sorted(self.found, key=lambda item: item[0])]
        if len(ordered) > MAX_PROBLEMS:
            extra = len(ordered) - MAX_PROBLEMS
            ordered = ordered[:MAX_PROBLEMS]
            ordered.append(Problem(f"and {extra} more problems not shown", where=self.source.name))
        return InputError(ordered, hint=self.hint)

    def raise_if_any(self) -> None:
        if self.found:
            raise self.fail()


# ----------------------------------------------------------------------------------------
# JSON


class JsonState:
    """A JSON decoder for orders, and what its hooks saw in the last document decoded.

    Floats become `Decimal` (exact, for the minor-units hint), NaN and huge numbers become
    placeholders, duplicate keys are noted; a second look is needed only if something was
    odd. One instance serves any number of documents: `reset` before each.
    """

    def __init__(self) -> None:
        self.odd = False
        self.duplicates = False
        self.decoder = json.JSONDecoder(
            parse_float=self.decimal,
            parse_int=self.integer,
            parse_constant=self.constant,
            object_pairs_hook=self.object,
        )

    def reset(self) -> None:
        self.odd = self.duplicates = False

    def constant(self, literal: str) -> _Unusable:
        self.odd = True
        return _Unusable(f"{literal} is not a number")

    def integer(self, literal: str) -> int | _Unusable:
        if len(literal) > _LARGEST_EXPONENT + 2:
            self.odd = True
            return _Unusable(_too_large(literal))
        return int(literal)

    def decimal(self, literal: str) -> Decimal | _Unusable:
        try:
            value = Decimal(literal)
        except ArithmeticError:  # an exponent beyond what Decimal can represent
            self.odd = True
            return _Unusable(f"number {_number_literal(literal)} is out of range")
        if value and value.adjusted() > _LARGEST_EXPONENT:
            self.odd = True
            return _Unusable(_too_large(literal))
        return value

    def object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            self.duplicates = True
        return result


def _read_json(text: str, name: str) -> tuple[dict[str, Any], _Source, _Report]:
    source = _JsonSource(name, text)
    state = JsonState()
    value = _decode_json(source, state)
    report = _Report(source)
    return _json_order(value, source, state, report), source, report


def _decode_json(source: _JsonSource, state: JsonState) -> Any:
    """`json.loads` with `state`'s hooks; syntax errors become a located `InputError`."""
    text = source.text
    state.reset()
    try:
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return state.decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise _one(
            f"invalid JSON: {exc.msg}", source.where(exc.lineno, exc.colno), json_hint(text, exc)
        ) from None
    except RecursionError:
        raise nested_too_deeply(text, source.where) from None


def nested_too_deeply(text: str, where: Callable[[int, int], str]) -> InputError:
    """The error for JSON the parser gave up on with `RecursionError`, at the deepest point."""
    depth, offset = deepest_nesting(text)
    return _one(
        f"nested too deeply ({depth} levels); an order is only 3 levels deep",
        where(*position(text, offset)),
    )


def _json_order(
    value: Any, source: _JsonSource, state: JsonState, report: _Report
) -> dict[str, Any]:
    """The decoded order as a dict, its unusable values and duplicate keys reported."""
    text = source.text
    if state.odd or _SURROGATE_ESCAPE.search(text):
        if isinstance(value, str) and _SURROGATE.search(value):
            value = _Unusable(_BROKEN_TEXT)  # a bare string: no container to mend it in
        _report_unusable(value, report)
    if state.duplicates:
        for path, _offset in source.index.duplicates:
            report.issue(
                path,
                f"duplicate field {_quote(str(path[-1]))}; each field may appear once per object",
                at="key",
                kind="duplicate",
            )
    if isinstance(value, _Unusable):
        report.raise_if_any()
    if not isinstance(value, dict):
        report.add(0, f"the order must be a JSON object, not {source.show(value)}", _root(source))
        report.hint = _EXAMPLES["json"]
        raise report.fail()
    if isinstance(value.get(SCHEMA_KEY), str):  # an editor's pointer to `kalixo schema`
        return {key: item for key, item in value.items() if key != SCHEMA_KEY}
    return value


def _root(source: _JsonSource) -> str:
    return source.locate((), "value")[1]


def _report_unusable(value: Any, report: _Report) -> None:
    """Report NaN, huge numbers and unpaired surrogates, replacing them with placeholders.

    Iterative, because the parser accepts nesting deeper than a recursive walk could take.
    Unpaired surrogates (``"\\ud800"``) are legal JSON escapes but not text, and pydantic
    refuses them with a message about the whole object, so they are taken out here.
    """
    if isinstance(value, _Unusable):
        report.unusable((), value.message)
        return
    if not isinstance(value, dict | list):
        return
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        container, path = stack.pop()
        items: Iterable[tuple[str | int, Any]]
        if isinstance(container, dict):
            for key in [key for key in container if _SURROGATE.search(key)]:
                report.issue(
                    (*path, key),
                    "field name is not valid text (an unpaired \\ud800-\\udfff escape)",
                    at="key",
                )
                del container[key]
            items = list(container.items())
        else:
            items = list(enumerate(container))
        for key, item in items:
            item_path: Path = (*path, key)
            if isinstance(item, str) and _SURROGATE.search(item):
                item = container[key] = _Unusable(_BROKEN_TEXT)
            if isinstance(item, _Unusable):
                report.unusable(item_path, item.message)
            elif isinstance(item, dict | list):
                stack.append((item, item_path))


def json_hint(text: str, exc: json.JSONDecodeError) -> str | None:
    """The likely fix for a JSON syntax error, when it is a common slip."""
    before = text[: exc.pos].rstrip()
    if before.endswith(",") and text[exc.pos : exc.pos + 1] in ("}", "]"):
        return "remove the comma before the closing bracket; JSON allows no trailing commas"
    if text[exc.pos : exc.pos + 1] == "'":
        return "JSON strings and field names use double quotes"
    first_line = text.lstrip().split("\n", 1)[0].lower()
    if "productid" in first_line and "," in first_line and "{" not in first_line:
        return f"this looks like CSV; pass {FORMAT_HINT.replace('json|csv', 'csv')}"
    return None


# ----------------------------------------------------------------------------------------
# CSV


def _read_csv(text: str, name: str) -> tuple[dict[str, Any], _Source, _Report]:
    source = _CsvSource(name)
    report = _Report(source)
    if text.lstrip()[:1] in ("{", "["):
        report.hint = f"this looks like JSON; pass {FORMAT_HINT.replace('json|csv', 'json')}"
    rows = _csv_rows(text, name, report)
    if not rows:
        report.add(0, "no header row: the first line must name the columns", name)
        report.hint = report.hint or _EXAMPLES["csv"]
        raise report.fail()
    header_line, header = rows[0]
    columns = _csv_columns(header, f"{name}:{header_line}", header_line, report)
    report.raise_if_any()
    if len(rows) == 1:
        report.add(
            header_line,
            "no order lines: the header is not followed by any rows",
            f"{name}:{header_line}",
        )
        raise report.fail()

    rows_numbered = [(number, line, cells) for number, (line, cells) in enumerate(rows[1:], 1)]
    lines = _csv_lines(columns, rows_numbered, source, report)
    if not lines:
        raise report.fail()
    return {"orderProducts": lines}, source, report


def _csv_lines(
    columns: Sequence[str | None],
    rows: Iterable[tuple[int, int, list[str]]],
    source: _CsvSource,
    report: _Report,
) -> list[dict[str, Any]]:
    """Order lines from (row number, line, stripped cells); a `None` column is not a line field.

    Rows with the wrong number of cells are reported and left out.
    """
    width = len(columns)
    lines: list[dict[str, Any]] = []
    for row_number, line, cells in rows:
        if len(cells) > width and not any(cells[width:]):
            cells = cells[:width]
        if len(cells) != width:
            report.add(
                line,
                f"has {len(cells)} cells but the header names {width} columns",
                f"{source.name}:{line}, row {row_number}",
                None,
            )
            continue
        index = len(lines)
        source.rows.append((row_number, line))
        item: dict[str, Any] = {}
        for column, cell in zip(columns, cells, strict=True):
            if not cell or column is None:
                continue  # absent: "is empty", or the order currency for `currency`
            if column not in _CSV_NUMERIC:
                item[column] = cell
            elif cell.isdigit() and cell.isascii() and len(cell) <= _LARGEST_EXPONENT + 1:
                item[column] = int(cell)  # the usual cell, the short way
            else:
                value = item[column] = _csv_number(cell)
                if isinstance(value, _Unusable):
                    report.unusable(("orderProducts", index, column), value.message)
        lines.append(item)
    return lines


def csv_delimiter(first_line: str) -> str:
    """The separator the header line uses: comma, else semicolon, else tab."""
    if "," in first_line:
        return ","
    return ";" if ";" in first_line else "\t" if "\t" in first_line else ","


def _csv_rows(text: str, name: str, report: _Report) -> list[tuple[int, list[str]]]:
    """Non-blank rows with stripped cells, each with the line it starts on."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=csv_delimiter(first))
    rows: list[tuple[int, list[str]]] = []
    last_line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = reader.line_num
            report.add(line, f"malformed CSV: {exc}", f"{name}:{line}")
            break
        start, last_line = last_line + 1, reader.line_num
        stripped = [cell.strip() for cell in cells]
        if any(stripped):
            rows.append((start, stripped))
    return rows


def _csv_columns(
    header: list[str], where: str, line: int, report: _Report, *, batch: bool = False
) -> list[str]:
    known, required = (
        (BATCH_CSV_COLUMNS, BATCH_CSV_REQUIRED) if batch else (CSV_COLUMNS, CSV_REQUIRED)
    )
    order_level = _BATCH_ORDER_LEVEL if batch else _ORDER_LEVEL
    by_lower = {column.lower(): column for column in known}
    while header and not header[-1]:
        header = header[:-1]  # trailing separators, as spreadsheets write them
    columns: list[str] = []
    for number, cell in enumerate(header, start=1):
        column = by_lower.get(cell.lower())
        if not cell:
            report.add(line, f"column {number} has no name", where)
        elif column is None and cell.lower() in order_level:
            report.add(line, f"unknown column {_quote(cell)}: {order_level[cell.lower()]}", where)
        elif column is None:
            report.add(line, f"unknown column {_quote(cell)}{_did_you_mean(cell, known)}", where)
        elif column in columns:
            report.add(line, f"column {column!r} appears twice", where)
        columns.append(column or cell)
    missing = [column for column in required if column not in columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        report.add(line, f"missing column{plural}: {', '.join(missing)}", where)
        if "externalOrderCode" in missing:
            report.hint = report.hint or f"{CODE_REQUIRED}; {CSV_CODE_HINT}"
        report.hint = report.hint or _EXAMPLES["csv"]
    return columns


def _csv_number(cell: str) -> int | Decimal | str | _Unusable:
    """Integers and decimals become numbers; anything else stays text for the model to refuse."""
    if _INT_CELL.fullmatch(cell):
        if len(cell.lstrip("+-").lstrip("0")) > _LARGEST_EXPONENT + 1:
            return _Unusable(_too_large(cell))
        return int(cell)
    if _DECIMAL_CELL.fullmatch(cell):
        value = Decimal(cell)
        if value and value.adjusted() > _LARGEST_EXPONENT:
            return _Unusable(_too_large(cell))
        return value
    return cell


# ----------------------------------------------------------------------------------------
# Completing and validating the body


@dataclass
class _Fill:
    """What `_complete` filled in or left out, to word (or silence) the model's complaints."""

    from_argument: dict[Path, str] = field(default_factory=dict)
    optional_missing: set[Path] = field(default_factory=set)
    follows_currency: set[Path] = field(default_factory=set)
    derived_currency: bool = False
    currency_conflict: bool = False


def _complete(
    body: dict[str, Any],
    source: _Source,
    report: _Report,
    *,
    external_order_code: str | None,
    currency: str | None,
    code_factory: Callable[[], str] | None,
) -> tuple[OrderRequest, bool]:
    """Fill in the optional parts, validate, and report every problem at its place.

    Returns the request and whether its code was generated. `body` is freshly parsed and
    is completed in place. Without a `code_factory` the body must carry its own
    externalOrderCode (a batch).
    """
    raw_lines = body.get("orderProducts")
    lines: list[tuple[int, dict[str, Any]]] = []
    if isinstance(raw_lines, list):
        lines = [(i, line) for i, line in enumerate(raw_lines) if isinstance(line, dict)]
    fill = _Fill()
    checks: list[tuple[Path, str]] = []  # reported after the model's field errors

    for key in ("externalOrderCode", "price", "currency"):
        if key in body and body[key] is None:
            del body[key]
    generated = False
    if "externalOrderCode" in body:
        code = body["externalOrderCode"]
        if external_order_code is not None and code != external_order_code:
            checks.append(
                (
                    ("externalOrderCode",),
                    f"{_shown(code, source)} in the file differs from "
                    f"{_quote(external_order_code)} given on the command line",
                )
            )
    elif external_order_code is not None:
        body["externalOrderCode"] = external_order_code
        fill.from_argument[("externalOrderCode",)] = "the order code given on the command line"
    elif code_factory is None:
        report.issue(("externalOrderCode",), CODE_REQUIRED, at="object")
    else:
        body["externalOrderCode"] = code_factory()
        generated = True

    _complete_currency(body, lines, source, report, currency, fill, checks)
    _complete_price(body, raw_lines, report, fill, checks)

    try:
        request = OrderRequest.model_validate(body)
    except ValidationError as exc:
        _report_validation(exc, report, fill, checks)
        raise report.fail() from None
    for path, message in checks:  # disagreements with the command line pass the model
        report.issue(path, message)
    report.raise_if_any()
    return request, generated


def _complete_currency(
    body: dict[str, Any],
    lines: list[tuple[int, dict[str, Any]]],
    source: _Source,
    report: _Report,
    currency: str | None,
    fill: _Fill,
    checks: list[tuple[Path, str]],
) -> None:
    order = body.get("currency")
    if order is not None:
        if currency is not None and order != currency:
            checks.append(
                (
                    ("currency",),
                    f"{_shown(order, source)} in the file differs from {_quote(currency)} "
                    "given on the command line",
                )
            )
    elif currency is not None:
        order = body["currency"] = currency
        fill.from_argument[("currency",)] = "the currency given on the command line"
    else:
        stated = [
            (i, line["currency"]) for i, line in lines if isinstance(line.get("currency"), str)
        ]
        if len({code for _, code in stated}) == 1:
            order = body["currency"] = stated[0][1]
            fill.derived_currency = True
        elif stated:
            fill.currency_conflict = True
            first_index, first = stated[0]
            for i, code in stated:
                if code != first:
                    report.issue(
                        ("orderProducts", i, "currency"),
                        f"currency {_quote(code)} differs from {_quote(first)} on "
                        f"{source.line_ref(first_index)}; one order holds one currency",
                    )
        else:
            where = "a currency column" if isinstance(source, _CsvSource) else '"currency"'
            report.issue(
                ("currency",),
                f"missing: add {where} or give the currency on the command line",
                at="object",
            )
    for i, line in lines:
        path: Path = ("orderProducts", i, "currency")
        if line.get("currency") is None:
            line.pop("currency", None)
            fill.follows_currency.add(path)
            if isinstance(order, str):
                line["currency"] = order
        elif (
            isinstance(order, str)
            and _CURRENCY.fullmatch(order)
            and isinstance(line["currency"], str)
            and line["currency"] != order
        ):
            origin = " (given on the command line)" if ("currency",) in fill.from_argument else ""
            checks.append(
                (
                    path,
                    f"line currency {_quote(line['currency'])} differs from the order currency "
                    f"{_quote(order)}{origin}; one order holds one currency",
                )
            )


def _complete_price(
    body: dict[str, Any],
    raw_lines: Any,
    report: _Report,
    fill: _Fill,
    checks: list[tuple[Path, str]],
) -> None:
    total = _lines_total(raw_lines)
    price = body.get("price")
    if price is None:
        if total is None:
            fill.optional_missing.add(("price",))  # the lines' own errors say why
            return
        body["price"] = total
        if total > INT64_MAX:
            report.issue(("price",), _total_overflow(total), at="object")
    elif total is not None and _is_int(price) and 0 <= price <= INT64_MAX:
        if total > INT64_MAX:
            checks.append((("price",), _total_overflow(total)))
        elif price != total:
            checks.append(
                (("price",), f"price {price} does not equal the lines' total: expected {total}")
            )


def _lines_total(lines: Any) -> int | None:
    """Sum of price x quantity, when every line has usable integers for both."""
    if not isinstance(lines, list):
        return None
    total = 0
    for line in lines:
        if not isinstance(line, dict):
            return None
        price, quantity = line.get("price"), line.get("quantity")
        if type(price) is not int or type(quantity) is not int:  # bool is not int here
            return None
        if not (0 <= price <= INT64_MAX and 1 <= quantity <= INT64_MAX):
            return None
        total += price * quantity
    return total


def _report_validation(
    exc: ValidationError, report: _Report, fill: _Fill, checks: list[tuple[Path, str]]
) -> None:
    """Word the model's errors for people, place them, and drop the ones that only echo."""
    source = report.source
    field_errors: list[tuple[Path, str, At]] = []
    model_errors: list[tuple[Path, str, At]] = []
    misspelt: set[Path] = set()  # fields whose absence an unknown field already explains
    for error in exc.errors(include_url=False):
        path, message, at = _describe(error, source)
        (model_errors if not error["loc"] else field_errors).append((path, message, at))
        if error["type"] == "minor_units":
            report.hint = "amounts are integers in minor units (pence, cents): 32.99 is 3299"
        if error["type"] == "extra_forbidden":
            meant = _suggest(str(path[-1]), LINE_FIELDS if len(path) > 1 else ORDER_FIELDS)
            if meant is not None:
                misspelt.add((*path[:-1], meant))

    currency_failed = (
        fill.currency_conflict
        or any(path == ("currency",) for path, _, _ in field_errors)
        or ("currency",) in {path for path, _ in report.seen}
    )
    kept: list[tuple[Path, str, At]] = []
    for path, message, at in field_errors:
        if at == "object" and (path in fill.optional_missing or path in misspelt):
            continue
        if path in fill.follows_currency and currency_failed:
            continue
        if path == ("currency",) and (fill.derived_currency or fill.currency_conflict):
            continue  # the lines that state it are reported themselves
        if path in fill.from_argument:
            message = f"{message} ({fill.from_argument[path]})"
        kept.append((path, message, at))

    for path, message, at in kept:
        report.issue(path, message, at)
    for path, message in checks:
        report.issue(path, message)
    for path, message, at in model_errors:
        report.issue(path, message, at)
    if not report.found:
        # Everything was judged an echo; better an echo than an error without a problem.
        for path, message, at in field_errors + model_errors:
            sort_key, where = source.locate(path, at)
            report.add(sort_key, message, where, source.field(path))


def _describe(error: Any, source: _Source) -> tuple[Path, str, At]:
    """One pydantic error as (path, human message, what to point at)."""
    kind: str = error["type"]
    path: Path = tuple(error["loc"])
    value = error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return path, source.missing(path), "object"
    if kind == "extra_forbidden":
        key = str(path[-1])
        known = LINE_FIELDS if len(path) > 1 else ORDER_FIELDS
        return path, f"unknown field {_quote(key)}{_did_you_mean(key, known)}", "key"
    if kind == "int_type":
        return path, _not_integer(value, source), "value"
    if kind == "greater_than_equal":
        return path, f"must be an integer >= {ctx['ge']}", "value"
    if kind == "less_than_equal":
        return path, f"must be at most {ctx['le']} (a signed 64-bit integer)", "value"
    if kind == "string_type":
        return path, f"must be a string (in double quotes), not {source.show(value)}", "value"
    if kind == "string_too_short":
        return path, "must not be empty", "value"
    if kind == "string_too_long":
        return path, f"must be at most {ctx['max_length']} characters long", "value"
    if kind == "list_type":
        return path, f"must be an array of order lines [...], not {source.show(value)}", "value"
    if kind == "too_short":
        return path, "must hold at least one order line", "value"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return path, f"must be an object {{...}}, not {source.show(value)}", "value"
    if kind == "currency_mismatch":
        line_path: Path = ("orderProducts", ctx["index"], "currency")
        return (
            line_path,
            f"line currency {_quote(ctx['line'])} differs from the order currency "
            f"{_quote(ctx['order'])}; one order holds one currency",
            "value",
        )
    if kind in ("price_mismatch", "total_overflow"):
        return ("price",), str(error["msg"]), "value"
    message = str(error["msg"])
    if message.startswith("Input should be"):
        message = "must be" + message[len("Input should be") :]
    return path, message, "value"


def _not_integer(value: Any, source: _Source) -> str:
    if isinstance(value, bool):
        return f"must be an integer, not {source.show(value)} (booleans are not numbers)"
    if (
        isinstance(value, str)
        and _INT_CELL.fullmatch(value.strip())
        and not isinstance(source, _CsvSource)
    ):
        return f"must be an integer, not {source.show(value)} (remove the quotes)"
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return f"must be an integer, not {_number(value)} (write {int(value)})"
    return f"must be an integer, not {source.show(value)}"


# ----------------------------------------------------------------------------------------
# Small helpers


def _shown(value: Any, source: _Source) -> str:
    return _quote(value) if isinstance(value, str) else source.show(value)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _dotted(path: Path) -> str | None:
    if not path:
        return None
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{_quote(part)}]"
    return text


def _quote(text: str, limit: int = 40) -> str:
    """repr() of a value from the file: escapes control characters, bounded in length."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _number(value: int | Decimal) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _too_large(literal: str) -> str:
    return f"number {_number_literal(literal)} is too large: amounts fit a signed 64-bit integer"


def _number_literal(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:12]}...({len(literal)} characters)"


def _total_overflow(total: int) -> str:
    return f"the lines' total {total} does not fit a signed 64-bit integer"


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'quantity'?)`` when a known name is close to `name`, else ``""``."""
    match = _suggest(name, known)
    return f" (did you mean {match!r}?)" if match else ""


def _suggest(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` is most likely a typo of: same letters, an alias, or close."""
    by_normal = {candidate.lower(): candidate for candidate in known}
    normal = re.sub(r"[\s_\-]", "", name).lower()
    match = by_normal.get(normal) or by_normal.get(_ALIASES.get(normal, "").lower())
    if match is None:
        close = difflib.get_close_matches(normal, list(by_normal), n=1, cutoff=0.6)
        match = by_normal[close[0]] if close else None
    return match if match != name else None


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
