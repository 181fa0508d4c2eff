"""Simulate a whole study: recipes → cells → files, ``manifest.toml`` and ``truth.json``.

The output folder is what a lab would hand over (instrument files plus a manifest that
:func:`inference.study.load_study` reads) and a ``truth.json`` with every true parameter, so the
analysis can be checked against the truth. Output is byte-identical for a given seed: every
random draw comes from a generator seeded by ``(seed, recipe, cell type, cell, temperature)``
and file headers take their dates from a fixed constant.
"""

from __future__ import annotations

import json
import math
import shutil
import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import tomli_w

from inference.errors import InputError, ManifestError
from inference.rate_capability import capacity_retention
from optimizer.virtual_lab.cells import (
    CELL_TYPES,
    CONTACT_SPREAD_DECADES,
    Cell,
    CellSpec,
    FailedCell,
    cell_effects,
    make_cell,
)
from optimizer.virtual_lab.materials import (
    CALIBRATION,
    T_REF_K,
    ZERO_C_K,
    fabrication_failure,
    material_properties,
    parse_recipe,
)
from optimizer.virtual_lab.measure import (
    COMPOSITE_RESISTANCE,
    Artefacts,
    analysis_circuit,
    eis_frequencies,
    simulate_dc,
    simulate_eis,
)
from optimizer.virtual_lab.writers import write_dc_csv, write_dc_mpt, write_eis_csv, write_eis_mpt

GENERATOR = "sigmalab.optimizer.virtual_lab"
GENERATOR_VERSION = "2"
#: File headers count "acquisition times" from here, one hour per file, never from the clock.
CLOCK_START = datetime(2023, 8, 29, 9, 0, 0)
_TYPE_CODE = {"ion": 0, "electron": 1}
_KIND = {"ion": "eis", "electron": "dc"}
SIGNIFICANT_DIGITS = 10  # truth.json numbers: robust to last-bit libm differences


