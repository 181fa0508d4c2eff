"""Novocontrol WinDETA / NEISYS text exports (dielectric and impedance analysers).

Layout (blank-padded, tab-separated; one block per fixed value, e.g. per temperature)::

    s04147-160deg                                          ← title (sample name)
    Diameter[mm]: 1.300e+01  Thickness[mm]: 7.500e-01 ...  ← optional sample geometry
    Fixed value(s) :  AC Volt  [Vrms]=3.5000e-02           ← what was held fixed
       Freq.[Hz]   <TAB>Zs'[ohm]  <TAB>Zs''[ohm]           ← column header (optional)
     1.00000e+06<TAB> 2.11122e+04<TAB>-3.95568e+04

``Zs''`` is stored signed (capacitive arcs negative). A ``Temperature [°C]=…`` (or ``[K]``)
entry of a fixed-value line is the block's ``temperature_K``; a file with several
``Fixed value(s)`` lines holds one spectrum per block. Without a header row the columns are
frequency, Z', Z'' (the WinDETA default). The geometry line is kept as ``sample_diameter_mm``
and ``sample_thickness_mm``.
"""

from __future__ import annotations

import re

from inference.errors import FileFormatError
from inference.readers.columns import resolve
from inference.readers.delimited import is_data_row, sniff_separator
from inference.readers.records import Parsed, check_columns
from inference.readers.table import split_row, text_table, uses_decimal_comma
from inference.readers.textfile import TextFile

_FIXED = re.compile(r"^\s*fixed\s+value", re.IGNORECASE)
_NUMBER = r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)"
_TEMPERATURE = re.compile(
    r"temp(?:erature)?\.?\s*\[\s*(°?\s*C|K|deg\s*C)\s*\]\s*=\s*" + _NUMBER, re.IGNORECASE
)
_GEOMETRY = re.compile(r"(Diameter|Thickness)\s*\[mm\]\s*:\s*" + _NUMBER, re.IGNORECASE)


def is_novocontrol(first_lines: list[str]) -> bool:
    """True when a ``Fixed value(s)`` line opens the file's first block."""
    return any(_FIXED.match(line) for line in first_lines[:6])


def parse(
    tf: TextFile,
    columns: dict | None = None,
    imag_sign: float | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
) -> Parsed:
    """Parse every fixed-value block of a Novocontrol export into one table each."""
    lines = tf.lines
    # Without a fixed-value line (format="novocontrol" forced) the whole file is one block.
    starts = [i for i, line in enumerate(lines) if _FIXED.match(line)] or [-1]
    attrs: dict = {"instrument": "Novocontrol", "technique": "EIS", "file_encoding": tf.encoding}
    title = lines[0].strip() if starts[0] > 0 else ""
    if title:
        attrs["title"] = title
    for line in lines[: starts[0]]:
        for name, value in _GEOMETRY.findall(line):
            # the first of each: a later "Electrode Thickness[mm]" is the electrodes'
            attrs.setdefault(f"sample_{name.lower()}_mm", float(value))
    tables = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(lines)
        tables.append(_block(tf, start, stop, columns, imag_sign, delimiter, decimal, k))
    return Parsed(tf.path, "novocontrol", tables, attrs)


def _block(tf: TextFile, start: int, stop: int, spec, imag_sign, delimiter, decimal, k: int):
    lines = tf.lines
    body = [i for i in range(start + 1, stop) if lines[i].strip()]
    if not body:
        raise FileFormatError(tf.path, "no data after the 'Fixed value(s)' line", line=start + 1)
    fixed = lines[start] if start >= 0 else ""
    sample = [lines[i] for i in body[1:21]] or [lines[body[0]]]
    sep = None if delimiter == "whitespace" else delimiter or sniff_separator(sample)
    decimal_comma = decimal == "," if decimal else uses_decimal_comma(sample, sep)
    first_fields = split_row(lines[body[0]], sep, decimal_comma)
    if is_data_row(first_fields):
        width = len(first_fields)
        if not spec and width != 3:
            raise FileFormatError(
                tf.path,
                f"block without a header row has {width} columns; name them with "
                "columns={'frequency': 0, 'z_real': 1, 'z_imag': 2} (0-based indices)",
                line=body[0] + 1,
            )
        headers = [f"column {j + 1}" for j in range(width)]
        spec = spec or {"frequency": 0, "z_real": 1, "z_imag": 2}
        header_line, first = body[0] + 1, body[0]
    else:
        headers = [h for h in split_row(lines[body[0]], sep, False) if h.strip()]
        header_line, first = body[0] + 1, body[0] + 1
    end = next(
        (
            i
            for i in body
            if i >= first and not is_data_row(split_row(lines[i], sep, decimal_comma))
        ),
        stop,
    )
    mapping = resolve(tf.path, headers, spec, imag_sign)
    check_columns(tf.path, headers, header_line, mapping)
    table = text_table(
        tf.path, headers, header_line, lines, first, end, sep, decimal_comma, f"block {k + 1}"
    )
    temperature = _TEMPERATURE.search(fixed)
    if temperature:
        unit, value = temperature.groups()
        offset = 0.0 if unit.strip().upper() == "K" else 273.15
        table.attrs["temperature_K"] = float(value) + offset
    if fixed:
        table.attrs["fixed_values"] = fixed.split(":", 1)[-1].strip()
    return table, mapping
