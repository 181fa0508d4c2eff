"""Hierarchical Arrhenius model of conductivities measured on recipes × cells × temperatures.

The model, for one kind of conductivity (ionic or electronic), reads like ``physics.md`` §2.1::

    y[i]       = log10 σ[i]                         (form "sigma")
               = log10 σ[i] + log10(T[i]/T_ref)     (form "sigmaT": the σ·T Arrhenius law)
    y[i]       = c[cell] − Ea_cell[cell] / (k_B ln10) · (1/T[i] − 1/T_ref)

    a[recipe]  ~ Normal(a_pop, τ_a)                          recipes partially pooled
    Ea[recipe] = Ea_pop + τ_Ea · v[recipe],  v ~ Normal(0, 1)  Ea_pop prior per study kind
    c[cell]    ~ Normal(a[recipe], sqrt(τ_cell² + g[cell]²)) cell level around its recipe
    Ea_cell    = Ea[recipe] + τ_Ea,cell · w[cell],  w ~ Normal(0, 1)   cells differ in Ea too
    ŷ[i]       ~ (1 − π)·Normal(y[i], sqrt(s[i]² + σ_extra²)) + π·Normal(y[i], 1 decade)

``ŷ[i]`` and ``s[i]`` are the posterior mean and sd of log10 σ of one spectrum or DC record
(stage 1, the fit's own uncertainty). ``g[cell]`` is the sd of log10(thickness/area) of the
cell: an error in one cell's geometry shifts all its temperatures together, so it belongs to
that cell's level, not to each measurement (as independent noise per temperature it widened
the Ea intervals several-fold and narrowed the σ intervals wrongly). ``τ_cell`` is the true
cell-to-cell spread, ``τ_Ea,cell`` that of the activation energy (with one Ea per recipe,
intervals of ±0.002 eV were overconfident about real cells), ``σ_extra`` scatter the stage-1
uncertainties do not explain and ``π`` the fraction of outlying records (a fit that latched
onto the wrong arc). In the σ·T form ``a`` is still log10 σ at T_ref and every table reports σ;
only the Arrhenius law (and so the meaning of Ea, higher by ≈ k_B·T than in the σ form) differs.

Which levels exist and how they are written depends on what the data can identify:

- one recipe: no pooling across recipes (``a_pop``, ``τ_a``, ``Ea_pop``, ``τ_Ea`` cannot be
  learned from one group and made a funnel): the recipe takes the population prior directly;
- cell levels are free and each recipe's level is written relative to its cells' weighted
  mean (:func:`_arrhenius_layer`): the same density as the centred model, which samples well
  when the data pin every cell (3 recipes × 3 cells × 6 temperatures, 4 × 1000 draws: ESS ≈
  4000, step size 0.4 centred vs ESS ≈ 200, step size 0.03 non-centred), without the funnel
  that the centred form has for a recipe measured on one cell (a one-cell temperature series
  gave 318–430 divergences);
- the Ea offsets of recipes from the population and of cells from their recipe are
  non-centred: a slope is known to a few meV at best, not much less than the spreads, which is
  where the non-centred form is the better one (centred recipe offsets gave 51 divergences on
  two recipes of one cell each).

Priors depend on the study's kind (:data:`KIND_PRIORS`, ``[study] kind``); they are stated at
30 °C and moved to ``T_ref``, which defaults to the middle of the measured range (in 1/T), where
``a`` and ``Ea`` decorrelate. σ at any temperature follows from the draws (:func:`log10_sigma_at`).
:func:`prior_dominated` says which recipe-level rows learned too little from the data.
:func:`fit_joint_arrhenius` puts the same layer on the composite resistance of every ion
spectrum in one model (``--joint``).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymc as pm
import xarray as xr

from inference.errors import InputError, ModelError

#: Boltzmann constant, eV/K.
K_B_EV_PER_K = 8.617333262e-5
LN10 = float(np.log(10.0))
T_30C_K = 303.15
KINDS = ("ionic", "electronic")
#: Arrhenius forms: σ = σ0·exp(−Ea/kT) ("sigma") or σ·T = A·exp(−Ea/kT) ("sigmaT").
FORMS = ("sigma", "sigmaT")
#: Default form per study kind: the solid-electrolyte literature reports σ·T.
DEFAULT_FORM = {"composite_cathode": "sigma", "solid_electrolyte": "sigmaT", "other": "sigma"}

_SCATTER = {
    "cell_spread_sd": 0.2,
    "extra_scatter_sd": 0.05,
    "outlier_fraction_a": 1.0,
    "outlier_fraction_b": 19.0,
    "outlier_sd": 1.0,
}
#: Default priors per study kind and conductivity kind. log10 σ in log10(S/cm), stated at
#: 30 °C; spreads in decades; Ea in eV, a truncated Normal (``Ea_mu_eV``, ``Ea_sd_eV``,
#: ``Ea_lower_eV``, ``Ea_upper_eV``) or a HalfNormal (``Ea_scale_eV``). Override any key through
#: ``priors=`` of :func:`arrhenius_model`.
#:
#: ``composite_cathode`` (physics.md §3): composite ionic σ around 1.6e-5 S/cm within a decade,
#: Ea 0.37 ± 0.07 eV in [0.2, 0.6]; electronic σ with carbon around 1e-2, Ea HalfNormal(0.05).
#: ``solid_electrolyte``: oxides, sulfides, halides, polymers span 1e-9–1e-2 S/cm at 30 °C and
#: Ea 0.2–0.9 eV, so σ ~ Normal(−5, 2) decades and Ea ~ Normal(0.45, 0.2) in [0.05, 1.5] eV;
#: electronic leakage of an electrolyte ~ Normal(−9, 2), Ea ~ Normal(0.6, 0.3) in [0.05, 2].
#: ``other``: as broad for both kinds, centred on no material in particular.
#: Cells' Ea spread τ_Ea,cell ~ HalfNormal(0.02 eV) (0.01 for a composite's electronic Ea).
KIND_PRIORS: dict[str, dict[str, dict[str, float]]] = {
    "composite_cathode": {
        "ionic": {
            "log10_sigma_30C_mu": -4.8,
            "log10_sigma_30C_sd": 1.0,
            "recipe_spread_sd": 1.0,
            "Ea_mu_eV": 0.37,
            "Ea_sd_eV": 0.07,
            "Ea_lower_eV": 0.2,
            "Ea_upper_eV": 0.6,
            "Ea_recipe_spread_sd_eV": 0.05,
            "Ea_cell_spread_sd_eV": 0.02,
            **_SCATTER,
        },
        "electronic": {
            "log10_sigma_30C_mu": -2.0,
            "log10_sigma_30C_sd": 1.0,
            "recipe_spread_sd": 1.0,
            "Ea_scale_eV": 0.05,
            "Ea_recipe_spread_sd_eV": 0.02,
            "Ea_cell_spread_sd_eV": 0.01,
            **_SCATTER,
        },
    },
    "solid_electrolyte": {
        "ionic": {
            "log10_sigma_30C_mu": -5.0,
            "log10_sigma_30C_sd": 2.0,
            "recipe_spread_sd": 1.0,
            "Ea_mu_eV": 0.45,
            "Ea_sd_eV": 0.2,
            "Ea_lower_eV": 0.05,
            "Ea_upper_eV": 1.5,
            "Ea_recipe_spread_sd_eV": 0.1,
            "Ea_cell_spread_sd_eV": 0.02,
            **_SCATTER,
        },
        "electronic": {
            "log10_sigma_30C_mu": -9.0,
            "log10_sigma_30C_sd": 2.0,
            "recipe_spread_sd": 1.0,
            "Ea_mu_eV": 0.6,
            "Ea_sd_eV": 0.3,
            "Ea_lower_eV": 0.05,
            "Ea_upper_eV": 2.0,
            "Ea_recipe_spread_sd_eV": 0.1,
            "Ea_cell_spread_sd_eV": 0.02,
            **_SCATTER,
        },
    },
    "other": {
        "ionic": {
            "log10_sigma_30C_mu": -5.0,
            "log10_sigma_30C_sd": 2.5,
            "recipe_spread_sd": 1.0,
            "Ea_mu_eV": 0.4,
            "Ea_sd_eV": 0.25,
            "Ea_lower_eV": 0.0,
            "Ea_upper_eV": 1.5,
            "Ea_recipe_spread_sd_eV": 0.1,
            "Ea_cell_spread_sd_eV": 0.02,
            **_SCATTER,
        },
        "electronic": {
            "log10_sigma_30C_mu": -4.0,
            "log10_sigma_30C_sd": 3.0,
            "recipe_spread_sd": 1.0,
            "Ea_mu_eV": 0.2,
            "Ea_sd_eV": 0.25,
            "Ea_lower_eV": 0.0,
            "Ea_upper_eV": 1.5,
            "Ea_recipe_spread_sd_eV": 0.1,
            "Ea_cell_spread_sd_eV": 0.02,
            **_SCATTER,
        },
    },
}
#: The composite-cathode priors (physics.md §3), the defaults when no kind is given.
DEFAULT_PRIORS = KIND_PRIORS["composite_cathode"]


@dataclass
class ArrheniusData:
    """Stage-1 conductivities of one kind, one row per spectrum or DC record.

    Parameters
    ----------
    recipe, cell : labels per row (a cell belongs to one recipe).
    temperature_K : measurement temperature, K.
    log10_sigma : posterior mean of log10 σ (σ in S/cm).
    log10_sigma_sd : posterior sd of log10 σ from the fit alone (geometry excluded), decades.
    geometry_sd : sd of log10(thickness/area) of the row's cell, decades; 0 when exact.
    source : identifier of the spectrum / record per row (for plots and tables).
    """

    recipe: np.ndarray
    cell: np.ndarray
    temperature_K: np.ndarray
    log10_sigma: np.ndarray
    log10_sigma_sd: np.ndarray
    geometry_sd: np.ndarray
    source: np.ndarray = field(default=None)

    def __post_init__(self):
        n = len(self.recipe)
        self.recipe = np.asarray(self.recipe, dtype=str)
        self.cell = np.asarray(self.cell, dtype=str)
        self.temperature_K = np.asarray(self.temperature_K, dtype=float)
        self.log10_sigma = np.asarray(self.log10_sigma, dtype=float)
        self.log10_sigma_sd = np.asarray(self.log10_sigma_sd, dtype=float)
        self.geometry_sd = np.broadcast_to(np.asarray(self.geometry_sd, dtype=float), (n,)).copy()
        if self.source is None:
            self.source = np.array([f"obs{i}" for i in range(n)])
        self.source = np.asarray(self.source, dtype=str)
        columns = ("cell", "temperature_K", "log10_sigma", "log10_sigma_sd", "source")
        for name in columns:
            if len(getattr(self, name)) != n:
                raise InputError(f"ArrheniusData: column {name!r} has a different length")
        if n == 0:
            raise InputError("ArrheniusData: no conductivities to fit")
        if np.any(self.temperature_K <= 0) or not np.all(np.isfinite(self.log10_sigma)):
            raise InputError("ArrheniusData: temperatures must be > 0 K and log10 σ finite")
        for c in np.unique(self.cell):
            if np.unique(self.recipe[self.cell == c]).size > 1:
                raise InputError(f"ArrheniusData: cell {str(c)!r} appears under several recipes")

    @property
    def recipes(self) -> list[str]:
        """Recipes in order of first appearance."""
        return list(dict.fromkeys(self.recipe.tolist()))

    @property
    def cells(self) -> list[str]:
        """Cells in order of first appearance."""
        return list(dict.fromkeys(self.cell.tolist()))

    def to_dataset(self) -> xr.Dataset:
        """The rows as an ``xr.Dataset`` over dim ``obs`` (stored with the result)."""
        return xr.Dataset(
            {
                "log10_sigma": ("obs", self.log10_sigma, {"units": "log10(S/cm)"}),
                "log10_sigma_sd": ("obs", self.log10_sigma_sd, {"units": "decades"}),
                "geometry_sd": ("obs", self.geometry_sd, {"units": "decades"}),
                "temperature_K": ("obs", self.temperature_K, {"units": "K"}),
                "recipe": ("obs", self.recipe),
                "cell": ("obs", self.cell),
            },
            coords={"obs": self.source},
        )


def default_reference_temperature_K(temperature_K) -> float:
    """Middle of the measured range in 1/T, K (centring that decorrelates a and Ea)."""
    inv = 1.0 / np.asarray(temperature_K, dtype=float)
    return float(2.0 / (inv.min() + inv.max()))


def merged_priors(
    kind: str, priors: dict | None = None, study_kind: str = "composite_cathode"
) -> dict[str, float]:
    """Defaults for ``kind`` in a ``study_kind`` study updated with the user's ``priors``
    (unknown keys rejected)."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    if study_kind not in KIND_PRIORS:
        raise InputError(f"study kind must be one of {tuple(KIND_PRIORS)}, got {study_kind!r}")
    out = copy.deepcopy(KIND_PRIORS[study_kind][kind])
    for key, value in (priors or {}).items():
        if key not in out:
            raise InputError(f"unknown {kind} prior {key!r}; expected one of {sorted(out)}")
        out[key] = float(value)
    return out


