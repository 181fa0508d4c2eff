"""Whole-study analysis: truth recovery on a small simulated study, the summary.json contract,
failed records, outputs that open with xarray/ArviZ alone, the CLI, the bundled study."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import typer
import xarray as xr
from typer.testing import CliRunner

from inference.analysis import analyze_study
from inference.errors import InputError
from inference.study import load_study
from inference.summary import validate_summary
from optimizer.virtual_lab import LabSettings, simulate_study
from service.commands.analyze import analyze
from tests.conftest import REPO

SMALL_RECIPES = {
    "dry": {"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry"},
    "wet": {"binder": "NBR", "binder_wt_pct": 0.5, "process": "wet"},
}
# The realistic lab (transmission-line composites, artefacts, DC contact), but every cell with
# its recipe's Ea: an Arrhenius layer with one Ea per recipe has intervals too narrow for cells
# that differ in Ea (the calibration benchmark measures that case).
SMALL_SETTINGS = LabSettings(
    temperatures_C=(30.0, 50.0, 70.0),
    ion_cells_per_recipe=2,
    electron_cells_per_recipe=2,
    cell_spread_decades=0.05,
    cell_Ea_sd_eV=0.0,
)
FAST = dict(method="lsq", draws=1000, tune=1000, chains=4, fit_draws=200, fit_tune=200)


@pytest.fixture(scope="session")
def small_study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "small"
    simulate_study(SMALL_RECIPES, out, seed=11, settings=SMALL_SETTINGS, name="small")
    return out


@pytest.fixture(scope="session")
def small_result(small_study):
    return analyze_study(small_study, seed=0, temperatures_C=(30.0, 60.0), **FAST)


@pytest.fixture(scope="session")
def written(small_result, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    small_result.write(out)
    return out


def _truth(study_dir: Path) -> dict:
    return json.loads((study_dir / "truth.json").read_text())["recipes"]


@pytest.mark.slow
def test_small_study_recovers_truth_within_90_percent(small_study, small_result):
    truth = _truth(small_study)
    sigma = small_result.conductivity_table(30.0)
    ea = small_result.activation_energy_table()
    for recipe, t in truth.items():
        for kind, key, ea_key in (
            ("ionic", "sigma_ion_30C_S_per_cm", "Ea_ion_eV"),
            ("electronic", "sigma_el_30C_S_per_cm", "Ea_el_eV"),
        ):
            row = sigma[(sigma.recipe == recipe) & (sigma.kind == kind)].iloc[0]
            assert row.ci90_lo_S_per_cm <= t[key] <= row.ci90_hi_S_per_cm, (recipe, kind)
            e = ea[(ea.recipe == recipe) & (ea.kind == kind)].iloc[0]
            assert e.ci90_lo_eV <= t[ea_key] <= e.ci90_hi_eV, (recipe, kind, e, t[ea_key])
    # the dry/wet ratio: truth from the same file
    c = small_result.compare("dry", "wet", "ionic", 30.0)
    true_ratio = truth["dry"]["sigma_ion_30C_S_per_cm"] / truth["wet"]["sigma_ion_30C_S_per_cm"]
    assert c["ratio_ci90"][0] <= true_ratio <= c["ratio_ci90"][1]
    assert c["p_greater"] > 0.95
    for tree in small_result.arrhenius.values():
        assert tree.attrs["max_rhat"] <= 1.01, tree.attrs["worst_rhat_var"]
        assert tree.attrs["min_ess_bulk"] >= 400, tree.attrs["worst_ess_var"]


@pytest.mark.slow
def test_campaign_learns_from_a_real_study_result(small_result):
    from optimizer import Campaign

    space = {
        "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
        "process": {"type": "categorical", "choices": ["dry", "wet"]},
    }
    c = Campaign(space, {"sigma_ion": "maximize"}, seed=0)
    params = {name: {k: SMALL_RECIPES[name][k] for k in space} for name in SMALL_RECIPES}
    c.tell_study(small_result, params)
    draws = small_result.log10_sigma_draws("ionic", 30.0)
    told = c.to_dataframe().set_index("process")
    for name, recipe in SMALL_RECIPES.items():
        expected = draws.sel(recipe=name)
        row = told.loc[recipe["process"]]
        assert row["sigma_ion"] == pytest.approx(float(expected.mean()))
        assert row["sd_sigma_ion"] == pytest.approx(float(expected.std()))
    assert c.best()["params"]["process"] == "dry"


def test_compare_is_antisymmetric_and_checks_names(small_result):
    ab = small_result.compare("dry", "wet", "electronic", 30.0)
    ba = small_result.compare("wet", "dry", "electronic", 30.0)
    assert math.isclose(ab["ratio_median"] * ba["ratio_median"], 1.0, rel_tol=1e-2)
    assert math.isclose(ab["p_greater"] + ba["p_greater"], 1.0, abs_tol=1e-9)
    with pytest.raises(InputError, match="unknown recipe 'moist'"):
        small_result.compare("dry", "moist", "ionic")


@pytest.mark.slow
def test_summary_json_follows_the_contract(small_result, written):
    summary = json.loads((written / "summary.json").read_text())
    validate_summary(summary)  # raises on a missing key or wrong type
    n_rows = 2 * 2 * 2  # recipes × kinds × requested temperatures
    assert len(summary["conductivity"]) == n_rows
    assert {r["temperature_C"] for r in summary["conductivity"]} == {30.0, 60.0}
    assert len(summary["activation_energy"]) == 4
    for row in summary["conductivity"]:
        lo, hi = row["ci90_S_per_cm"]
        assert lo <= row["median_S_per_cm"] <= hi
    for comp in summary["comparisons"]:
        assert comp["ratio_median"] >= 1.0 and 0.0 <= comp["p_greater"] <= 1.0
    assert isinstance(summary["diagnostics"]["divergences"], int)
    assert summary["timing_s"]["total"] > 0
    assert all(r["c_rate_per_h"] in (1 / 3, 1 / 2) for r in summary["rate_capability"])
    with pytest.raises(InputError, match="diagnostics.max_rhat"):
        validate_summary({**summary, "diagnostics": {"kk_failed": []}})


@pytest.mark.slow
def test_result_nc_opens_with_xarray_and_arviz(written):
    import arviz as az

    tree = xr.open_datatree(written / "result.nc")
    ionic = tree["arrhenius/ionic"]
    assert set(ionic["posterior"]["recipe"].values) == set(SMALL_RECIPES)
    table = az.summary(ionic, var_names=["Ea"])
    assert len(table) == len(SMALL_RECIPES)
    fits = [name for name in tree["fits"].children]
    assert len(fits) == 2 * 2 * 3 * 2  # recipes × cells × temperatures × cell types
    assert "posterior" in tree[f"fits/{fits[0]}"].children


@pytest.mark.slow
def test_report_is_self_contained(written):
    text = (written / "report.html").read_text()
    assert '<img src="data:image/png;base64,' in text
    assert not re.search(r"""(src|href)=["']https?://""", text)
    assert "model prediction" in text.lower()
    assert "sigmalab analyze" in text or "Python API" in text


