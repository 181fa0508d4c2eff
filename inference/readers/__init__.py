"""Instrument file readers: impedance spectra and DC records as validated xarray Datasets.

>>> from inference.readers import read_spectrum, read_spectra, read_dc
>>> ds = read_spectrum("tests/data/instrument-files/exampleDataBioLogic.mpt")
>>> ds.attrs["instrument"]
'BioLogic SP-150'

Formats, recognised from the file's content (the extension is not consulted):

===============  ====================================================  ==================
``format``       files                                                 module
===============  ====================================================  ==================
biologic-mpt     BioLogic EC-Lab/BT-Lab text export ``.mpt``           ``biologic``
biologic-mpr     BioLogic EC-Lab binary ``.mpr`` (needs sigmalab[mpr])  ``biologic_mpr``
gamry-dta        Gamry Framework ``.DTA`` (ZCURVE, CURVE tables;       ``gamry``
                 drift-corrected ZCURVE: raw and corrected spectra)
zplot            Scribner ZPlot/ZView ``.z`` (Solartron analysers),    ``zplot``
                 ZPlotW / Z60W ``"… Data File: Version"`` exports
novocontrol      Novocontrol WinDETA/NEISYS text (``Fixed value(s)``   ``novocontrol``
                 line, ``Freq.[Hz]  Zs'[ohm]  Zs''[ohm]``)
versastudio-par  Princeton Applied Research VersaStudio ``.par``       ``versastudio``
csv              CSV, TSV, ``;``-separated or blank-aligned tables,    ``delimited``
                 with or without header, decimal point or comma:
                 CH Instruments, Metrohm Autolab/Nova, Parstat,
                 Solartron PowerSuite, PalmSens, RelaxIS, Zahner…
===============  ====================================================  ==================

Column headers are recognised in any case and spacing, with units after a slash, in brackets
or in parentheses (see :mod:`inference.readers.columns`); polar files (``|Z|``/``Zmod``/
``Mod(Z)`` with a phase in degrees, either sign) are converted exactly to Re/Im.

Sign convention: ``Z = z_real + j·z_imag`` (Ω); a capacitive arc has ``z_imag < 0`` whatever
the file stores (EC-Lab's ``-Im(Z)`` and Nova's ``-Z''`` are negated, Gamry's ``Zimag`` and
ZPlot's ``Z''`` are already signed).

Options (keyword arguments of every reader; spellings in :mod:`inference.readers.options`)
    ``format``     skip detection and read as this format (one of :data:`FORMATS`).
    ``max_bytes``  largest file accepted, default :data:`MAX_FILE_BYTES` (20 MB); the size is
                   checked before anything is read.
    ``columns``    explicit columns, ``{"frequency": "f", "z_real": "Zr", "z_imag": 2}`` or
                   ``"f,Zr,2"``: header text or 0-based index; roles in
                   :data:`inference.readers.columns.ROLES`.
    ``imag_sign``  +1 or -1: force the sign applied to the imaginary (or phase) column (-1 for
                   a file that stores -Im(Z) under a header that does not say so).
    ``delimiter``, ``decimal``  separator and decimal mark of text tables (default: detected).

Every problem with a file raises :class:`~inference.errors.FileFormatError` with a one-line
message naming the file, the line when known, and what was expected. An aborted Gamry run
is read up to the abort: the Dataset has ``experiment_aborted = 1`` and a ``UserWarning`` is
issued.
"""

from __future__ import annotations

import warnings

import xarray as xr

from inference.errors import FileFormatError, InputError
from inference.readers import (
    biologic,
    biologic_mpr,
    delimited,
    gamry,
    novocontrol,
    records,
    versastudio,
    zplot,
)
from inference.readers.columns import shown_headers
from inference.readers.options import OPTIONS, check_options
from inference.readers.records import Parsed
from inference.readers.textfile import (
    MAX_FILE_BYTES,
    check_file,
    decode,
    is_utf16,
    load_text,
    looks_binary,
    read_head,
)

