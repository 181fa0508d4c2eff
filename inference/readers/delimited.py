"""Delimited text tables (CSV, TSV, semicolon-separated; headerless EC-Lab/CHI/ZView exports).

The separator (tab, ``;``, ``,`` or blanks) and a decimal comma are detected from the data
rows; both can be given (``delimiter=``, ``decimal=``). The column header is the last
all-text line before the first numeric row, so metadata lines above it (CH Instruments,
EC-Lab exports without header block) are skipped; ``Instrument Model: X`` lines are kept.

A header row whose separators repeat (``Freq.[Hz]<TAB><TAB>Zs'[ohm]``) is matched to the data
without its empty fields. ``delimiter="whitespace"`` splits at runs of blanks (other names in
:mod:`inference.readers.options`).

Columns are found by their headers (see :mod:`inference.readers.columns`) or named with
``columns={"frequency": "f", "z_real": "Zr", "z_imag": 2}``. A file without header must have
exactly three columns, read as frequency (Hz), Re(Z) and signed Im(Z) (Ω) — the layout of
impedance.py's ``exampleData.csv`` — unless ``columns`` says otherwise.
"""

from __future__ import annotations

import re

from inference.errors import FileFormatError
from inference.readers.columns import resolve
from inference.readers.records import Parsed, check_columns
from inference.readers.table import split_row, text_table, uses_decimal_comma
from inference.readers.textfile import TextFile

_COMMENT = ("#", "%", "//")
_SEPARATORS = ("\t", ";", ",")
_INSTRUMENT = re.compile(r"^\s*Instrument(?: Model)?\s*[:=]\s*(.+?)\s*$", re.IGNORECASE)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def sniff_separator(lines: list[str]) -> str | None:
    """The separator every sampled data line uses the same number of times; None = blanks."""
    for sep in _SEPARATORS:
        counts = {line.rstrip(sep + " ").count(sep) for line in lines}
        if len(counts) == 1 and min(counts) >= 1:
            return sep
    return None


def is_data_row(fields: list[str]) -> bool:
    """At least two fields, most of them numbers (a row with one bad value still counts)."""
    numeric = sum(_is_number(f.strip()) for f in fields)
    return len(fields) >= 2 and 2 * numeric > len(fields)


def looks_delimited(lines: list[str]) -> bool:
    """True when some line of ``lines`` is a numeric table row."""
    content = [line for line in lines if line.strip() and not line.lstrip().startswith(_COMMENT)]
    sep = sniff_separator(content[-10:]) if content else None
    comma = uses_decimal_comma(content[-10:], sep) if content else False
    return any(is_data_row(split_row(line, sep, comma)) for line in content)


def parse(
    tf: TextFile,
    columns: dict | None = None,
    imag_sign: float | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
) -> Parsed:
    """Parse a delimited table: header, separator and decimal mark found from the content."""
    lines = tf.lines
    content = [
        i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith(_COMMENT)
    ]
    tail = [lines[i] for i in content[-20:]]
    sep = None if delimiter == "whitespace" else delimiter or sniff_separator(tail)
    if decimal not in (None, ".", ","):
        raise FileFormatError(tf.path, f"decimal must be '.' or ',', not {decimal!r}")
    decimal_comma = decimal == "," if decimal else uses_decimal_comma(tail, sep)
    first = next((i for i in content if is_data_row(split_row(lines[i], sep, decimal_comma))), None)
    if first is None:
        raise FileFormatError(
            tf.path,
            "no numeric table found; expected an EC-Lab .mpt, Gamry .DTA, ZPlot .z or a "
            "CSV/TSV table with columns such as freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm",
        )
    width = len(split_row(lines[first], sep, decimal_comma))
    header_index = None
    for i in reversed([i for i in content if i < first]):
        fields = split_row(lines[i], sep, decimal_comma=False)
        if len(fields) != width:
            fields = [f for f in fields if f.strip()]
        if len(fields) == width and not any(_is_number(f.strip()) for f in fields):
            header_index = i
            break
    attrs = {"file_encoding": tf.encoding, "delimiter": {"\t": "tab", None: "blank"}.get(sep, sep)}
    for line in lines[: header_index if header_index is not None else first]:
        m = _INSTRUMENT.match(line)
        if m:
            attrs["instrument"] = m.group(1)
    if decimal_comma:
        attrs["decimal"] = ","
    if header_index is None:
        headers = [f"column {k + 1}" for k in range(width)]
        if not columns:
            if width != 3:
                raise FileFormatError(
                    tf.path,
                    f"table without a header row has {width} columns; name them with "
                    "columns={'frequency': 0, 'z_real': 1, 'z_imag': 2} (0-based indices)",
                    line=first + 1,
                )
            columns = {"frequency": 0, "z_real": 1, "z_imag": 2}
        header_line = first + 1
    else:
        headers = split_row(lines[header_index], sep, decimal_comma=False)
        if len(headers) != width:
            headers = [h for h in headers if h.strip()]
        header_line = header_index + 1
    mapping = resolve(tf.path, headers, columns, imag_sign)
    check_columns(tf.path, headers, header_line, mapping)
    table = text_table(tf.path, headers, header_line, lines, first, len(lines), sep, decimal_comma)
    attrs.setdefault("instrument", "unknown")
    return Parsed(tf.path, "csv", [(table, mapping)], attrs)