def check_form(form: str) -> str:
    """``form`` if it is one of :data:`FORMS`, else an :class:`InputError`."""
    if form not in FORMS:
        raise InputError(f"arrhenius form {form!r}; expected one of {', '.join(FORMS)}")
    return form


def slope_decades_per_inverse_K(Ea_eV):
    """log10 σ change per unit of 1/T for activation energy ``Ea_eV``, decades·K."""
    return Ea_eV / (K_B_EV_PER_K * LN10)


def form_shift(temperature_K, t_ref: float, form: str):
    """What the form adds to log10 σ: log10(T/T_ref) for σ·T, 0 for σ (decades)."""
    t = np.asarray(temperature_K, dtype=float)
    return np.log10(t / t_ref) if form == "sigmaT" else np.zeros_like(t)


@dataclass(frozen=True)
class _Layout:
    """Index structure of the Arrhenius layer (what a compiled sampler depends on)."""

    recipes: tuple[str, ...]
    cells: tuple[str, ...]
    cell_recipe_idx: tuple[int, ...]
    obs_cell_idx: tuple[int, ...]

    @classmethod
    def of(cls, recipe, cell) -> _Layout:
        recipe, cell = np.asarray(recipe, dtype=str), np.asarray(cell, dtype=str)
        recipes = tuple(dict.fromkeys(recipe.tolist()))
        cells = tuple(dict.fromkeys(cell.tolist()))
        cell_recipe = [recipe[cell == c][0] for c in cells]
        return cls(
            recipes,
            cells,
            tuple(recipes.index(r) for r in cell_recipe),
            tuple(cells.index(c) for c in cell.tolist()),
        )

    @property
    def obs_recipe_idx(self) -> np.ndarray:
        return np.asarray(self.cell_recipe_idx)[np.asarray(self.obs_cell_idx)]

    @property
    def pooled(self) -> bool:
        """Recipes are pooled (a population level exists) when there are at least two."""
        return len(self.recipes) >= 2

    def cell_geometry_sd(self, geometry_sd) -> np.ndarray:
        g = np.asarray(geometry_sd, dtype=float)
        idx = np.asarray(self.obs_cell_idx)
        return np.array([g[idx == i].max() for i in range(len(self.cells))])


