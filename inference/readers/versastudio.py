"""Princeton Applied Research VersaStudio data files (``.par``).

Layout: ``<Section>`` … ``</Section>`` blocks of ``key=value`` lines (``<Application>``,
``<Instrument>`` with ``Type=VersaSTAT4``, ``<Action1>`` with ``Name=Potentiostatic EIS``) and
one ``<SegmentN>`` block per measured segment::

    <Segment1>
    Type=2
    Version=3
    Definition=Segment #, Point #, E(V), I(A), Elapsed Time(s), ..., Frequency(Hz), ...,
               Z Real, Z Imag, ...                     ← column names, comma-separated
    0,0,0,-3.282372E-06,1.812,...,100000,...,55.31571,4.575431,...
    </Segment1>

``Z Imag`` is signed (capacitive arcs negative). Each segment is a table; the column names are
those of :mod:`inference.readers.columns` (``Frequency(Hz)``, ``Z Real``, ``E(V)``, ``I(A)``).
"""

from __future__ import annotations

import re

from inference.errors import FileFormatError
from inference.readers.columns import resolve
from inference.readers.records import Parsed, check_columns
from inference.readers.table import text_table, uses_decimal_comma
from inference.readers.textfile import TextFile

_SEGMENT = re.compile(r"^\s*<Segment(\d+)>\s*$", re.IGNORECASE)
_TECHNIQUES = {"potentiostatic eis": "PEIS", "galvanostatic eis": "GEIS"}


def is_par(first_lines: list[str]) -> bool:
    """True for a VersaStudio ``.par`` file (its first section is ``<Application>``)."""
    head = [line.strip() for line in first_lines if line.strip()]
    return bool(head) and head[0] == "<Application>" and any("VersaStudio" in h for h in head)


def parse(tf: TextFile, columns: dict | None = None, imag_sign: float | None = None) -> Parsed:
    """Parse every ``<SegmentN>`` table of a ``.par`` file."""
    lines = tf.lines
    attrs: dict = {"file_encoding": tf.encoding}
    section, tables = "", []
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith("</"):
            section = ""
            continue
        m = _SEGMENT.match(text)
        if m:
            tables.append(_segment(tf, i, columns, imag_sign))
            continue
        if text.startswith("<") and text.endswith(">") and "=" not in text:
            section = text[1:-1]
            continue
        key, _, value = text.partition("=")
        if section == "Instrument" and key == "Type":
            attrs["instrument"] = f"Princeton Applied Research {value.strip()}"
        elif section.startswith("Action") and key == "Name" and value.strip() != "Common":
            attrs["technique"] = _TECHNIQUES.get(value.strip().lower(), value.strip())
    if not tables:
        raise FileFormatError(tf.path, "VersaStudio file without a <Segment> data block")
    attrs.setdefault("instrument", "Princeton Applied Research VersaStudio")
    return Parsed(tf.path, "versastudio-par", tables, attrs)


def _segment(tf: TextFile, i: int, spec, imag_sign):
    lines = tf.lines
    name = lines[i].strip()[1:-1]
    end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("</")), None)
    if end is None:
        raise FileFormatError(tf.path, f"<{name}> is not closed (file truncated?)", line=i + 1)
    definition = next(
        (j for j in range(i + 1, end) if lines[j].strip().startswith("Definition=")), None
    )
    if definition is None:
        raise FileFormatError(tf.path, f"<{name}> has no 'Definition=' column list", line=i + 1)
    headers = [h.strip() for h in lines[definition].split("=", 1)[1].split(",")]
    first = definition + 1
    rows = [lines[j] for j in range(first, min(end, first + 20)) if lines[j].strip()]
    if rows:
        # The definition ends in a count ("…, AC Amplitude, 0") that no data row has.
        width = len(rows[0].split(","))
        while len(headers) > width and headers[-1].replace(".", "").isdigit():
            headers.pop()
    decimal_comma = uses_decimal_comma(rows, ",")
    mapping = resolve(tf.path, headers, spec, imag_sign)
    check_columns(tf.path, headers, definition + 1, mapping)
    table = text_table(
        tf.path, headers, definition + 1, lines, first, end, ",", decimal_comma, name
    )
    return table, mapping
