"""Measurements of a made cell: EIS of the 5-layer ion cell and DC sweeps of the electron cell.

EIS (physics.md §2.5): ``R_hf + (R_SE‖CPE) + (R_int‖CPE) + Z_composite`` with the composite an
R‖CPE (``"rq"``, the paper's fit model) or the two-rail transmission line (``"tlm"``), evaluated
by the shared circuit code :mod:`inference.circuits` with 1 % relative noise on Re and Im.

DC (physics.md §2.6): ``I = (V − V_offset)/(R_el + R_contact)`` at each bias step, with a tiny
exponential settle (carbon present: the plateau is reached almost at once) and relative noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.circuits import simulate_spectrum
from optimizer.virtual_lab.cells import Cell
from optimizer.virtual_lab.materials import arrhenius

CIRCUITS = {
    "rq": "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)",
    "tlm": "R0-p(R1,CPE1)-p(R2,CPE2)-TLM3",
}


def eis_frequencies(f_max_Hz: float = 7e6, f_min_Hz: float = 1.0, points_per_decade: int = 10):
    """Log-spaced sweep from ``f_max_Hz`` down to ``f_min_Hz`` (both included), Hz."""
    decades = np.log10(f_max_Hz / f_min_Hz)
    return np.geomspace(f_max_Hz, f_min_Hz, int(round(decades * points_per_decade)) + 1)


def eis_parameters(cell: Cell, temperature_K: float, composite_model: str = "rq") -> dict:
    """True circuit parameters of an ion cell at ``temperature_K`` (Ω, Ω⁻¹ s^α, exponents)."""
    parts = cell.parts
    sigma_sep = arrhenius(
        parts["separator_sigma_30C_S_per_cm"], parts["separator_Ea_eV"], temperature_K
    )
    params = {
        "R0": parts["lead_resistance_ohm"],
        "R1": parts["separator_thickness_cm"] / (sigma_sep * cell.area_cm2),
        "CPE1_0": parts["CPE_separator"][0],
        "CPE1_1": parts["CPE_separator"][1],
        # a resistance falls as its conductance rises: Arrhenius with the sign of Ea flipped
        "R2": arrhenius(parts["interface_R_30C_ohm"], -parts["interface_Ea_eV"], temperature_K),
        "CPE2_0": parts["CPE_interface"][0],
        "CPE2_1": parts["CPE_interface"][1],
    }
    r_ion = cell.composite_resistance(temperature_K)
    q, alpha = parts["CPE_composite"]
    if composite_model == "rq":
        params.update({"R3": r_ion, "CPE3_0": q, "CPE3_1": alpha})
    elif composite_model == "tlm":
        sigma_el = arrhenius(cell.sigma_other_30C_S_per_cm, cell.Ea_other_eV, temperature_K)
        r_el = cell.thickness_cm / (sigma_el * cell.area_cm2)
        params.update({"TLM3_0": r_ion, "TLM3_1": r_el, "TLM3_2": q, "TLM3_3": alpha})
    else:
        raise ValueError(
            f"composite_model must be one of {sorted(CIRCUITS)}, got {composite_model!r}"
        )
    return params


@dataclass(frozen=True)
class EISRecord:
    """A simulated spectrum: frequencies (Hz), Z = z_real + j·z_imag (Ω), and its truth."""

    frequency_Hz: np.ndarray
    z_real: np.ndarray
    z_imag: np.ndarray
    circuit: str
    parameters: dict


def simulate_eis(
    cell: Cell,
    temperature_K: float,
    frequency_Hz: np.ndarray,
    *,
    seed: int,
    noise_rel: float = 0.01,
    composite_model: str = "rq",
) -> EISRecord:
    """EIS of an ion cell with relative noise ``noise_rel`` on Re and Im (sd = noise_rel·|Z|)."""
    params = eis_parameters(cell, temperature_K, composite_model)
    circuit = CIRCUITS[composite_model]
    spectrum = simulate_spectrum(circuit, params, frequency_Hz, noise_rel=noise_rel, seed=seed)
    return EISRecord(
        np.asarray(frequency_Hz, dtype=float),
        spectrum["z_real"].values,
        spectrum["z_imag"].values,
        circuit,
        params,
    )


@dataclass(frozen=True)
class DCRecord:
    """A simulated DC polarization: samples in time with the bias-step index and its truth."""

    time_s: np.ndarray
    control_V: np.ndarray
    voltage_V: np.ndarray
    current_A: np.ndarray
    step: np.ndarray
    R_el_ohm: float
    R_contact_ohm: float
    V_offset_V: float


def simulate_dc(
    cell: Cell,
    temperature_K: float,
    biases_V,
    *,
    hold_s: float,
    sample_s: float,
    rng: np.random.Generator,
    noise_rel: float = 0.005,
) -> DCRecord:
    """Chronoamperometry of an electron cell at each bias in ``biases_V`` (V), ``hold_s`` each.

    Samples every ``sample_s`` s; the current is ``(V − V_offset)/(R_el + R_contact)`` times
    ``1 + a·exp(−t/τ)`` from the step start, plus relative noise ``noise_rel``.
    """
    parts = cell.parts
    r_el = cell.composite_resistance(temperature_K)
    r_total = r_el + parts["contact_resistance_ohm"]
    n_per_step = int(round(hold_s / sample_s))
    t_in_step = sample_s * (np.arange(n_per_step) + 1)
    biases = np.asarray(biases_V, dtype=float)
    control = np.repeat(biases, n_per_step)
    step = np.repeat(np.arange(biases.size), n_per_step)
    settle = 1 + parts["settle_amplitude"] * np.exp(-t_in_step / parts["settle_time_s"])
    current = (control - parts["V_offset_V"]) / r_total * np.tile(settle, biases.size)
    current = current * (1 + noise_rel * rng.standard_normal(current.size))
    voltage = control + 2e-5 * rng.standard_normal(control.size)  # potentiostat control error
    time = sample_s * (np.arange(control.size) + 1)
    return DCRecord(
        time,
        control,
        voltage,
        current,
        step,
        r_el,
        parts["contact_resistance_ohm"],
        parts["V_offset_V"],
    )
