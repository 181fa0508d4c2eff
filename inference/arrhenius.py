"""Hierarchical Arrhenius model of conductivities measured on recipes × cells × temperatures.

The model, for one kind of conductivity (ionic or electronic), reads like ``physics.md`` §2.1::

    log10 σ[i] = c[cell] − Ea_cell[cell] / (k_B ln10) · (1/T[i] − 1/T_ref)

    a[recipe]     ~ Normal(a_pop, τ_a)                         recipes partially pooled
    Ea[recipe]    ~ Normal(Ea_pop, τ_Ea)                       Ea_pop prior from physics.md §3
    c[cell]       ~ Normal(a[recipe], sqrt(τ_cell² + g[cell]²)) cell level around its recipe
    Ea_cell[cell] ~ Normal(Ea[recipe], τ_Ea,cell)                each cell's own slope
    y[i]       ~ (1 − π)·Normal(log10 σ[i], sqrt(s[i]² + σ_extra²)) + π·Normal(…, 1 decade)

``y[i]`` and ``s[i]`` are the posterior mean and sd of log10 σ of one spectrum or DC record
(stage 1, the fit's own uncertainty). ``g[cell]`` is the sd of log10(thickness/area) of the
cell: an error in one cell's geometry shifts all its temperatures together, so it belongs to
that cell's level, not to each measurement (as independent noise per temperature it widened
the Ea intervals several-fold and narrowed the σ intervals wrongly). ``τ_cell`` is the true
cell-to-cell spread, ``σ_extra`` scatter the stage-1 uncertainties do not explain and ``π`` the
fraction of outlying records (a fit that latched onto the wrong arc). ``τ_Ea,cell`` is the
cell-to-cell spread of the activation energy: real cells of one recipe differ in Ea by
0.01–0.03 eV (grain boundaries, porosity), and with one slope per recipe the recipe's Ea interval
came out as narrow as one cell's slope allows (±0.007 eV on the bundled study) and missed the
recipe's truth in 3 of 6 cases; with the cell level it reflects how few cells there are.

Levels are *centred*, not non-centred as first designed: each recipe and cell is measured at
several temperatures, so the data pin its level down, and there the centred form samples much
better (measured on 3 recipes × 3 cells × 6 temperatures, 4 × 1000 draws: ESS ≈ 4000 and step
size 0.4 centred vs ESS ≈ 200, step size 0.03 and divergences non-centred).

``T_ref`` defaults to the middle of the measured range (in 1/T), which decorrelates ``a`` and
``Ea``; priors are stated at 30 °C (as in physics.md §3) and moved to ``T_ref``. σ at any
temperature follows from the draws (:func:`log10_sigma_at`). :func:`fit_joint_arrhenius` puts
the same layer on the composite resistance of every ion spectrum in one model (``--joint``).
"""

from __future__ import annotations

import copy
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

#: Default priors per kind (physics.md §3). log10 σ in log10(S/cm), stated at 30 °C; spreads in
#: decades; Ea in eV. Override any key through ``priors=`` of :func:`arrhenius_model`.
DEFAULT_PRIORS: dict[str, dict[str, float]] = {
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
        "cell_spread_sd": 0.2,
        "extra_scatter_sd": 0.05,
        "outlier_fraction_a": 1.0,
        "outlier_fraction_b": 19.0,
        "outlier_sd": 1.0,
    },
    "electronic": {
        "log10_sigma_30C_mu": -2.0,
        "log10_sigma_30C_sd": 1.0,
        "recipe_spread_sd": 1.0,
        "Ea_scale_eV": 0.05,
        "Ea_recipe_spread_sd_eV": 0.02,
        "Ea_cell_spread_sd_eV": 0.01,
        "cell_spread_sd": 0.2,
        "extra_scatter_sd": 0.05,
        "outlier_fraction_a": 1.0,
        "outlier_fraction_b": 19.0,
        "outlier_sd": 1.0,
    },
}


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