def _ea_is_halfnormal(p: dict) -> bool:
    return "Ea_scale_eV" in p


def _ea_centre(p: dict) -> float:
    return p["Ea_scale_eV"] * math.sqrt(2 / math.pi) if _ea_is_halfnormal(p) else p["Ea_mu_eV"]


def _a_prior_centre(p: dict, t_ref: float, form: str) -> float:
    """Prior centre of log10 σ at T_ref from the 30 °C prior, moved with the prior-mean Ea."""
    shift = float(form_shift(T_30C_K, t_ref, form))
    return (
        p["log10_sigma_30C_mu"]
        - slope_decades_per_inverse_K(_ea_centre(p)) * (1.0 / t_ref - 1.0 / T_30C_K)
        + shift * (form == "sigmaT")
    )


def _ea_prior(name: str, p: dict, widen: float = 0.0, **kwargs):
    """The population Ea prior (truncated Normal or HalfNormal), sd widened by ``widen``."""
    if _ea_is_halfnormal(p):
        return pm.HalfNormal(name, math.hypot(p["Ea_scale_eV"], widen), **kwargs)
    return pm.TruncatedNormal(
        name,
        p["Ea_mu_eV"],
        math.hypot(p["Ea_sd_eV"], widen),
        lower=p["Ea_lower_eV"],
        upper=p["Ea_upper_eV"],
        **kwargs,
    )


