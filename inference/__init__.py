"""sigmalab inference: instrument readers, circuits and Bayesian models for EIS and DC data.

Names are imported on first use (PEP 562), so ``import inference`` and ``inference.errors`` stay
light (no PyMC, PyTensor or JAX) and a client that only needs the error types pays nothing for
the models. Importing the package points PyTensor and JAX at the shared compile cache
(:mod:`inference.caches`).
"""

from __future__ import annotations

from inference import caches, lazy

caches.configure()

#: Public name → module that defines it.
_EXPORTS = {
    "StudyResult": "inference.analysis",
    "analyze_study": "inference.analysis",
    "Circuit": "inference.circuits",
    "parse_circuit": "inference.circuits",
    "simulate_spectrum": "inference.circuits",
    "composite_resistance_name": "inference.conductivity",
    "conductivity_draws": "inference.conductivity",
    "DCFit": "inference.dc",
    "detect_plateaus": "inference.dc",
    "fit_dc": "inference.dc",
    "CircuitError": "inference.errors",
    "FileFormatError": "inference.errors",
    "FitCancelled": "inference.errors",
    "InputError": "inference.errors",
    "ManifestError": "inference.errors",
    "ModelError": "inference.errors",
    "SigmalabError": "inference.errors",
    "SpectrumFit": "inference.fit",
    "fit_spectra": "inference.fit",
    "fit_spectrum": "inference.fit",
    "KKResult": "inference.kramers_kronig",
    "kk_check": "inference.kramers_kronig",
    "LsqResult": "inference.lsq",
    "fit_lsq": "inference.lsq",
    "capacity_retention": "inference.rate_capability",
    "detect_format": "inference.readers",
    "read_dc": "inference.readers",
    "read_records": "inference.readers",
    "read_spectra": "inference.readers",
    "read_spectrum": "inference.readers",
    "from_complex": "inference.spectrum",
    "make_dc": "inference.spectrum",
    "make_spectrum": "inference.spectrum",
    "to_complex": "inference.spectrum",
    "Study": "inference.study",
    "load_study": "inference.study",
    "trim": "inference.window",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS)
