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
@pytest.mark.parametrize("cells", [1, 2])
def test_one_and_two_cell_recipes_sample_cleanly_and_say_the_interval_is_the_prior(cells):
    """A temperature series on one or two cells: no divergences, Ea recovered, and the
    recipe-level σ marked prior-dominated (the cell-spread prior sets its width)."""
    from inference.arrhenius import prior_check

    truth = {"pellet": (-4.5, 0.45)}
    data = simulate_two_stage(truth, cells=cells, cell_spread=0.1, seed=7 + cells)
    tree = fit_arrhenius(data, "ionic", study_kind="solid_electrolyte", seed=2, **DRAWS)
    assert tree.attrs["divergences"] == 0 and tree.attrs["max_rhat"] <= 1.01
    assert tree.attrs["min_ess_bulk"] >= 400 and tree.attrs["verdict"] == "ok"
    lo, hi = _interval(tree["posterior"]["Ea"].sel(recipe="pellet"))
    assert lo <= 0.45 <= hi
    check = prior_check(tree, "pellet", T_30C_K)
    assert check["prior_dominated"] and check["prior_share"] > 0.5
    # the cell level itself is known to the measurement's precision
    cell_sd = float(tree["posterior"]["log10_sigma_ref_cell"].std(("chain", "draw")).max())
    assert cell_sd < 0.3 * check["posterior_sd"]


@pytest.mark.slow
def test_sigma_T_form_fits_a_sigma_T_law_and_reports_sigma():
    """Data made by σ·T = A·exp(−Ea/kT): the σ·T form recovers its Ea; σ is reported."""
    rng = np.random.default_rng(4)
    t = np.array([413.15, 433.15, 453.15, 473.15])
    ea, log_a = 0.6, 2.0  # log10(σT) at 1000/T = 0, S·K/cm
    y = log_a - ea / (K_B_EV_PER_K * LN10) / t - np.log10(t) + rng.normal(0, 0.005, t.size)
    data = ArrheniusData(
        ["x"] * 8, ["x-1"] * 4 + ["x-2"] * 4, np.tile(t, 2), np.tile(y, 2), np.full(8, 0.01), 0.0
    )
    tree = fit_arrhenius(
        data, "ionic", form="sigmaT", study_kind="solid_electrolyte", seed=3, **DRAWS
    )
    assert tree.attrs["arrhenius_form"] == "sigmaT"
    lo, hi = _interval(tree["posterior"]["Ea"].sel(recipe="x"))
    assert lo <= ea <= hi
    at_440 = float(log10_sigma_at(tree, 440.0).sel(recipe="x").median())
    expected = log_a - ea / (K_B_EV_PER_K * LN10) / 440.0 - np.log10(440.0)
    assert at_440 == pytest.approx(expected, abs=0.05)


def test_priors_follow_the_study_kind():
    from inference.arrhenius import KIND_PRIORS

    se = merged_priors("ionic", study_kind="solid_electrolyte")
    cathode = merged_priors("ionic")
    assert se["Ea_sd_eV"] > 2 * cathode["Ea_sd_eV"] and se["Ea_upper_eV"] >= 1.0
    assert cathode == DEFAULT_PRIORS["ionic"] == KIND_PRIORS["composite_cathode"]["ionic"]
    with pytest.raises(InputError, match="study kind"):
        merged_priors("ionic", study_kind="battery")