def _arrhenius_layer(layout: _Layout, p: dict, t_ref: float, form: str, inv_t, cell_geometry_sd):
    """Recipe, Ea and cell levels; returns y (form-shifted log10 σ) per observation before
    extra scatter. Must be called inside a ``pm.Model`` with coords ``recipe`` and ``cell``.

    The cell levels are free variables (the data pin each one down) and each recipe's level is
    written relative to the precision-weighted mean of its cells,
    ``a[r] = ĉ[r] − u[r]/√W[r]`` with ``W[r] = Σ 1/s[j]²`` over its cells; the density is
    exactly the centred model's (``a ~ prior``, ``c[j] ~ Normal(a, s[j])``) times the Jacobian
    ``Π W[r]^(−1/2)``, written as potentials. In these coordinates ``u`` is a standard Normal
    whatever the number of cells, so a recipe measured on one cell (``a`` = the cell's level
    ± the cell-spread prior) has no funnel, and many cells keep the centred form's efficiency.

    The activation energies stay non-centred (``z_Ea_recipe``, ``z_Ea_cell``). On the bundled
    study's stage-1 tables (3 recipes, 9 cells, 6 temperatures each) this layer takes 110–130
    leapfrog steps per draw; a centred ``Ea_cell``, a centred recipe ``Ea`` as well, or ``Ea``
    written relative to its cells' mean as ``a`` is, cut that to 30–80 but left 60–1600
    divergent transitions at target acceptance 0.9 (funnels at small ``tau_Ea_cell`` /
    ``tau_Ea``) against 0–11 here; same posterior means to 3 decimals.
    """
    import pytensor.tensor as pt

    a0 = _a_prior_centre(p, t_ref, form)
    cell_recipe = np.asarray(layout.cell_recipe_idx)
    member = (cell_recipe[None, :] == np.arange(len(layout.recipes))[:, None]).astype(float)
    tau_cell = pm.HalfNormal("tau_cell", p["cell_spread_sd"])
    cell_sd = pt.sqrt(tau_cell**2 + cell_geometry_sd**2)
    cell_level = pm.Flat("log10_sigma_ref_cell", dims="cell")
    weight = 1.0 / cell_sd**2
    total = pt.dot(member, weight)
    u = pm.Flat("u_recipe", dims="recipe")
    cells_mean = pt.dot(member, weight * cell_level) / total
    a = pm.Deterministic("log10_sigma_ref", cells_mean - u / pt.sqrt(total), dims="recipe")
    cells = pm.logp(pm.Normal.dist(a[cell_recipe], cell_sd), cell_level).sum()
    pm.Potential("cell_levels", cells - 0.5 * pt.log(total).sum())
    if layout.pooled:
        a_pop = pm.Normal("log10_sigma_ref_pop", a0, p["log10_sigma_30C_sd"])
        tau_a = pm.HalfNormal("tau_recipe", p["recipe_spread_sd"])
        pm.Potential("recipe_levels", pm.logp(pm.Normal.dist(a_pop, tau_a), a).sum())
        ea_pop = _ea_prior("Ea_pop", p)
        tau_ea = pm.HalfNormal("tau_Ea", p["Ea_recipe_spread_sd_eV"])
        z_ea_recipe = pm.Normal("z_Ea_recipe", 0.0, 1.0, dims="recipe")
        ea = pm.Deterministic("Ea", ea_pop + tau_ea * z_ea_recipe, dims="recipe")
    else:
        sd = math.hypot(p["log10_sigma_30C_sd"], p["recipe_spread_sd"])
        pm.Potential("recipe_levels", pm.logp(pm.Normal.dist(a0, sd), a).sum())
        ea = _ea_prior("Ea", p, p["Ea_recipe_spread_sd_eV"], dims="recipe")
    tau_ea_cell = pm.HalfNormal("tau_Ea_cell", p["Ea_cell_spread_sd_eV"])
    z_ea = pm.Normal("z_Ea_cell", 0.0, 1.0, dims="cell")
    ea_cell = pm.Deterministic("Ea_cell", ea[cell_recipe] + tau_ea_cell * z_ea, dims="cell")
    pm.Deterministic("cell_effect", cell_level - a[cell_recipe], dims="cell")
    pm.Deterministic("sigma_ref", 10.0**a, dims="recipe")
    shift_30 = float(form_shift(T_30C_K, t_ref, form))
    a30 = a - slope_decades_per_inverse_K(ea) * (1.0 / T_30C_K - 1.0 / t_ref) - shift_30
    pm.Deterministic("sigma_30C", 10.0**a30, dims="recipe")
    obs_cell = np.asarray(layout.obs_cell_idx)
    return cell_level[obs_cell] - slope_decades_per_inverse_K(ea_cell[obs_cell]) * inv_t


def _robust_likelihood(y, mu, sd, p: dict) -> None:
    """Normal likelihood mixed with a broad outlier component, as a ``pm.Potential``.

    ``y[i] ~ (1 − π)·Normal(μ[i], sd[i]) + π·Normal(μ[i], outlier_sd)``, π ~ Beta(a, b) (prior
    mean 5 %). A stage-1 fit that latched onto the wrong arc can report a confident but wrong
    σ (seen on overlapping arcs); under a pure Normal one such point drags the recipe's line,
    under the mixture it is recognised and set aside, while clean data keep the efficiency of
    the Normal. ``outlier_prob`` (dims obs) is each point's posterior outlier probability and
    ``log_likelihood_obs`` its pointwise log-likelihood (the ``log_likelihood`` group).
    """
    import pytensor.tensor as pt

    frac = pm.Beta("outlier_fraction", p["outlier_fraction_a"], p["outlier_fraction_b"])
    good = pt.log1p(-frac) + pm.logp(pm.Normal.dist(mu, sd), y)
    bad = pt.log(frac) + pm.logp(pm.Normal.dist(mu, p["outlier_sd"]), y)
    total = pt.logaddexp(good, bad)
    pm.Potential("log10_sigma_obs_logp", total.sum())
    pm.Deterministic("outlier_prob", pt.exp(bad - total), dims="obs")
    pm.Deterministic("log_likelihood_obs", total, dims="obs")


def arrhenius_model(
    data: ArrheniusData,
    kind: str,
    priors: dict | None = None,
    reference_temperature_K: float | None = None,
    form: str = "sigma",
    study_kind: str = "composite_cathode",
) -> pm.Model:
    """Build the hierarchical Arrhenius model of the module docstring.

    Parameters
    ----------
    data : stage-1 conductivities of one kind.
    kind : ``"ionic"`` or ``"electronic"``.
    priors : overrides of :data:`KIND_PRIORS` ``[study_kind][kind]`` (already merged dicts are
        accepted as they are).
    reference_temperature_K : T_ref, K; default mid-range of ``data.temperature_K``.
    form : ``"sigma"`` or ``"sigmaT"`` (:data:`FORMS`).
    study_kind : ``composite_cathode``, ``solid_electrolyte`` or ``other``.

    Returns
    -------
    pm.Model with coords ``recipe``, ``cell``, ``obs`` and posterior variables ``log10_sigma_ref``,
    ``sigma_ref`` (S/cm at T_ref), ``sigma_30C`` (S/cm), ``Ea`` (eV) over ``recipe``,
    ``log10_sigma_ref_cell``, ``Ea_cell`` and ``cell_effect`` over ``cell``, ``tau_cell``,
    ``tau_Ea_cell`` and ``extra_scatter``. The numbers are ``pm.Data`` (``log10_sigma``: y in
    the model's form, ``log10_sigma_sd``, ``inv_t``, ``cell_geometry_sd``) so one compiled
    sampler serves every data set of the same layout.
    """
    p = merged_priors(kind, priors, study_kind)
    check_form(form)
    t_ref = reference_temperature_K or default_reference_temperature_K(data.temperature_K)
    layout = _Layout.of(data.recipe, data.cell)
    values = _model_data(data, layout, t_ref, form)
    coords = {
        "recipe": list(layout.recipes),
        "cell": list(layout.cells),
        "obs": data.source.tolist(),
    }
    with pm.Model(coords=coords) as model:
        y = pm.Data("log10_sigma", values["log10_sigma"], dims="obs")
        sd = pm.Data("log10_sigma_sd", values["log10_sigma_sd"], dims="obs")
        inv_t = pm.Data("inv_t", values["inv_t"], dims="obs")
        geometry = pm.Data("cell_geometry_sd", values["cell_geometry_sd"], dims="cell")
        mu = _arrhenius_layer(layout, p, t_ref, form, inv_t, geometry)
        extra = pm.HalfNormal("extra_scatter", p["extra_scatter_sd"])
        _robust_likelihood(y, mu, pm.math.sqrt(sd**2 + extra**2), p)
    model.sigmalab_attrs = {
        "kind": kind,
        "reference_temperature_K": t_ref,
        "priors": p,
        "layout": layout,
        "form": form,
    }
    return model


