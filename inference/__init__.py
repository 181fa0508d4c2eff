"""sigmalab inference: instrument readers, circuits and Bayesian models for EIS and DC data."""

from inference.analysis import StudyResult, analyze_study
from inference.circuits import Circuit, parse_circuit, simulate_spectrum
from inference.conductivity import composite_resistance_name, conductivity_draws
from inference.dc import DCFit, detect_plateaus, fit_dc
from inference.errors import (
    CircuitError,
    FileFormatError,
    FitCancelled,
    InputError,
    ManifestError,
    ModelError,
    SigmalabError,
)
from inference.fit import SpectrumFit, fit_spectra, fit_spectrum
from inference.kramers_kronig import KKResult, kk_check
from inference.lsq import LsqResult, fit_lsq
from inference.rate_capability import capacity_retention
from inference.readers import detect_format, read_dc, read_records, read_spectra, read_spectrum
from inference.spectrum import from_complex, make_dc, make_spectrum, to_complex
from inference.study import Study, load_study
from inference.window import trim

__all__ = [
    "Circuit",
    "KKResult",
    "LsqResult",
    "CircuitError",
    "DCFit",
    "FileFormatError",
    "FitCancelled",
    "InputError",
    "ManifestError",
    "ModelError",
    "SigmalabError",
    "SpectrumFit",
    "Study",
    "StudyResult",
    "analyze_study",
    "capacity_retention",
    "composite_resistance_name",
    "conductivity_draws",
    "detect_format",
    "detect_plateaus",
    "fit_dc",
    "from_complex",
    "fit_lsq",
    "fit_spectra",
    "fit_spectrum",
    "kk_check",
    "make_dc",
    "load_study",
    "make_spectrum",
    "parse_circuit",
    "read_dc",
    "read_records",
    "read_spectra",
    "read_spectrum",
    "simulate_spectrum",
    "to_complex",
    "trim",
]
