"""Measurements of a made cell: EIS of the 5-layer ion cell and DC sweeps of the electron cell.

EIS (physics.md §2.5), in sweep order from high to low frequency::

    Z = jωL_lead + R_lead + (R_SE‖C_SE) + (R_int‖CPE_int) + Z_composite

with ``Z_composite`` the two-rail transmission line (``"tlm"``, default: ionic rail contacted
at both ends, electronic rail blocked, interfacial CPE between them) or an R‖CPE (``"rq"``, the
paper's fit model), evaluated by the shared circuit code :mod:`inference.circuits`. Every arc
is placed by a physical capacitance (see :mod:`~optimizer.virtual_lab.cells`): the separator's
geometric one (its arc lies above 7 MHz), the interfaces' double layer and the composite's
interfacial capacitance. Instrument artefacts, each with its own setting
(:class:`Artefacts`): relative Gaussian noise on Re and Im, a slow drift of every resistance
during the sweep (linear in elapsed time, :func:`sweep_times`), and occasional outliers (a
point whose Z is off by a fixed fraction of |Z| in a random direction). The lead inductance
and the temperature offset belong to the cell and the measurement (``cells``, ``study``).

DC (physics.md §2.6): ``I = (V − V_offset)/(R_el + R_contact(T))`` at each bias step, with a
tiny exponential settle (carbon present: the plateau is reached almost at once) and relative
noise; the two-probe contact ``R_contact(T) = R_c,30·(1 + β·(T − 303.15 K))`` is measured with
the sample, as in any two-probe die cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.circuits import parse_circuit
from optimizer.virtual_lab.cells import Cell
from optimizer.virtual_lab.materials import T_REF_K, arrhenius

CIRCUITS = {
    "rq": "L0-R0-p(R1,C1)-p(R2,CPE2)-p(R3,CPE3)",
    "tlm": "L0-R0-p(R1,C1)-p(R2,CPE2)-TLM3",
}
#: The composite's resistance (its ionic rail) in each circuit.
COMPOSITE_RESISTANCE = {"rq": "R3", "tlm": "TLM3_0"}
#: Resistive parameters that drift during a sweep (all resistances of the cell).
RESISTANCES = ("R0", "R1", "R2", "R3", "TLM3_0", "TLM3_1")


def analysis_circuit(composite_model: str = "tlm", inductance: bool = True) -> str:
    """The circuit a lab would fit to these ion-cell spectra (written to the manifest).

    ``R0`` takes the leads and the separators (their arc lies above the window: only its
    resistance is seen, and the tail of its arc acts as a small negative inductance, taken by
    ``L0``), ``p(R1,CPE1)`` the Li|SE interfaces, the last element the composite: ``TLMs2``
    (the transmission line with a short electronic rail: with carbon σ_el/σ_ion ≈ 10²–10⁴, and
    the full ``TLM``'s second rail would be unidentified) for a transmission-line composite,
    ``p(R2,CPE2)`` for an R‖CPE one; ``L0`` in front when the set-up has a lead inductance.
    """
    composite = {"tlm": "TLMs2", "rq": "p(R2,CPE2)"}[composite_model]
    return f"{'L0-' if inductance else ''}R0-p(R1,CPE1)-{composite}"


def eis_frequencies(f_max_Hz: float = 7e6, f_min_Hz: float = 1.0, points_per_decade: int = 10):
    """Log-spaced sweep from ``f_max_Hz`` down to ``f_min_Hz`` (both included), Hz."""
    decades = np.log10(f_max_Hz / f_min_Hz)
    return np.geomspace(f_max_Hz, f_min_Hz, int(round(decades * points_per_decade)) + 1)


def sweep_times(frequency_Hz) -> np.ndarray:
    """Elapsed time (s) at each point of a sweep: 3 periods per point, at least 0.1 s."""
    return np.cumsum(np.maximum(0.1, 3.0 / np.asarray(frequency_Hz, dtype=float)))


def eis_parameters(cell: Cell, temperature_K: float, composite_model: str = "tlm") -> dict:
    """True circuit parameters of an ion cell at ``temperature_K`` (Ω, H, F, Ω⁻¹ s^α, exponents).

    The composite's CPE coefficient is its interfacial capacitance in F·s^(α−1) (numerically the
    capacitance seen at 1 rad/s); the interface CPE keeps its time constant R·C.
    """
    parts = cell.parts
    sigma_sep = arrhenius(
        parts["separator_sigma_30C_S_per_cm"], parts["separator_Ea_eV"], temperature_K
    )
    # a resistance falls as its conductance rises: Arrhenius with the sign of Ea flipped
    r_int = arrhenius(parts["interface_R_30C_ohm"], -parts["interface_Ea_eV"], temperature_K)
    alpha_int = parts["interface_alpha"]
    tau_int = r_int * parts["interface_capacitance_F"]
    params = {
        "L0": parts["lead_inductance_H"],
        "R0": parts["lead_resistance_ohm"],
        "R1": parts["separator_thickness_cm"] / (sigma_sep * cell.area_cm2),
        "C1": parts["separator_capacitance_F"],
        "R2": r_int,
        "CPE2_0": tau_int**alpha_int / r_int,
        "CPE2_1": alpha_int,
    }
    r_ion = cell.composite_resistance(temperature_K)
    q, alpha = parts["composite_capacitance_F"], parts["composite_alpha"]
    if composite_model == "rq":
        params.update({"R3": r_ion, "CPE3_0": q, "CPE3_1": alpha})
    elif composite_model == "tlm":
        r_el = cell.thickness_cm / (cell.sigma_other(temperature_K) * cell.area_cm2)
        params.update({"TLM3_0": r_ion, "TLM3_1": r_el, "TLM3_2": q, "TLM3_3": alpha})
    else:
        raise ValueError(
            f"composite_model must be one of {sorted(CIRCUITS)}, got {composite_model!r}"
        )
    return params


@dataclass(frozen=True)
class Artefacts:
    """Instrument artefacts of one EIS sweep (see the module docstring).

    Attributes
    ----------
    noise_rel : sd of the noise on Re and Im as a fraction of |Z|.
    drift_rel : relative change of every resistance from the first to the last point.
    outliers : indices of the outlying points; outlier_size_rel : their error, fraction of |Z|.
    """

    noise_rel: float = 0.01
    drift_rel: float = 0.0
    outliers: tuple[int, ...] = ()
    outlier_size_rel: float = 0.1


@dataclass(frozen=True)
class EISRecord:
    """A simulated spectrum: frequencies (Hz), Z = z_real + j·z_imag (Ω), and its truth."""

    frequency_Hz: np.ndarray
    z_real: np.ndarray
    z_imag: np.ndarray
    circuit: str
    parameters: dict


def true_impedance(circuit: str, parameters: dict, frequency_Hz, drift_rel: float = 0.0):
    """The cell's impedance at each point of a sweep (Ω, complex), drift included, no noise.

    ``parameters`` are those at the start of the sweep; every resistance changes by
    ``drift_rel × (elapsed time / sweep duration)``.
    """
    f = np.asarray(frequency_Hz, dtype=float)
    t = sweep_times(f)
    factor = 1 + drift_rel * t / t[-1]
    drifted = {k: v * factor if k in RESISTANCES else v for k, v in parameters.items()}
    return parse_circuit(circuit).impedance(drifted, f)


def simulate_eis(
    cell: Cell,
    temperature_K: float,
    frequency_Hz: np.ndarray,
    *,
    rng: np.random.Generator,
    artefacts: Artefacts,
    composite_model: str = "tlm",
) -> EISRecord:
    """EIS of an ion cell at its actual ``temperature_K`` with the sweep's ``artefacts``."""
    params = eis_parameters(cell, temperature_K, composite_model)
    circuit = CIRCUITS[composite_model]
    f = np.asarray(frequency_Hz, dtype=float)
    z = true_impedance(circuit, params, f, artefacts.drift_rel)
    modulus = np.abs(z)
    noise = rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)
    z = z + artefacts.noise_rel * modulus * noise
    for k in artefacts.outliers:
        direction = np.exp(1j * rng.uniform(0, 2 * np.pi))
        z[k] += artefacts.outlier_size_rel * modulus[k] * direction
    return EISRecord(f, z.real, z.imag, circuit, params)


def contact_resistance(cell: Cell, temperature_K: float) -> float:
    """Two-probe contact resistance of an electron cell at ``temperature_K`` (Ω)."""
    parts = cell.parts
    return parts["contact_resistance_30C_ohm"] * (
        1 + parts["contact_tcr_per_K"] * (temperature_K - T_REF_K)
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
    r_contact = contact_resistance(cell, temperature_K)
    n_per_step = int(round(hold_s / sample_s))
    t_in_step = sample_s * (np.arange(n_per_step) + 1)
    biases = np.asarray(biases_V, dtype=float)
    control = np.repeat(biases, n_per_step)
    step = np.repeat(np.arange(biases.size), n_per_step)
    settle = 1 + parts["settle_amplitude"] * np.exp(-t_in_step / parts["settle_time_s"])
    current = (control - parts["V_offset_V"]) / (r_el + r_contact) * np.tile(settle, biases.size)
    current = current * (1 + noise_rel * rng.standard_normal(current.size))
    voltage = control + 2e-5 * rng.standard_normal(control.size)  # potentiostat control error
    time = sample_s * (np.arange(control.size) + 1)
    return DCRecord(time, control, voltage, current, step, r_el, r_contact, parts["V_offset_V"])
