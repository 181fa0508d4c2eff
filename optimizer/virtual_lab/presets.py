"""Named simulated studies; ``emley2023`` is the study bundled in ``datasets/emley2023/``.

``sigmalab lab simulate --preset emley2023 --out datasets/emley2023`` (``make dataset``) calls
:func:`simulate_preset`, which writes the data, manifest and truth plus the folder's README.md
and paper_values.toml, so regenerating reproduces the committed folder byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from inference.errors import InputError
from optimizer.virtual_lab.materials import PAPER_RECIPES
from optimizer.virtual_lab.study import (
    GENERATOR,
    GENERATOR_VERSION,
    LabSettings,
    SimulatedStudy,
    simulate_study,
)


@dataclass(frozen=True)
class Preset:
    """A named study: recipes, lab settings, default seed and the folder's documentation.

    ``readme`` turns the seed into the README text; ``extra_files`` maps relative paths to text.
    """

    name: str
    description: str
    recipes: dict
    settings: LabSettings
    seed: int
    readme: Callable[[int], str]
    extra_files: dict = field(default_factory=dict)


EMLEY2023_SEED = 20230829
#: The realistic lab's defaults (LabSettings docstring), two cells written as CSV.
EMLEY2023_SETTINGS = LabSettings(csv_cells=("dry_PTFE-ion-3", "wet_NBR-electron-3"))
EMLEY2023_RECIPES = {
    name: {**params, "press_MPa": 375.0, "se_wt_pct": 27.0, "carbon_wt_pct": 3.0}
    for name, params in PAPER_RECIPES.items()
}

PAPER_VALUES_TOML = '''\
# Numbers reported by the paper the bundled study is calibrated to. Not measured by us.
# Composite cathode NMC83 : Li6PS5Cl : VGCF = 70 : 27 : 3 (wt), 0.5 wt% binder, 12.7 mm coupons,
# ~60 um thick after pressing at 375 MPa. Conductivities at 30 °C; rate tests at 60 °C.

[source]
reference = "Emley et al. 2023, Mater. Futures 2 045102"
authors = [
    "B. Emley", "C. Wu", "L. Zhao", "Q. Ai", "Y. Liang", "Z. Chen", "L. Guo", "T. Terlier",
    "J. Lou", "Z. Fan", "Y. Yao",
]
title = """Impact of fabrication methods on binder distribution and charge transport \\
in composite cathodes of all-solid-state batteries"""
journal = "Mater. Futures 2 (2023) 045102"
licence = "CC-BY-4.0 (the paper's numbers are quoted with attribution)"
where = "section 3.3 (conductivities, figure 4), section 3.4 (rate capability, figure 5)"

[recipes.dry_PTFE]
description = "dry process (shear-rolled), 0.5 wt% PTFE"
sigma_ion_30C_S_per_cm = 6.9e-5
sigma_el_30C_S_per_cm = 4.6e-2
retention_C3_vs_C10_60C = 0.89
retention_C2_vs_C10_60C = 0.83

[recipes.dry_PTFE_solvent_SE]
description = "dry process, 0.5 wt% PTFE, LPSCl soaked in toluene / isobutyl isobutyrate"
sigma_ion_30C_S_per_cm = 1.3e-5
# The paper: sigma_el "remains similar to dry processed cathode within the experimental error".
sigma_el_30C_S_per_cm = 4.6e-2
sigma_el_approximate = true

[recipes.wet_NBR]
description = "wet process (slurry tape-cast), 0.5 wt% NBR"
sigma_ion_30C_S_per_cm = 3.3e-6
sigma_el_30C_S_per_cm = 3.0e-3
retention_C3_vs_C10_60C = 0.68
retention_C2_vs_C10_60C = 0.58

[ratios]
sigma_ion_dry_over_wet = 20
sigma_el_dry_over_wet = 15
sigma_ion_dry_over_solvent_SE = 5
sigma_ion_solvent_SE_over_wet = 4

[literature]
# Binder-free composites at the same 70 wt% NMC, quoted by the paper (its refs 24, 30, 32).
sigma_ion_binder_free_30C_S_per_cm = 1.7e-4
sigma_el_no_carbon_30C_S_per_cm = 5.6e-4

[conditions]
c_rate_C10_mA_per_cm2 = 0.24
c_rate_C3_mA_per_cm2 = 0.79
c_rate_C2_mA_per_cm2 = 1.2
active_loading_mg_per_cm2 = 14
coupon_diameter_mm = 12.7
press_MPa = 375
'''


def _emley2023_readme(seed: int) -> str:
    return f"""\
