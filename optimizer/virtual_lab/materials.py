"""Recipe → true material properties: σ_ion(T), σ_el(T), activation energies, failed fabrication.

The forward model of ``shared/reference/physics.md`` §2 (Emley et al. 2023, Mater. Futures 2
045102). A recipe is the composite 70:27:3 NMC83 : LPSCl : VGCF (weights adjustable) plus a
polymer binder made by a dry (PTFE fibrils, shear-rolled) or wet (NBR, slurry-cast) process and
pressed at ``press_MPa``.

Ionic (composite, 30 °C)::

    σ_ion = σ_SE · s_process · g_binder(w_b) · f(ε_SE)
    f(ε) = ((ε − ε_c)/(1 − ε_c))^t          ε > ε_c, else 0 (percolation)
    g(w) = g_min + (1 − g_min)·exp(−w/w_0)   (binder penalty, floor g_min)
    ε_SE = (SE volume share of the solids, binder included) · ρ(P)
    ρ(P) = ρ_max − (ρ_max − ρ_0)·exp(−P/P_0) (relative density: saturating with pressure)

Electronic (composite, 30 °C)::

    σ_el = (σ_C·((φ_C − φ_c)/(1 − φ_c))^t_C + σ_NMC) · h_binder(w_b)

Temperature: every conductivity is Arrhenius centred at ``T_REF_K`` = 303.15 K,
``σ(T) = σ_30 · exp[−(Ea/k_B)(1/T − 1/T_ref)]``.

Calibration (exact, done once at import from the paper's numbers): σ_SE makes the binder-free
composite 1.7e-4 S/cm (literature); the solvent factor is the paper's dry/solvent-treated ratio
(1.3e-5 / 6.9e-5); the binder floors g_min (PTFE, NBR) and h_min (NBR) and the carbon
conductivity σ_C make the three paper recipes at 0.5 wt% and 375 MPa come out at exactly the
paper's σ_ion and σ_el. Forms and the remaining constants are [assumed] modelling choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from inference.errors import InputError

K_B_EV_PER_K = 8.617333262e-5
T_REF_K = 303.15
ZERO_C_K = 273.15

BINDERS = ("PTFE", "NBR", "none")
PROCESSES = ("dry", "wet")

# Densities, g/cm³ (NMC83 layered oxide, argyrodite LPSCl, VGCF, PTFE, NBR).
DENSITY_G_PER_CM3 = {"active": 4.75, "SE": 1.64, "carbon": 2.0, "PTFE": 2.2, "NBR": 1.0}

# Relative density vs pressing pressure [assumed]: loose powder 0.55, dense limit 0.92.
RHO_0 = 0.55
RHO_MAX = 0.92
PRESS_SCALE_MPA = 120.0

# Ionic percolation of the SE phase (ε_c ≈ 0.1–0.3, t ≈ 2).
EPS_C_SE = 0.20
T_SE = 2.0
# Electronic percolation of VGCF fibres (percolate below ~1 vol %).
PHI_C_CARBON = 0.01
T_CARBON = 2.0

# Binder penalty decay lengths (wt %), physics.md §2.3; floors are calibrated below.
W0_ION_WT_PCT = {"PTFE": 0.3, "NBR": 0.18}
W0_EL_WT_PCT = {"PTFE": 0.5, "NBR": 0.12}
H_MIN_PTFE = 0.6  # PTFE fibrils barely cover carbon [assumed]

# Activation energies, eV: LPSCl bulk, plus SE–SE contact constrictions in the composite, a
# solvent-damaged surface layer, and binder films covering the SE (scaled by the coverage 1 − g).
EA_SE_EV = 0.33
EA_CONTACT_EV = 0.04
EA_SOLVENT_EV = 0.01
EA_ION_COVERAGE_EV = {"PTFE": 0.0, "NBR": 0.05, "none": 0.0}
EA_EL_CARBON_EV = 0.03
EA_EL_COVERAGE_EV = {"PTFE": 0.0, "NBR": 0.02, "none": 0.0}

# Fabrication thresholds [assumed]: below these the film is not self-supporting.
MIN_BINDER_WT_PCT = {"dry": 0.1, "wet": 0.2}

# Literature anchors (physics.md §1) and the paper's numbers used for the calibration.
SIGMA_ION_BINDER_FREE_S_PER_CM = 1.7e-4
SIGMA_EL_NO_CARBON_S_PER_CM = 5.6e-4
PAPER_SIGMA_ION_30C_S_PER_CM = {
    "dry_PTFE": 6.9e-5,
    "dry_PTFE_solvent_SE": 1.3e-5,
    "wet_NBR": 3.3e-6,
}
PAPER_SIGMA_EL_30C_S_PER_CM = {"dry_PTFE": 4.6e-2, "dry_PTFE_solvent_SE": 4.6e-2, "wet_NBR": 3.0e-3}
PAPER_RECIPES = {
    "dry_PTFE": {"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry"},
    "dry_PTFE_solvent_SE": {
        "binder": "PTFE",
        "binder_wt_pct": 0.5,
        "process": "dry",
        "solvent_treated_SE": True,
    },
    "wet_NBR": {"binder": "NBR", "binder_wt_pct": 0.5, "process": "wet"},
}


@dataclass(frozen=True)
class Recipe:
    """A composite-cathode recipe.

    Attributes
    ----------
    binder : ``"PTFE"``, ``"NBR"`` or ``"none"``.
    binder_wt_pct : binder, wt % of all solids.
    process : ``"dry"`` (shear-rolled, fibrillating binder) or ``"wet"`` (slurry-cast).
    solvent_treated_SE : the SE powder was soaked in the slurry solvent (the paper's control).
    press_MPa : uniaxial pressing pressure of the coupon.
    se_wt_pct, carbon_wt_pct : SE and VGCF, wt % of the binder-free solids; the rest is NMC.
    extra : any further process parameters, kept as given.
    """

    binder: str
    binder_wt_pct: float
    process: str
    solvent_treated_SE: bool = False
    press_MPa: float = 375.0
    se_wt_pct: float = 27.0
    carbon_wt_pct: float = 3.0
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The recipe as a flat dict (known keys first, then the extra ones)."""
        known = {
            "binder": self.binder,
            "binder_wt_pct": self.binder_wt_pct,
            "process": self.process,
            "solvent_treated_SE": self.solvent_treated_SE,
            "press_MPa": self.press_MPa,
            "se_wt_pct": self.se_wt_pct,
            "carbon_wt_pct": self.carbon_wt_pct,
        }
        return {**known, **self.extra}


def _number(params: dict, key: str, default, low: float, high: float, *, low_open=False) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"field '{key}' must be a number, got {value!r}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if too_low or value > high or not math.isfinite(value):
        bracket = "(" if low_open else "["
        raise InputError(f"field '{key}' = {value:g} is outside {bracket}{low:g}, {high:g}]")
    return value


def parse_recipe(params: dict) -> Recipe:
    """Validate a recipe dict and return a :class:`Recipe`.

    Required keys: ``binder``, ``binder_wt_pct``, ``process``. Optional: ``solvent_treated_SE``
    (bool), ``press_MPa`` (0–1000, default 375), ``se_wt_pct`` (default 27),
    ``carbon_wt_pct`` (default 3); any other key is kept in ``extra``.

    Raises
    ------
    InputError
        One line naming the field and what was expected (callers add the file/entry).
    """
    if not isinstance(params, dict):
        raise InputError(f"a recipe must be a table of fields, got {params!r}")
    for key in ("binder", "binder_wt_pct", "process"):
        if key not in params:
            raise InputError(
                f"field '{key}' is missing (binder, binder_wt_pct, process are required)"
            )
    binder, process = params["binder"], params["process"]
    if binder not in BINDERS:
        raise InputError(f"field 'binder' = {binder!r}; expected one of {', '.join(BINDERS)}")
    if process not in PROCESSES:
        raise InputError(f"field 'process' = {process!r}; expected one of {', '.join(PROCESSES)}")
    treated = params.get("solvent_treated_SE", False)
    if not isinstance(treated, bool):
        raise InputError(f"field 'solvent_treated_SE' must be true or false, got {treated!r}")
    binder_wt = _number(params, "binder_wt_pct", None, 0.0, 20.0)
    if binder == "none" and binder_wt > 0:
        raise InputError(f"binder 'none' with binder_wt_pct = {binder_wt:g}; expected 0")
    se = _number(params, "se_wt_pct", 27.0, 0.0, 100.0, low_open=True)
    carbon = _number(params, "carbon_wt_pct", 3.0, 0.0, 100.0)
    if se + carbon >= 100.0:
        raise InputError(f"se_wt_pct + carbon_wt_pct = {se + carbon:g} leaves no active material")
    known = {
        "binder",
        "binder_wt_pct",
        "process",
        "solvent_treated_SE",
        "press_MPa",
        "se_wt_pct",
        "carbon_wt_pct",
    }
    return Recipe(
        binder=binder,
        binder_wt_pct=binder_wt,
        process=process,
        solvent_treated_SE=treated,
        press_MPa=_number(params, "press_MPa", 375.0, 0.0, 1000.0, low_open=True),
        se_wt_pct=se,
        carbon_wt_pct=carbon,
        extra={k: v for k, v in params.items() if k not in known},
    )


def relative_density(press_MPa: float) -> float:
    """Relative density of the pressed composite (1 − porosity), saturating with pressure."""
    return RHO_MAX - (RHO_MAX - RHO_0) * math.exp(-press_MPa / PRESS_SCALE_MPA)


def volume_fractions(recipe: Recipe) -> dict[str, float]:
    """Volume fractions of the pressed film: active, SE, carbon, binder and pore."""
    solids = 1.0 - recipe.binder_wt_pct / 100.0
    masses = {
        "active": solids * (100.0 - recipe.se_wt_pct - recipe.carbon_wt_pct),
        "SE": solids * recipe.se_wt_pct,
        "carbon": solids * recipe.carbon_wt_pct,
    }
    volumes = {k: m / DENSITY_G_PER_CM3[k] for k, m in masses.items()}
    volumes["binder"] = (
        recipe.binder_wt_pct / DENSITY_G_PER_CM3[recipe.binder] if recipe.binder != "none" else 0.0
    )
    total = sum(volumes.values())
    rho = relative_density(recipe.press_MPa)
    fractions = {k: v / total * rho for k, v in volumes.items()}
    fractions["pore"] = 1.0 - rho
    return fractions


def percolation(fraction: float, threshold: float, exponent: float) -> float:
    """((x − x_c)/(1 − x_c))^t above the threshold, 0 below it."""
    if fraction <= threshold:
        return 0.0
    return ((fraction - threshold) / (1.0 - threshold)) ** exponent


def _decay(w: float, w0: float, floor: float) -> float:
    return floor + (1.0 - floor) * math.exp(-w / w0)


def _solve_floor(target: float, w: float, w0: float) -> float:
    """g_min such that floor + (1 − floor)·exp(−w/w0) equals ``target``."""
    e = math.exp(-w / w0)
    return (target - e) / (1.0 - e)


def _solvent_exposed(recipe: Recipe) -> bool:
    return recipe.process == "wet" or recipe.solvent_treated_SE


def _calibrate() -> dict[str, float]:
    """Constants that make the paper's recipes reproduce the paper's 30 °C numbers exactly."""
    dry, treated, wet = (parse_recipe(PAPER_RECIPES[k]) for k in PAPER_RECIPES)
    binder_free = Recipe(binder="none", binder_wt_pct=0.0, process="dry")
    ion_paper, el_paper = PAPER_SIGMA_ION_30C_S_PER_CM, PAPER_SIGMA_EL_30C_S_PER_CM

    def f_se(r):
        return percolation(volume_fractions(r)["SE"], EPS_C_SE, T_SE)

    def p_c(r):
        return percolation(volume_fractions(r)["carbon"], PHI_C_CARBON, T_CARBON)

    sigma_se = SIGMA_ION_BINDER_FREE_S_PER_CM / f_se(binder_free)
    solvent = ion_paper["dry_PTFE_solvent_SE"] / ion_paper["dry_PTFE"]
    g_ptfe = ion_paper["dry_PTFE"] / (sigma_se * f_se(dry))
    g_nbr = ion_paper["wet_NBR"] / (sigma_se * solvent * f_se(wet))
    h_ptfe = _decay(dry.binder_wt_pct, W0_EL_WT_PCT["PTFE"], H_MIN_PTFE)
    sigma_c = (el_paper["dry_PTFE"] / h_ptfe - SIGMA_EL_NO_CARBON_S_PER_CM) / p_c(dry)
    h_nbr = el_paper["wet_NBR"] / (sigma_c * p_c(wet) + SIGMA_EL_NO_CARBON_S_PER_CM)
    return {
        "sigma_SE_30C_S_per_cm": sigma_se,
        "solvent_factor": solvent,
        "g_min_PTFE": _solve_floor(g_ptfe, dry.binder_wt_pct, W0_ION_WT_PCT["PTFE"]),
        "g_min_NBR": _solve_floor(g_nbr, wet.binder_wt_pct, W0_ION_WT_PCT["NBR"]),
        "sigma_carbon_S_per_cm": sigma_c,
        "h_min_PTFE": H_MIN_PTFE,
        "h_min_NBR": _solve_floor(h_nbr, wet.binder_wt_pct, W0_EL_WT_PCT["NBR"]),
    }


CALIBRATION = _calibrate()


def binder_penalty_ion(recipe: Recipe) -> float:
    """g_binder(w_b): the share of SE–SE contacts left open by the binder (1 without binder)."""
    if recipe.binder == "none":
        return 1.0
    floor = CALIBRATION[f"g_min_{recipe.binder}"]
    return _decay(recipe.binder_wt_pct, W0_ION_WT_PCT[recipe.binder], floor)


def binder_penalty_el(recipe: Recipe) -> float:
    """h_binder(w_b): the share of carbon contacts left open by the binder (1 without binder)."""
    if recipe.binder == "none":
        return 1.0
    floor = CALIBRATION[f"h_min_{recipe.binder}"]
    return _decay(recipe.binder_wt_pct, W0_EL_WT_PCT[recipe.binder], floor)


def fabrication_failure(recipe: Recipe) -> str | None:
    """Why this recipe cannot be made into a measurable film, or ``None`` when it can."""
    if recipe.process == "dry" and recipe.binder == "NBR":
        return "dry process needs a fibrillating binder: NBR does not fibrillate under shear"
    if recipe.process == "wet" and recipe.binder == "PTFE":
        return "wet process needs a soluble binder: PTFE does not dissolve in the slurry solvent"
    threshold = MIN_BINDER_WT_PCT[recipe.process]
    if recipe.binder_wt_pct < threshold:
        what = {"dry": "dry film did not hold together", "wet": "wet coating cracked on drying"}
        return (
            f"{what[recipe.process]}: {recipe.binder} {recipe.binder_wt_pct:g} wt% "
            f"< {threshold:g} wt% threshold"
        )
    eps_se = volume_fractions(recipe)["SE"]
    if eps_se <= EPS_C_SE:
        return (
            f"composite does not conduct ions: SE volume fraction {eps_se:.3f} "
            f"<= percolation threshold {EPS_C_SE:g}"
        )
    return None


@dataclass(frozen=True)
class Material:
    """True properties of a made composite (no cell-to-cell effects).

    Attributes
    ----------
    sigma_ion_30C_S_per_cm, sigma_el_30C_S_per_cm : conductivities at T_ref = 303.15 K.
    Ea_ion_eV, Ea_el_eV : Arrhenius activation energies.
    volume_fractions : of the pressed film (``active``, ``SE``, ``carbon``, ``binder``, ``pore``).
    """

    sigma_ion_30C_S_per_cm: float
    sigma_el_30C_S_per_cm: float
    Ea_ion_eV: float
    Ea_el_eV: float
    volume_fractions: dict

    def sigma_ion(self, temperature_K: float) -> float:
        """Ionic conductivity at ``temperature_K``, S/cm."""
        return arrhenius(self.sigma_ion_30C_S_per_cm, self.Ea_ion_eV, temperature_K)

    def sigma_el(self, temperature_K: float) -> float:
        """Electronic conductivity at ``temperature_K``, S/cm."""
        return arrhenius(self.sigma_el_30C_S_per_cm, self.Ea_el_eV, temperature_K)


def arrhenius(sigma_ref: float, Ea_eV: float, temperature_K: float) -> float:
    """σ(T) = σ_ref·exp[−(Ea/k_B)(1/T − 1/T_ref)], centred at T_ref = 303.15 K."""
    return sigma_ref * math.exp(-(Ea_eV / K_B_EV_PER_K) * (1.0 / temperature_K - 1.0 / T_REF_K))


def material_properties(recipe: Recipe) -> Material:
    """True conductivities and activation energies of ``recipe`` (feasible or not)."""
    fractions = volume_fractions(recipe)
    solvent = CALIBRATION["solvent_factor"] if _solvent_exposed(recipe) else 1.0
    g = binder_penalty_ion(recipe)
    sigma_ion = (
        CALIBRATION["sigma_SE_30C_S_per_cm"]
        * solvent
        * g
        * percolation(fractions["SE"], EPS_C_SE, T_SE)
    )
    h = binder_penalty_el(recipe)
    carbon = percolation(fractions["carbon"], PHI_C_CARBON, T_CARBON)
    sigma_el = (CALIBRATION["sigma_carbon_S_per_cm"] * carbon + SIGMA_EL_NO_CARBON_S_PER_CM) * h
    Ea_ion = (
        EA_SE_EV
        + EA_CONTACT_EV
        + (EA_SOLVENT_EV if _solvent_exposed(recipe) else 0.0)
        + EA_ION_COVERAGE_EV[recipe.binder] * (1.0 - g)
    )
    Ea_el = EA_EL_CARBON_EV + EA_EL_COVERAGE_EV[recipe.binder] * (1.0 - h)
    return Material(sigma_ion, sigma_el, Ea_ion, Ea_el, fractions)
