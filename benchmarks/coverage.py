"""Benchmark: calibration of the Bayesian EIS fit on simulated spectra with known truth.

The spectra are :func:`benchmarks.eis_fit.simulated_cases` (5-layer-cell-like: R0 and three
R‖CPE arcs in distinct decades, 69 points 7 MHz → 1 Hz, 1 % noise). Each is fitted with NUTS
(blackjax, 2 chains × 1000 draws after 1000 tuning steps, compiled once for all spectra). For
R1, R2, R3 and the composite conductivity σ = L/(R3·A) we count how often the equal-tailed 90 %
interval contains the truth; the target is 85–95 % over ≥ 100 spectra. The geometry handed to the
conductivity is "measured": true L and A plus Normal noise with the stated sd, which the
posterior propagates. Posterior medians are compared with our least-squares fit and with
impedance.py's ``CustomCircuit.fit`` (from our initial guess) where both converge.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from benchmarks.eis_fit import CIRCUIT, _rms_rel, simulated_cases
from inference.circuits import parse_circuit
from inference.fit import fit_spectra
from inference.fit_quality import fit_quality
from inference.lsq import fit_lsq, initial_guess

THICKNESS_CM, THICKNESS_SD_CM = 0.006, 0.0002  # 60 ± 2 µm
AREA_CM2, AREA_SD_CM2 = 1.267, 0.01
QUANTITIES = ("R1", "R2", "R3", "sigma_composite")
AGREEMENT = 0.05


def _impedance_py(ds, guess, names):
    from impedance.models.circuits import CustomCircuit

    f = ds["frequency"].values
    z = ds["z_real"].values + 1j * ds["z_imag"].values
    model = CustomCircuit(CIRCUIT, initial_guess=[guess[n] for n in names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(f, z, weight_by_modulus=True)
        except (RuntimeError, ValueError):
            return None
    return dict(zip(names, model.parameters_, strict=True))


def run(quick: bool = False) -> dict:
    n = 20 if quick else 100
    cases = simulated_cases(n, seed=31)
    rng = np.random.default_rng(5)
    lsq = [fit_lsq(c["dataset"], CIRCUIT) for c in cases]
    started = time.perf_counter()
    fits = fit_spectra(
        [c["dataset"] for c in cases], CIRCUIT, draws=1000, tune=1000, chains=2, seed=1, lsq=lsq
    )
    nuts_s = time.perf_counter() - started

    hits = {q: 0 for q in QUANTITIES}
    agree_lsq, agree_imp, inside_imp, both = 0, 0, 0, 0
    kinds = {"r_hat": 0, "ess": 0, "divergent": 0, "Kramers": 0, "least-squares": 0}
    circuit = parse_circuit(CIRCUIT)
    names = circuit.param_names
    for case, fit, start in zip(cases, fits, lsq, strict=True):
        truth = case["truth"]
        for kind in kinds:
            kinds[kind] += any(kind in w for w in fit.warnings)
        for q in ("R1", "R2", "R3"):
            lo, hi = np.quantile(fit.posterior[q].values, [0.05, 0.95])
            hits[q] += lo <= truth[q] <= hi
        measured_l = THICKNESS_CM + THICKNESS_SD_CM * rng.standard_normal()
        measured_a = AREA_CM2 + AREA_SD_CM2 * rng.standard_normal()
        sigma = fit.conductivity(
            measured_l, measured_a, thickness_sd_cm=THICKNESS_SD_CM, area_sd_cm2=AREA_SD_CM2
        ).values
        lo, hi = np.quantile(sigma, [0.05, 0.95])
        hits["sigma_composite"] += lo <= THICKNESS_CM / (truth["R3"] * AREA_CM2) <= hi
        medians = {p: float(np.median(fit.posterior[p].values)) for p in names}
        ours = max(abs(medians[p] / start.params[p] - 1) for p in names if p.startswith("R"))
        theirs = _impedance_py(case["dataset"], initial_guess(case["dataset"], CIRCUIT), names)
        # impedance.py "converges" when its rms is within the bound lsq uses for a poor fit.
        poor_limit = fit_quality(start.rms_rel, start.kk).limit_rel
        converged = theirs is not None and (
            _rms_rel(circuit, [theirs[p] for p in names], case["dataset"]) <= poor_limit
        )
        if start.success and converged:
            both += 1
            agree_lsq += int(ours <= AGREEMENT)
            worst = max(abs(medians[p] / theirs[p] - 1) for p in names if p.startswith("R"))
            agree_imp += int(worst <= AGREEMENT)
            inside_imp += all(
                np.quantile(fit.posterior[p].values, 0.05)
                <= theirs[p]
                <= np.quantile(fit.posterior[p].values, 0.95)
                for p in names
                if p.startswith("R")
            )
    rows = [
        {
            "quantity": q,
            "n_spectra": n,
            "covered": int(hits[q]),
            "coverage": hits[q] / n,
            "target": "0.85-0.95",
            "within_target": bool(0.85 <= hits[q] / n <= 0.95),
        }
        for q in QUANTITIES
    ]
    rows.append(
        {
            "quantity": f"R medians within {AGREEMENT:.0%} of our lsq",
            "n_spectra": both,
            "covered": agree_lsq,
            "coverage": agree_lsq / max(both, 1),
            "target": "all",
        }
    )
    rows.append(
        {
            "quantity": f"R medians within {AGREEMENT:.0%} of impedance.py",
            "n_spectra": both,
            "covered": agree_imp,
            "coverage": agree_imp / max(both, 1),
            "target": "all",
        }
    )
    rows.append(
        {
            "quantity": "impedance.py R0..R3 inside the NUTS 90 % intervals",
            "n_spectra": both,
            "covered": inside_imp,
            "coverage": inside_imp / max(both, 1),
            "target": "most",
        }
    )
    notes = (
        f"{n} simulated spectra ({CIRCUIT}, 69 points 7 MHz-1 Hz, 1 % noise, truths drawn as in "
        "eis_fit). NUTS: blackjax, 2 chains x 1000 draws, 1000 tuning steps, one compile, "
        f"{nuts_s:.1f} s for all fits ({nuts_s / n:.2f} s per spectrum incl. the compile). "
        f"Geometry L = {THICKNESS_CM * 1e4:.0f} +- {THICKNESS_SD_CM * 1e4:.0f} um, A = "
        f"{AREA_CM2} +- {AREA_SD_CM2} cm2, 'measured' values drawn around the truth. "
        "Fits with a warning: "
        + ", ".join(f"{k} {v}" for k, v in kinds.items())
        + f" (r_hat > 1.01, ESS < 400). Median agreement counted over the {both} spectra where "
        "lsq and impedance.py both converged (impedance.py: rms within the bound lsq uses to "
        "call a fit poor; largest relative difference over R0..R3)."
    )
    return {
        "name": "coverage",
        "title": "Bayesian EIS fit: 90 % interval coverage of the truth",
        "columns": ["quantity", "n_spectra", "covered", "coverage", "target", "within_target"],
        "rows": rows,
        "notes": notes,
    }
