"""Made cells: geometry, cell-to-cell spread and the true parameters of each measured cell.

Two cell types, as in Emley et al. 2023 (12.7 mm coupons pressed at 375 MPa):

``ion``       Li | LPSCl | composite | LPSCl | Li — electron-blocking; EIS gives σ_ion.
``electron``  Ti | composite | Ti — ion-blocking; DC polarization gives σ_el.

Each cell gets a log-normal cell effect on the conductivity it measures (``log10_effect``,
decades, drawn — not centred — unless the study asks for a balanced design), its own activation
energy (the recipe's plus a Normal cell offset), its own composite thickness (true vs. reported
by a micrometer) and its own parts: for ion cells the separators, the Li|SE interfaces, the
composite's second rail and interfacial capacitance and the set-up's lead inductance; for
electron cells the contact resistance of the Ti rods. All draws come from the generator passed
in, so a cell is a pure function of its seed.

Where ``shared/reference/physics.md`` is silent or wrong, the numbers below say why:

- Separator bulk: the arc of an ion conductor sits at 1/(2π·ρ·ε₀ε_r), independent of geometry:
  for LPSCl (ρ ≈ 1 kΩ·cm at 30 °C, ε_r ≈ 25 [assumed, thiophosphates 10–40]) about 70 MHz, i.e.
  above the 7 MHz of the paper's SP-300: only its low-frequency tail is measured, which is why the
  paper's "SE bulk" arc is in practice a high-frequency intercept. (The former lab used a bulk
  capacitance 300× the geometric one to bring the arc into the window.)
- Li|SE interfaces: R ≈ 30 Ω·cm² and C ≈ 0.2 µF/cm² (apex near 30 kHz at 30 °C), with a
  depressed CPE (α drawn per cell, 0.6–0.85 by default: electrode arcs are rarely ideal).
- Composite: an interfacial (double-layer) capacitance between the ionic and the electronic
  rail of 0.1–1 mF per coupon (carbon and NMC surface in contact with the SE); with the two-rail
  transmission line the composite's arc has its apex at f ≈ 1.6/(R_ion·C) — for the wet recipe at
  30 °C about 1–10 Hz — and closes about 1.5 decades lower, below the paper's 1 Hz cut-off
  (physics.md's "near 1 Hz for σ ≈ 1e-4 S/cm" needs C ≈ 30 mF).
- Electron cells: the Ti-rod contact of a two-probe die cell is tens of mΩ (0.02 Ω by default),
  a sizeable part of a 0.1 Ω dry composite, with a metal-like temperature coefficient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from optimizer.virtual_lab.materials import Material, Recipe, arrhenius, fabrication_failure

CELL_TYPES = ("ion", "electron")
COUPON_DIAMETER_CM = 1.27
AREA_CM2 = math.pi * (COUPON_DIAMETER_CM / 2) ** 2
AREA_SD_CM2 = 0.01
NOMINAL_THICKNESS_UM = 60.0
THICKNESS_SPREAD_UM = 3.0  # film-to-film, true thickness
MICROMETER_SD_UM = 1.5  # reading error of the reported thickness
REPORTED_THICKNESS_SD_UM = 2.0
VACUUM_PERMITTIVITY_F_PER_CM = 8.8541878128e-14

# Ion cell, [assumed]: two tape-cast LPSCl separators (100 µm each, 5 wt% NBR), Li|SE interfaces.
SEPARATOR_THICKNESS_UM = 2 * 100.0
SEPARATOR_SIGMA_30C_S_PER_CM = 1.0e-3
SEPARATOR_EA_EV = 0.33
SEPARATOR_PERMITTIVITY = 25.0
INTERFACE_R_30C_OHM_CM2 = 30.0  # both Li|SE interfaces together
INTERFACE_EA_EV = 0.40
INTERFACE_C_F_PER_CM2 = 2.0e-7
LEAD_RESISTANCE_OHM = 0.8  # current collectors, Li foil, rods (4-wire sensing excludes cables)
COMPOSITE_ALPHA = (0.85, 0.95)  # the composite's interfacial CPE exponent, drawn per cell
PART_SPREAD_DECADES = 0.05  # cell-to-cell spread of the separator/interface/contact parts

# Electron cell, [assumed]: Ti rods pressed on the film.
CONTACT_SPREAD_DECADES = 0.15
V_OFFSET_SD_V = 1e-4
SETTLE_AMPLITUDE = 0.02  # tiny capacitive overshoot of the current at each step
SETTLE_TIME_S = 1.5


@dataclass(frozen=True)
class CellSpec:
    """How cells are made (the cell-level settings of :class:`~.study.LabSettings`).

    Attributes
    ----------
    cell_Ea_sd_eV : sd of a cell's activation energy around its recipe's.
    composite_capacitance_F, composite_capacitance_spread_decades : median and log10 sd of the
        composite's interfacial capacitance per coupon (F).
    interface_alpha : (low, high) of the Li|SE interface CPE exponent, uniform per cell.
    lead_inductance_H : (low, high) of the set-up's series inductance, log-uniform per cell
        (0 and 0 for none).
    dc_contact_ohm, dc_contact_tcr_per_K : median Ti-rod contact resistance of electron cells at
        30 °C (Ω) and its relative temperature coefficient (1/K).
    """

    cell_Ea_sd_eV: float = 0.01
    composite_capacitance_F: float = 3e-4
    composite_capacitance_spread_decades: float = 0.25
    interface_alpha: tuple[float, float] = (0.7, 0.9)
    lead_inductance_H: tuple[float, float] = (1e-7, 1e-6)
    dc_contact_ohm: float = 0.02
    dc_contact_tcr_per_K: float = 0.003


@dataclass(frozen=True)
class Cell:
    """A made and measurable cell.

    Attributes
    ----------
    cell_id, recipe, cell_type : labels; ``cell_type`` is ``"ion"`` or ``"electron"``.
    thickness_cm, area_cm2 : true composite geometry.
    reported_thickness_um, thickness_sd_um, reported_area_cm2, area_sd_cm2 : what the lab
        writes in the manifest (micrometer reading, punch area) and their uncertainties.
    log10_effect : cell effect on the measured conductivity, decades.
    sigma_30C_S_per_cm, Ea_eV : this cell's true conductivity (ionic for ``ion``, electronic
        for ``electron``) at 303.15 K, effect included, and its own activation energy.
    sigma_other_30C_S_per_cm, Ea_other_eV : the other conductivity of this cell (its own cell
        effect included), the second rail of the transmission-line composite of ion cells.
    parts : cell-type specific true parameters (separator, interfaces, contacts…).
    """

    cell_id: str
    recipe: str
    cell_type: str
    thickness_cm: float
    area_cm2: float
    reported_thickness_um: float
    thickness_sd_um: float
    reported_area_cm2: float
    area_sd_cm2: float
    log10_effect: float
    sigma_30C_S_per_cm: float
    Ea_eV: float
    sigma_other_30C_S_per_cm: float
    Ea_other_eV: float
    parts: dict = field(default_factory=dict)

    def sigma(self, temperature_K: float) -> float:
        """This cell's measured-type conductivity at ``temperature_K`` (S/cm)."""
        return arrhenius(self.sigma_30C_S_per_cm, self.Ea_eV, temperature_K)

    def sigma_other(self, temperature_K: float) -> float:
        """This cell's other conductivity at ``temperature_K`` (S/cm)."""
        return arrhenius(self.sigma_other_30C_S_per_cm, self.Ea_other_eV, temperature_K)

    def composite_resistance(self, temperature_K: float) -> float:
        """R = L/(σ·A) of the composite for the conductivity this cell measures (Ω)."""
        return self.thickness_cm / (self.sigma(temperature_K) * self.area_cm2)


