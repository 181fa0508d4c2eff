"""BioLogic EC-Lab binary files (``.mpr``), read with the optional ``galvani`` package.

galvani is GPL-3.0, so it is not a dependency of sigmalab (BSD): it is the ``mpr`` extra
(``pip install sigmalab[mpr]``) and is imported only when an ``.mpr`` file is read. galvani
returns the same column names as the text export (``freq/Hz``, ``-Im(Z)/Ohm``, ``<I>/mA``…),
so the column rules are those of :mod:`inference.readers.biologic`. galvani does not decode the
device name or technique title; ``instrument`` is ``"BioLogic"`` and ``technique`` is
``"EIS"`` or ``"DC"`` by the columns present.
"""

from __future__ import annotations

import numpy as np

from inference.errors import FileFormatError
from inference.readers.columns import resolve
from inference.readers.records import Parsed, is_spectrum
from inference.readers.table import Table

MAGIC = b"BIO-LOGIC MODULAR FILE"


def parse(path, columns: dict | None = None, imag_sign: float | None = None) -> Parsed:
    """Parse an ``.mpr`` file through galvani into one table."""
    try:
        from galvani import BioLogic
    except ImportError:
        raise FileFormatError(
            path,
            "BioLogic .mpr files need the galvani package: install sigmalab[mpr] (GPL-3 "
            "galvani), or export the data from EC-Lab as text (.mpt)",
        ) from None
    try:
        with open(path, "rb") as fh:  # a path would leave galvani's own file handle open
            mpr = BioLogic.MPRfile(fh)
    except Exception as exc:  # galvani raises bare ValueError/NotImplementedError/struct.error
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(path, f"galvani could not read this .mpr file: {reason}") from None
    data = mpr.data
    headers = list(data.dtype.names)
    arrays = {i: np.asarray(data[name], dtype=float) for i, name in enumerate(headers)}
    table = Table(str(path), headers, None, arrays=arrays)
    mapping = resolve(str(path), headers, columns, imag_sign)
    attrs = {"instrument": "BioLogic", "technique": "EIS" if is_spectrum(mapping) else "DC"}
    if getattr(mpr, "timestamp", None) is not None:
        attrs["acquired"] = str(mpr.timestamp)
    return Parsed(str(path), "biologic-mpr", [(table, mapping)], attrs)
