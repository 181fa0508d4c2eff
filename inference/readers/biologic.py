"""BioLogic EC-Lab / BT-Lab text export (``.mpt``).

Layout::

    EC-Lab ASCII FILE
    Nb header lines : 61            ← the column header is line 61, data from line 62
    <blank>
    Potentio Electrochemical Impedance Spectroscopy      ← technique
    ...
    Device : SP-150 (SN 10791079)
    ...
    freq/Hz<TAB>Re(Z)/Ohm<TAB>-Im(Z)/Ohm<TAB>...          ← line N
    1.0003201E+003<TAB>6.5470886E+001<TAB>...

Exports from a French or German Windows write decimal commas (``6,5470886E+001``) and Latin-1
characters (``Cs/µF``, ``Temperature/°C``); both are handled. EC-Lab writes ``-Im(Z)``, which
:mod:`inference.readers.columns` negates into the signed ``z_imag``.
"""

from __future__ import annotations

import re

from inference.errors import FileFormatError
from inference.readers.columns import resolve
from inference.readers.records import Parsed, check_columns
from inference.readers.table import split_row, text_table, uses_decimal_comma
from inference.readers.textfile import TextFile

MAGIC = ("EC-Lab ASCII FILE", "BT-Lab ASCII FILE")

#: EC-Lab technique titles → short names stored in the ``technique`` attr.
TECHNIQUES = {
    "potentio electrochemical impedance spectroscopy": "PEIS",
    "galvano electrochemical impedance spectroscopy": "GEIS",
    "staircase potentio electrochemical impedance spectroscopy": "SPEIS",
    "staircase galvano electrochemical impedance spectroscopy": "SGEIS",
    "chronoamperometry / chronocoulometry": "CA",
    "chronoamperometry": "CA",
    "chronopotentiometry": "CP",
    "open circuit voltage": "OCV",
    "constant voltage": "CV",
    "constant current": "CC",
    "modulo bat": "MB",
    "cyclic voltammetry": "CV",
    "linear sweep voltammetry": "LSV",
}

_HEADER_LINES = re.compile(r"^\s*Nb header lines\s*:\s*(\d+)\s*$", re.IGNORECASE)
_DEVICE = re.compile(r"^\s*Device\s*:\s*(.+?)\s*(?:\(SN\s*([^)]*)\))?\s*$")


def is_mpt(first_line: str) -> bool:
    return first_line.strip().upper() in (m.upper() for m in MAGIC)


def parse(tf: TextFile, columns: dict | None = None, imag_sign: float | None = None) -> Parsed:
    """Parse an EC-Lab text export into one table with its column roles and file attrs."""
    lines = tf.lines
    n_header = None
    for line in lines[:5]:
        m = _HEADER_LINES.match(line)
        if m:
            n_header = int(m.group(1))
            break
    if n_header is None:
        raise FileFormatError(
            tf.path, "EC-Lab export without a 'Nb header lines : N' line near the top", line=2
        )
    if n_header < 1 or n_header > len(lines):
        raise FileFormatError(
            tf.path,
            f"header says {n_header} header lines but the file has {len(lines)} lines "
            "(file truncated?)",
            line=2,
        )
    header_index = n_header - 1
    headers = split_row(lines[header_index], "\t", decimal_comma=False)
    sample = lines[n_header : n_header + 20]
    decimal_comma = uses_decimal_comma(sample, "\t")
    mapping = resolve(tf.path, headers, columns, imag_sign)
    check_columns(tf.path, headers, n_header, mapping)
    table = text_table(tf.path, headers, n_header, lines, n_header, len(lines), "\t", decimal_comma)
    attrs = {"technique": _technique(lines[:header_index]), "file_encoding": tf.encoding}
    attrs["instrument"] = _instrument(lines[:header_index])
    if decimal_comma:
        attrs["decimal"] = ","
    return Parsed(tf.path, "biologic-mpt", [(table, mapping)], attrs)


def _technique(header: list[str]) -> str:
    """Short technique name from the title line (line 4), else the title as written."""
    for line in header[2:6]:
        title = line.strip()
        if not title or ":" in title:
            continue
        return TECHNIQUES.get(title.lower(), title)
    return "unknown"


def _instrument(header: list[str]) -> str:
    for line in header:
        m = _DEVICE.match(line)
        if m:
            return f"BioLogic {m.group(1).strip()}"
    return "BioLogic"