FORMATS = (
    "biologic-mpt",
    "biologic-mpr",
    "gamry-dta",
    "zplot",
    "novocontrol",
    "versastudio-par",
    "csv",
)

#: Bytes read to recognise a text format (a CSV's metadata block may be long).
_DETECT_BYTES = 65536

__all__ = [
    "FORMATS",
    "MAX_FILE_BYTES",
    "OPTIONS",
    "detect_format",
    "read_dc",
    "read_records",
    "read_spectra",
    "read_spectrum",
]


def detect_format(path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The format of ``path`` from its content: one of :data:`FORMATS`.

    Raises
    ------
    FileFormatError
        Missing, empty, too large or binary file, or text that is no known export.
    """
    check_file(path, max_bytes)
    head = read_head(path, _DETECT_BYTES)
    if head.startswith(biologic_mpr.MAGIC):
        return "biologic-mpr"
    if not is_utf16(head) and looks_binary(head[:8192]):
        raise FileFormatError(path, "binary file, not a text export")
    text, _ = decode(head)
    lines = text.splitlines()
    content = [line for line in lines if line.strip()]
    if not content:
        raise FileFormatError(path, "file is empty (only blank lines)")
    if biologic.is_mpt(content[0]):
        return "biologic-mpt"
    if gamry.is_dta(lines[:6]):
        return "gamry-dta"
    if zplot.is_zplot(content[0]):
        return "zplot"
    if versastudio.is_par(lines[:6]):
        return "versastudio-par"
    if novocontrol.is_novocontrol(content[:6]):
        return "novocontrol"
    if delimited.looks_delimited(lines[:-1] if len(head) == _DETECT_BYTES else lines):
        return "csv"
    raise FileFormatError(
        path,
        "not a recognised instrument export: expected an EC-Lab .mpt/.mpr, Gamry .DTA, "
        "ZPlot .z, Novocontrol, VersaStudio .par or a text table with columns such as "
        "freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm (see 'reading a file the detector does not know')",
    )


def _parse(path, options: dict) -> Parsed:
    options = check_options(options)
    max_bytes = options.get("max_bytes") or MAX_FILE_BYTES
    fmt = options.get("format") or detect_format(path, max_bytes)
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; formats are {', '.join(FORMATS)}")
    imag_sign = options.get("imag_sign")
    columns = options.get("columns")
    if fmt == "biologic-mpr":
        check_file(path, max_bytes)
        return biologic_mpr.parse(path, columns, imag_sign)
    tf = load_text(path, max_bytes)
    if fmt == "biologic-mpt":
        return biologic.parse(tf, columns, imag_sign)
    if fmt == "gamry-dta":
        return gamry.parse(tf, columns, imag_sign)
    if fmt == "zplot":
        return zplot.parse(tf, columns, imag_sign)
    if fmt == "versastudio-par":
        return versastudio.parse(tf, columns, imag_sign)
    text_options = (columns, imag_sign, options.get("delimiter"), options.get("decimal"))
    if fmt == "novocontrol":
        return novocontrol.parse(tf, *text_options)
    return delimited.parse(tf, *text_options)


def _warn_if_aborted(ds: xr.Dataset, n: int) -> None:
    if ds.attrs.get("experiment_aborted"):
        warnings.warn(
            f"{ds.attrs['source_file']}: the run was aborted; read the {n} points measured "
            "before the abort",
            UserWarning,
            stacklevel=3,
        )


def read_spectra(path, **options) -> list[xr.Dataset]:
    """Every impedance spectrum in ``path``, one Dataset per sweep, in file order.

    Sweeps are split at changes of EC-Lab's ``cycle number``, at frequency restarts (the
    frequency turns back after sweeping one way), per Gamry ``ZCURVE`` table and per
    Novocontrol block. A drift-corrected Gamry ``ZCURVE`` gives the raw spectrum
    (``drift_corrected = 0``) and the corrected one (``drift_corrected = 1``). Rows with
    frequency 0 (the DC segment of a Parstat/VersaStudio run) are left out and counted in
    ``rows_without_frequency``. Each Dataset has attrs ``spectrum_index`` (0-based) and
    ``n_spectra``.

    Returns
    -------
    list of xr.Dataset
        dim ``frequency`` (Hz), variables ``z_real``, ``z_imag`` (Ω, Z = z_real + j·z_imag);
        attrs ``source_file``, ``format``, ``instrument``, ``technique`` and
        ``temperature_K`` where the file states it (mean of a temperature column).
    """
    found = records.spectra(_parse(path, options))
    if found:
        _warn_if_aborted(found[-1], sum(ds.sizes["frequency"] for ds in found))
    return found


def read_spectrum(path, **options) -> xr.Dataset:
    """The single impedance spectrum in ``path`` (see :func:`read_spectra` for the Dataset).

    Of a drift-corrected Gamry spectrum, the corrected one (``drift_corrected = 1``).

    Raises
    ------
    FileFormatError
        The file holds several spectra (use :func:`read_spectra`), a DC record (use
        :func:`read_dc`) or cannot be read.
    """
    found = _preferred(records.spectra(_parse(path, options)))
    if len(found) > 1:
        lines = [ds.attrs.get("first_line") for ds in found]
        where = (
            f" (sweeps start at lines {', '.join(str(x) for x in lines[:5])}"
            f"{', ...' if len(lines) > 5 else ''})"
            if all(lines)
            else ""
        )
        raise FileFormatError(
            path, f"holds {len(found)} spectra{where}; use read_spectra to read them all"
        )
    _warn_if_aborted(found[0], found[0].sizes["frequency"])
    return found[0]


def _preferred(found: list[xr.Dataset]) -> list[xr.Dataset]:
    """The drift-corrected spectra where a file gives raw and corrected ones of each sweep."""
    corrected = [ds for ds in found if ds.attrs.get("drift_corrected") == 1]
    return corrected if corrected and 2 * len(corrected) == len(found) else found


def read_dc(path, **options) -> xr.Dataset:
    """The DC polarization / chronoamperometry record in ``path``.

    Bias steps come from EC-Lab's sequence index ``Ns``, else from changes of the applied
    set-point (``control/V``, Gamry ``Sig``), else from jumps in the measured voltage.

    Returns
    -------
    xr.Dataset
        dim ``time``; coords ``time_s`` (s), ``step`` (0-based); variables ``voltage_V`` (V,
        measured), ``current_A`` (A; converted from mA/µA as the header says); attrs
        ``n_steps``, ``step_bias_V`` (set-point, else median measured voltage, per step),
        ``source_file``, ``format``, ``instrument``, ``technique``, ``temperature_K`` if stated.
    """
    ds = records.dc_record(_parse(path, options))
    _warn_if_aborted(ds, ds.sizes["time"])
    return ds


def read_records(path, **options) -> list[xr.Dataset]:
    """Whatever ``path`` holds: its spectra, or a one-element list with its DC record.

    Spectra have dim ``frequency``, a DC record dim ``time``. Used by ``sigmalab inspect``.
    """
    parsed = _parse(path, options)
    if any(records.is_spectrum(columns) for _, columns in parsed.tables):
        found = records.spectra(parsed)
        _warn_if_aborted(found[-1], sum(ds.sizes["frequency"] for ds in found))
        return found
    if any(records.is_dc(columns) for _, columns in parsed.tables):
        ds = records.dc_record(parsed)
        _warn_if_aborted(ds, ds.sizes["time"])
        return [ds]
    table = parsed.tables[0][0]
    raise FileFormatError(
        path,
        "neither impedance columns (freq/Hz, Re(Z)/Ohm, -Im(Z)/Ohm) nor DC columns (time/s, "
        f"Ewe/V, I/mA) found; columns are {shown_headers(table.headers)}",
        line=table.header_line,
    )