def _model_data(
    data: ArrheniusData, layout: _Layout, t_ref: float, form: str
) -> dict[str, np.ndarray]:
    return {
        "log10_sigma": data.log10_sigma + form_shift(data.temperature_K, t_ref, form),
        "log10_sigma_sd": data.log10_sigma_sd,
        "inv_t": 1.0 / data.temperature_K - 1.0 / t_ref,
        "cell_geometry_sd": layout.cell_geometry_sd(data.geometry_sd),
    }


def _initial_layer(layout: _Layout, p: dict, y, inv_t) -> dict[str, np.ndarray]:
    """A start for every chain: least squares of y on cell intercepts and recipe slopes."""
    n_cells, n_recipes = len(layout.cells), len(layout.recipes)
    x = np.zeros((len(y), n_cells + n_recipes))
    x[np.arange(len(y)), layout.obs_cell_idx] = 1.0
    x[np.arange(len(y)), n_cells + layout.obs_recipe_idx] = -np.asarray(inv_t)
    coef = np.linalg.lstsq(x, np.asarray(y, float), rcond=None)[0]
    cell_level = coef[:n_cells]
    if _ea_is_halfnormal(p):
        lo, hi = 0.0, 10 * p["Ea_scale_eV"]
    else:
        lo, hi = p["Ea_lower_eV"], p["Ea_upper_eV"]
    ea = np.clip(coef[n_cells:] * K_B_EV_PER_K * LN10, lo + 1e-3, hi - 1e-3)
    cell_recipe = np.asarray(layout.cell_recipe_idx)
    a = np.array([cell_level[cell_recipe == r].mean() for r in range(n_recipes)])
    return {
        "log10_sigma_ref_pop": float(a.mean()),
        "tau_recipe": float(max(a.std(), 0.1)),
        "log10_sigma_ref": a,
        "Ea_pop": float(np.clip(ea.mean(), lo + 1e-3, hi - 1e-3)),
        "tau_Ea": float(max(ea.std(), 0.01)),
        "Ea": ea,
        "z_Ea_recipe": (ea - ea.mean()) / max(ea.std(), 0.01),
        "tau_cell": 0.1,
        "log10_sigma_ref_cell": cell_level,
        "u_recipe": np.zeros(n_recipes),
        "tau_Ea_cell": 0.5 * p["Ea_cell_spread_sd_eV"],
        "z_Ea_cell": np.zeros(n_cells),
    }


def _tree_from_draws(model: pm.Model, out, observed: dict) -> xr.DataTree:
    """ArviZ DataTree (posterior, sample_stats, observed_data) from :class:`samplers.Draws`."""
    dims_of = model.named_vars_to_dims
    coords = {k: list(v) for k, v in model.coords.items()}
    post = {}
    for name, values in out.posterior.items():
        dims = ("chain", "draw", *dims_of.get(name, ()))
        if values.ndim != len(dims):
            dims = ("chain", "draw", *[f"{name}_dim_{i}" for i in range(values.ndim - 2)])
        post[name] = xr.DataArray(
            values, dims=dims, coords={d: coords[d] for d in dims if d in coords}
        )
    chains, draws = next(iter(out.posterior.values())).shape[:2]
    base = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset(post).assign_coords(base)
    stats = xr.Dataset(
        {k: (("chain", "draw"), v) for k, v in out.sample_stats.items()}, coords=base
    )
    obs = xr.Dataset(
        {k: (dims_of.get(k, (f"{k}_dim_0",)), np.asarray(v)) for k, v in observed.items()}
    )
    obs = obs.assign_coords({d: coords[d] for d in obs.dims if d in coords})
    return xr.DataTree.from_dict(
        {"/posterior": posterior, "/sample_stats": stats, "/observed_data": obs}
    )


def _sample(model_key, build, data, init, *, draws, tune, chains, seed, sampler):
    """Sample through :mod:`inference.samplers` (compiled once per key); returns
    (model, Draws, runs), ``runs`` one dict per run. A run that broke a threshold is run again
    as the spectra are (:func:`inference.diagnostics.next_run`: divergences, smaller steps;
    ESS short or r̂ high, more draws); the last run is the result."""
    from inference import diagnostics as dg
    from inference.samplers import get_sampler, run_with_reruns

    built = {}

    def make():
        built["model"] = build()
        return built["model"]

    smp = get_sampler(model_key, make, sampler=sampler, chains=chains, tune=tune, draws=draws)
    model = built.get("model") or getattr(smp, "model", None) or smp.jmodel.model

    def judge(out, n_draws):
        tree = _tree_from_draws(model, out, {})
        posterior = tree["posterior"].to_dataset().drop_vars("log_likelihood_obs", errors="ignore")
        return None, dg.sampling(posterior, tree["sample_stats"].to_dataset())

    out, _, _, runs = run_with_reruns(smp, data, init, judge, draws=draws, seed=seed)
    return model, out, runs


