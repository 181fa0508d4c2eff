"""Made cells: geometry, cell-to-cell spread and the true parameters of each measured cell.

Two cell types, as in Emley et al. 2023 (12.7 mm coupons pressed at 375 MPa):

``ion``       Li | LPSCl | composite | LPSCl | Li — electron-blocking; EIS gives σ_ion.
``electron``  Ti | composite | Ti — ion-blocking; DC polarization gives σ_el.

Each cell gets a log-normal cell effect on the conductivity it measures (``log10_effect``,
decades), its own composite thickness (true vs. reported by a micrometer) and, for ion cells,
its own separator, interface and contact parts. All draws come from the generator passed in,
so a cell is a pure function of its seed.
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

# Ion cell, [assumed]: two tape-cast LPSCl separators (100 µm each, 5 wt% NBR), Li|SE interfaces.
SEPARATOR_THICKNESS_UM = 2 * 100.0
SEPARATOR_SIGMA_30C_S_PER_CM = 1.0e-3
SEPARATOR_EA_EV = 0.33
INTERFACE_R_30C_OHM_CM2 = 30.0  # both Li|SE interfaces together
INTERFACE_EA_EV = 0.40
LEAD_RESISTANCE_OHM = 0.8
# CPEs chosen so the arcs stay in separate decades of 7 MHz–1 Hz for every bundled recipe and
# temperature (apex frequencies): separator 0.5–4.5 MHz, interfaces 25–360 kHz, composite
# 7 Hz–4 kHz (σ_ion from 3.3e-6 at 30 °C to 4e-4 S/cm at 75 °C).
CPE_SEPARATOR = (7.6e-8, 0.90)
CPE_INTERFACE = (1.4e-6, 0.85)
CPE_COMPOSITE = (2.0e-5, 0.85)
PART_SPREAD_DECADES = 0.05  # cell-to-cell spread of the separator/interface/contact parts

# Electron cell, [assumed]: Ti rods pressed on the film.
CONTACT_RESISTANCE_OHM = 0.0002  # Ti rods pressed at 21 MPa: 0.2 % of the dry cell's R_el
V_OFFSET_SD_V = 1e-4
SETTLE_AMPLITUDE = 0.02  # tiny capacitive overshoot of the current at each step
SETTLE_TIME_S = 1.5


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
        for ``electron``) at 303.15 K, effect included, and its activation energy.
    sigma_other_30C_S_per_cm, Ea_other_eV : the other conductivity (no cell effect), used by
        the transmission-line composite of ion cells.
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


def cell_effects(rng: np.random.Generator, n: int, sd_decades: float, balanced: bool) -> list:
    """Log10 cell effects for ``n`` cells; ``balanced`` centres them so their mean is 0."""
    effects = sd_decades * rng.standard_normal(n)
    if balanced and n > 1:
        effects = effects - effects.mean()
    return [float(e) for e in effects]


def make_cell(
    recipe: Recipe,
    material: Material,
    cell_type: str,
    *,
    cell_id: str,
    recipe_name: str,
    rng: np.random.Generator,
    log10_effect: float,
) -> Cell | FailedCell:
    """Make one cell of ``recipe``, or report why it failed.

    Parameters
    ----------
    recipe, material : the recipe and its true properties (:func:`material_properties`).
    cell_type : ``"ion"`` or ``"electron"``.
    rng : generator for this cell's geometry and parts.
    log10_effect : cell effect on the measured conductivity (decades).
    """
    if cell_type not in CELL_TYPES:
        raise ValueError(f"cell_type must be one of {CELL_TYPES}, got {cell_type!r}")
    reason = fabrication_failure(recipe)
    if reason is not None:
        return FailedCell(cell_id, recipe_name, cell_type, reason)
    true_um = NOMINAL_THICKNESS_UM + THICKNESS_SPREAD_UM * rng.standard_normal()
    reported_um = round(true_um + MICROMETER_SD_UM * rng.standard_normal(), 1)
    area = AREA_CM2 * (1 + 0.003 * rng.standard_normal())
    if cell_type == "ion":
        sigma, ea = material.sigma_ion_30C_S_per_cm, material.Ea_ion_eV
        other, ea_other = material.sigma_el_30C_S_per_cm, material.Ea_el_eV
        parts = {
            "separator_thickness_cm": SEPARATOR_THICKNESS_UM
            * 1e-4
            * (1 + 0.03 * rng.standard_normal()),
            "separator_sigma_30C_S_per_cm": _lognormal(
                rng, SEPARATOR_SIGMA_30C_S_PER_CM, PART_SPREAD_DECADES
            ),
            "separator_Ea_eV": SEPARATOR_EA_EV,
            "interface_R_30C_ohm": _lognormal(rng, INTERFACE_R_30C_OHM_CM2, PART_SPREAD_DECADES)
            / area,
            "interface_Ea_eV": INTERFACE_EA_EV,
            "lead_resistance_ohm": _lognormal(rng, LEAD_RESISTANCE_OHM, PART_SPREAD_DECADES),
            "CPE_separator": list(CPE_SEPARATOR),
            "CPE_interface": list(CPE_INTERFACE),
            "CPE_composite": list(CPE_COMPOSITE),
        }
    else:
        sigma, ea = material.sigma_el_30C_S_per_cm, material.Ea_el_eV
        other, ea_other = material.sigma_ion_30C_S_per_cm, material.Ea_ion_eV
        parts = {
            "contact_resistance_ohm": CONTACT_RESISTANCE_OHM,
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
        Ea_eV=ea,
        sigma_other_30C_S_per_cm=other,
        Ea_other_eV=ea_other,
        parts=parts,
    )
