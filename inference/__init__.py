"""sigmalab inference: instrument readers, circuits and Bayesian models for EIS and DC data."""

from inference.errors import (
    CircuitError,
    FileFormatError,
    InputError,
    ManifestError,
    ModelError,
    SigmalabError,
)
from inference.spectrum import make_dc, make_spectrum

__all__ = [
    "CircuitError",
    "FileFormatError",
    "InputError",
    "ManifestError",
    "ModelError",
    "SigmalabError",
    "make_dc",
    "make_spectrum",
]
