"""`--jq EXPR`: jq's own language applied in-process to the JSON a command prints.

The `jq` package (libjq) is imported only when `--jq` is given, so no other command pays
for it at start-up. Results follow gh's rules: a string is printed raw, every other value
as compact JSON, one result a line; both pass through kalixo_cli.domain.sanitize.
"""

from __future__ import annotations

import json
from typing import Any

from kalixo_cli.domain.errors import UsageError


class JqProgram:
    """A compiled expression; `apply` returns the lines its results print as."""

    def __init__(self, expression: str, program: Any) -> None:
        self.expression = expression
        self._program = program

    def apply(self, data: Any = None, *, text: str | None = None) -> list[str]:
        """Run on a value (or on JSON text, kept as received). Raises ValueError from jq
        when the expression fails on this input (`.a` on an array, say)."""
        bound = (
            self._program.input_text(text) if text is not None else self._program.input_value(data)
        )
        return [result_line(value) for value in bound.all()]


def result_line(value: Any) -> str:
    """A result holds outside text: a raw string shows its controls and invisible characters
    as escapes (line breaks stay), JSON carries them as \\u escapes (kalixo_cli.domain.sanitize)."""
    from kalixo_cli.domain.sanitize import clean_lines, json_safe

    if isinstance(value, str):
        return clean_lines(value)
    return json_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def compile_jq(expression: str) -> JqProgram:
    """Compile now, before anything is sent: an invalid expression is a usage error (exit 2)."""
    try:
        import jq
    except ImportError:  # pragma: no cover - jq is a dependency; a broken install says so
        raise UsageError(
            "--jq needs the jq package, which is not installed",
            hint="reinstall kalixo (pip install kalixo), which installs jq",
        ) from None
    if not expression.strip():
        raise UsageError("--jq is empty", hint="give a jq expression, such as '.orderId'")
    try:
        program = jq.compile(expression)
    except ValueError as exc:
        raise UsageError(
            f"--jq {expression!r} is not a valid jq expression: {describe_jq_error(exc)}",
            hint="see https://jqlang.github.io/jq/manual/ ; for example --jq '.products[].pins[]'",
        ) from None
    return JqProgram(expression, program)


def describe_jq_error(exc: ValueError) -> str:
    """jq's message on one line: its first line, without the `jq: error:` prefix."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else "error"
    for prefix in ("jq: error: ", "jq: error (at <unknown>): "):
        if first.startswith(prefix):
            first = first[len(prefix) :]
    from kalixo_cli.domain.sanitize import clean

    return clean(first.rstrip(":"))  # may quote the data, which came from outside
