"""Benchmark: calibration of the Bayesian EIS fit on simulated spectra with known truth.

Two families of spectra, 1 % relative noise on Re and Im:

``cell``    :func:`benchmarks.eis_fit.simulated_cases` (5-layer-cell-like: R0 and three R‖CPE
            arcs in distinct decades, 69 points 7 MHz → 1 Hz); σ = L/(R3·A).
``pellet``  :func:`pellet_cases`, shaped like the real s04147 series: bulk and grain-boundary
            R‖CPE arcs and a blocking-electrode CPE whose exponent α is drawn in 0.3–0.6 (most
            below 0.5, where the old support (0.5, 1) piled posteriors against its bound),
            43 points 1 MHz → 30 mHz; σ = L/(R1·A).

Each spectrum is fitted with NUTS (blackjax, 2 chains × 1000 draws after 1000 tuning steps,
compiled once per family, reruns only where a threshold broke, see
:func:`inference.fit.fit_spectrum`). For every resistance and σ we count how often the
equal-tailed 90 % interval contains the truth; the target is 85–95 % over ≥ 100 spectra. The
geometry handed to the conductivity is "measured": true L and A plus Normal noise with the
stated sd, which the posterior propagates. Posterior medians are compared with our least-squares
fit and with impedance.py's ``CustomCircuit.fit`` (from our initial guess) where both converge.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np

from benchmarks.eis_fit import CIRCUIT, _rms_rel, simulated_cases
from inference.circuits import parse_circuit, simulate_spectrum
from inference.fit import fit_spectra
from inference.fit_quality import fit_quality
from inference.lsq import fit_lsq, initial_guess

THICKNESS_CM, THICKNESS_SD_CM = 0.006, 0.0002  # 60 ± 2 µm
AREA_CM2, AREA_SD_CM2 = 1.267, 0.01
AGREEMENT = 0.05
PELLET_CIRCUIT = "p(R1,CPE1)-p(R2,CPE2)-CPE3"
PELLET_FREQ_HZ = np.geomspace(1e6, 0.03, 43)
FAMILIES = {
    "cell": (CIRCUIT, ("R1", "R2", "R3"), "R3"),
    "pellet": (PELLET_CIRCUIT, ("R1", "R2"), "R1"),
}


def pellet_cases(n: int, seed: int = 47) -> list[dict]:
    """``n`` pellet-like spectra: bulk arc, grain-boundary arc, electrode CPE with α 0.3–0.6."""
    rng = np.random.default_rng(seed)
    c = parse_circuit(PELLET_CIRCUIT)
    cases = []
    for i in range(n):
        truth = {}
        arcs = [((4.5, 5.5), (4.0, 5.0), (0.78, 0.92)), ((5.5, 6.8), (1.5, 2.8), (0.76, 0.9))]
        for k, (log_r, log_f, alpha_range) in enumerate(arcs, start=1):
            r, f_apex, alpha = (
                10 ** rng.uniform(*log_r),
                10 ** rng.uniform(*log_f),
                rng.uniform(*alpha_range),
            )
            truth |= {
                f"R{k}": r,
                f"CPE{k}_0": 1 / (r * (2 * np.pi * f_apex) ** alpha),
                f"CPE{k}_1": alpha,
            }
        truth |= {"CPE3_0": 10 ** rng.uniform(-7, -5.5), "CPE3_1": rng.uniform(0.3, 0.6)}
        truth = {name: truth[name] for name in c.param_names}
        ds = simulate_spectrum(c, truth, PELLET_FREQ_HZ, noise_rel=0.01, seed=seed + i)
        cases.append({"spectrum": f"pellet{i:02d}", "truth": truth, "dataset": ds})
    return cases


def _impedance_py(circuit, ds, guess, names):
    from impedance.models.circuits import CustomCircuit

    f = ds["frequency"].values
    z = ds["z_real"].values + 1j * ds["z_imag"].values
    model = CustomCircuit(circuit, initial_guess=[guess[n] for n in names])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(f, z, weight_by_modulus=True)
        except (RuntimeError, ValueError):
            return None
    return dict(zip(names, model.parameters_, strict=True))


def _family(name: str, cases: list[dict], rng) -> tuple[list[dict], str]:
    circuit_string, resistances, composite = FAMILIES[name]
    circuit = parse_circuit(circuit_string)
    names = circuit.param_names
    lsq = [fit_lsq(c["dataset"], circuit) for c in cases]
    started = time.perf_counter()
    fits = fit_spectra(
        [c["dataset"] for c in cases], circuit, draws=1000, tune=1000, chains=2, seed=1, lsq=lsq
    )
    nuts_s = time.perf_counter() - started
    quantities = [*resistances, "sigma"]
    hits = {q: 0 for q in quantities}
    verdicts = {"ok": 0, "warning": 0, "excluded": 0}
    reruns = at_bound = 0
    agree_lsq = agree_imp = inside_imp = both = 0
    for case, fit, start in zip(cases, fits, lsq, strict=True):
        truth = case["truth"]
        verdicts[fit.verdict] += 1
        reruns += len(json.loads(fit.attrs.get("runs", "[]"))) > 1
        at_bound += bool(fit.diagnostics["at_bound"])
        for q in resistances:
            lo, hi = np.quantile(fit.posterior[q].values, [0.05, 0.95])
            hits[q] += lo <= truth[q] <= hi
        measured_l = THICKNESS_CM + THICKNESS_SD_CM * rng.standard_normal()
        measured_a = AREA_CM2 + AREA_SD_CM2 * rng.standard_normal()
        sigma = fit.conductivity(
            measured_l,
            measured_a,
            thickness_sd_cm=THICKNESS_SD_CM,
            area_sd_cm2=AREA_SD_CM2,
            resistance=composite,
        ).values
        lo, hi = np.quantile(sigma, [0.05, 0.95])
        hits["sigma"] += lo <= THICKNESS_CM / (truth[composite] * AREA_CM2) <= hi
        medians = {p: float(np.median(fit.posterior[p].values)) for p in names}
        ours = max(abs(medians[p] / start.params[p] - 1) for p in names if p.startswith("R"))
        guess = initial_guess(case["dataset"], circuit)
        theirs = _impedance_py(circuit_string, case["dataset"], guess, names)
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
    n = len(cases)
    rows = [
        {
            "family": name,
            "quantity": q if q != "sigma" else f"sigma = L/({composite}·A)",
            "n_spectra": n,
            "covered": int(hits[q]),
            "coverage": hits[q] / n,
            "target": "0.85-0.95",
            "within_target": bool(0.85 <= hits[q] / n <= 0.95),
        }
        for q in quantities
    ]
    for label, count, of, target in (
        (f"R medians within {AGREEMENT:.0%} of our lsq", agree_lsq, both, "all"),
        (f"R medians within {AGREEMENT:.0%} of impedance.py", agree_imp, both, "all"),
        ("impedance.py R inside the NUTS 90 % intervals", inside_imp, both, "most"),
        ("fits with verdict ok", verdicts["ok"], n, "most"),
    ):
        rows.append(
            {
                "family": name,
                "quantity": label,
                "n_spectra": of,
                "covered": count,
                "coverage": count / max(of, 1),
                "target": target,
            }
        )
    alphas = [c["truth"].get("CPE3_1") for c in cases if "CPE3_1" in c["truth"]]
    below = sum(a < 0.5 for a in alphas) if name == "pellet" else 0
    note = (
        f"{name}: {n} spectra ({circuit_string}), {nuts_s:.0f} s for all NUTS fits "
        f"({nuts_s / n:.2f} s per spectrum incl. compile and reruns); verdicts {verdicts}, "
        f"{reruns} fits rerun, {at_bound} with a parameter at a bound"
        + (f", {below} with the electrode α < 0.5" if name == "pellet" else "")
        + f"; median agreement over the {both} spectra where lsq and impedance.py converged."
    )
    return rows, note


def run(quick: bool = False) -> dict:
    rng = np.random.default_rng(5)
    n_cell, n_pellet = (20, 10) if quick else (100, 100)
    rows, notes = [], []
    for name, cases in (
        ("cell", simulated_cases(n_cell, seed=31)),
        ("pellet", pellet_cases(n_pellet)),
    ):
        family_rows, note = _family(name, cases, rng)
        rows += family_rows
        notes.append(note)
    return {
        "name": "coverage",
        "title": "Bayesian EIS fit: 90 % interval coverage of the truth",
        "columns": [
            "family",
            "quantity",
            "n_spectra",
            "covered",
            "coverage",
            "target",
            "within_target",
        ],
        "rows": rows,
        "notes": (
            "1 % noise; NUTS: blackjax, 2 chains x 1000 draws, 1000 tuning steps, reruns where "
            f"a threshold broke. Geometry L = {THICKNESS_CM * 1e4:.0f} +- "
            f"{THICKNESS_SD_CM * 1e4:.0f} um, A = {AREA_CM2} +- {AREA_SD_CM2} cm2, 'measured' "
            "values drawn around the truth. impedance.py converges when its rms is within the "
            "bound lsq uses to call a fit poor. " + " ".join(notes)
        ),
    }