def fit_arrhenius(
    data: ArrheniusData,
    kind: str,
    *,
    priors: dict | None = None,
    reference_temperature_K: float | None = None,
    form: str = "sigma",
    study_kind: str = "composite_cathode",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    sampler: str = "blackjax",
) -> xr.DataTree:
    """Fit the hierarchical Arrhenius model; returns an ArviZ DataTree with the data and priors.

    Sampled with :mod:`inference.samplers` (blackjax by default: compiled once per layout of
    recipes and cells, so re-analysing a study reuses it; ``sampler="pymc"`` needs nothing but
    PyMC). All chains start from a least-squares fit of the data, without jitter.

    The tree has groups ``posterior``, ``sample_stats``, ``log_likelihood`` (``log10_sigma_obs``
    per record), ``observed_data`` and ``constant_data`` (the stage-1 table,
    :meth:`ArrheniusData.to_dataset`); its attrs hold ``kind``, ``study_kind``,
    ``arrhenius_form``, ``reference_temperature_K``, the priors (``prior_<key>``), the sampler
    settings, the diagnostics (:func:`convergence`) and the layer's ``verdict``.

    Raises
    ------
    ModelError
        Sampling produced non-finite draws.
    """
    p = merged_priors(kind, priors, study_kind)
    check_form(form)
    t_ref = reference_temperature_K or default_reference_temperature_K(data.temperature_K)
    layout = _Layout.of(data.recipe, data.cell)
    values = _model_data(data, layout, t_ref, form)
    init = _initial_layer(layout, p, values["log10_sigma"], values["inv_t"])
    init["extra_scatter"] = 0.01
    init["outlier_fraction"] = 0.05
    key = ("arrhenius", kind, layout, round(t_ref, 9), form, tuple(sorted(p.items())))
    model, out, runs = _sample(
        key,
        lambda: arrhenius_model(data, kind, p, t_ref, form, study_kind),
        values,
        init,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,
    )
    tree = _tree_from_draws(model, out, {"log10_sigma_obs": values["log10_sigma"]})
    tree["constant_data"] = xr.DataTree(data.to_dataset())
    return _finish(
        tree,
        kind,
        t_ref,
        p,
        layout,
        model="hierarchical Arrhenius, two-stage",
        runs=json.dumps(runs),
        arrhenius_form=form,
        study_kind=study_kind,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=out.sampler,
    )


def _finish(tree, kind, t_ref, p, layout, **attrs) -> xr.DataTree:
    post = tree["posterior"].to_dataset()
    if not np.all(np.isfinite(post["log10_sigma_ref"].values)):
        raise ModelError(f"{kind} Arrhenius model: sampling returned non-finite draws")
    if "log_likelihood_obs" in post:
        loglik = post[["log_likelihood_obs"]].rename(log_likelihood_obs="log10_sigma_obs")
        tree["log_likelihood"] = xr.DataTree(loglik)
        post = post.drop_vars("log_likelihood_obs")
    units = {
        "sigma_ref": "S/cm",
        "sigma_30C": "S/cm",
        "Ea": "eV",
        "Ea_cell": "eV",
        "log10_sigma_ref": "log10(S/cm)",
        "log10_sigma_ref_cell": "log10(S/cm)",
    }
    for name, unit in units.items():
        post[name].attrs["units"] = unit
    tree["posterior"] = xr.DataTree(post)
    tree.attrs.update(
        {
            **attrs,
            "kind": kind,
            "reference_temperature_K": t_ref,
            "cell_recipe": [layout.recipes[i] for i in layout.cell_recipe_idx],
            "pooled_recipes": int(layout.pooled),
            **{f"prior_{k}": v for k, v in p.items()},
        }
    )
    tree.attrs.update(convergence(tree))
    return tree


def joint_arrhenius_model(
    spectra,
    circuit,
    resistance: str,
    priors: dict | None = None,
    reference_temperature_K: float | None = None,
    form: str = "sigma",
    study_kind: str = "composite_cathode",
) -> pm.Model:
    """Ion spectra and the ionic Arrhenius layer in one model (``--joint``).

    Each spectrum keeps its own circuit parameters (priors of :mod:`inference.priors`), except
    the composite resistance, which the Arrhenius layer supplies::

        y[i] = level[cell] − Ea_cell[cell]/(k_B ln10)·(1/T[i] − 1/T_ref) + e[i],
        log10 σ[i] = y[i] − log10(T[i]/T_ref) in the σ·T form, y[i] in the σ form,
        e[i] = σ_extra · z[i]                                  (non-centred)
        R_composite[i] = (L/A)[cell] / σ[i]                    reported geometry

    Spectra are stacked into (spectrum, point) arrays; shorter spectra are padded and masked.
    The relative-noise likelihood is that of :mod:`inference.eis_model`, per measured point
    (padded points masked out).
    """
    import pytensor.tensor as pt

    from inference import eis_model
    from inference.priors import default_priors

    p = merged_priors("ionic", priors, study_kind)
    check_form(form)
    recipe = np.array([ds.attrs["recipe"] for ds in spectra], dtype=str)
    cell = np.array([ds.attrs["cell_id"] for ds in spectra], dtype=str)
    temperature = np.array([float(ds.attrs["temperature_K"]) for ds in spectra])
    t_ref = reference_temperature_K or default_reference_temperature_K(temperature)
    layout = _Layout.of(recipe, cell)
    geometry = np.array(
        [
            math.hypot(
                ds.attrs["thickness_sd_cm"] / ds.attrs["thickness_cm"],
                ds.attrs["area_sd_cm2"] / ds.attrs["area_cm2"],
            )
            / LN10
            for ds in spectra
        ]
    )
    log_l_over_a = np.array(
        [math.log(ds.attrs["thickness_cm"] / ds.attrs["area_cm2"]) for ds in spectra]
    )
    n_max = max(ds.sizes["frequency"] for ds in spectra)
    shape = (len(spectra), n_max)
    freq, zr, zi, mask = np.ones(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape, bool)
    eis_priors = []
    for i, ds in enumerate(spectra):
        n = ds.sizes["frequency"]
        f = ds["frequency"].values
        freq[i, :n], zr[i, :n], zi[i, :n], mask[i, :n] = (
            f,
            ds["z_real"].values,
            ds["z_imag"].values,
            True,
        )
        freq[i, n:] = f[-1]
        eis_priors.append(default_priors(circuit, f, ds["z_real"].values, ds["z_imag"].values))
    composite_key = f"log_{resistance}"
    names = [k for k in eis_priors[0] if k != composite_key]
    ids = [
        Path(str(ds.attrs.get("manifest_path", ds.attrs.get("source_file", i)))).stem
        for i, ds in enumerate(spectra)
    ]
    coords = {"recipe": list(layout.recipes), "cell": list(layout.cells), "spectrum": ids}
    zr = np.where(mask, zr, 1.0)  # padded points: finite data, masked out of the likelihood
    shift = form_shift(temperature, t_ref, form)
    with pm.Model(coords=coords) as model:
        inv_t = pm.Data("inv_t", 1.0 / temperature - 1.0 / t_ref, dims="spectrum")
        geo = pm.Data("cell_geometry_sd", layout.cell_geometry_sd(geometry), dims="cell")
        mu = _arrhenius_layer(layout, p, t_ref, form, inv_t, geo)
        extra = pm.HalfNormal("extra_scatter", p["extra_scatter_sd"])
        z_extra = pm.Normal("z_extra", 0.0, 1.0, dims="spectrum")
        log10_sigma = pm.Deterministic("log10_sigma", mu + extra * z_extra - shift, dims="spectrum")
        internal = {}
        for name in names:
            mus = np.array([pr[name].mu for pr in eis_priors])
            sds = np.array([pr[name].sigma for pr in eis_priors])
            if eis_priors[0][name].dist == "halfnormal":
                internal[name] = pm.HalfNormal(name, sds, dims="spectrum")[:, None]
            else:
                internal[name] = pm.Normal(name, mus, sds, dims="spectrum")[:, None]
        internal[composite_key] = (log_l_over_a - LN10 * log10_sigma)[:, None]
        natural = eis_model.natural_params(circuit, internal, pt)
        re, im = eis_model.evaluate(circuit, natural, internal, freq, xp=pt)
        pointwise = eis_model.pointwise_log_likelihood(re, im, zr, zi, internal["sigma_rel"], xp=pt)
        pm.Potential("log_likelihood", (pointwise * mask).sum())
    model.sigmalab_attrs = {
        "form": form,
        "reference_temperature_K": t_ref,
        "priors": p,
        "layout": layout,
        "names": names,
        "ids": ids,
    }
    return model


