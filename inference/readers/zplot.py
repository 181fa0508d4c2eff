"""Scribner ZPlot / ZView data files (``.z``), common with Solartron analysers.

Two layouts occur:

``ZPLOT2 ASCII`` (ZPlot 3.x)
    ``Key: value`` settings (``Experiment Type: Sweep Frequency, Control Voltage``,
    ``Data Points: 56``), the tab-separated column header, a line ``End Comments``, then the
    tab-separated rows.
``"ZPlotW Data File: Version 3.2c"`` (older ZPlotW; also ``"Z60W Data File: Version 1.1"``)
    a few quoted lines, the number of points on its own line, the quoted column header
    ``"  Freq(Hz)    Ampl  ...  Z'(a)    Z''(b) ..."`` (columns apart by blanks, a unit in
    parentheses may follow its name after one blank: ``Freq (Hz)``), then comma-separated
    rows.

``Z'(a)`` is Re(Z) and ``Z''(b)`` the signed Im(Z). The point count stated by the file is
kept as ``points_planned``: ZPlot writes the planned count, and sweeps stopped early have fewer
rows.
"""

from __future__ import annotations

import re

from inference.errors import FileFormatError
from inference.readers.columns import resolve, unquote
from inference.readers.records import Parsed, check_columns
from inference.readers.table import split_row, text_table, uses_decimal_comma
from inference.readers.textfile import TextFile

_SETTING = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")
_DATA_FILE = re.compile(r"^(?P<program>\w+) Data File: Version\s*(?P<version>\S*)")


def is_zplot(first_line: str) -> bool:
    text = unquote(first_line)
    return text.upper().startswith("ZPLOT2 ASCII") or bool(_DATA_FILE.match(text))


def parse(tf: TextFile, columns: dict | None = None, imag_sign: float | None = None) -> Parsed:
    """Parse a ZPlot ``.z`` file (either layout) into one spectrum table."""
    if unquote(tf.lines[0]).upper().startswith("ZPLOT2 ASCII"):
        headers, header_index, sep, declared, attrs = _zplot2(tf)
    else:
        headers, header_index, sep, declared, attrs = _zplotw(tf)
    mapping = resolve(tf.path, headers, columns, imag_sign)
    check_columns(tf.path, headers, header_index + 1, mapping)
    lines = tf.lines
    first = header_index + (2 if sep == "\t" else 1)
    decimal_comma = uses_decimal_comma(lines[first : first + 20], sep)
    table = text_table(
        tf.path, headers, header_index + 1, lines, first, len(lines), sep, decimal_comma
    )
    if declared is not None:
        # The count is the planned sweep, written before measuring: a sweep stopped early
        # (both real files in tests/data do) has fewer rows, so this is recorded, not checked.
        attrs["points_planned"] = declared
    attrs["file_encoding"] = tf.encoding
    return Parsed(tf.path, "zplot", [(table, mapping)], attrs)


def _technique(experiment: str) -> str:
    text = experiment.lower()
    if "frequency" in text and "current" in text:
        return "GEIS"
    if "frequency" in text:
        return "PEIS"
    return experiment.strip() or "unknown"


def _zplot2(tf: TextFile):
    lines = tf.lines
    settings: dict[str, str] = {}
    end = next((i for i, line in enumerate(lines) if line.strip() == "End Comments"), None)
    if end is None or end == 0:
        raise FileFormatError(tf.path, "ZPlot file without an 'End Comments' line before the data")
    for line in lines[1:end]:
        m = _SETTING.match(line)
        if m:
            settings.setdefault(m.group(1), m.group(2))
    headers = split_row(lines[end - 1], "\t", decimal_comma=False)
    declared = settings.get("Data Points")
    attrs = {
        "instrument": f"Scribner ZPlot {settings.get('Measured Data, ZPlot', '')}".strip(),
        "technique": _technique(settings.get("Experiment Type", "")),
    }
    # Header is lines[end - 1] and data starts after "End Comments" (= header + 2).
    return headers, end - 1, "\t", int(declared) if declared and declared.isdigit() else None, attrs


def _zplotw(tf: TextFile):
    lines = tf.lines
    header_index = next(
        (
            i
            for i, line in enumerate(lines[:40])
            if re.search(r"Freq\s*\(Hz\)", line) and line.strip()[0] == '"'
        ),
        None,
    )
    if header_index is None:
        raise FileFormatError(tf.path, "ZPlotW file without a quoted 'Freq(Hz) ...' column header")
    headers = re.split(r"\s+(?!\()", unquote(lines[header_index]))
    count = lines[header_index - 1].strip()
    m = _DATA_FILE.match(unquote(lines[0]))
    program = "Scribner ZPlotW" if m["program"] == "ZPlotW" else m["program"]
    attrs = {
        "instrument": f"{program} {m['version']}".strip(),
        "technique": _technique(unquote(lines[2]) if len(lines) > 2 else ""),
    }
    return headers, header_index, ",", int(count) if count.isdigit() else None, attrs
