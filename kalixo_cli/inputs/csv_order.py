"""An order file in CSV: one row a line, columns by name, cells checked as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from kalixo_cli.inputs.fields import (
    _BATCH_ORDER_LEVEL,
    _CSV_NUMERIC,
    _DECIMAL_CELL,
    _INT_CELL,
    _LARGEST_EXPONENT,
    _ORDER_LEVEL,
    BATCH_CSV_COLUMNS,
    BATCH_CSV_REQUIRED,
    CODE_REQUIRED,
    CSV_CODE_HINT,
    CSV_COLUMNS,
    CSV_REQUIRED,
    FORMAT_HINT,
)
from kalixo_cli.inputs.problems import (
    _EXAMPLES,
    _CsvSource,
    _did_you_mean,
    _quote,
    _Report,
    _Source,
    _too_large,
    _Unusable,
)

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
