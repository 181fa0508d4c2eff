"""Hierarchical Arrhenius model: recovery of known σ_ref and Ea, priors moved by data, API."""

from __future__ import annotations

import numpy as np
import pytest

from inference.arrhenius import (
    DEFAULT_PRIORS,
    K_B_EV_PER_K,
    LN10,
    T_30C_K,
    ArrheniusData,
    fit_arrhenius,
    log10_sigma_at,
    merged_priors,
    priors_from_attrs,
)
from inference.errors import InputError

TEMPERATURES_K = np.array([30.0, 45.0, 60.0, 75.0]) + 273.15
DRAWS = dict(draws=500, tune=500, chains=4)


def simulate_two_stage(
    truth: dict, *, cells=3, cell_spread=0.1, fit_sd=0.01, geometry_sd=0.015, seed=0
) -> ArrheniusData:
    """Stage-1 summaries drawn from the model itself: per cell an offset (spread + geometry
    error), per measurement Gaussian noise of the stated sd around the Arrhenius line."""
    rng = np.random.default_rng(seed)
    rows = []
    for recipe, (log10_sigma_30C, ea_eV) in truth.items():
        for c in range(cells):
            offset = rng.normal(0, cell_spread) + rng.normal(0, geometry_sd)
            for t in TEMPERATURES_K:
                line = log10_sigma_30C - ea_eV / (K_B_EV_PER_K * LN10) * (1 / t - 1 / T_30C_K)
                rows.append(
                    (
                        recipe,
                        f"{recipe}-{c}",
                        t,
                        line + offset + rng.normal(0, fit_sd),
                        fit_sd,
                        geometry_sd,
                    )
                )
    recipe, cell, t, y, sd, g = map(np.array, zip(*rows, strict=True))
    return ArrheniusData(recipe, cell, t, y, sd, g)


IONIC_TRUTH = {"dry": (-4.16, 0.37), "solvent": (-4.89, 0.38), "wet": (-5.48, 0.42)}


@pytest.fixture(scope="session")
def ionic_fit():
    data = simulate_two_stage(IONIC_TRUTH, seed=3)
    return data, fit_arrhenius(data, "ionic", seed=1, **DRAWS)


def _interval(x):
    return np.quantile(np.asarray(x).ravel(), [0.05, 0.95])


@pytest.mark.slow
def test_recovers_sigma_30C_and_Ea_within_90_percent(ionic_fit):
    data, tree = ionic_fit
    log30 = log10_sigma_at(tree, T_30C_K)
    for recipe, (true_log_sigma, true_ea) in IONIC_TRUTH.items():
        lo, hi = _interval(log30.sel(recipe=recipe))
        assert lo <= true_log_sigma <= hi, (recipe, lo, hi, true_log_sigma)
        lo, hi = _interval(tree["posterior"]["Ea"].sel(recipe=recipe))
        assert lo <= true_ea <= hi, (recipe, lo, hi, true_ea)
    assert tree.attrs["max_rhat"] <= 1.01
    assert tree.attrs["min_ess_bulk"] >= 400


@pytest.mark.slow
def test_result_is_labelled_by_recipe_and_cell(ionic_fit):
    data, tree = ionic_fit
    post = tree["posterior"]
    assert list(post["recipe"].values) == list(IONIC_TRUTH)
    assert set(post["cell"].values) == set(data.cell)
    # σ_30C is σ at 303.15 K: the deterministic and the Arrhenius arithmetic agree.
    direct = np.log10(post["sigma_30C"].sel(recipe="wet").values)
    np.testing.assert_allclose(direct, log10_sigma_at(tree, T_30C_K).sel(recipe="wet").values)
    # At T_ref the centred line passes through σ_ref.
    t_ref = tree.attrs["reference_temperature_K"]
    np.testing.assert_allclose(log10_sigma_at(tree, t_ref).values, post["log10_sigma_ref"].values)
    assert priors_from_attrs(tree.attrs) == DEFAULT_PRIORS["ionic"]
    assert tree["constant_data"]["log10_sigma"].size == data.log10_sigma.size


