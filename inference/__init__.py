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
from inference.spectrum import make_dc, make_spectrum

__all__ = [
    "CircuitError",
    "FileFormatError",
    "InputError",
    "ManifestError",
    "ModelError",
    "SigmalabError",
    "detect_format",
    "make_dc",
    "make_spectrum",
    "read_dc",
    "read_records",
    "read_spectra",
    "read_spectrum",
]
