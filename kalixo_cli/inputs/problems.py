"""Where problems in an order file are, and how they are collected and worded."""

from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeGuard

from kalixo_cli.domain.errors import InputError, Problem
from kalixo_cli.inputs.fields import _ALIASES, MAX_PROBLEMS, OrderFormat
from kalixo_cli.inputs.jsonpos import JsonIndex, Path, index_json, position

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
