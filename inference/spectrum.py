"""Data model: impedance spectra and DC records as validated ``xarray.Dataset`` objects.

Sign convention (stated once, used everywhere): ``Z = z_real + j·z_imag`` in Ω, so a
capacitive arc has ``z_imag < 0`` whatever convention the instrument file used (many
files store ``-Im(Z)``; readers convert).

Spectrum
    dim ``frequency`` (Hz, in measurement order), variables ``z_real``, ``z_imag`` (Ω);
    attrs ``source_file``, ``format``, ``instrument``, ``technique`` and, where known,
    ``temperature_K``, ``cell_id``, ``thickness_cm``, ``area_cm2``…
DC record
    dim ``time``, coordinates ``time_s`` (s) and ``step`` (bias-step index, 0-based),
    variables ``voltage_V``, ``current_A``; attrs as above plus ``n_steps``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from inference.errors import FileFormatError, InputError

MIN_POINTS = 5
#: A new bias step starts where the applied voltage jumps by more than this (V).
STEP_TOLERANCE_V = 1e-3


def make_spectrum(frequency_Hz, z_real, z_imag, *, source: str = "<memory>", **attrs) -> xr.Dataset:
    """Build a validated spectrum Dataset.

    Parameters
    ----------
    frequency_Hz, z_real, z_imag : array-like, same length; Ω for the impedances.
    source : file the data came from, used in error messages and stored as ``source_file``.
    **attrs : stored as Dataset attrs (``format``, ``instrument``, ``temperature_K``, …);
        ``None`` values are dropped so that attrs stay NetCDF-serialisable.

    Raises
    ------
    FileFormatError
        Fewer than 5 points, non-finite values, non-positive or repeated frequencies.
    """
    f = np.asarray(frequency_Hz, dtype=float)
    zr = np.asarray(z_real, dtype=float)
    zi = np.asarray(z_imag, dtype=float)
    if not (f.shape == zr.shape == zi.shape) or f.ndim != 1:
        raise FileFormatError(source, "frequency, Re(Z) and Im(Z) columns differ in length")
    if f.size < MIN_POINTS:
        raise FileFormatError(
            source, f"only {f.size} data points; a spectrum needs at least {MIN_POINTS}"
        )
    for name, values in (("frequency", f), ("Re(Z)", zr), ("Im(Z)", zi)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise FileFormatError(
                source,
                f"{name} is not a finite number at data point {bad[0] + 1} ({values[bad[0]]})",
            )
    if np.any(f <= 0):
        i = int(np.flatnonzero(f <= 0)[0])
        raise FileFormatError(source, f"frequency must be > 0 Hz; data point {i + 1} has {f[i]}")
    if np.unique(f).size != f.size:
        raise FileFormatError(
            source, "frequencies repeat; several sweeps in one file? use read_spectra"
        )
    clean = {k: v for k, v in attrs.items() if v is not None}
    ds = xr.Dataset(
        {
            "z_real": ("frequency", zr, {"units": "Ohm", "long_name": "Re(Z)"}),
            "z_imag": ("frequency", zi, {"units": "Ohm", "long_name": "Im(Z)"}),
        },
        coords={"frequency": ("frequency", f, {"units": "Hz"})},
        attrs={"source_file": str(source), **clean},
    )
    return ds


def from_complex(frequency_Hz, z, *, source: str = "<memory>", **attrs) -> xr.Dataset:
    """A spectrum from frequencies (Hz) and complex impedances Z (Ω), impedance.py's pair.

    ``f, Z = impedance.preprocessing.readCSV(path)`` then ``from_complex(f, Z)``; validated
    and given attrs as in :func:`make_spectrum`. Inverse: :func:`to_complex`.
    """
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.number):
        raise InputError(f"{source}: Z must be numbers (complex Ω), got dtype {z.dtype}")
    return make_spectrum(frequency_Hz, z.real, z.imag, source=source, **attrs)


def to_complex(spectrum: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(frequency_Hz, Z)`` of a spectrum: float and complex arrays, in measurement order."""
    f = np.asarray(spectrum["frequency"].values, dtype=float)
    return f, np.asarray(spectrum["z_real"].values) + 1j * np.asarray(spectrum["z_imag"].values)


def as_spectrum(value) -> xr.Dataset:
    """A spectrum Dataset as is, or one built from an impedance.py-style ``(f, Z)`` pair."""
    if isinstance(value, xr.Dataset):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        return from_complex(*value)
    raise InputError(
        "expected a spectrum: an xarray Dataset with z_real, z_imag over dim 'frequency' "
        "(inference.spectrum.make_spectrum) or a (frequency_Hz, Z) pair, got "
        f"{type(value).__name__}"
    )


def identify_steps(voltage_V: np.ndarray, tolerance_V: float = STEP_TOLERANCE_V) -> np.ndarray:
    """Index of the bias step each sample belongs to (0-based), from jumps in the voltage."""
    v = np.asarray(voltage_V, dtype=float)
    jumps = np.abs(np.diff(v)) > max(tolerance_V, 0.05 * np.ptp(v) / max(len(v), 1))
    return np.concatenate([[0], np.cumsum(jumps)]).astype(int)


def make_dc(
    time_s, voltage_V, current_A, *, source: str = "<memory>", step=None, **attrs
) -> xr.Dataset:
    """Build a validated DC polarization / chronoamperometry Dataset.

    Parameters
    ----------
    time_s, voltage_V, current_A : array-like, same length (s, V, A).
    step : optional bias-step index per sample; identified from voltage jumps when omitted.
    """
    t = np.asarray(time_s, dtype=float)
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    if not (t.shape == v.shape == i.shape) or t.ndim != 1:
        raise FileFormatError(source, "time, voltage and current columns differ in length")
    if t.size < 2:
        raise FileFormatError(source, f"only {t.size} samples; a DC record needs at least 2")
    for name, values in (("time", t), ("voltage", v), ("current", i)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise FileFormatError(source, f"{name} is not a finite number at sample {bad[0] + 1}")
    if np.any(np.diff(t) < 0):
        raise FileFormatError(source, "time goes backwards; expected a single record in time order")
    steps = identify_steps(v) if step is None else np.asarray(step, dtype=int)
    clean = {k: v for k, v in attrs.items() if v is not None}
    return xr.Dataset(
        {
            "voltage_V": ("time", v, {"units": "V"}),
            "current_A": ("time", i, {"units": "A"}),
        },
        coords={"time_s": ("time", t, {"units": "s"}), "step": ("time", steps)},
        attrs={"source_file": str(source), "n_steps": int(steps.max() + 1), **clean},
    )
