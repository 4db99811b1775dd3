"""An order file in JSON: decoded with positions, so every problem says `line:col`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from kalixo_cli.domain.errors import InputError
from kalixo_cli.domain.models import SCHEMA_KEY
from kalixo_cli.inputs.fields import (
    _BROKEN_TEXT,
    _LARGEST_EXPONENT,
    _SURROGATE,
    _SURROGATE_ESCAPE,
    FORMAT_HINT,
)
from kalixo_cli.inputs.jsonpos import Path, deepest_nesting, position
from kalixo_cli.inputs.problems import (
    _EXAMPLES,
    _JsonSource,
    _number_literal,
    _one,
    _quote,
    _Report,
    _Source,
    _too_large,
    _Unusable,
)

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
