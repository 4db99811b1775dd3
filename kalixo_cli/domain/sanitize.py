"""Outside text made safe for a terminal, a text file or a spreadsheet. Pure functions.

Anything kalixo did not write itself (a server's SKU, PIN, message or header; a code from
the user's file) may hold characters a terminal obeys or a reader cannot see: ESC sequences
(OSC 52 writes the clipboard, CSI 2J clears the screen), C1 controls (U+009B is a one-byte
CSI to some terminals), and bidi or zero-width format characters that make text read as
something it is not. Every such string passes through here on its way out:

- `clean` for terminals and text files: each of those characters is shown as a visible
  escape (``\\x1b``, ``\\u202e``), so what is on screen is what the data hold;
- `json_safe` for JSON: the same characters as JSON ``\\u`` escapes, so a parser gets the
  data back intact and the bytes are still safe to ``cat``;
- `csv_cell` for CSV: `clean`, then a leading ``'`` on a cell a spreadsheet would run as a
  formula (OWASP's advice for CSV injection).

Rich markup is the other half of the rule: data never reach rich's markup parser (the
consoles of `kalixo_cli.terminal.output` have markup off, views build `rich.text.Text`).
"""

from __future__ import annotations

import re
from typing import Any

# C0 and C1 controls and DEL; soft hyphen; Arabic letter mark; Mongolian vowel separator;
# zero-width space/joiners and LRM/RLM; line and paragraph separators; bidi embeddings and
# overrides (LRE..RLO); word joiner and invisible operators; bidi isolates (LRI..PDI) and
# the deprecated format characters; BOM; interlinear annotations; tag characters.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 but tab and line feed, DEL, C1
_INVISIBLES = (
    "\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    "\ufff9-\ufffb\U000e0001\U000e0020-\U000e007f"
)
INVISIBLES = _INVISIBLES  # a character class's contents, for other modules' patterns
_UNSAFE = re.compile(f"[\t\n{_CONTROLS}{_INVISIBLES}]")
_UNSAFE_KEEP_NEWLINE = re.compile(f"[\t{_CONTROLS}{_INVISIBLES}]")
# Refused outright in an order code: two codes that look the same must not be two orders.
_INVISIBLE = re.compile(f"[{_INVISIBLES}]")
# In a JSON text, tab, line feed and carriage return can only be white space between tokens.
_JSON_UNSAFE = re.compile(f"[{_CONTROLS}{_INVISIBLES}]")

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# The first characters that make a spreadsheet evaluate a cell (OWASP, CSV injection), and
# their full-width forms, which some spreadsheets read the same way.
FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def _visible(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _SHORT:
        return _SHORT[char]
    point = ord(char)
    if point <= 0xFF:
        return f"\\x{point:02x}"
    if point <= 0xFFFF:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def clean(text: str) -> str:
    """One line of outside text, safe for a terminal: controls and invisible characters
    shown as escapes. Text without any (nearly all) is returned as it is."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_visible, text)


def clean_lines(text: str) -> str:
    """As `clean`, but line breaks stay line breaks (for text that is several lines)."""
    if _UNSAFE_KEEP_NEWLINE.search(text) is None:
        return text
    return _UNSAFE_KEEP_NEWLINE.sub(_visible, text)


def invisible_characters(text: str) -> list[str]:
    """The bidi and zero-width characters in `text`, each as its escape (for a message)."""
    return [_visible(match) for match in _INVISIBLE.finditer(text)]


def _json_escape(match: re.Match[str]) -> str:
    point = ord(match.group(0))
    if point == 0x0D:  # white space between tokens (raw in a string is not JSON): a space
        return " "
    if point <= 0xFFFF:
        return f"\\u{point:04x}"
    point -= 0x10000
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


def json_safe(document: str) -> str:
    """A JSON text with every unsafe character written as a \\u escape.

    Valid because JSON allows such characters only inside strings, where an escape means
    the same character: a parser reads the same data, a terminal sees no control. (A
    carriage return can only be white space between tokens; it becomes a space.)
    """
    if _JSON_UNSAFE.search(document) is None:
        return document
    return _JSON_UNSAFE.sub(_json_escape, document)


def csv_cell(value: Any) -> Any:
    """A value for a CSV cell: text cleaned and, if it would start a formula, prefixed with
    a quote (``=1+1`` becomes ``'=1+1``). Numbers and None are left to the csv module."""
    if not isinstance(value, str):
        return value
    text = clean(value)
    if text and (text[0] in FORMULA_STARTS or value[0] in FORMULA_STARTS):
        return "'" + text
    return text
