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
from inference.fit import fit_spectra
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
    return analyze_study(small_study, seed=0, temperatures_C=(30.0, 60.0), workers=2, **FAST)


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


def test_the_result_does_not_depend_on_the_number_of_workers(small_study, small_result):
    import pandas as pd

    alone = analyze_study(small_study, seed=0, temperatures_C=(30.0, 60.0), workers=1, **FAST)
    assert small_result.settings["workers"] == 2 and alone.settings["workers"] == 1
    pd.testing.assert_frame_equal(alone.records, small_result.records)
    assert alone.summary_dict()["conductivity"] == small_result.summary_dict()["conductivity"]


@pytest.mark.slow
def test_one_study_gives_the_same_observations_on_every_path(small_study, small_result, written):
    """tell_study, the closed loop and the scheduled campaign turn one result into identical
    observations: mean and sd of the recipe-level log10 σ draws (optimizer.observations)."""
    from optimizer import Campaign
    from optimizer.closed_loop import round_observations
    from service.scheduler import observations_from

    space = {
        "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
        "process": {"type": "categorical", "choices": ["dry", "wet"]},
    }
    metrics = {"sigma_ion": "maximize", "sigma_el": "maximize"}
    params = {name: {k: SMALL_RECIPES[name][k] for k in space} for name in SMALL_RECIPES}

    def proposed() -> Campaign:
        # The study's recipes as the campaign's pending proposals (the closed loop names a
        # round's recipes by their proposal ids), after one failed experiment.
        c = Campaign(space, metrics, seed=0)
        c.tell([{"params": {"binder_wt_pct": 2.0, "process": "dry"}, "failed": True}])
        for name, p in params.items():
            c.pending[name] = {"params": c.space.validate(p), "round": 1, "asked_at": None}
        return c

    told = {}
    c = proposed()
    c.tell_study(small_result, params)
    told["tell_study"] = c.history[1:]
    c = proposed()
    c.tell(round_observations(c, small_result, list(params), 30.0, {}))
    told["closed loop"] = c.history[1:]
    c = proposed()
    batches = [{"batch": small_study.name, "recipes": {name: name for name in params}}]
    obs, status, notes = observations_from(
        written / "result.nc", batches, small_study.parent, list(metrics), "job-1"
    )
    assert not notes and set(status.values()) == {"told"}
    c.tell(obs)
    told["scheduler"] = c.history[1:]

    expected = {}
    for name in params:
        for m, kind in (("sigma_ion", "ionic"), ("sigma_el", "electronic")):
            draws = small_result.log10_sigma_draws(kind, 30.0).sel(recipe=name)
            expected[(name, m, "mean")] = float(draws.mean())
            expected[(name, m, "sd")] = float(draws.std())
    for path, history in told.items():
        assert not any(h["failed"] for h in history), path
        got = {(h["id"], m, "mean"): h["values"][m] for h in history for m in metrics}
        got |= {(h["id"], m, "sd"): h["sd"][m] for h in history for m in metrics}
        assert got == pytest.approx(expected, rel=1e-9), path


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
    records = summary["diagnostics"]["records"]
    assert len(records) == len(small_result.records)
    assert {r["verdict"] for r in records} <= {"ok", "warning", "excluded"}
    assert summary["diagnostics"]["verdict"] in ("ok", "warning")
    assert all(isinstance(r["prior_dominated"], bool) for r in summary["conductivity"])
    assert summary["settings"]["kind"] == "composite_cathode"
    assert summary["settings"]["arrhenius_form"] == "sigma"
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
    assert {"posterior", "sample_stats", "log_likelihood"} <= set(tree[f"fits/{fits[0]}"].children)
    assert tree[f"fits/{fits[0]}/posterior"].sizes["draw"] == FAST["fit_draws"]  # all draws
    assert "log_likelihood" in ionic.children


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
CIRCUIT_3 = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"


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
    # the rate-capability prediction holds the proxy's own error: the paper's four retentions
    rate = result.rate_capability_table()
    assert np.isfinite(rate["median"]).all()
    for (recipe, c_rate), value in result.paper["retention"].items():
        row = rate[(rate.recipe == recipe) & np.isclose(rate.c_rate_per_h, c_rate)].iloc[0]
        assert row.ci90_lo <= value <= row.ci90_hi, (recipe, c_rate, row.ci90_lo, row.ci90_hi)


@pytest.mark.slow
@pytest.mark.skipif(not (BUNDLED / "manifest.toml").is_file(), reason="bundled study missing")
def test_bundled_study_records_are_ok_only_when_they_meet_every_threshold():
    """Stage-1 NUTS on the hottest spectra of the bundled study (an arc near the top of the
    window, overlapping arcs): a record is labelled ok only when it meets the thresholds."""
    from inference import diagnostics as dg
    from inference.study import load_study

    study = load_study(BUNDLED)
    hot = [ds for ds in study.spectra() if ds.attrs["temperature_K"] > 273.15 + 70][:2]
    records = []
    for i, ds in enumerate(hot):
        (fit,) = fit_spectra([ds], study.info.get("circuit", CIRCUIT_3), seed=i)
        records.append((fit.verdict, fit.diagnostics))
    for verdict, d in records:
        meets = (
            d["max_rhat"] <= dg.RHAT_MAX
            and min(d["min_ess_bulk"], d["min_ess_tail"]) >= dg.ESS_MIN
            and d["divergences"] == 0
            and not d["bfmi"] < dg.BFMI_MIN
            and not d["at_bound"]
        )
        assert verdict != "ok" or meets, d
    assert any(v == "ok" for v, _ in records)