def fit_joint_arrhenius(
    spectra,
    circuit,
    resistance: str,
    *,
    fits: dict | None = None,
    priors: dict | None = None,
    reference_temperature_K: float | None = None,
    form: str = "sigma",
    study_kind: str = "composite_cathode",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    sampler: str = "blackjax",
) -> xr.DataTree:
    """Fit :func:`joint_arrhenius_model`; same result layout as :func:`fit_arrhenius`.

    Starts every chain from the stage-1 fits (``fits``: spectrum id → fit tree or posterior with
    the circuit's natural parameters, as :class:`inference.analysis.StudyResult` keeps them;
    least-squares fits when absent). Cost: about ten free parameters per spectrum, so the
    54-spectrum bundled study has ~560 and one gradient evaluates all spectra; expect
    minutes to tens of minutes on a laptop CPU, against seconds for the two-stage route.
    Use it on a subset or to check the two-stage result.
    """
    from inference import eis_model
    from inference.lsq import fit_lsq
    from inference.priors import default_priors

    c = circuit
    model = joint_arrhenius_model(
        spectra, c, resistance, priors, reference_temperature_K, form, study_kind
    )
    meta = model.sigmalab_attrs
    layout, names, ids = meta["layout"], meta["names"], meta["ids"]
    t_ref = meta["reference_temperature_K"]
    starts = []
    for rid, ds in zip(ids, spectra, strict=True):
        post = (fits or {}).get(rid)
        if isinstance(post, xr.DataTree):
            post = post["posterior"].to_dataset()
        if post is not None and all(n in post for n in c.param_names):
            params = {n: float(post[n].median()) for n in c.param_names}
        else:
            params = fit_lsq(ds, c).params
        starts.append((params, ds))
    init_rows = [
        eis_model.initial_point(
            c,
            prm,
            ds,
            default_priors(c, ds["frequency"].values, ds["z_real"].values, ds["z_imag"].values),
        )
        for prm, ds in starts
    ]
    init = {n: np.array([row[n] for row in init_rows]) for n in names}
    log_r = np.array([math.log(prm[resistance]) for prm, _ in starts])
    y = np.array([math.log(ds.attrs["thickness_cm"] / ds.attrs["area_cm2"]) for ds in spectra])
    temperature = np.array([float(ds.attrs["temperature_K"]) for ds in spectra])
    y = (y - log_r) / LN10 + form_shift(temperature, t_ref, form)
    inv_t = 1.0 / temperature - 1.0 / t_ref
    geometry = model["cell_geometry_sd"].get_value()
    init |= _initial_layer(layout, meta["priors"], y, inv_t)
    init |= {"extra_scatter": 0.01, "z_extra": np.zeros(len(spectra))}
    values = {"inv_t": inv_t, "cell_geometry_sd": geometry}
    key = ("arrhenius-joint", id(model))
    _, out, runs = _sample(
        key,
        lambda: model,
        values,
        init,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,
    )
    keep = {k: v for k, v in out.posterior.items() if k not in names}
    out.posterior = keep
    tree = _tree_from_draws(model, out, {})
    return _finish(
        tree,
        "ionic",
        t_ref,
        meta["priors"],
        layout,
        model="hierarchical Arrhenius, joint with the spectra",
        runs=json.dumps(runs),
        arrhenius_form=form,
        study_kind=study_kind,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=out.sampler,
        n_spectra=len(spectra),
    )


def convergence(tree: xr.DataTree) -> dict:
    """Sampling diagnostics over every posterior variable (:func:`inference.diagnostics.sampling`:
    ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail`` with ``worst_rhat_var`` /
    ``worst_ess_var``, ``divergences``, ``bfmi``) and the layer's ``verdict`` and ``reasons``."""
    from inference import diagnostics as dg

    stats = tree["sample_stats"].to_dataset() if "sample_stats" in tree.children else None
    out = dg.sampling(tree["posterior"].to_dataset(), stats)
    verdict, reasons = dg.layer_verdict(out)
    return {**out, "verdict": verdict, "reasons": reasons}


def log10_sigma_at(tree: xr.DataTree, temperature_K: float) -> xr.DataArray:
    """Posterior draws of the recipe-level log10 σ at ``temperature_K`` (dims chain, draw, recipe).

    Works on a result of :func:`fit_arrhenius` and on the joint model's result alike, in
    either Arrhenius form (σ, not σ·T, is returned).
    """
    post = tree["posterior"]
    t_ref = float(tree.attrs["reference_temperature_K"])
    shift = float(form_shift(temperature_K, t_ref, tree.attrs.get("arrhenius_form", "sigma")))
    a = post["log10_sigma_ref"]
    return a - slope_decades_per_inverse_K(post["Ea"]) * (1.0 / temperature_K - 1.0 / t_ref) - shift