def merged_priors(kind: str, priors: dict | None = None) -> dict[str, float]:
    """Defaults for ``kind`` updated with the user's ``priors`` (unknown keys rejected)."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    out = copy.deepcopy(DEFAULT_PRIORS[kind])
    for key, value in (priors or {}).items():
        if key not in out:
            raise InputError(f"unknown {kind} prior {key!r}; expected one of {sorted(out)}")
        out[key] = float(value)
    return out


def slope_decades_per_inverse_K(Ea_eV):
    """log10 σ change per unit of 1/T for activation energy ``Ea_eV``, decades·K."""
    return Ea_eV / (K_B_EV_PER_K * LN10)


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

    def cell_geometry_sd(self, geometry_sd) -> np.ndarray:
        g = np.asarray(geometry_sd, dtype=float)
        idx = np.asarray(self.obs_cell_idx)
        return np.array([g[idx == i].max() for i in range(len(self.cells))])


def _a_prior_centre(p: dict, kind: str, t_ref: float) -> float:
    """Prior centre of log10 σ at T_ref from the 30 °C prior, moved with the prior-mean Ea."""
    ea_centre = p["Ea_mu_eV"] if kind == "ionic" else p["Ea_scale_eV"] * np.sqrt(2 / np.pi)
    return p["log10_sigma_30C_mu"] - slope_decades_per_inverse_K(ea_centre) * (
        1.0 / t_ref - 1.0 / T_30C_K
    )


def _arrhenius_layer(layout: _Layout, kind: str, p: dict, t_ref: float, inv_t, cell_geometry_sd):
    """Recipe, Ea and cell levels; returns log10 σ per observation before extra scatter.

    Must be called inside a ``pm.Model`` with coords ``recipe`` and ``cell``. Centred
    parameterisation: every recipe and cell is measured several times, so the data pin down
    each level and the centred form samples far better than the non-centred one (measured:
    ESS ≈ 4000 vs ≈ 200 for 4 × 1000 draws, step size 0.4 vs 0.03).
    """
    a_pop = pm.Normal(
        "log10_sigma_ref_pop", _a_prior_centre(p, kind, t_ref), p["log10_sigma_30C_sd"]
    )
    tau_a = pm.HalfNormal("tau_recipe", p["recipe_spread_sd"])
    a = pm.Normal("log10_sigma_ref", a_pop, tau_a, dims="recipe")
    if kind == "ionic":
        ea_pop = pm.TruncatedNormal(
            "Ea_pop", p["Ea_mu_eV"], p["Ea_sd_eV"], lower=p["Ea_lower_eV"], upper=p["Ea_upper_eV"]
        )
    else:
        ea_pop = pm.HalfNormal("Ea_pop", p["Ea_scale_eV"])
    tau_ea = pm.HalfNormal("tau_Ea", p["Ea_recipe_spread_sd_eV"])
    ea = pm.Normal("Ea", ea_pop, tau_ea, dims="recipe")
    tau_cell = pm.HalfNormal("tau_cell", p["cell_spread_sd"])
    cell_recipe = np.asarray(layout.cell_recipe_idx)
    cell_sd = pm.math.sqrt(tau_cell**2 + cell_geometry_sd**2)
    cell_level = pm.Normal("log10_sigma_ref_cell", a[cell_recipe], cell_sd, dims="cell")
    pm.Deterministic("cell_effect", cell_level - a[cell_recipe], dims="cell")
    # Non-centred, unlike the levels above: a cell's slope is known far less well than its
    # level, and with cells of equal Ea the centred form is a funnel (r̂ 1.17 measured).
    tau_ea_cell = pm.HalfNormal("tau_Ea_cell", p["Ea_cell_spread_sd_eV"])
    z_ea_cell = pm.Normal("z_Ea_cell", 0.0, 1.0, dims="cell")
    ea_cell = pm.Deterministic("Ea_cell", ea[cell_recipe] + tau_ea_cell * z_ea_cell, dims="cell")
    pm.Deterministic("sigma_ref", 10.0**a, dims="recipe")
    a30 = a - slope_decades_per_inverse_K(ea) * (1.0 / T_30C_K - 1.0 / t_ref)
    pm.Deterministic("sigma_30C", 10.0**a30, dims="recipe")
    obs_cell = np.asarray(layout.obs_cell_idx)
    return cell_level[obs_cell] - slope_decades_per_inverse_K(ea_cell[obs_cell]) * inv_t


def _robust_likelihood(y, mu, sd, p: dict) -> None:
    """Normal likelihood mixed with a broad outlier component, as a ``pm.Potential``.

    ``y[i] ~ (1 − π)·Normal(μ[i], sd[i]) + π·Normal(μ[i], outlier_sd)``, π ~ Beta(a, b) (prior
    mean 5 %). A stage-1 fit that latched onto the wrong arc can report a confident but wrong
    σ (seen on overlapping arcs); under a pure Normal one such point drags the recipe's line,
    under the mixture it is recognised and set aside, while clean data keep the efficiency of
    the Normal. ``outlier_prob`` (dims obs) is each point's posterior outlier probability.
    """
    import pytensor.tensor as pt

    frac = pm.Beta("outlier_fraction", p["outlier_fraction_a"], p["outlier_fraction_b"])
    good = pt.log1p(-frac) + pm.logp(pm.Normal.dist(mu, sd), y)
    bad = pt.log(frac) + pm.logp(pm.Normal.dist(mu, p["outlier_sd"]), y)
    total = pt.logaddexp(good, bad)
    pm.Potential("log10_sigma_obs_logp", total.sum())
    pm.Deterministic("outlier_prob", pt.exp(bad - total), dims="obs")


def arrhenius_model(
    data: ArrheniusData,
    kind: str,
    priors: dict | None = None,
    reference_temperature_K: float | None = None,
) -> pm.Model:
    """Build the hierarchical Arrhenius model of the module docstring.

    Parameters
    ----------
    data : stage-1 conductivities of one kind.
    kind : ``"ionic"`` (Ea ~ truncated Normal population) or ``"electronic"`` (Ea ~ HalfNormal).
    priors : overrides of :data:`DEFAULT_PRIORS` ``[kind]``.
    reference_temperature_K : T_ref, K; default mid-range of ``data.temperature_K``.

    Returns
    -------
    pm.Model with coords ``recipe``, ``cell``, ``obs`` and posterior variables ``log10_sigma_ref``,
    ``sigma_ref`` (S/cm at T_ref), ``sigma_30C`` (S/cm), ``Ea`` (eV) over ``recipe``,
    ``log10_sigma_ref_cell``, ``cell_effect`` and ``Ea_cell`` (eV) over ``cell``, ``tau_cell``
    and ``extra_scatter`` (decades), ``tau_Ea_cell`` (eV). The numbers are ``pm.Data``
    (``log10_sigma``, ``log10_sigma_sd``, ``inv_t``, ``cell_geometry_sd``) so one compiled
    sampler serves every data set of the same layout.
    """
    p = merged_priors(kind, priors)
    t_ref = reference_temperature_K or default_reference_temperature_K(data.temperature_K)
    layout = _Layout.of(data.recipe, data.cell)
    values = _model_data(data, layout, t_ref)
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
        mu = _arrhenius_layer(layout, kind, p, t_ref, inv_t, geometry)
        extra = pm.HalfNormal("extra_scatter", p["extra_scatter_sd"])
        _robust_likelihood(y, mu, pm.math.sqrt(sd**2 + extra**2), p)
    model.sigmalab_attrs = {
        "kind": kind,
        "reference_temperature_K": t_ref,
        "priors": p,
        "layout": layout,
    }
    return model


def _model_data(data: ArrheniusData, layout: _Layout, t_ref: float) -> dict[str, np.ndarray]:
    return {
        "log10_sigma": data.log10_sigma,
        "log10_sigma_sd": data.log10_sigma_sd,
        "inv_t": 1.0 / data.temperature_K - 1.0 / t_ref,
        "cell_geometry_sd": layout.cell_geometry_sd(data.geometry_sd),
    }


def _initial_layer(layout: _Layout, kind: str, p: dict, y, inv_t) -> dict[str, np.ndarray]:
    """A start for every chain: least squares of y on cell intercepts and cell slopes (recipe
    slopes where a cell has a single temperature)."""
    n_cells, n_recipes = len(layout.cells), len(layout.recipes)
    obs_cell = np.asarray(layout.obs_cell_idx)
    cell_recipe = np.asarray(layout.cell_recipe_idx)
    lo, hi = (p["Ea_lower_eV"], p["Ea_upper_eV"]) if kind == "ionic" else (-0.2, 0.5)

    def slopes(columns):
        x = np.zeros((len(y), n_cells + columns.max() + 1))
        x[np.arange(len(y)), obs_cell] = 1.0
        x[np.arange(len(y)), n_cells + columns] = -np.asarray(inv_t)
        coef = np.linalg.lstsq(x, np.asarray(y, float), rcond=None)[0]
        return coef[:n_cells], np.clip(coef[n_cells:] * K_B_EV_PER_K * LN10, lo + 1e-3, hi - 1e-3)

    cell_level, ea = slopes(np.asarray(layout.obs_recipe_idx))
    ea_cell = ea[cell_recipe]
    n_temps = np.array([np.unique(np.asarray(inv_t)[obs_cell == c]).size for c in range(n_cells)])
    if (n_temps >= 2).all():
        cell_level, ea_cell = slopes(obs_cell)
        ea = np.array([ea_cell[cell_recipe == r].mean() for r in range(n_recipes)])
    a = np.array([cell_level[cell_recipe == r].mean() for r in range(n_recipes)])
    tau_ea_cell = float(max(np.std(ea_cell - ea[cell_recipe]), 0.005))
    ea_pop = float(np.clip(ea.mean(), lo + 1e-3, hi - 1e-3))
    if kind == "electronic":
        ea_pop = max(ea_pop, 1e-3)
    return {
        "log10_sigma_ref_pop": float(a.mean()),
        "tau_recipe": float(max(a.std(), 0.1)),
        "log10_sigma_ref": a,
        "Ea_pop": ea_pop,
        "tau_Ea": float(max(ea.std(), 0.01)),
        "Ea": ea,
        "tau_cell": 0.1,
        "log10_sigma_ref_cell": cell_level,
        "tau_Ea_cell": tau_ea_cell,
        "z_Ea_cell": (ea_cell - ea[cell_recipe]) / tau_ea_cell,
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
    """Sample through :mod:`inference.samplers` (compiled once per key); returns (model, Draws)."""
    from inference.samplers import get_sampler

    built = {}

    def make():
        built["model"] = build()
        return built["model"]

    smp = get_sampler(model_key, make, sampler=sampler, chains=chains, tune=tune, draws=draws)
    model = built.get("model") or getattr(smp, "model", None) or smp.jmodel.model
    return model, smp.run(data, init, draws=draws, seed=seed)


def fit_arrhenius(
    data: ArrheniusData,
    kind: str,
    *,
    priors: dict | None = None,
    reference_temperature_K: float | None = None,
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

    The tree has groups ``posterior``, ``sample_stats``, ``observed_data`` and ``constant_data``
    (the stage-1 table, :meth:`ArrheniusData.to_dataset`); its attrs hold ``kind``,
    ``reference_temperature_K``, the priors (``prior_<key>``), the sampler settings and
    ``max_rhat``, ``min_ess_bulk``, ``divergences``.

    Raises
    ------
    ModelError
        Sampling produced non-finite draws.
    """
    p = merged_priors(kind, priors)
    t_ref = reference_temperature_K or default_reference_temperature_K(data.temperature_K)
    layout = _Layout.of(data.recipe, data.cell)
    values = _model_data(data, layout, t_ref)
    init = _initial_layer(layout, kind, p, values["log10_sigma"], values["inv_t"])
    init["extra_scatter"] = 0.01
    init["outlier_fraction"] = 0.05
    key = ("arrhenius", kind, layout, round(t_ref, 9), tuple(sorted(p.items())))
    model, out = _sample(
        key,
        lambda: arrhenius_model(data, kind, p, t_ref),
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
            **convergence(tree),
            "kind": kind,
            "reference_temperature_K": t_ref,
            "cell_recipe": [layout.recipes[i] for i in layout.cell_recipe_idx],
            **{f"prior_{k}": v for k, v in p.items()},
        }
    )
    return tree