def _ohm(text: str) -> float:
    """``863 mΩ`` → 0.863 (the report's SI-prefixed cells)."""
    number, unit = text.split()
    scale = {"p": 1e-12, "n": 1e-9, "µ": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
    return float(number) * (scale[unit[0]] if len(unit) > 1 else 1.0)


@pytest.mark.slow
def test_report_shows_every_spectrum_fit(small_result, written):
    text = (written / "report.html").read_text()
    for anchor in ('id="impedance-fits"', 'id="per-spectrum"', 'id="dc-fits"', "<h3>Per cell</h3>"):
        assert anchor in text
    for recipe in SMALL_RECIPES:  # Nyquist, Bode/residuals and I–V figures per recipe
        for caption in ("Nyquist plots of one cell", "Bode plots and residuals",
                        "steady-state current per bias"):  # fmt: skip
            assert f"{recipe}: {caption}" in text, (recipe, caption)
    table = text[text.index('id="per-spectrum"') :]
    table = table[: table.index("</table>")]
    # the virtual lab's manifest circuit L0-R0-p(R1,CPE1)-TLMs2, its resistances named
    assert "composite (TLMs2_0) → σ" in table and "interfaces (R1)" in table
    rows = re.findall(r'<tr[^>]*><td class="l">([^<]+)</td>(.*?)</tr>', table)
    ionic = small_result.records[small_result.records["kind"] == "ionic"]
    assert [rid for rid, _ in rows] == list(ionic["id"])
    for rid, cells in rows:
        medians = [_ohm(m) for m in re.findall(r"<td>([^<]+Ω)<br>", cells)]
        post = small_result.posterior(rid)
        expected = [float(np.median(post[n].values)) for n in ("R0", "R1", "TLMs2_0")]
        np.testing.assert_allclose(medians, expected, rtol=0.006)  # 3 significant digits
        assert 'class="pill ok">ok<' in cells or "pill warn" in cells


def test_nyquist_axes_have_equal_scales_and_ticks_that_do_not_overprint():
    import matplotlib.pyplot as plt

    from inference.circuits import simulate_spectrum
    from inference.plots import nyquist

    truth = {"R0": 2e4, "R1": 3e5, "CPE1_0": 1e-10, "CPE1_1": 0.9,
             "R2": 9e5, "CPE2_0": 1e-7, "CPE2_1": 0.8}  # fmt: skip
    spec = simulate_spectrum("R0-p(R1,CPE1)-p(R2,CPE2)", truth, np.geomspace(1e6, 0.1, 50))
    z = spec["z_real"].values + 1j * spec["z_imag"].values
    fig, ax = plt.subplots(figsize=(4.2, 3))
    nyquist(ax, z)
    fig.canvas.draw()
    assert ax.get_aspect() == 1.0  # semicircles stay round
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert x0 <= 0 <= z.real.max() <= x1 and y0 <= 0 <= (-z.imag).max() <= y1
    for axis in (ax.xaxis, ax.yaxis):
        labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
        assert 2 <= len(labels) <= 7 and all(t.get_text().endswith("Ω") for t in labels)
        boxes = sorted((t.get_window_extent() for t in labels), key=lambda b: b.x0 + b.y0)
        for a, b in zip(boxes, boxes[1:], strict=False):
            assert not a.overlaps(b), (a, b)
    texts = {t.get_text() for t in ax.xaxis.get_ticklabels()}
    assert any("kΩ" in t for t in texts) and any("MΩ" in t for t in texts)  # no "1e6"
    plt.close(fig)


@pytest.mark.slow
def test_cli_analyze_prints_the_summary_as_json(small_study, small_result, tmp_path, monkeypatch,
                                                capsys):  # fmt: skip
    from service.cli import main

    # the analysis and its report are tested above; here the command's JSON is
    monkeypatch.setattr("inference.analysis.analyze_study", lambda *a, **k: small_result)
    monkeypatch.setattr("inference.report.render_report", lambda result: "<html></html>")
    with pytest.raises(SystemExit) as stop:
        main(["analyze", str(small_study), "--out", str(tmp_path), "--json"])
    assert stop.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    validate_summary(doc)
    assert doc["study"] == "small"
    assert {Path(p).name for p in doc["outputs"].values()} == {
        "result.nc", "summary.json", "report.html"
    }  # fmt: skip
    assert (
        json.loads((tmp_path / "summary.json").read_text())["conductivity"] == doc["conductivity"]
    )


def test_sigma_far_outside_the_measured_temperatures_is_flagged(small_result, tmp_path):
    import dataclasses

    from inference.report import _warnings_banner  # render_report's banner (plots cost ~15 s)

    assert small_result.temperature_warnings() == []  # 30 and 60 °C lie in 30–70 °C
    far = dataclasses.replace(
        small_result, settings={**small_result.settings, "temperatures_C": [30.0, 85.0, 500.0]}
    )
    warnings = far.temperature_warnings()
    assert len(warnings) == 2 * len(far.kinds)  # 85 °C is 15 K above 70 °C, 500 °C far above
    assert any(
        "σ at 500 °C is extrapolated 430 K above the measured 30–70 °C" in w for w in warnings
    )
    summary = far.summary_dict()
    assert summary["warnings"] == warnings and summary["settings"]["kind"] == "composite_cathode"
    assert "extrapolated 430 K above" in _warnings_banner(far)
    assert _warnings_banner(small_result) == ""
