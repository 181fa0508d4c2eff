"""One-file summaries of instrument files (what ``sigmalab inspect`` shows)."""

from __future__ import annotations

import warnings

import numpy as np

from inference.errors import FileFormatError, InputError
from inference.readers import MAX_FILE_BYTES, detect_format, read_records


def describe_file(path, **options) -> dict:
    """Summarise what an instrument file holds, or why it cannot be read; never raises for it.

    Parameters
    ----------
    path : the file.
    **options : reader options (see :mod:`inference.readers`).

    Returns
    -------
    dict
        ``path``; ``ok`` (bool); ``verdict`` (``"ok"``, ``"ok: ..."`` with a remark, or the
        problem in one line); ``error`` (the full error message, or None); ``format``;
        ``kind`` (``"spectrum"``, ``"dc"`` or None); ``instrument``; ``technique``.
        Spectra: ``n_spectra``, ``n_points`` (all sweeps), ``frequency_min_Hz``,
        ``frequency_max_Hz``, ``temperature_K`` (list, one per spectrum that states it).
        DC records: ``samples``, ``n_steps``, ``step_bias_V`` (list), ``temperature_K``.
    """
    info: dict = {
        "path": str(path),
        "ok": False,
        "verdict": "",
        "error": None,
        "format": None,
        "kind": None,
        "instrument": None,
        "technique": None,
        "n_spectra": 0,
        "n_points": 0,
        "frequency_min_Hz": None,
        "frequency_max_Hz": None,
        "temperature_K": [],
        "samples": 0,
        "n_steps": 0,
        "step_bias_V": [],
    }
    try:
        max_bytes = options.get("max_bytes") or MAX_FILE_BYTES
        info["format"] = options.get("format") or detect_format(path, max_bytes)
        with warnings.catch_warnings():
            # The aborted-run warning is reported in the verdict instead.
            warnings.simplefilter("ignore", UserWarning)
            found = read_records(path, **options)
    except FileFormatError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        info.update(verdict=f"{where}{exc.problem}", error=str(exc))
        return info
    except InputError as exc:
        info.update(verdict=str(exc), error=str(exc))
        return info
    except Exception as exc:  # the CLI must list every file; a crash here is our bug
        message = f"unexpected {type(exc).__name__}: {exc} (a sigmalab bug: please report it)"
        info.update(verdict=message, error=message)
        return info
    first = found[0]
    info.update(
        ok=True,
        instrument=first.attrs.get("instrument"),
        technique=first.attrs.get("technique"),
    )
    remarks = []
    if "frequency" in first.dims:
        f = np.concatenate([ds["frequency"].values for ds in found])
        info.update(
            kind="spectrum",
            n_spectra=len(found),
            n_points=int(f.size),
            frequency_min_Hz=float(f.min()),
            frequency_max_Hz=float(f.max()),
            temperature_K=[d.attrs["temperature_K"] for d in found if "temperature_K" in d.attrs],
        )
        drift = [d for d in found if d.attrs.get("drift_corrected") == 1]
        if drift and 2 * len(drift) == len(found):
            remarks.append("raw and drift-corrected: read_spectrum returns the corrected one")
        elif len(found) > 1:
            remarks.append(f"{len(found)} spectra: read with read_spectra")
    else:
        info.update(
            kind="dc",
            samples=int(first.sizes["time"]),
            n_steps=int(first.attrs["n_steps"]),
            step_bias_V=[float(v) for v in np.atleast_1d(first.attrs.get("step_bias_V", []))],
            temperature_K=[first.attrs["temperature_K"]] if "temperature_K" in first.attrs else [],
        )
    if first.attrs.get("experiment_aborted"):
        remarks.append("run aborted, partial data")
    info["verdict"] = "ok" + (f" ({'; '.join(remarks)})" if remarks else "")
    return info