def log10_sigma_cells_at(tree: xr.DataTree, temperature_K: float) -> xr.DataArray:
    """Posterior draws of each cell's log10 σ at ``temperature_K`` (dims chain, draw, cell)."""
    post = tree["posterior"]
    t_ref = float(tree.attrs["reference_temperature_K"])
    shift = float(form_shift(temperature_K, t_ref, tree.attrs.get("arrhenius_form", "sigma")))
    ea = post["Ea_cell"] if "Ea_cell" in post else post["Ea"]
    slope = slope_decades_per_inverse_K(ea) * (1.0 / temperature_K - 1.0 / t_ref)
    return post["log10_sigma_ref_cell"] - slope - shift


def _prior_recipe_draws(tree: xr.DataTree, n: int = 4000, seed: int = 0):
    """Draws of one recipe's (log10 σ_ref level, Ea) from the layer's priors alone (numpy)."""
    from scipy.stats import truncnorm

    p = priors_from_attrs(tree.attrs)
    rng = np.random.default_rng(seed)
    t_ref = float(tree.attrs["reference_temperature_K"])
    form = tree.attrs.get("arrhenius_form", "sigma")
    a0 = _a_prior_centre(p, t_ref, form)
    pooled = bool(tree.attrs.get("pooled_recipes", 1))

    def normal(sd):
        return sd * rng.standard_normal(n)

    def spread(scale):  # Normal(0, τ) with τ ~ HalfNormal(scale)
        return normal(scale) * np.abs(rng.standard_normal(n))

    if pooled:
        a = a0 + normal(p["log10_sigma_30C_sd"]) + spread(p["recipe_spread_sd"])
    else:
        a = a0 + normal(math.hypot(p["log10_sigma_30C_sd"], p["recipe_spread_sd"]))
    ea_spread = p["Ea_recipe_spread_sd_eV"]
    if _ea_is_halfnormal(p):
        scale = p["Ea_scale_eV"] if pooled else math.hypot(p["Ea_scale_eV"], ea_spread)
        ea = scale * np.abs(rng.standard_normal(n))
    else:
        sd = p["Ea_sd_eV"] if pooled else math.hypot(p["Ea_sd_eV"], ea_spread)
        lo, hi = (p["Ea_lower_eV"] - p["Ea_mu_eV"]) / sd, (p["Ea_upper_eV"] - p["Ea_mu_eV"]) / sd
        ea = truncnorm.rvs(lo, hi, loc=p["Ea_mu_eV"], scale=sd, size=n, random_state=rng)
    if pooled:
        ea = ea + spread(ea_spread)
    return a, ea


def prior_check(tree: xr.DataTree, recipe: str, temperature_K: float | None = None) -> dict:
    """Is a recipe-level row prior-dominated? For log10 σ at ``temperature_K``, or Ea (None).

    A row is ``prior_dominated`` when (a) its posterior sd exceeds
    :data:`inference.diagnostics.PRIOR_DOMINATED_RATIO` × its prior sd (the data narrowed it
    little), or (b) more than half of its posterior variance is the offset between the recipe
    and the mean of its measured cells *and* the cell spread behind that offset (``tau_cell``
    for the level, ``tau_Ea_cell`` for the slope) is itself prior-dominated by rule (a): with
    one or two cells the spread of cells, hence how far the recipe may lie from the cells
    measured, comes from its prior (HalfNormal), not from the data.

    Returns ``{"posterior_sd", "prior_sd", "prior_share", "prior_dominated"}`` (sds in decades
    or eV; ``prior_share`` the share of the variance from prior-dominated spreads).
    """
    from inference.diagnostics import prior_dominated as dominated

    post = tree["posterior"]
    p = priors_from_attrs(tree.attrs)
    t_ref = float(tree.attrs["reference_temperature_K"])
    cells = [
        c
        for c, r in zip(post["cell"].values, tree.attrs["cell_recipe"], strict=True)
        if r == recipe
    ]
    half = math.sqrt(1 - 2 / math.pi)  # sd of a HalfNormal per unit scale
    spread_dominated = {
        name: dominated(float(post[name].std()), p[key] * half)
        for name, key in (("tau_cell", "cell_spread_sd"), ("tau_Ea_cell", "Ea_cell_spread_sd_eV"))
        if name in post
    }
    ea_r = post["Ea"].sel(recipe=recipe)
    ea_off = ea_r - post["Ea_cell"].sel(cell=cells).mean("cell") if "Ea_cell" in post else 0 * ea_r
    a_prior, ea_prior = _prior_recipe_draws(tree)
    if temperature_K is None:
        row = ea_r
        prior_sd = float(np.std(ea_prior))
        driven = float(ea_off.var()) * spread_dominated.get("tau_Ea_cell", False)
    else:
        x = 1.0 / temperature_K - 1.0 / t_ref
        row = log10_sigma_at(tree, temperature_K).sel(recipe=recipe)
        level_off = post["log10_sigma_ref"].sel(recipe=recipe) - post["log10_sigma_ref_cell"].sel(
            cell=cells
        ).mean("cell")
        slope_off = -slope_decades_per_inverse_K(ea_off) * x
        prior_sd = float(np.std(a_prior - slope_decades_per_inverse_K(ea_prior) * x))
        driven = float(level_off.var()) * spread_dominated.get("tau_cell", False) + float(
            np.var(slope_off)
        ) * spread_dominated.get("tau_Ea_cell", False)
    posterior_sd = float(row.std())
    share = driven / posterior_sd**2 if posterior_sd > 0 else 0.0
    return {
        "posterior_sd": posterior_sd,
        "prior_sd": prior_sd,
        "prior_share": float(min(share, 1.0)),
        "prior_dominated": bool(dominated(posterior_sd, prior_sd) or share > 0.5),
    }


def priors_from_attrs(attrs: dict) -> dict[str, float]:
    """The prior dict stored in a result's attrs by :func:`fit_arrhenius`."""
    return {k.removeprefix("prior_"): v for k, v in attrs.items() if k.startswith("prior_")}
