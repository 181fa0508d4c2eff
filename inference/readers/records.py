"""From parsed tables to validated spectra and DC records (via ``make_spectrum`` / ``make_dc``).

Every format module returns a :class:`Parsed`: its tables with their column roles and the
file-level attrs. This module splits sweeps, converts units and builds the Datasets, so that
the rules (what is a spectrum, where a sweep ends, how bias steps are found) are the same for
every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from inference.errors import FileFormatError
from inference.readers.columns import Column, shown_headers
from inference.readers.table import Table
from inference.spectrum import identify_steps, make_dc, make_spectrum

#: Temperatures outside this range (°C) are sensor-absent placeholders (Gamry writes -327.67).
PLAUSIBLE_TEMPERATURE_C = (-150.0, 1500.0)

_EXAMPLE_HEADER = {
    "frequency": "freq/Hz",
    "z_real": "Re(Z)/Ohm",
    "z_imag": "-Im(Z)/Ohm or Im(Z)/Ohm",
    "z_mod": "|Z|/Ohm",
    "phase": "Phase(Z)/deg",
    "time": "time/s",
    "voltage": "Ewe/V",
    "current": "I/mA",
}


@dataclass
class Parsed:
    """What a format module found in a file.

    Attributes
    ----------
    path : the file.
    format : short format name stored as the ``format`` attr (``biologic-mpt``, ``gamry-dta``…).
    tables : each table with the roles of its columns.
    attrs : file-level attrs (``instrument``, ``technique``, ``experiment_aborted``…).
    """

    path: str
    format: str
    tables: list[tuple[Table, dict[str, Column]]] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)


def is_spectrum(columns: dict[str, Column]) -> bool:
    return (
        "frequency" in columns
        or {"z_real", "z_imag"} <= columns.keys()
        or {"z_mod", "phase"} <= columns.keys()
    )


def is_dc(columns: dict[str, Column]) -> bool:
    return not is_spectrum(columns) and {"time", "voltage", "current"} <= columns.keys()


def _require(parsed: Parsed, table: Table, columns: dict[str, Column], roles, what: str) -> None:
    for role in roles:
        if role not in columns:
            raise FileFormatError(
                parsed.path,
                f"no {role.replace('_', ' ')} column (such as {_EXAMPLE_HEADER[role]!r}) for "
                f"{what}; columns are {shown_headers(table.headers)}",
                line=table.header_line,
            )


def check_columns(path, headers: list[str], header_line: int | None, columns) -> None:
    """Fail at the header for impedance columns without a frequency column.

    Checked before the rows are split: an export that lost a column name (impedance.py's
    ``exampleDataBioLogic_MissingFreq.mpt``) would otherwise fail later with a confusing
    field-count error.
    """
    impedance = ("z_real", "z_imag", "z_mod", "phase")
    if any(role in columns for role in impedance) and "frequency" not in columns:
        raise FileFormatError(
            path,
            f"no frequency column (such as 'freq/Hz') next to the impedance columns; "
            f"columns are {shown_headers(headers)}",
            line=header_line,
        )


def sweep_starts(frequency_Hz: np.ndarray, cycle: np.ndarray | None = None) -> list[int]:
    """Indices where a new frequency sweep begins.

    A sweep ends where the ``cycle`` index changes, or where the frequency turns back (rises
    after falling, or falls after rising): instruments sweep in one direction per spectrum.
    """
    f = np.asarray(frequency_Hz, dtype=float)
    starts = {0}
    if cycle is not None:
        starts.update(int(i) + 1 for i in np.flatnonzero(np.diff(cycle) != 0))
    direction = 0.0
    for i in range(1, f.size):
        if i in starts:
            direction = 0.0
            continue
        step = np.sign(f[i] - f[i - 1])
        if direction == 0.0:
            direction = step
        elif step != 0.0 and step != direction:
            starts.add(i)
            direction = 0.0
    return sorted(starts)


def _temperature_K(table: Table, columns: dict[str, Column]) -> np.ndarray | None:
    return table.values(columns["temperature"]) if "temperature" in columns else None


def _mean_plausible(t_K: np.ndarray | None, keep, sl: slice) -> float | None:
    """Mean temperature of the rows ``keep[sl]``; None where the sensor wrote a placeholder."""
    if t_K is None:
        return None
    t_K = t_K[keep][sl]
    low, high = (c + 273.15 for c in PLAUSIBLE_TEMPERATURE_C)
    if t_K.size == 0 or np.any(t_K < low) or np.any(t_K > high):
        return None
    return float(np.mean(t_K))


def _impedance(parsed: Parsed, table: Table, columns: dict[str, Column]):
    """Frequency, Re Z and signed Im Z of a table's impedance rows, and which rows they are.

    Rows with frequency 0 are the DC part of a combined technique (Parstat/VersaStudio write
    the open-circuit or bias segment into the same table) and are left out. Polar files
    (|Z| and phase, no Re/Im columns) are converted exactly: Z = |Z|·(cos φ + j sin φ).
    """
    f = table.values(columns["frequency"]) if "frequency" in columns else None
    if f is None:
        _require(parsed, table, columns, ("frequency",), "a spectrum")
    keep = f != 0
    if not keep.any():
        raise FileFormatError(
            parsed.path,
            f"every row has frequency 0 in column {columns['frequency'].header.strip()!r}: "
            "no impedance data",
            line=table.header_line,
        )
    if {"z_real", "z_imag"} <= columns.keys():
        z_real = table.values(columns["z_real"])
        z_imag = table.values(columns["z_imag"])
    elif {"z_mod", "phase"} <= columns.keys():
        modulus = table.values(columns["z_mod"])
        phase_deg = table.values(columns["phase"])
        out = np.flatnonzero(keep & (np.abs(phase_deg) > 180.0))
        if out.size:
            raise table.error_at(
                int(out[0]), columns["phase"], "a phase must lie within ±180° (degrees expected)"
            )
        z_real = modulus * np.cos(np.radians(phase_deg))
        z_imag = modulus * np.sin(np.radians(phase_deg))
    else:
        _require(parsed, table, columns, ("z_real", "z_imag"), "a spectrum")
    return f[keep], z_real[keep], z_imag[keep], keep


def spectra(parsed: Parsed) -> list[xr.Dataset]:
    """Every spectrum in the file, one Dataset per sweep, in file order."""
    found = [(t, c) for t, c in parsed.tables if is_spectrum(c)]
    if not found:
        dc = [(t, c) for t, c in parsed.tables if is_dc(c)]
        if dc:
            technique = parsed.attrs.get("technique", "DC")
            raise FileFormatError(
                parsed.path,
                f"holds a DC record ({technique}), not an impedance spectrum; use read_dc",
            )
        table = parsed.tables[0][0] if parsed.tables else None
        headers = shown_headers(table.headers) if table else []
        raise FileFormatError(
            parsed.path,
            f"no impedance columns (such as 'freq/Hz', 'Re(Z)/Ohm', '-Im(Z)/Ohm'); "
            f"columns are {headers}",
            line=table.header_line if table else None,
        )
    pieces = []
    for table, columns in found:
        f, z_real, z_imag, keep = _impedance(parsed, table, columns)
        lines = np.asarray(table.line_numbers)[keep] if table.line_numbers else None
        cycle = table.values(columns["cycle"])[keep] if "cycle" in columns else None
        temperature = _temperature_K(table, columns)
        bounds = [*sweep_starts(f, cycle), f.size]
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            sl = slice(a, b)
            extra = {"temperature_K": _mean_plausible(temperature, keep, sl), **table.attrs}
            if table.name:
                extra["table"] = table.name
            if cycle is not None:
                extra["cycle"] = int(cycle[a])
            if lines is not None:
                extra["first_line"] = int(lines[a])
            if keep.size > np.count_nonzero(keep):
                extra["rows_without_frequency"] = int(keep.size - np.count_nonzero(keep))
            pieces.append((f[sl], z_real[sl], z_imag[sl], extra))
    datasets = []
    for index, (f, z_real, z_imag, extra) in enumerate(pieces):
        attrs = {"technique": "EIS", **parsed.attrs}
        attrs.update({k: v for k, v in extra.items() if v is not None})
        datasets.append(
            make_spectrum(
                f,
                z_real,
                z_imag,
                source=parsed.path,
                format=parsed.format,
                spectrum_index=index,
                n_spectra=len(pieces),
                **attrs,
            )
        )
    return datasets


def steps_from_changes(*markers: np.ndarray) -> np.ndarray:
    """0-based step index that advances wherever any of ``markers`` (set-point, index) changes."""
    changed = np.zeros(len(markers[0]) - 1, dtype=bool)
    for values in markers:
        v = np.asarray(values, dtype=float)
        tolerance = 1e-9 * max(float(np.max(np.abs(v))), 1e-30)
        changed |= np.abs(np.diff(v)) > tolerance
    return np.concatenate([[0], np.cumsum(changed)]).astype(int)


def dc_record(parsed: Parsed) -> xr.Dataset:
    """The file's DC polarization / chronoamperometry record (tables joined in file order)."""
    found = [(t, c) for t, c in parsed.tables if is_dc(c)]
    if not found:
        if any(is_spectrum(c) for _, c in parsed.tables):
            raise FileFormatError(
                parsed.path,
                "holds impedance spectra, not a DC record; use read_spectrum or read_spectra",
            )
        if not parsed.tables:
            raise FileFormatError(parsed.path, "no data table found")
        table, columns = parsed.tables[0]
        # Not a spectrum and not complete DC columns, so this names the first missing one.
        _require(parsed, table, columns, ("time", "voltage", "current"), "a DC record")
    time_s, voltage_V, current_A, setpoint, temperature = [], [], [], [], []
    for table, columns in found:
        time_s.append(table.values(columns["time"]))
        voltage_V.append(table.values(columns["voltage"]))
        current_A.append(table.values(columns["current"]))
        setpoint.append(_setpoint(table, columns))
        t_K = _mean_plausible(_temperature_K(table, columns), slice(None), slice(None))
        if t_K is not None:
            temperature.append(t_K)
    t, v, i = (np.concatenate(x) for x in (time_s, voltage_V, current_A))
    # Markers must exist in every table to be joined; otherwise steps come from the voltage.
    kinds = [tuple(sorted(m)) for m in setpoint]
    if kinds[0] and len(set(kinds)) == 1:
        step = steps_from_changes(*(np.concatenate([m[k] for m in setpoint]) for k in kinds[0]))
    else:
        step = identify_steps(v)
    control = _control_voltage(found)
    bias_source = control if control is not None else v
    bias_V = [float(np.median(bias_source[step == k])) for k in range(int(step.max()) + 1)]
    attrs = {"technique": "DC", **parsed.attrs}
    if temperature:
        attrs["temperature_K"] = float(np.mean(temperature))
    return make_dc(
        t, v, i, source=parsed.path, step=step, format=parsed.format, step_bias_V=bias_V, **attrs
    )


def _setpoint(table: Table, columns: dict[str, Column]) -> dict[str, np.ndarray]:
    """What marks bias steps: the sequence index ``Ns`` and the applied control value.

    A step ends where either changes: EC-Lab starts a new ``Ns`` per step of a sequence, and
    a single-``Ns`` technique with several set-points still changes its ``control/V``.
    """
    return {role: table.values(columns[role]) for role in ("step", "control") if role in columns}


def _control_voltage(found) -> np.ndarray | None:
    if not all("control" in c and c["control"].unit == "V" for _, c in found):
        return None
    return np.concatenate([t.values(c["control"]) for t, c in found])