def joint_arrhenius_model(
    spectra,
    circuit,
    resistance: str,
    priors: dict | None = None,
    reference_temperature_K: float | None = None,
) -> pm.Model:
    """Ion spectra and the ionic Arrhenius layer in one model (``--joint``).

    Each spectrum keeps its own circuit parameters (priors of :mod:`inference.priors`), except
    the composite resistance, which the Arrhenius layer supplies::

        log10 σ[i] = level[cell] − Ea[recipe]/(k_B ln10)·(1/T[i] − 1/T_ref) + e[i],
        e[i] = σ_extra · z[i]                                  (non-centred)
        R_composite[i] = (L/A)[cell] / σ[i]                    reported geometry

    Spectra are stacked into (spectrum, point) arrays; shorter spectra are padded and masked.
    The relative-noise likelihood is that of :mod:`inference.eis_model`.
    """
    import pytensor.tensor as pt

    from inference import eis_model
    from inference.priors import default_priors

    p = merged_priors("ionic", priors)
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
    modulus = np.where(mask, np.hypot(zr, zi), 1.0)
    flat = np.flatnonzero(mask.ravel())
    with pm.Model(coords=coords) as model:
        inv_t = pm.Data("inv_t", 1.0 / temperature - 1.0 / t_ref, dims="spectrum")
        geo = pm.Data("cell_geometry_sd", layout.cell_geometry_sd(geometry), dims="cell")
        mu = _arrhenius_layer(layout, "ionic", p, t_ref, inv_t, geo)
        extra = pm.HalfNormal("extra_scatter", p["extra_scatter_sd"])
        z_extra = pm.Normal("z_extra", 0.0, 1.0, dims="spectrum")
        log10_sigma = pm.Deterministic("log10_sigma", mu + extra * z_extra, dims="spectrum")
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
        sd = internal["sigma_rel"] * modulus
        pm.Normal("obs_real", re.ravel()[flat], sd.ravel()[flat], observed=zr.ravel()[flat])
        pm.Normal("obs_imag", im.ravel()[flat], sd.ravel()[flat], observed=zi.ravel()[flat])
    model.sigmalab_attrs = {
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
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 0,
    sampler: str = "blackjax",
) -> xr.DataTree:
    """Fit :func:`joint_arrhenius_model`; same result layout as :func:`fit_arrhenius`.

    Starts every chain from the stage-1 fits (``fits``: spectrum id → posterior with the
    circuit's natural parameters, as :class:`inference.analysis.StudyResult` keeps them;
    least-squares fits when absent). Cost: about ten free parameters per spectrum, so the
    54-spectrum bundled study has ~560 and one gradient evaluates all spectra; expect
    minutes to tens of minutes on a laptop CPU, against seconds for the two-stage route.
    Use it on a subset or to check the two-stage result.
    """
    from inference import eis_model
    from inference.lsq import fit_lsq
    from inference.priors import default_priors

    c = circuit
    model = joint_arrhenius_model(spectra, c, resistance, priors, reference_temperature_K)
    meta = model.sigmalab_attrs
    layout, names, ids = meta["layout"], meta["names"], meta["ids"]
    t_ref = meta["reference_temperature_K"]
    starts = []
    for rid, ds in zip(ids, spectra, strict=True):
        post = (fits or {}).get(rid)
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
    y = (y - log_r) / LN10
    inv_t = np.array([1.0 / float(ds.attrs["temperature_K"]) - 1.0 / t_ref for ds in spectra])
    init |= _initial_layer(layout, "ionic", meta["priors"], y, inv_t)
    init |= {"extra_scatter": 0.01, "z_extra": np.zeros(len(spectra))}
    values = {"inv_t": inv_t, "cell_geometry_sd": model["cell_geometry_sd"].get_value()}
    key = ("arrhenius-joint", id(model))
    _, out = _sample(
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
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=out.sampler,
        n_spectra=len(spectra),
    )