@pytest.mark.slow
def test_data_move_the_electronic_Ea_away_from_its_prior():
    # Prior Ea_el ~ HalfNormal(0.05 eV): median 0.034 eV. Data made with 0.15 eV must win.
    truth = {"a": (-1.4, 0.15), "b": (-2.5, 0.15)}
    data = simulate_two_stage(truth, cells=2, fit_sd=0.005, seed=5)
    tree = fit_arrhenius(data, "electronic", seed=2, **DRAWS)
    ea = tree["posterior"]["Ea"]
    prior_median = DEFAULT_PRIORS["electronic"]["Ea_scale_eV"] * 0.6745
    for recipe in truth:
        lo, hi = _interval(ea.sel(recipe=recipe))
        assert lo <= 0.15 <= hi
        assert lo > 3 * prior_median


def test_priors_are_overridable_and_checked():
    p = merged_priors("ionic", {"Ea_mu_eV": 0.5})
    assert p["Ea_mu_eV"] == 0.5 and p["Ea_sd_eV"] == DEFAULT_PRIORS["ionic"]["Ea_sd_eV"]
    with pytest.raises(InputError, match="unknown ionic prior 'Ea_mean'"):
        merged_priors("ionic", {"Ea_mean": 0.5})
    with pytest.raises(InputError, match="kind must be one of"):
        merged_priors("protonic")


def test_a_cell_cannot_belong_to_two_recipes():
    with pytest.raises(InputError, match="cell 'c1' appears under several recipes"):
        ArrheniusData(["a", "b"], ["c1", "c1"], [303.15, 313.15], [-4.0, -3.9], [0.01, 0.01], 0.0)


@pytest.mark.slow
def test_a_two_cell_sigma_T_series_samples_cleanly_and_says_the_interval_is_the_prior():
    """One recipe, two cells, data made by σ·T = A·exp(−Ea/kT) with per-cell offsets: the σ·T
    form samples without divergences, recovers Ea and the cells' σ, reports σ (not σ·T), and
    marks the recipe-level σ prior-dominated (with two cells the cell-spread prior sets its
    width). A one-cell series is the real s04147 pellet of test_real_spectra."""
    from inference.arrhenius import prior_check

    rng = np.random.default_rng(4)
    t = np.array([413.15, 433.15, 453.15, 473.15, 493.15])
    ea, log_a = 0.6, 2.0  # log10(σT / (S·K/cm)) at 1000/T = 0
    offsets = [0.08, -0.05]
    recipe, cell, temp, y = [], [], [], []
    for k, off in enumerate(offsets):
        line = log_a + off - ea / (K_B_EV_PER_K * LN10) / t - np.log10(t)
        recipe += ["x"] * t.size
        cell += [f"x-{k}"] * t.size
        temp += list(t)
        y += list(line + rng.normal(0, 0.01, t.size))
    data = ArrheniusData(recipe, cell, temp, y, np.full(len(y), 0.01), 0.0)
    tree = fit_arrhenius(
        data, "ionic", form="sigmaT", study_kind="solid_electrolyte", seed=3, **DRAWS
    )
    a = tree.attrs
    assert a["arrhenius_form"] == "sigmaT" and a["verdict"] == "ok", a["reasons"]
    assert a["divergences"] == 0 and a["max_rhat"] <= 1.01 and a["min_ess_bulk"] >= 400
    lo, hi = _interval(tree["posterior"]["Ea"].sel(recipe="x"))
    assert lo <= ea <= hi
    # each cell's σ at 440 K is recovered to the data's precision
    from inference.arrhenius import log10_sigma_cells_at

    cells = log10_sigma_cells_at(tree, 440.0).median(("chain", "draw"))
    for k, off in enumerate(offsets):
        expected = log_a + off - ea / (K_B_EV_PER_K * LN10) / 440.0 - np.log10(440.0)
        assert float(cells.sel(cell=f"x-{k}")) == pytest.approx(expected, abs=0.03)
    check = prior_check(tree, "x", 440.0)
    assert check["prior_dominated"] and check["prior_share"] > 0.5


def test_priors_follow_the_study_kind():
    from inference.arrhenius import KIND_PRIORS

    se = merged_priors("ionic", study_kind="solid_electrolyte")
    cathode = merged_priors("ionic")
    assert se["Ea_sd_eV"] > 2 * cathode["Ea_sd_eV"] and se["Ea_upper_eV"] >= 1.0
    assert cathode == DEFAULT_PRIORS["ionic"] == KIND_PRIORS["composite_cathode"]["ionic"]
    with pytest.raises(InputError, match="study kind"):
        merged_priors("ionic", study_kind="battery")