@pytest.mark.slow
def test_a_failed_record_is_reported_and_the_rest_analysed(small_study, tmp_path):
    study = load_study(small_study)
    broken = study.dc_records()[0]
    broken["current_A"][:] = 1e-6  # no current change with voltage: no resistance to infer
    result = analyze_study(study, seed=1, **FAST)
    bad = broken.attrs["manifest_path"]
    failures = result.failures
    assert list(failures["file"]) == [bad]
    assert "current" in failures["reason"].iloc[0]
    paths = result.write(tmp_path)
    summary = json.loads(paths["summary"].read_text())
    assert [f["file"] for f in summary["diagnostics"]["failed"]] == [bad]
    assert bad in paths["report"].read_text()
    # the other records still give every recipe both conductivities
    assert len(result.conductivity_table()) == 4


@pytest.mark.slow
def test_an_unreadable_file_is_reported_and_the_rest_analysed(small_study, tmp_path):
    import shutil

    study_dir = tmp_path / "study"
    shutil.copytree(small_study, study_dir)
    victim = load_study(small_study).spectra()[0].attrs["manifest_path"]
    (study_dir / victim).write_text("this is not an instrument export\n")
    with pytest.raises(InputError, match=re.escape(Path(victim).name)):
        load_study(study_dir)
    assert [u["file"] for u in load_study(study_dir, unreadable="record").unreadable] == [victim]
    result = analyze_study(study_dir, seed=1, **FAST)
    assert list(result.failures["file"]) == [victim]
    paths = result.write(tmp_path / "out")
    assert victim in paths["report"].read_text()
    assert len(result.conductivity_table()) == 4


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(analyze)
    return app


def test_cli_rejects_missing_folder_and_bad_manifest(tmp_path):
    runner = CliRunner()
    result = runner.invoke(_cli(), [str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "no such study folder" in result.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.toml").write_text("[study\nname = 1\n")
    result = runner.invoke(_cli(), [str(tmp_path / "bad"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "manifest.toml" in result.output and "TOML" in result.output
    assert "Traceback" not in result.output


BUNDLED = REPO / "datasets" / "emley2023"


@pytest.mark.slow
@pytest.mark.skipif(not (BUNDLED / "manifest.toml").is_file(), reason="bundled study missing")
def test_bundled_study_recovers_its_truth(tmp_path):
    """The simulated cells scatter around the recipes' truth (the paper's 30 °C values): the
    recipe-level 90 % intervals bracket that truth, and the report says the data are simulated
    and compares them with the simulation's truth."""
    truth = _truth(BUNDLED)
    result = analyze_study(BUNDLED, method="lsq", seed=0, fit_draws=200)
    table = result.conductivity_table(30.0)
    ea = result.activation_energy_table()
    for recipe, values in truth.items():
        for kind, key, ea_key in (
            ("ionic", "sigma_ion_30C_S_per_cm", "Ea_ion_eV"),
            ("electronic", "sigma_el_30C_S_per_cm", "Ea_el_eV"),
        ):
            row = table[(table.recipe == recipe) & (table.kind == kind)].iloc[0]
            assert row.ci90_lo_S_per_cm <= values[key] <= row.ci90_hi_S_per_cm, (recipe, kind)
            row = ea[(ea.recipe == recipe) & (ea.kind == kind)].iloc[0]
            assert row.ci90_lo_eV <= values[ea_key] <= row.ci90_hi_eV, (recipe, kind)
    dry, wet = truth["dry_PTFE"], truth["wet_NBR"]
    for kind, key in (("ionic", "sigma_ion_30C_S_per_cm"), ("electronic", "sigma_el_30C_S_per_cm")):
        lo, hi = result.compare("dry_PTFE", "wet_NBR", kind, 30.0)["ratio_ci90"]
        assert lo <= dry[key] / wet[key] <= hi, kind
    d = result.diagnostics()
    assert d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400
    assert result.settings["simulated"] and result.settings["dc_contact"]["contact_ohm"] == 0.02
    assert np.isfinite(result.rate_capability_table()["median"]).all()
    html = result.report(tmp_path / "report.html").read_text()
    head = html[: html.index("<h2>")]
    assert "simulated by sigmalab" in head
    assert "truth (simulation)" in html
