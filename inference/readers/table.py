"""A data table read from an instrument file, with line numbers kept for error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from inference.errors import FileFormatError
from inference.readers.columns import Column, shown_headers

_DECIMAL_COMMA = re.compile(r"^[-+]?\d*,\d+(?:[eE][-+]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$")


@dataclass
class Table:
    """Columns of one table in a file.

    Attributes
    ----------
    path : the file (for error messages).
    headers : column headers as written.
    header_line : 1-based line of the header row (None for binary formats).
    rows : the data rows split into fields (None when ``arrays`` hold the values already).
    line_numbers : 1-based line number of each row.
    name : the table's name in the file, if it has one (Gamry ``ZCURVE``).
    arrays : parsed columns by index (filled lazily for text tables).
    attrs : attrs the file states for this table only (a Novocontrol block's temperature,
        ``drift_corrected`` of a Gamry variant); they go to each spectrum read from it.
    """

    path: str
    headers: list[str]
    header_line: int | None
    rows: list[list[str]] | None = None
    line_numbers: list[int] = field(default_factory=list)
    name: str = ""
    arrays: dict[int, np.ndarray] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        if self.rows is not None:
            return len(self.rows)
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def values(self, column: Column) -> np.ndarray:
        """The column's values in SI units; errors name the line and column of a bad value."""
        if column.index not in self.arrays:
            self.arrays[column.index] = self._parse(column.index)
        raw = self.arrays[column.index]
        bad = np.flatnonzero(~np.isfinite(raw))
        if bad.size:
            raise self.error_at(int(bad[0]), column, "expected a finite number")
        return column.convert(raw.astype(float))

    def error_at(self, row: int, column: Column, problem: str) -> FileFormatError:
        """A FileFormatError naming the line (or data row) and column of value ``row``."""
        line = self.line_numbers[row] if self.line_numbers else None
        where = "" if line is not None else f" at data row {row + 1}"
        raw = self.arrays.get(column.index)
        text = self.rows[row][column.index].strip() if self.rows else str(raw[row])
        return FileFormatError(
            self.path, f"{text!r} in column {column.header.strip()!r}{where}; {problem}", line=line
        )

    def _parse(self, index: int) -> np.ndarray:
        tokens = [row[index].strip() for row in self.rows]
        try:
            return np.asarray(tokens, dtype=float)
        except ValueError:
            pass
        for row, token in enumerate(tokens):
            try:
                float(token)
            except ValueError:
                text = f"text {token!r}" if token else "an empty field"
                raise FileFormatError(
                    self.path,
                    f"{text} where a number was expected in column {self.headers[index].strip()!r}",
                    line=self.line_numbers[row],
                ) from None
        raise AssertionError("numpy rejected a column that float() accepts")  # pragma: no cover


def uses_decimal_comma(lines: list[str], sep: str) -> bool:
    """True when numbers in ``lines`` are written with a decimal comma (``6,547E+001``)."""
    if sep == ",":
        return False
    comma = point = 0
    for line in lines:
        for token in line.split(sep) if sep else line.split():
            token = token.strip()
            comma += bool(_DECIMAL_COMMA.match(token))
            point += bool(_DECIMAL_POINT.match(token))
    return comma > 0 and point == 0


def split_row(line: str, sep: str | None, decimal_comma: bool) -> list[str]:
    """Fields of a data line, without the empty fields some exporters leave at the end."""
    if decimal_comma:
        line = line.replace(",", ".")
    fields = line.split(sep) if sep else line.split()
    while fields and not fields[-1].strip():
        fields.pop()
    return fields


def text_table(
    path: str,
    headers: list[str],
    header_line: int,
    lines: list[str],
    first: int,
    stop: int,
    sep: str | None,
    decimal_comma: bool,
    name: str = "",
) -> Table:
    """Split ``lines[first:stop]`` into rows of a table with ``headers`` (blank lines skipped).

    Every row must have as many fields as the header: a shorter row is a truncated file or a
    broken export, and its values would otherwise be read into the wrong columns.
    """
    width = len(headers)
    rows: list[list[str]] = []
    numbers: list[int] = []
    for i in range(first, stop):
        if not lines[i].strip():
            continue
        fields = split_row(lines[i], sep, decimal_comma)
        if len(fields) != width:
            if not rows:
                raise FileFormatError(
                    path,
                    f"the column header at line {header_line} names {width} columns but the "
                    f"data rows have {len(fields)}; columns are {shown_headers(headers)}",
                    line=i + 1,
                )
            last = not any(s.strip() for s in lines[i + 1 : stop])
            hint = " (file truncated?)" if last and len(fields) < width else ""
            raise FileFormatError(
                path, f"row has {len(fields)} fields, expected {width}{hint}", line=i + 1
            )
        rows.append(fields)
        numbers.append(i + 1)
    if not rows:
        raise FileFormatError(path, "no data rows after the column header", line=header_line)
    return Table(path, headers, header_line, rows, numbers, name)
