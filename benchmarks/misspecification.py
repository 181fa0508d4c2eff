"""Benchmark suite ``misspecification``: σ_ion of a transmission-line composite fitted with the
paper's R‖CPE, against σ_el/σ_ion.

Ion cells (Li | LPSCl | composite | LPSCl | Li) of the realistic virtual lab — lead inductance,
drift, outliers, interface arcs with α 0.7–0.9, the composite a two-rail transmission line — are
made with σ_ion = 6.9e-5 S/cm (the paper's dry cathode) and σ_el = r·σ_ion for r from 1 to
10⁴, measured once at 30 °C (7 MHz → 10 mHz), and fitted by least squares (the pipeline's
``lsq`` stage 1, interval from its covariance) with

- ``L0-R0-p(R1,CPE1)-p(R2,CPE2)``: the composite as an R‖CPE, as the paper (and most labs) fit it;
- ``L0-R0-p(R1,CPE1)-TLMs2``: the transmission line with a short electronic rail, the virtual
  lab's manifest circuit (exactly the full line minus the resistor R_ion‖R_el, so its expected
  bias is −1/(1 + r) in R_ion, i.e. +1/r in σ_ion).

Per r and circuit: the median relative bias of σ_ion, the median half-width of its 90 %
interval, the coverage of those intervals, and the bias in units of the half-width.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

RATIOS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)
CELLS_PER_RATIO = 10
QUICK_CELLS = 2
SIGMA_ION_S_PER_CM = 6.9e-5
TEMPERATURE_K = 303.15
CIRCUITS = {
    "R‖CPE (paper)": "L0-R0-p(R1,CPE1)-p(R2,CPE2)",
    "TLMs (manifest)": "L0-R0-p(R1,CPE1)-TLMs2",
}
Z90 = 1.6448536269514722


def simulated_spectrum(ratio: float, k: int):
    """Spectrum of ion cell ``k`` with σ_el/σ_ion = ``ratio``, and its true composite R (Ω)."""
    from inference.spectrum import make_spectrum
    from optimizer.virtual_lab import LabSettings
    from optimizer.virtual_lab.cells import make_cell
    from optimizer.virtual_lab.materials import material_properties, parse_recipe
    from optimizer.virtual_lab.measure import eis_frequencies, simulate_eis
    from optimizer.virtual_lab.study import sweep_artefacts

    settings = LabSettings()
    recipe = parse_recipe({"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry"})
    material = dataclasses.replace(
        material_properties(recipe),
        sigma_ion_30C_S_per_cm=SIGMA_ION_S_PER_CM,
        sigma_el_30C_S_per_cm=ratio * SIGMA_ION_S_PER_CM,
    )
    rng = np.random.default_rng([7, int(ratio), k])
    cell = make_cell(
        recipe,
        material,
        "ion",
        cell_id=f"r{ratio:g}-{k}",
        recipe_name="dry",
        rng=rng,
        log10_effect=0.0,
        spread_decades=0.0,  # the electronic rail exactly r times the ionic one
        spec=settings.cell_spec(),
    )
    f = eis_frequencies(settings.f_max_Hz, settings.f_min_Hz, settings.points_per_decade)
    record = simulate_eis(
        cell,
        TEMPERATURE_K,
        f,
        rng=rng,
        artefacts=sweep_artefacts(rng, f.size, settings),
        composite_model="tlm",
    )
    spectrum = make_spectrum(f, record.z_real, record.z_imag, source=f"<{cell.cell_id}>")
    return spectrum, record.parameters["TLM3_0"]


def run(quick: bool = False) -> dict:
    from inference.circuits import parse_circuit
    from inference.lsq import fit_lsq

    n = QUICK_CELLS if quick else CELLS_PER_RATIO
    rows = []
    for ratio in RATIOS:
        cases = [simulated_spectrum(ratio, k) for k in range(n)]
        for label, text in CIRCUITS.items():
            circuit = parse_circuit(text)
            name = circuit.arcs[-1].r
            bias, half, covered = [], [], []
            for spectrum, r_true in cases:
                fit = fit_lsq(spectrum, circuit)
                log_r = math.log(fit.params[name])
                sd = fit.stderr[name] / fit.params[name]  # sd of log R (delta method)
                bias.append(r_true / fit.params[name] - 1)  # σ ∝ 1/R
                half.append(math.expm1(Z90 * sd))
                covered.append(abs(math.log(r_true) - log_r) <= Z90 * sd)
            b, h = float(np.median(bias)), float(np.median(half))
            rows.append(
                {
                    "sigma_el_over_ion": ratio,
                    "circuit": label,
                    "n_spectra": n,
                    "median_bias_sigma_ion_pct": 100 * b,
                    "median_half_width_90_pct": 100 * h,
                    "bias_over_half_width": b / h if h > 0 else math.inf,
                    "coverage_90": float(np.mean(covered)),
                }
            )
    notes = (
        f"Ion cells of the realistic virtual lab at 30 °C (σ_ion {SIGMA_ION_S_PER_CM:g} S/cm, "
        f"{n} cells per ratio: own interface α, interfacial capacitance, inductance, drift, "
        "outliers), 7 MHz-10 mHz, 1 % noise; least-squares fits (interval: the lsq covariance, "
        "as the pipeline's lsq stage 1). Bias = σ_fit/σ_true − 1. "
        + "; ".join(f"{k}: {v}" for k, v in CIRCUITS.items())
        + ". TLMs is exactly the full line minus a resistor R_ion‖R_el: expected bias +1/r."
    )
    return {
        "name": "misspecification",
        "title": "σ_ion of transmission-line composites fitted with R‖CPE vs the TLMs",
        "columns": [
            "sigma_el_over_ion",
            "circuit",
            "n_spectra",
            "median_bias_sigma_ion_pct",
            "median_half_width_90_pct",
            "bias_over_half_width",
            "coverage_90",
        ],
        "rows": rows,
        "notes": notes,
    }
