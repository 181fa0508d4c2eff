"""sigmalab inference: instrument readers, circuits and Bayesian models for EIS and DC data."""

from inference.errors import (
    CircuitError,
    FileFormatError,
    InputError,
    ManifestError,
    ModelError,
    SigmalabError,
)
from inference.readers import detect_format, read_dc, read_records, read_spectra, read_spectrum
from inference.rate_capability import capacity_retention
from inference.spectrum import make_dc, make_spectrum
from inference.study import Study, load_study

__all__ = [
    "CircuitError",
    "FileFormatError",
    "InputError",
    "ManifestError",
    "ModelError",
    "SigmalabError",
    "Study",
    "capacity_retention",
    "detect_format",
    "make_dc",
    "load_study",
    "make_spectrum",
    "read_dc",
    "read_records",
    "read_spectra",
    "read_spectrum",
]