@dataclass(frozen=True)
class FailedCell:
    """A cell that could not be made; no data are written for it."""

    cell_id: str
    recipe: str
    cell_type: str
    reason: str


def _lognormal(rng: np.random.Generator, median: float, sd_decades: float) -> float:
    return float(median * 10 ** (sd_decades * rng.standard_normal()))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    if low <= 0 or high <= 0:
        return float(low + (high - low) * rng.uniform())
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def cell_effects(rng: np.random.Generator, n: int, sd_decades: float, balanced: bool) -> list:
    """Log10 cell effects for ``n`` cells; ``balanced`` centres them so their mean is 0."""
    effects = sd_decades * rng.standard_normal(n)
    if balanced and n > 1:
        effects = effects - effects.mean()
    return [float(e) for e in effects]


def separator_capacitance_F(thickness_cm: float, area_cm2: float) -> float:
    """Geometric (bulk) capacitance ε₀·ε_r·A/d of the LPSCl separators (F)."""
    return VACUUM_PERMITTIVITY_F_PER_CM * SEPARATOR_PERMITTIVITY * area_cm2 / thickness_cm


def make_cell(
    recipe: Recipe,
    material: Material,
    cell_type: str,
    *,
    cell_id: str,
    recipe_name: str,
    rng: np.random.Generator,
    log10_effect: float,
    spread_decades: float = 0.15,
    spec: CellSpec | None = None,
) -> Cell | FailedCell:
    """Make one cell of ``recipe``, or report why it failed.

    Parameters
    ----------
    recipe, material : the recipe and its true properties (:func:`material_properties`).
    cell_type : ``"ion"`` or ``"electron"``.
    rng : generator for this cell's geometry, activation energy and parts.
    log10_effect : cell effect on the measured conductivity (decades).
    spread_decades : sd of the cell effect drawn for the other conductivity (the second rail
        of an ion cell's composite).
    spec : how cells are made (:class:`CellSpec` defaults when omitted).
    """
    if cell_type not in CELL_TYPES:
        raise ValueError(f"cell_type must be one of {CELL_TYPES}, got {cell_type!r}")
    reason = fabrication_failure(recipe)
    if reason is not None:
        return FailedCell(cell_id, recipe_name, cell_type, reason)
    spec = spec or CellSpec()
    true_um = NOMINAL_THICKNESS_UM + THICKNESS_SPREAD_UM * rng.standard_normal()
    reported_um = round(true_um + MICROMETER_SD_UM * rng.standard_normal(), 1)
    area = AREA_CM2 * (1 + 0.003 * rng.standard_normal())
    ion = cell_type == "ion"
    sigma, ea = (
        (material.sigma_ion_30C_S_per_cm, material.Ea_ion_eV)
        if ion
        else (material.sigma_el_30C_S_per_cm, material.Ea_el_eV)
    )
    other, ea_other = (
        (material.sigma_el_30C_S_per_cm, material.Ea_el_eV)
        if ion
        else (material.sigma_ion_30C_S_per_cm, material.Ea_ion_eV)
    )
    ea_cell = max(ea + spec.cell_Ea_sd_eV * rng.standard_normal(), 0.0)
    other_effect = spread_decades * rng.standard_normal()
    ea_other_cell = max(ea_other + spec.cell_Ea_sd_eV * rng.standard_normal(), 0.0)
    if ion:
        separator_cm = SEPARATOR_THICKNESS_UM * 1e-4 * (1 + 0.03 * rng.standard_normal())
        parts = {
            "lead_resistance_ohm": _lognormal(rng, LEAD_RESISTANCE_OHM, PART_SPREAD_DECADES),
            "lead_inductance_H": _log_uniform(rng, *spec.lead_inductance_H),
            "separator_thickness_cm": separator_cm,
            "separator_sigma_30C_S_per_cm": _lognormal(
                rng, SEPARATOR_SIGMA_30C_S_PER_CM, PART_SPREAD_DECADES
            ),
            "separator_Ea_eV": SEPARATOR_EA_EV,
            "separator_capacitance_F": separator_capacitance_F(separator_cm, area),
            "interface_R_30C_ohm": _lognormal(rng, INTERFACE_R_30C_OHM_CM2, PART_SPREAD_DECADES)
            / area,
            "interface_Ea_eV": INTERFACE_EA_EV,
            "interface_capacitance_F": _lognormal(
                rng, INTERFACE_C_F_PER_CM2 * area, 2 * PART_SPREAD_DECADES
            ),
            "interface_alpha": float(rng.uniform(*spec.interface_alpha)),
            "composite_capacitance_F": _lognormal(
                rng, spec.composite_capacitance_F, spec.composite_capacitance_spread_decades
            ),
            "composite_alpha": float(rng.uniform(*COMPOSITE_ALPHA)),
        }
    else:
        parts = {
            "contact_resistance_30C_ohm": _lognormal(
                rng, spec.dc_contact_ohm, CONTACT_SPREAD_DECADES
            ),
            "contact_tcr_per_K": spec.dc_contact_tcr_per_K,
            "V_offset_V": float(V_OFFSET_SD_V * rng.standard_normal()),
            "settle_amplitude": SETTLE_AMPLITUDE,
            "settle_time_s": SETTLE_TIME_S,
        }
    return Cell(
        cell_id=cell_id,
        recipe=recipe_name,
        cell_type=cell_type,
        thickness_cm=float(true_um) * 1e-4,
        area_cm2=float(area),
        reported_thickness_um=float(reported_um),
        thickness_sd_um=REPORTED_THICKNESS_SD_UM,
        reported_area_cm2=round(AREA_CM2, 3),
        area_sd_cm2=AREA_SD_CM2,
        log10_effect=log10_effect,
        sigma_30C_S_per_cm=sigma * 10**log10_effect,
        Ea_eV=float(ea_cell),
        sigma_other_30C_S_per_cm=float(other * 10**other_effect),
        Ea_other_eV=float(ea_other_cell),
        parts=parts,
    )
