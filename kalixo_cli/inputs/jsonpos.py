"""Where each value of a JSON document starts, so problems can point at ``line:col``.

The stdlib parser returns plain values without positions. When there is something to
report, `index_json` walks the same text once more and records, for every path such as
``("orderProducts", 1, "price")``, the offset of the value and of its key, plus every
duplicated key. The scanner is iterative, so nesting far beyond the recursion limit cannot
crash it, and it stops quietly at anything it does not understand: its answers locate
messages, they never decide whether the document is valid.
"""

from __future__ import annotations

import bisect
import json.decoder
import re
from collections.abc import Callable
from dataclasses import dataclass, field

Path = tuple[str | int, ...]

# The stdlib's own string reader (C-accelerated), so keys decode exactly as json.loads does.
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_WORDS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")
# A string literal (escapes included) or one bracket; used to measure nesting on text
# the parser refused, so unterminated strings simply stop matching.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


@dataclass
class JsonIndex:
    """Offsets of values and keys by path; the last occurrence wins, as in `json.loads`."""

    text: str
    values: dict[Path, int] = field(default_factory=dict)
    keys: dict[Path, int] = field(default_factory=dict)
    duplicates: list[tuple[Path, int]] = field(default_factory=list)
    _line_starts: list[int] | None = None

    def value_offset(self, path: Path) -> int:
        """Offset of the value at `path`, else of its nearest ancestor that is in the text."""
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, 0)

    def key_offset(self, path: Path) -> int:
        """Offset of the key naming `path` (for unknown fields), else of the value."""
        return self.keys.get(path, self.value_offset(path))

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column), counted like `json.JSONDecodeError` does."""
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of `offset` in `text`."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Frame:
    __slots__ = ("index", "is_object", "path", "seen")

    def __init__(self, path: Path, is_object: bool) -> None:
        self.path = path
        self.is_object = is_object
        self.index = 0
        self.seen: set[str] = set()


def index_json(text: str) -> JsonIndex:
    """Record where every value and key of `text` starts (see the module docstring)."""
    index = JsonIndex(text)
    stack: list[_Frame] = []
    pos = _WS.match(text, 0).end()  # type: ignore[union-attr]
    path: Path = ()
    end = len(text)
    while pos < end:
        # A value starts at `pos`.
        index.values[path] = pos
        char = text[pos]
        if char in "{[":
            frame = _Frame(path, char == "{")
            stack.append(frame)
            pos = _skip(text, pos + 1)
            if text.startswith("}" if frame.is_object else "]", pos):
                pos += 1
                stack.pop()
            elif frame.is_object:
                found = _key(text, pos, frame, index)
                if found is None:
                    return index
                path, pos = found
                continue
            else:
                path = (*frame.path, 0)
                continue
        elif char == '"':
            try:
                pos = scanstring(text, pos + 1)[1]
            except ValueError:
                return index
        else:
            word = next((w for w in _WORDS if text.startswith(w, pos)), None)
            if word is not None:
                pos += len(word)
            else:
                match = _NUMBER.match(text, pos)
                if match is None:
                    return index
                pos = match.end()
        # After a value: close finished containers, then move to the next member.
        while True:
            if not stack:
                return index
            frame = stack[-1]
            pos = _skip(text, pos)
            char = text[pos : pos + 1]
            if char == ("}" if frame.is_object else "]"):
                pos += 1
                stack.pop()
                continue
            if char != ",":
                return index
            pos = _skip(text, pos + 1)
            if frame.is_object:
                found = _key(text, pos, frame, index)
                if found is None:
                    return index
                path, pos = found
            else:
                frame.index += 1
                path = (*frame.path, frame.index)
            break
    return index


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _key(text: str, pos: int, frame: _Frame, index: JsonIndex) -> tuple[Path, int] | None:
    """Read ``"key" :`` at `pos`; return the member's path and where its value starts."""
    if not text.startswith('"', pos):
        return None
    try:
        key, after = scanstring(text, pos + 1)
    except ValueError:
        return None
    after = _skip(text, after)
    if not text.startswith(":", after):
        return None
    path: Path = (*frame.path, key)
    if key in frame.seen:
        index.duplicates.append((path, pos))
    frame.seen.add(key)
    index.keys[path] = pos
    return path, _skip(text, after + 1)


def deepest_nesting(text: str) -> tuple[int, int]:
    """The deepest bracket nesting in `text` and the offset of the bracket that first reaches it.

    Used when the parser gave up with `RecursionError`, to point at where it happened.
    """
    depth = deepest = where = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > deepest:
                deepest, where = depth, match.start()
        elif token == "]" or token == "}":
            depth = max(depth - 1, 0)
    return deepest, where