# emley2023 — simulated by sigmalab's virtual lab, calibrated to Emley et al. 2023

**Every data file in this folder is simulated by sigmalab's virtual lab.** Nothing here was
measured. The files were written by `{GENERATOR}` (version {GENERATOR_VERSION}, seed {seed})
so that the true 30 °C conductivities of the three *recipes* equal the numbers reported by
B. Emley et al., *Impact of fabrication methods on binder distribution and charge transport in
composite cathodes of all-solid-state batteries*, Emley et al. 2023, Mater. Futures 2 045102
(CC-BY 4.0; the paper's numbers are quoted in `paper_values.toml` with their source). The
paper's own raw data are not available to us. The cells scatter around those recipe values as
real cells do, so an analysis of this folder is checked against `truth.json`, not against the
paper (sigmalab's report says so in its first lines).

## Regenerate

    make dataset
    # which runs
    sigmalab lab simulate --preset emley2023 --out datasets/emley2023

The output is byte-identical for the same seed and generator version (a test checks this).

## What is in it

| recipe | process | binder | true σ_ion(30 °C) | true σ_el(30 °C) |
|---|---|---|---|---|
| `dry_PTFE` | dry, shear-rolled | 0.5 wt% PTFE | 6.9e-5 S/cm | 4.6e-2 S/cm |
| `dry_PTFE_solvent_SE` | dry, solvent-treated LPSCl | 0.5 wt% PTFE | 1.3e-5 S/cm | 4.6e-2 S/cm |
| `wet_NBR` | wet, slurry-cast | 0.5 wt% NBR | 3.3e-6 S/cm | 3.0e-3 S/cm |

- Per recipe 3 `ion` cells (Li | LPSCl | composite | LPSCl | Li, electron-blocking) and 3
  `electron` cells (Ti | composite | Ti, ion-blocking), each measured at 30, 39, 48, 57, 66 and
  75 °C: 54 impedance spectra in `eis/` and 54 DC polarization records in `dc/`.
- EIS: 7 MHz → 10 mHz, 10 points per decade (89 points; the paper stopped at 1 Hz, where the
  wet composite's arc is still open), EC-Lab `.mpt` text exports (PEIS); the cell
  `dry_PTFE-ion-3` is written as CSV (`freq/Hz,Re(Z)/Ohm,-Im(Z)/Ohm`).
- DC: bias steps of 10, 20, 30 and 40 mV held 30 s each, sampled every second, EC-Lab `.mpt`
  chronoamperometry exports (`time/s, control/V, Ewe/V, <I>/mA, Ns`); the cell
  `wet_NBR-electron-3` is written as CSV (`time/s,Ewe/V,I/mA`).
- `manifest.toml` maps every file to its recipe, cell and temperature and gives each cell's
  thickness and area with their uncertainties (what `inference.load_study` reads). Its
  `[study]` table names the circuit to fit, `L0-R0-p(R1,CPE1)-TLMs2`, and the DC set-up's
  contact resistance from a blank die, `dc_contact_ohm = 0.02` ± `dc_contact_sd_ohm`, which the
  analysis subtracts from every electron cell's resistance.
- `truth.json` holds every true value: the lab settings (`settings`: every artefact's
  parameters, `balanced`, `cell_Ea_sd_eV`, `composite_model`), per recipe σ(30 °C) and activation
  energies, per cell its effect, its own Ea, true geometry and parts, per file the actual
  temperature, the true circuit parameters at the start of the sweep, its drift and outliers,
  or the DC resistances.

## How the data were simulated

Physics from `shared/reference/physics.md`, corrected where it was wrong
(`optimizer/virtual_lab/cells.py` and `measure.py` say where and why).

- Conductivities: σ_ion = σ_SE · s_process · g_binder(w_b) · f(ε_SE) with a percolation law in
  the SE volume fraction, a binder penalty with a floor, and a solvent factor for SE that met
  the slurry solvent; σ_el from VGCF percolation times a binder-coverage penalty. Constants are
  calibrated so the three recipes reproduce the paper exactly at 30 °C.
- Temperature: Arrhenius centred at 303.15 K; recipe Ea_ion 0.37 eV (dry), 0.38 eV
  (solvent-treated), ≈ 0.42 eV (wet); Ea_el 0.03 eV (dry) and ≈ 0.05 eV (wet). The paper gives
  Ea only as plots, so these are modelling choices.
- Cells are drawn, not centred: a log-normal cell effect of 0.15 decades (sd) on each
  conductivity of a cell, and each cell's own activation energy, Normal around the recipe's
  with sd 0.01 eV. The mean of a recipe's three cells therefore differs from the recipe's true
  value by chance, as in a real study. Each film has its own true thickness (60 ± 3 µm); the
  manifest reports a micrometer reading (±1.5 µm error) with an uncertainty of 2 µm, and the
  punch area 1.267 ± 0.01 cm².
- EIS of the 5-layer cell, `L0-R0-p(R1,C1)-p(R2,CPE2)-TLM3` in truth.json: a lead inductance
  (0.1–1 µH, log-uniform per cell), leads 0.8 Ω, two 100 µm LPSCl separators (1e-3 S/cm,
  0.33 eV) with their geometric capacitance (ε_r = 25), whose arc lies above the window
  (60–450 MHz), the Li|LPSCl interfaces (30 Ω·cm², 0.40 eV, 0.2 µF/cm², CPE α 0.7–0.9 per cell;
  apex 18–300 kHz) and the composite as a **two-rail transmission line**: ionic rail
  R_ion = L/(σ_ion·A) contacted at both ends, electronic rail L/(σ_el·A) blocked by the
  separators, and an interfacial capacitance between them of 0.3 mF per coupon (log-normal,
  0.25 decades; α 0.85–0.95). The composite's −Im apex sits at 3–8 Hz for the wet cathode at
  30 °C and up to 1.5 kHz for the dry one at 75 °C; its arc closes about 1.5 decades lower.
- Instrument artefacts: noise 1 % of |Z| on Re and Im; every resistance drifts during a sweep
  (linear in elapsed time, sd 0.5 % over the sweep); 0.3 outlying points per spectrum on
  average, each 10 % of |Z| off; the cell's actual temperature is the set point ± 0.5 K (sd,
  per measurement; files carry the set point). About a quarter of the spectra fail the
  Kramers–Kronig check because of them — as real spectra do.
- DC: I = (V − V_offset)/(L/(σ_el·A) + R_contact), with a two-probe Ti-rod contact of 20 mΩ
  (log-normal per cell, 0.15 decades, +0.3 %/K) — a fifth of the dry cells' resistance —,
  V_offset ~ 0.1 mV (per cell, in `truth.json`), a 2 % capacitive overshoot decaying with
  τ = 1.5 s, and 0.5 % relative current noise.
- Rate capability (truth only): the physics.md §2.7 proxy gives the retention vs C/10 at
  60 °C from the recipe's σ_ion (`truth.json`, `recipes.*.rate_capability`).

## Fitting it

The manifest's circuit models the composite with the transmission line whose electronic rail is
short (`TLMs`): with carbon, σ_el/σ_ion is 50–3000 here, far too large for the spectrum to
resolve the electronic rail. Fitted with the paper's R‖CPE instead (`sigmalab analyze
datasets/emley2023 --circuit "L0-R0-p(R1,CPE1)-p(R2,CPE2)"`), σ_ion comes out 10–30 % too high
(the misspecification table in the repository README shows the bias against σ_el/σ_ion).
"""


PRESETS = {
    "emley2023": Preset(
        name="emley2023",
        description=(
            "Simulated study calibrated to Emley et al. 2023, Mater. Futures 2 045102: dry "
            "(PTFE), dry with solvent-treated LPSCl, and wet (NBR) composite cathodes, 0.5 wt% "
            "binder; ion- and electron-blocking cells at 30-75 °C."
        ),
        recipes=EMLEY2023_RECIPES,
        settings=EMLEY2023_SETTINGS,
        seed=EMLEY2023_SEED,
        readme=_emley2023_readme,
        extra_files={"paper_values.toml": PAPER_VALUES_TOML},
    )
}


def simulate_preset(name: str, out_dir, *, seed: int | None = None) -> SimulatedStudy:
    """Write the preset study ``name`` into ``out_dir`` (its default seed unless ``seed``)."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; expected one of {', '.join(sorted(PRESETS))}")
    preset = PRESETS[name]
    seed = preset.seed if seed is None else seed
    return simulate_study(
        preset.recipes,
        out_dir,
        seed=seed,
        settings=preset.settings,
        name=preset.name,
        description=preset.description,
        readme=preset.readme(seed),
        extra_files=preset.extra_files,
    )