def convergence(tree: xr.DataTree) -> dict:
    """``max_rhat`` and ``min_ess_bulk`` over every posterior variable (with the variables that
    reach them, ``worst_rhat_var`` / ``worst_ess_var``) and ``divergences``."""
    import arviz as az

    post = tree["posterior"].to_dataset()
    rhat = az.rhat(post)
    ess = az.ess(post, method="bulk")
    rhats = {v: float(rhat[v].max()) for v in rhat.data_vars}
    esses = {v: float(ess[v].min()) for v in ess.data_vars}
    worst_rhat = max(rhats, key=lambda v: rhats[v] if np.isfinite(rhats[v]) else -1)
    worst_ess = min(esses, key=lambda v: esses[v] if np.isfinite(esses[v]) else np.inf)
    return {
        "max_rhat": rhats[worst_rhat],
        "worst_rhat_var": worst_rhat,
        "min_ess_bulk": esses[worst_ess],
        "worst_ess_var": worst_ess,
        "divergences": int(tree["sample_stats"]["diverging"].sum()),
    }


def log10_sigma_at(tree: xr.DataTree, temperature_K: float) -> xr.DataArray:
    """Posterior draws of the recipe-level log10 σ at ``temperature_K`` (dims chain, draw, recipe).

    Works on a result of :func:`fit_arrhenius` and on the joint model's result alike.
    """
    post = tree["posterior"]
    t_ref = float(tree.attrs["reference_temperature_K"])
    a = post["log10_sigma_ref"]
    return a - slope_decades_per_inverse_K(post["Ea"]) * (1.0 / temperature_K - 1.0 / t_ref)


def priors_from_attrs(attrs: dict) -> dict[str, float]:
    """The prior dict stored in a result's attrs by :func:`fit_arrhenius`."""
    return {k.removeprefix("prior_"): v for k, v in attrs.items() if k.startswith("prior_")}
