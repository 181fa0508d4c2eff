"""Frequency windows: drop the points of a spectrum that a fit should not see.

High-frequency junk (cable inductance, the analyser's upper limit) and inductive points relabel
the arcs of an equivalent circuit; a window keeps the points a user trusts:

>>> from inference import read_spectrum, trim
>>> spec = read_spectrum("tests/data/instrument-files/exampleDataBioLogic.mpt")
>>> kept = trim(spec, f_min_Hz=5, f_max_Hz=1e5, drop_inductive=True)
>>> kept.attrs["n_points_dropped"] + kept.sizes["frequency"] == spec.sizes["frequency"]
True

The trimmed spectrum records its window (``f_min_Hz``, ``f_max_Hz``, ``drop_inductive``), the
points measured (``n_points_measured``) and dropped (``n_points_dropped``); trimming again
narrows the window and keeps counting from the measured spectrum.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from inference.errors import InputError
from inference.spectrum import MIN_POINTS

__all__ = ["WINDOW_KEYS", "trim", "window_of"]

#: The window's keys, as :func:`trim` takes them and the manifest and fit attrs write them.
WINDOW_KEYS = ("f_min_Hz", "f_max_Hz", "drop_inductive")


def _bound(name: str, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InputError(f"{name} = {value!r}; expected a frequency > 0 Hz")
    if not math.isfinite(value):
        raise InputError(f"{name} = {value!r}; expected a finite frequency")
    return float(value)


def trim(
    spectrum: xr.Dataset,
    f_min_Hz: float | None = None,
    f_max_Hz: float | None = None,
    drop_inductive: bool = False,
) -> xr.Dataset:
    """The points of ``spectrum`` with ``f_min_Hz <= f <= f_max_Hz`` (Hz, either may be None).

    ``drop_inductive`` also drops the points with ``z_imag > 0`` (inductive, above the real
    axis in a Nyquist plot). With no window given, ``spectrum`` is returned unchanged.

    Raises
    ------
    InputError
        A bound that is not a positive frequency, ``f_min_Hz > f_max_Hz``, or a window that
        leaves fewer than 5 points (the message gives the spectrum's range).
    """
    low, high = _bound("f_min_Hz", f_min_Hz), _bound("f_max_Hz", f_max_Hz)
    if low is not None and high is not None and low > high:
        raise InputError(f"f_min_Hz = {low:g} is above f_max_Hz = {high:g}")
    if low is None and high is None and not drop_inductive:
        return spectrum
    attrs = spectrum.attrs
    if "f_min_Hz" in attrs:  # trimmed before: the windows' intersection
        low = attrs["f_min_Hz"] if low is None else max(low, attrs["f_min_Hz"])
    if "f_max_Hz" in attrs:
        high = attrs["f_max_Hz"] if high is None else min(high, attrs["f_max_Hz"])
    drop_inductive = bool(drop_inductive or attrs.get("drop_inductive"))
    f = spectrum["frequency"].values
    keep = np.ones(f.size, dtype=bool)
    if low is not None:
        keep &= f >= low
    if high is not None:
        keep &= f <= high
    if drop_inductive:
        keep &= spectrum["z_imag"].values <= 0
    n_kept = int(keep.sum())
    if n_kept < MIN_POINTS:
        source = attrs.get("source_file", "<spectrum>")
        window = _describe(low, high, drop_inductive)
        raise InputError(
            f"{source}: the window {window} keeps {n_kept} of {f.size} points (a fit needs "
            f"{MIN_POINTS}); the spectrum spans {f.min():.4g}–{f.max():.4g} Hz"
        )
    out = spectrum.isel(frequency=np.flatnonzero(keep))
    measured = int(attrs.get("n_points_measured", f.size))
    out.attrs = {
        **attrs,
        "f_min_Hz": low,
        "f_max_Hz": high,
        "drop_inductive": int(drop_inductive),
        "n_points_measured": measured,
        "n_points_dropped": measured - n_kept,
    }
    out.attrs = {k: v for k, v in out.attrs.items() if v is not None}
    return out


def window_of(spectrum: xr.Dataset) -> dict:
    """The window a spectrum was trimmed to, as attrs (empty for an untrimmed spectrum)."""
    keys = (*WINDOW_KEYS, "n_points_measured", "n_points_dropped")
    return {k: spectrum.attrs[k] for k in keys if k in spectrum.attrs}


def _describe(low, high, drop_inductive) -> str:
    parts = []
    if low is not None:
        parts.append(f"f >= {low:g} Hz")
    if high is not None:
        parts.append(f"f <= {high:g} Hz")
    if drop_inductive:
        parts.append("no inductive points")
    return ", ".join(parts)