@dataclass(frozen=True)
class LabSettings:
    """How the virtual lab makes and measures cells; the defaults are a realistic lab.

    Design
        temperatures_C : measurement temperatures (°C), each cell is measured at all of them.
        ion_cells_per_recipe, electron_cells_per_recipe : cells made per recipe and type.
        cell_spread_decades : sd of the log10 cell effect on each conductivity of a cell.
        balanced : centre the cell effects within each recipe and type, so the cells' mean
            log10 σ equals the recipe's true value exactly (off by default: cells are drawn).
        cell_Ea_sd_eV : sd of a cell's activation energy around its recipe's (0.01 eV).
    EIS sweep and physics
        f_max_Hz, f_min_Hz, points_per_decade : the sweep, 7 MHz → 10 mHz by default: the
            composite's arc of a wet cathode at 30 °C closes only below 1 Hz.
        composite_model : ``"tlm"`` (two-rail transmission line, default) or ``"rq"`` (R‖CPE).
        composite_capacitance_F, composite_capacitance_spread_decades : median interfacial
            capacitance of the composite per coupon (F) and its log10 sd between cells.
        interface_alpha : (low, high) of the Li|SE interface CPE exponent, uniform per cell.
    Instrument artefacts
        noise_rel : EIS noise sd on Re and Im as a fraction of |Z|.
        lead_inductance_H : (low, high) of the set-up's series inductance, log-uniform per cell;
            (0, 0) for none.
        outliers_per_spectrum, outlier_size_rel : mean number of outlying points per spectrum
            (Poisson) and their error as a fraction of |Z|.
        drift_rel_sd : sd of the relative change of every resistance over one sweep.
        temperature_offset_sd_K : sd of the cell's actual temperature around the set point, per
            measurement (files and manifest carry the set point).
    DC polarization
        dc_noise_rel : DC current noise sd as a fraction of the current.
        dc_biases_mV, dc_hold_s, dc_sample_s : DC polarization steps.
        dc_contact_ohm, dc_contact_tcr_per_K : median Ti-rod contact resistance at 30 °C (Ω,
            log-normal per cell, sd 0.15 decades) and its relative temperature coefficient (1/K).
    Output
        csv_cells : ids of cells whose files are written as CSV instead of ``.mpt``.
        rate_capability : add the physics.md §2.7 capacity-retention proxy to truth.json.

    :meth:`ideal` gives a lab without random artefacts.
    """

    temperatures_C: tuple[float, ...] = (30.0, 39.0, 48.0, 57.0, 66.0, 75.0)
    ion_cells_per_recipe: int = 3
    electron_cells_per_recipe: int = 3
    cell_spread_decades: float = 0.15
    balanced: bool = False
    cell_Ea_sd_eV: float = 0.01
    f_max_Hz: float = 7e6
    f_min_Hz: float = 0.01
    points_per_decade: int = 10
    composite_model: str = "tlm"
    composite_capacitance_F: float = 3e-4
    composite_capacitance_spread_decades: float = 0.25
    interface_alpha: tuple[float, float] = (0.7, 0.9)
    noise_rel: float = 0.01
    lead_inductance_H: tuple[float, float] = (1e-7, 1e-6)
    outliers_per_spectrum: float = 0.3
    outlier_size_rel: float = 0.1
    drift_rel_sd: float = 0.005
    temperature_offset_sd_K: float = 0.5
    dc_noise_rel: float = 0.005
    dc_biases_mV: tuple[float, ...] = (10.0, 20.0, 30.0, 40.0)
    dc_hold_s: float = 30.0
    dc_sample_s: float = 1.0
    dc_contact_ohm: float = 0.02
    dc_contact_tcr_per_K: float = 0.003
    csv_cells: tuple[str, ...] = field(default=())
    rate_capability: bool = True

    def __post_init__(self):
        problems = []
        if not self.temperatures_C or any(not -100 <= t <= 500 for t in self.temperatures_C):
            problems.append("temperatures_C must be a non-empty list within -100..500 °C")
        if len(set(self.temperatures_C)) != len(self.temperatures_C):
            problems.append("temperatures_C repeats a temperature")
        if self.ion_cells_per_recipe < 0 or self.electron_cells_per_recipe < 0:
            problems.append("cells per recipe must be >= 0")
        non_negative = (
            "cell_spread_decades",
            "cell_Ea_sd_eV",
            "noise_rel",
            "dc_noise_rel",
            "composite_capacitance_spread_decades",
            "outliers_per_spectrum",
            "outlier_size_rel",
            "drift_rel_sd",
            "temperature_offset_sd_K",
            "dc_contact_ohm",
        )
        negative = [name for name in non_negative if not getattr(self, name) >= 0]
        if negative:
            problems.append(f"{', '.join(negative)} must be >= 0")
        if not 0 < self.f_min_Hz < self.f_max_Hz or self.points_per_decade < 1:
            problems.append("EIS sweep needs 0 < f_min_Hz < f_max_Hz and points_per_decade >= 1")
        if len(self.dc_biases_mV) < 2 or self.dc_hold_s < self.dc_sample_s or self.dc_sample_s <= 0:
            problems.append("DC needs >= 2 biases and dc_hold_s >= dc_sample_s > 0")
        if self.composite_model not in ("rq", "tlm"):
            problems.append(f"composite_model must be 'rq' or 'tlm', got {self.composite_model!r}")
        if not self.composite_capacitance_F > 0:
            problems.append("composite_capacitance_F must be > 0")
        for name, low, high in (("interface_alpha", 0.0, 1.0), ("lead_inductance_H", 0.0, 1e-3)):
            pair = getattr(self, name)
            if len(pair) != 2 or not low <= pair[0] <= pair[1] <= high:
                problems.append(
                    f"{name} must be [low, high] with {low:g} <= low <= high <= {high:g}"
                )
        if self.interface_alpha and self.interface_alpha[0] <= 0:
            problems.append("interface_alpha must be > 0")
        if problems:
            raise InputError("lab settings: " + "; ".join(problems))

    @classmethod
    def ideal(cls, **overrides) -> LabSettings:
        """A lab without random artefacts: no outliers, drift, temperature error, contact
        resistance or cell-to-cell Ea; what is left is the noise on Re and Im and the set-up's
        lead inductance (part of the fitted circuit), plus ``overrides``."""
        clean = {
            "cell_Ea_sd_eV": 0.0,
            "outliers_per_spectrum": 0.0,
            "drift_rel_sd": 0.0,
            "temperature_offset_sd_K": 0.0,
            "dc_contact_ohm": 0.0,
        }
        return cls(**{**clean, **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> LabSettings:
        """Settings from a plain dict (e.g. a ``[lab]`` TOML table); unknown keys raise."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            expected = ", ".join(sorted(known))
            raise InputError(
                f"unknown lab setting(s) {', '.join(unknown)}; expected some of {expected}"
            )
        converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        try:
            return cls(**converted)
        except TypeError as err:
            raise InputError(f"lab settings: {err}") from None

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def cell_spec(self) -> CellSpec:
        """The cell-making part of these settings."""
        return CellSpec(
            cell_Ea_sd_eV=self.cell_Ea_sd_eV,
            composite_capacitance_F=self.composite_capacitance_F,
            composite_capacitance_spread_decades=self.composite_capacitance_spread_decades,
            interface_alpha=tuple(self.interface_alpha),
            lead_inductance_H=tuple(self.lead_inductance_H),
            dc_contact_ohm=self.dc_contact_ohm,
            dc_contact_tcr_per_K=self.dc_contact_tcr_per_K,
        )


@dataclass(frozen=True)
class SimulatedStudy:
    """What :func:`simulate_study` wrote.

    Attributes
    ----------
    out_dir, manifest_path : the study folder and its manifest.
    recipes : recipe names, in the order given.
    cells : made cells; failures : cells that could not be made, with their reason.
    files : data files written, relative to ``out_dir``.
    """

    out_dir: Path
    manifest_path: Path
    recipes: list[str]
    cells: list[Cell]
    failures: list[FailedCell]
    files: list[str]


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    if isinstance(value, np.generic):
        return _rounded(value.item())
    return value


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to replace a non-empty folder that the virtual lab did not write."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    truth = out_dir / "truth.json"
    try:
        made_here = json.loads(truth.read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        made_here = False
    if not made_here:
        raise InputError(
            f"{out_dir}: folder is not empty and was not written by the virtual lab; "
            "choose a new or empty folder"
        )


def _replace_dir(staging: Path, out_dir: Path) -> None:
    old = out_dir.with_name(f".{out_dir.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)


def _generic_readme(name: str, description: str, seed: int) -> str:
    return (
        f"# {name}: simulated study\n\n"
        f"{description}\n\n"
        "All data in this folder are **simulated** by sigmalab's virtual lab "
        f"(`{GENERATOR}`, version {GENERATOR_VERSION}, seed {seed}); they are not measurements. "
        "`truth.json` holds the true parameters; `manifest.toml` maps files to recipes, cells "
        "and temperatures.\n"
    )


def simulate_study(
    recipes: dict[str, dict],
    out_dir,
    *,
    seed: int,
    settings: LabSettings | None = None,
    name: str = "simulated",
    description: str = "Simulated study written by the sigmalab virtual lab.",
    readme: str | None = None,
    extra_files: dict[str, str] | None = None,
) -> SimulatedStudy:
    """Make and measure cells of every recipe; write files, ``manifest.toml`` and ``truth.json``.

    Parameters
    ----------
    recipes : recipe name → recipe dict (see :func:`~optimizer.virtual_lab.materials.parse_recipe`).
    out_dir : folder to write; replaced as a whole (written next to it first, then renamed),
        refused when it holds anything the virtual lab did not write.
    seed : non-negative integer; the same seed gives byte-identical output.
    settings : :class:`LabSettings` (defaults when omitted).
    name, description : the manifest's ``[study]`` table.
    readme : text of ``README.md`` (a short generic one when omitted).
    extra_files : further text files to write, relative path → content.

    Raises
    ------
    InputError
        A recipe or setting is invalid (the message names the recipe and field), or
        ``out_dir`` is not ours to replace.
    """
    settings = settings or LabSettings()
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if not recipes:
        raise InputError("no recipes to simulate")
    parsed = {}
    for recipe_name, params in recipes.items():
        try:
            parsed[recipe_name] = parse_recipe(params)
        except InputError as err:
            raise InputError(f"recipe {recipe_name!r}: {err}") from None
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    if staging.exists():
        shutil.rmtree(staging)
    for sub in ("eis", "dc"):
        (staging / sub).mkdir(parents=True)

    frequency = eis_frequencies(settings.f_max_Hz, settings.f_min_Hz, settings.points_per_decade)
    biases_V = np.asarray(settings.dc_biases_mV, dtype=float) * 1e-3
    cells: list[Cell] = []
    failures: list[FailedCell] = []
    manifest_cells, manifest_files, written = [], [], []
    truth_recipes, truth_cells, truth_files = {}, {}, {}
    n_cells = {"ion": settings.ion_cells_per_recipe, "electron": settings.electron_cells_per_recipe}
    spec = settings.cell_spec()

    for ri, (recipe_name, recipe) in enumerate(parsed.items()):
        material = material_properties(recipe)
        truth_recipes[recipe_name] = _recipe_truth(recipe, material, settings)
        for cell_type in CELL_TYPES:
            code = _TYPE_CODE[cell_type]
            effects = cell_effects(
                np.random.default_rng([seed, ri, code]),
                n_cells[cell_type],
                settings.cell_spread_decades,
                settings.balanced,
            )
            for ci, effect in enumerate(effects):
                cell_id = f"{recipe_name}-{cell_type}-{ci + 1}"
                cell = make_cell(
                    recipe,
                    material,
                    cell_type,
                    cell_id=cell_id,
                    recipe_name=recipe_name,
                    rng=np.random.default_rng([seed, ri, code, ci]),
                    log10_effect=effect,
                    spread_decades=settings.cell_spread_decades,
                    spec=spec,
                )
                if isinstance(cell, FailedCell):
                    failures.append(cell)
                    manifest_cells.append(
                        {
                            "id": cell_id,
                            "recipe": recipe_name,
                            "type": cell_type,
                            "status": "failed",
                            "failure_reason": cell.reason,
                        }
                    )
                    truth_cells[cell_id] = {"recipe": recipe_name, "type": cell_type}
                    truth_cells[cell_id] |= {"status": "failed", "failure_reason": cell.reason}
                    continue
                cells.append(cell)
                manifest_cells.append(
                    {
                        "id": cell_id,
                        "recipe": recipe_name,
                        "type": cell_type,
                        "thickness_um": cell.reported_thickness_um,
                        "thickness_sd_um": cell.thickness_sd_um,
                        "area_cm2": cell.reported_area_cm2,
                        "area_sd_cm2": cell.area_sd_cm2,
                    }
                )
                truth_cells[cell_id] = _cell_truth(cell)
                for ti, temperature_C in enumerate(settings.temperatures_C):
                    entropy = (seed, ri, code, ci, ti)
                    rel, file_truth = _measure(
                        staging, cell, float(temperature_C), entropy, frequency, biases_V, settings
                    )
                    written.append(rel)
                    truth_files[rel] = file_truth
                    manifest_files.append(
                        {"path": rel, "cell": cell_id, "temperature_C": float(temperature_C)}
                    )

    manifest = {
        "study": {
            "name": name,
            "description": description,
            "simulated": True,
            "generator": f"{GENERATOR} {GENERATOR_VERSION}",
            "seed": seed,
            "circuit": analysis_circuit(
                settings.composite_model, settings.lead_inductance_H[1] > 0
            ),
            **_blank_die(settings),
        },
        "recipes": {k: r.as_dict() for k, r in parsed.items()},
        "cells": manifest_cells,
        "files": manifest_files,
    }
    (staging / "manifest.toml").write_bytes(tomli_w.dumps(manifest).encode("utf-8"))
    truth = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "T_ref_K": T_REF_K,
        "settings": settings.to_dict(),
        "calibration": CALIBRATION,
        "recipes": truth_recipes,
        "cells": truth_cells,
        "files": truth_files,
    }
    text = json.dumps(_rounded(truth), indent=1, ensure_ascii=False) + "\n"
    (staging / "truth.json").write_bytes(text.encode("utf-8"))
    readme_text = readme if readme is not None else _generic_readme(name, description, seed)
    (staging / "README.md").write_bytes(readme_text.encode("utf-8"))
    for rel, content in (extra_files or {}).items():
        (staging / rel).write_bytes(content.encode("utf-8"))
    _replace_dir(staging, out_dir)
    return SimulatedStudy(
        out_dir, out_dir / "manifest.toml", list(parsed), cells, failures, written
    )


def _blank_die(settings: LabSettings) -> dict:
    """What the lab knows of its DC contacts from a blank die (no sample between the rods): the
    median contact resistance, with the cells' spread around it as its sd (manifest keys)."""
    if settings.dc_contact_ohm == 0 or settings.electron_cells_per_recipe == 0:
        return {}
    sd = settings.dc_contact_ohm * math.log(10) * CONTACT_SPREAD_DECADES
    return {"dc_contact_ohm": settings.dc_contact_ohm, "dc_contact_sd_ohm": round(sd, 6)}


def _recipe_truth(recipe, material, settings: LabSettings) -> dict:
    reason = fabrication_failure(recipe)
    entry = {
        "params": recipe.as_dict(),
        "feasible": reason is None,
        "failure_reason": reason or "",
        "sigma_ion_30C_S_per_cm": material.sigma_ion_30C_S_per_cm,
        "sigma_el_30C_S_per_cm": material.sigma_el_30C_S_per_cm,
        "log10_sigma_ion_30C": float(np.log10(material.sigma_ion_30C_S_per_cm)),
        "log10_sigma_el_30C": float(np.log10(material.sigma_el_30C_S_per_cm)),
        "Ea_ion_eV": material.Ea_ion_eV,
        "Ea_el_eV": material.Ea_el_eV,
        "volume_fractions": material.volume_fractions,
    }
    if settings.rate_capability:
        temperature_K = 60.0 + ZERO_C_K
        sigma_60 = material.sigma_ion(temperature_K)
        entry["rate_capability"] = {
            "temperature_C": 60.0,
            "reference_c_rate_per_h": 0.1,
            "retention_C/3": float(capacity_retention(sigma_60, 1 / 3)),
            "retention_C/2": float(capacity_retention(sigma_60, 1 / 2)),
        }
    return entry


def _cell_truth(cell: Cell) -> dict:
    return {
        "recipe": cell.recipe,
        "type": cell.cell_type,
        "status": "ok",
        "log10_effect": cell.log10_effect,
        "sigma_30C_S_per_cm": cell.sigma_30C_S_per_cm,
        "Ea_eV": cell.Ea_eV,
        "sigma_other_30C_S_per_cm": cell.sigma_other_30C_S_per_cm,
        "Ea_other_eV": cell.Ea_other_eV,
        "thickness_true_cm": cell.thickness_cm,
        "area_true_cm2": cell.area_cm2,
        "thickness_reported_um": cell.reported_thickness_um,
        **cell.parts,
    }


def sweep_artefacts(rng: np.random.Generator, n_points: int, settings: LabSettings) -> Artefacts:
    """Drift and outliers of one sweep, drawn from ``settings``."""
    drift = settings.drift_rel_sd * rng.standard_normal()
    n_outliers = min(int(rng.poisson(settings.outliers_per_spectrum)), n_points)
    outliers = np.sort(rng.choice(n_points, size=n_outliers, replace=False))
    return Artefacts(
        noise_rel=settings.noise_rel,
        drift_rel=float(drift),
        outliers=tuple(int(k) for k in outliers),
        outlier_size_rel=settings.outlier_size_rel,
    )


def _measure(staging, cell, temperature_C, entropy, frequency, biases_V, settings):
    """Simulate and write one file; return its relative path and its truth entry."""
    seed, ri, code, ci, ti = entropy
    rng = np.random.default_rng(list(entropy))
    temperature_K = temperature_C + ZERO_C_K
    actual_K = temperature_K + settings.temperature_offset_sd_K * rng.standard_normal()
    as_csv = cell.cell_id in settings.csv_cells
    suffix = "csv" if as_csv else "mpt"
    kind = _KIND[cell.cell_type]
    rel = f"{kind}/{cell.cell_id}_{temperature_C:g}C.{suffix}"
    path = staging / rel
    # one simulated hour per file, per recipe block of 1000 h: fixed, order-independent dates
    started = CLOCK_START + timedelta(hours=1000 * ri + 100 * (2 * ci + code) + ti)
    comment = f"simulated by sigmalab virtual lab; cell {cell.cell_id} at {temperature_C:g} °C"
    truth = {
        "cell": cell.cell_id,
        "kind": kind,
        "temperature_C": temperature_C,
        "temperature_K": temperature_K,
        "temperature_true_K": actual_K,
        "sigma_S_per_cm": cell.sigma(actual_K),
    }
    if kind == "eis":
        artefacts = sweep_artefacts(rng, frequency.size, settings)
        record = simulate_eis(
            cell,
            actual_K,
            frequency,
            rng=rng,
            artefacts=artefacts,
            composite_model=settings.composite_model,
        )
        if as_csv:
            write_eis_csv(path, record.frequency_Hz, record.z_real, record.z_imag)
        else:
            write_eis_mpt(
                path,
                record.frequency_Hz,
                record.z_real,
                record.z_imag,
                temperature_C=temperature_C,
                started=started,
                comment=comment,
                area_cm2=cell.reported_area_cm2,
                points_per_decade=settings.points_per_decade,
            )
        truth |= {
            "circuit": record.circuit,
            "parameters": record.parameters,
            "composite_resistance": COMPOSITE_RESISTANCE[settings.composite_model],
            "drift_rel": artefacts.drift_rel,
            "outlier_points": list(artefacts.outliers),
        }
    else:
        record = simulate_dc(
            cell,
            actual_K,
            biases_V,
            hold_s=settings.dc_hold_s,
            sample_s=settings.dc_sample_s,
            rng=rng,
            noise_rel=settings.dc_noise_rel,
        )
        if as_csv:
            write_dc_csv(path, record.time_s, record.voltage_V, record.current_A)
        else:
            write_dc_mpt(
                path,
                record.time_s,
                record.control_V,
                record.voltage_V,
                record.current_A,
                record.step,
                started=started,
                comment=comment,
                area_cm2=cell.reported_area_cm2,
                hold_s=settings.dc_hold_s,
            )
        truth |= {
            "R_el_ohm": record.R_el_ohm,
            "R_contact_ohm": record.R_contact_ohm,
            "V_offset_V": record.V_offset_V,
            "biases_V": [float(b) for b in biases_V],
        }
    return rel, truth


def load_recipes_file(path) -> tuple[dict, LabSettings, dict, int | None]:
    """Read a recipes TOML for ``sigmalab lab simulate --recipes``.

    Layout::

        [study]                 # optional: name, description
        name = "binder_scan"
        [lab]                   # optional: any LabSettings field, plus seed
        seed = 7
        temperatures_C = [30, 45, 60, 75]
        [recipes.dry_PTFE_0p3]  # one table per recipe (see parse_recipe)
        binder = "PTFE"
        binder_wt_pct = 0.3
        process = "dry"

    Returns
    -------
    (recipes, settings, study, seed) : ``study`` holds ``name``/``description`` when given,
    ``seed`` is ``None`` when the file has none.

    Raises
    ------
    ManifestError
        Unreadable file, TOML syntax (with line), unknown settings or an invalid recipe.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ManifestError(path, f"cannot read recipes file: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(path, f"TOML syntax error: {err}") from None
    recipes = data.get("recipes")
    if not isinstance(recipes, dict) or not recipes:
        raise ManifestError(path, "no [recipes.<name>] tables; expected at least one recipe")
    for recipe_name, params in recipes.items():
        try:
            parse_recipe(params)
        except InputError as err:
            raise ManifestError(path, str(err), entry=f"recipes.{recipe_name}") from None
    lab = dict(data.get("lab", {}))
    seed = lab.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ManifestError(path, f"seed must be a non-negative integer, got {seed!r}", entry="lab")
    try:
        settings = LabSettings.from_dict(lab)
    except InputError as err:
        raise ManifestError(path, str(err), entry="lab") from None
    study = {k: v for k, v in data.get("study", {}).items() if k in ("name", "description")}
    return recipes, settings, study, seed


def simulate_recipes_file(path, out_dir, *, seed: int | None = None) -> SimulatedStudy:
    """Simulate the recipes of a recipes TOML (see :func:`load_recipes_file`) into ``out_dir``."""
    recipes, settings, study, file_seed = load_recipes_file(path)
    chosen = seed if seed is not None else (file_seed if file_seed is not None else 0)
    return simulate_study(recipes, out_dir, seed=chosen, settings=settings, **study)
