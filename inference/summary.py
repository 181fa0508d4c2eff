"""The ``summary.json`` contract of a study analysis, its validation and atomic writing.

``summary.json`` is what the service, the CLI and scripts read; its keys and types are stable
(new keys may be added, none removed or retyped without a version bump of ``schema_version``)::

    {
      "schema_version": 1,
      "study": str,                              study name (manifest [study] name or folder)
      "conductivity": [                          one row per recipe × kind × requested temperature
        {"recipe": str, "kind": "ionic" | "electronic", "temperature_C": float,
         "median_S_per_cm": float, "ci90_S_per_cm": [lo, hi]}],
      "activation_energy": [                     one row per recipe × kind
        {"recipe": str, "kind": str, "median_eV": float, "ci90_eV": [lo, hi]}],
      "comparisons": [                           each pair of recipes once per kind × temperature,
        {"numerator": str, "denominator": str,   oriented so that ratio_median >= 1
         "kind": str, "temperature_C": float,
         "ratio_median": float, "ratio_ci90": [lo, hi], "p_greater": float}],
      "diagnostics": {
        "max_rhat": float,                       over the Arrhenius layer(s)
        "min_ess_bulk": float,                   over the Arrhenius layer(s)
        "divergences": int,                      Arrhenius layer(s)
        "kk_failed": [str],                      spectra whose Kramers–Kronig check failed (kept)
        "failed": [{"id": str, "file": str, "reason": str}],   records excluded from the analysis
        "fits": {"n": int, "max_rhat": float, "min_ess_bulk": float, "divergences": int}
      },                                         (stage-1 fits; NaN-free: null when not sampled)
      "rate_capability": [                       model prediction (physics.md §2.7 proxy)
        {"recipe": str, "temperature_C": float, "c_rate_per_h": float,
         "median": float, "ci90": [lo, hi]}],
      "warnings": [str],                         e.g. σ requested > 10 K outside the measured range
      "settings": {"kind": str,                  the study's kind (composite_cathode, …)
                   "method": str, "joint": bool, "seed": int, "draws": int, "chains": int,
                   "tune": int, "circuit": str, "reference_temperature_K": {kind: float}},
      "timing_s": {"total": float, "fits": float, "arrhenius": float, ...}
    }

Intervals are equal-tailed 90 % (5th–95th percentile); ``p_greater`` = P(ratio > 1).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

from inference.errors import InputError

SCHEMA_VERSION = 1
KINDS = ("ionic", "electronic")

_ROW_TYPES = {
    "conductivity": {
        "recipe": str,
        "kind": str,
        "temperature_C": float,
        "median_S_per_cm": float,
        "ci90_S_per_cm": list,
    },
    "activation_energy": {"recipe": str, "kind": str, "median_eV": float, "ci90_eV": list},
    "comparisons": {
        "numerator": str,
        "denominator": str,
        "kind": str,
        "temperature_C": float,
        "ratio_median": float,
        "ratio_ci90": list,
        "p_greater": float,
    },
}
_DIAGNOSTIC_TYPES = {
    "max_rhat": float,
    "min_ess_bulk": float,
    "divergences": int,
    "kk_failed": list,
}


def _is(value, kind) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def validate_summary(summary: dict) -> None:
    """Check ``summary`` against the contract of the module docstring.

    Raises
    ------
    InputError
        Naming the first key whose presence or type is wrong.
    """
    for key in ("conductivity", "activation_energy", "comparisons", "diagnostics", "timing_s"):
        if key not in summary:
            raise InputError(f"summary: missing key {key!r}")
    for section, types in _ROW_TYPES.items():
        if not isinstance(summary[section], list):
            raise InputError(f"summary: {section!r} must be a list")
        for i, row in enumerate(summary[section]):
            for key, kind in types.items():
                if key not in row or not _is(row[key], kind):
                    raise InputError(
                        f"summary: {section}[{i}].{key} missing or not {kind.__name__}"
                    )
            if "kind" in row and row["kind"] not in KINDS:
                raise InputError(f"summary: {section}[{i}].kind must be one of {KINDS}")
            for key, kind in types.items():
                if kind is list and (
                    len(row[key]) != 2 or not all(_is(v, float) for v in row[key])
                ):
                    raise InputError(f"summary: {section}[{i}].{key} must be [lo, hi] numbers")
    diag = summary["diagnostics"]
    for key, kind in _DIAGNOSTIC_TYPES.items():
        if key not in diag or not _is(diag[key], kind):
            raise InputError(f"summary: diagnostics.{key} missing or not {kind.__name__}")
    if not all(isinstance(s, str) for s in diag["kk_failed"]):
        raise InputError("summary: diagnostics.kk_failed must list spectrum ids (str)")
    if not _is(summary["timing_s"].get("total"), float):
        raise InputError("summary: timing_s.total missing or not a number")


def json_safe(value):
    """Plain-JSON copy of ``value``: numpy scalars → Python, NaN/inf → None, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A crash leaves either the old file or none, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        with_user_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def with_user_umask(path) -> None:
    """Give ``path`` the mode a new file gets under the user's umask (``0o666 & ~umask``).

    ``tempfile.mkstemp`` creates 0600 files; results written through one and renamed into
    place should read like any file the user creates.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_summary(summary: dict, path) -> None:
    """Validate ``summary`` and write it as indented JSON, atomically."""
    clean = json_safe(summary)
    validate_summary(clean)
    write_atomic(path, (json.dumps(clean, indent=2, allow_nan=False) + "\n").encode("utf-8"))
