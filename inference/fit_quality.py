"""Is a circuit fit as good as the data allow? The one "poor fit" rule of the project.

Used by the least-squares fit (its ``poor_fit`` flag and message), hence by every Bayesian fit
started from it, by the benchmarks and by per-record diagnostics.

Noise. The Lin-KK fit of the spectrum (:mod:`inference.kramers_kronig`) follows the data down
to the noise, but with M RC elements plus 2–3 series terms it spends k = M + 2(3) of the 2N
values (Re and Im at N frequencies), so its rms residual understates the noise by
√((2N − k)/2N). The noise estimate is therefore ``σ̂ = rms_KK·√(2N/(2N − k))``; on
impedance.py's tutorial spectrum (M = 42 of 57 points) that is ×1.28.

Rule. A fit is **poor** when its rms relative residual, rms of (Z − Z_fit)/|Z| over Re and
Im, exceeds both

- ``POOR_FACTOR·σ̂`` = 1.5 σ̂: a right circuit sits at ≈ σ̂·√((2N − p)/2N), within a few
  per cent of σ̂ (the rms of 2N ≈ 100 residuals scatters by ≈ 7 %), so 1.5 σ̂ is a misfit
  clearly above the noise; and
- ``POOR_FLOOR_REL`` = 2 % of |Z|: on low-noise spectra an equivalent circuit is an
  approximation whose systematic residuals exceed the noise while the fit is as good as the
  field accepts. Measured: impedance.py's own fits of its tutorial spectrum (noise ≤ 0.3 %)
  sit at 0.92–1.42 % for its three tutorial circuits (sigmalab's at 0.92–1.34 %); least-squares
  fits of the real pellet series ``shared/data/real-spectra/eisfitpython-s04147`` with the
  authors' circuit, whose parameters match the published ones, at 0.38–1.7 %. A circuit with
  an arc missing sits far above both: 6.0 % rms on the tutorial spectrum (one R‖CPE instead of
  two), 20 % on a simulated two-arc spectrum at 0.1–3 % noise, whose right circuit reaches the
  noise (0.10, 1.03, 3.07 % rms; σ̂ = 0.11, 1.08, 3.26 %).

So on noisy data the rule is relative to the noise, on clean data it asks for a 2 % fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

POOR_FACTOR = 1.5
POOR_FLOOR_REL = 0.02


@dataclass(frozen=True)
class FitQuality:
    """Verdict of :func:`fit_quality`.

    Attributes
    ----------
    rms_rel : the fit's rms relative residual.
    noise_rel : noise estimate σ̂ (fraction of |Z|) from the Lin-KK fit.
    limit_rel : the rms above which the fit is poor, max(POOR_FACTOR·σ̂, POOR_FLOOR_REL).
    poor : ``rms_rel > limit_rel``.
    """

    rms_rel: float
    noise_rel: float
    limit_rel: float
    poor: bool

    def describe(self) -> str:
        """One line: ``rms 1.27 % of |Z| (noise ≈ 0.31 %, poor above 2 %)``."""
        return (
            f"rms residual {100 * self.rms_rel:.3g} % of |Z| (noise ≈ "
            f"{100 * self.noise_rel:.2g} %, poor above {100 * self.limit_rel:.2g} %)"
        )


def noise_level(kk) -> float:
    """Noise sd relative to |Z| from a Lin-KK result (:class:`~inference.kramers_kronig.KKResult`),
    corrected for the degrees of freedom the Lin-KK model spends."""
    n_values = 2 * len(kk.frequency_Hz)
    k = kk.M + (3 if kk.capacitance else 2)
    spare = max(n_values - k, 1)
    return float(kk.rms_residual * math.sqrt(n_values / spare))


def fit_quality(rms_rel: float, kk) -> FitQuality:
    """Apply the poor-fit rule of the module docstring to a fit's rms relative residual."""
    noise = noise_level(kk)
    limit = max(POOR_FACTOR * noise, POOR_FLOOR_REL)
    return FitQuality(
        rms_rel=float(rms_rel),
        noise_rel=noise,
        limit_rel=limit,
        poor=bool(not rms_rel <= limit),
    )
