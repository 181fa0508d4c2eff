"""Gamry Framework data files (``.DTA``).

Layout: ``EXPLAIN`` on line 1, then tab-separated ``KEY<TAB>TYPE<TAB>VALUE<TAB>label`` lines
(``TAG EISPOT``, ``PSTAT PSTAT REF3000-34128``, ``EXPERIMENTABORTED TOGGLE T``…) and tables::

    ZCURVE<TAB>TABLE
    <TAB>Pt<TAB>Time<TAB>Freq<TAB>Zreal<TAB>Zimag<TAB>...     ← names
    <TAB>#<TAB>s<TAB>Hz<TAB>ohm<TAB>ohm<TAB>...               ← units
    <TAB>0<TAB>1<TAB>200015.6<TAB>825.8584<TAB>-1367.239...   ← rows start with a TAB

``ZCURVE`` tables are impedance spectra (``Zimag`` is signed: negative for a capacitive arc);
``CURVE`` tables of DC techniques (CHRONOA, CHRONOP…) hold ``T`` (s), ``Vf`` (V), ``Im`` (A)
and the applied signal ``Sig``. ``OCVCURVE`` (the open-circuit wait before a run) is ignored.
An aborted run (``EXPERIMENTABORTED TOGGLE T``) keeps the points measured so far; the reader
returns them with ``experiment_aborted = 1`` in the attrs.

Drift-corrected EIS (Framework's "drift correction" option) writes ``ZrealDrCor`` and
``ZimagDrCor`` beside the raw ``Zreal``/``Zimag`` of the same ``ZCURVE``. Both are read: the
table gives two spectra, raw (``drift_corrected = 0``) then corrected (``drift_corrected = 1``);
:func:`~inference.readers.read_spectrum` returns the corrected one, ``read_spectra`` both.
"""

from __future__ import annotations

from dataclasses import replace

from inference.errors import FileFormatError
from inference.readers.columns import Column, resolve
from inference.readers.records import Parsed
from inference.readers.table import split_row, text_table, uses_decimal_comma
from inference.readers.textfile import TextFile

#: Gamry experiment tags → short names stored in the ``technique`` attr.
TECHNIQUES = {
    "EISPOT": "PEIS",
    "EISGALV": "GEIS",
    "GALVEIS": "GEIS",
    "CHRONOA": "CA",
    "CHRONOP": "CP",
    "CORPOT": "OCV",
}

# Gamry's own column names; units are fixed by the format (SI, temperature in °C).
_COLUMNS = {
    "Freq": ("frequency", "Hz"),
    "Zreal": ("z_real", "Ohm"),
    "Zimag": ("z_imag", "Ohm"),
    "T": ("time", "s"),
    "Vf": ("voltage", "V"),
    "Im": ("current", "A"),
    "Sig": ("control", "V"),
    "Temp": ("temperature", "K"),
}
_DRIFT_CORRECTED = {"ZrealDrCor": "z_real", "ZimagDrCor": "z_imag"}


def is_dta(first_lines: list[str]) -> bool:
    return (
        bool(first_lines)
        and first_lines[0].strip() == "EXPLAIN"
        and any(line.startswith("TAG\t") for line in first_lines[1:5])
    )


def parse(tf: TextFile, columns: dict | None = None, imag_sign: float | None = None) -> Parsed:
    """Parse a Gamry ``.DTA`` file: every ZCURVE and CURVE table, with the file's attrs."""
    lines = tf.lines
    attrs: dict = {"file_encoding": tf.encoding}
    tables = []
    i = 1
    while i < len(lines):
        fields = lines[i].split("\t")
        key = fields[0].strip()
        kind = fields[1].strip() if len(fields) > 1 else ""
        if kind == "NOTES" and len(fields) > 2 and fields[2].strip().isdigit():
            i += 1 + int(fields[2])
            continue
        if kind == "TABLE":
            i = _read_table(tf, i, key, tables, columns, imag_sign, attrs.get("technique"))
            continue
        value = fields[2].strip() if len(fields) > 2 else ""
        if key == "TAG":
            attrs["technique"] = TECHNIQUES.get(fields[1].strip(), fields[1].strip())
        elif key == "PSTAT" and kind == "PSTAT":
            attrs["instrument"] = f"Gamry {value}"
        elif key == "EXPERIMENTABORTED" and kind == "TOGGLE" and value == "T":
            attrs["experiment_aborted"] = 1
        i += 1
    if not tables:
        raise FileFormatError(tf.path, "Gamry file without a ZCURVE or CURVE data table")
    attrs.setdefault("instrument", "Gamry")
    return Parsed(tf.path, "gamry-dta", tables, attrs)


def _read_table(
    tf: TextFile, i: int, name: str, tables: list, spec, imag_sign, technique: str | None
) -> int:
    """Read the table whose ``NAME TABLE`` line is ``lines[i]``; return the index after it."""
    lines = tf.lines
    end = i + 3
    while end < len(lines) and lines[end].startswith("\t"):
        end += 1
    if name != "ZCURVE" and not name.startswith("CURVE"):
        return end
    if i + 2 >= len(lines):
        raise FileFormatError(tf.path, f"table {name} has no header (file truncated?)", line=i + 1)
    headers = split_row(lines[i + 1], "\t", decimal_comma=False)
    decimal_comma = uses_decimal_comma(lines[i + 3 : i + 23], "\t")
    table = text_table(tf.path, headers, i + 2, lines, i + 3, end, "\t", decimal_comma, name)
    if spec:
        tables.append((table, resolve(tf.path, headers, spec, imag_sign)))
        return end
    mapping, corrected = {}, {}
    for index, header in enumerate(headers):
        role, unit = _COLUMNS.get(header.strip(), (None, None))
        if role == "control" and technique == "CP":
            unit = "A"  # galvanostatic techniques apply a current
        if role is not None:
            offset = 273.15 if role == "temperature" else 0.0
            mapping[role] = Column(role, index, header, offset=offset, unit=unit)
        if header.strip() in _DRIFT_CORRECTED:
            role = _DRIFT_CORRECTED[header.strip()]
            corrected[role] = Column(role, index, header, unit="Ohm")
    if imag_sign is not None:
        for roles in (mapping, corrected):
            if "z_imag" in roles:
                roles["z_imag"] = replace(roles["z_imag"], sign=float(imag_sign))
    if len(corrected) < 2:
        tables.append((table, mapping))
        return end
    tables.append((replace(table, attrs={"drift_corrected": 0}), mapping))
    tables.append((replace(table, attrs={"drift_corrected": 1}), {**mapping, **corrected}))
    return end
