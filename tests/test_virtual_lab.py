"""Virtual lab: physics, files, determinism, the bundled emley2023 study, ``lab simulate``."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import typer
import xarray as xr
from typer.testing import CliRunner

from inference.circuits import parse_circuit
from inference.errors import InputError, ManifestError
from inference.rate_capability import capacity_retention
from inference.readers import read_dc, read_spectrum
from optimizer.virtual_lab import (
    LabSettings,
    is_feasible,
    simulate_preset,
    simulate_recipes_file,
    simulate_study,
    true_log10_sigma,
    true_rate_retention,
)
from optimizer.virtual_lab.materials import K_B_EV_PER_K, parse_recipe
from optimizer.virtual_lab.measure import true_impedance
from service.commands.lab import app as lab_app

REPO = Path(__file__).resolve().parent.parent
INSTRUMENT_FILES = REPO / "tests" / "data" / "instrument-files"
BUNDLED = REPO / "datasets" / "emley2023"
PAPER = tomllib.loads((BUNDLED / "paper_values.toml").read_text())
DRY = {"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry"}
WET = {"binder": "NBR", "binder_wt_pct": 0.5, "process": "wet"}
SMALL = LabSettings(
    temperatures_C=(30.0, 60.0),
    ion_cells_per_recipe=1,
    electron_cells_per_recipe=1,
    csv_cells=("dry-ion-1",),
)


@pytest.fixture(scope="session")
def regenerated(tmp_path_factory) -> Path:
    """The emley2023 preset simulated afresh, the way ``make dataset`` does it."""
    out = tmp_path_factory.mktemp("regen") / "emley2023"
    simulate_preset("emley2023", out)
    return out


@pytest.fixture(scope="session")
def truth() -> dict:
    return json.loads((BUNDLED / "truth.json").read_text())


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- the bundled study ------------------------------------------------------------------------


def test_regenerating_the_bundled_study_reproduces_it_byte_for_byte(regenerated):
    committed, fresh = _tree(BUNDLED), _tree(regenerated)
    assert sorted(fresh) == sorted(committed)
    differing = [name for name in committed if committed[name] != fresh[name]]
    assert differing == []


def test_truth_equals_the_papers_30C_conductivities(truth):
    for recipe, paper in PAPER["recipes"].items():
        got = truth["recipes"][recipe]
        assert got["sigma_ion_30C_S_per_cm"] == pytest.approx(paper["sigma_ion_30C_S_per_cm"], 1e-9)
        assert got["sigma_el_30C_S_per_cm"] == pytest.approx(paper["sigma_el_30C_S_per_cm"], 1e-9)


def test_cells_are_drawn_around_the_recipe_not_centred_on_it(truth):
    settings = truth["settings"]
    assert settings["balanced"] is False and settings["composite_model"] == "tlm"
    assert settings["cell_Ea_sd_eV"] == pytest.approx(0.01)
    off_mean, ea_spread = [], []
    for recipe, r in truth["recipes"].items():
        for cell_type, ea_key in (("ion", "Ea_ion_eV"), ("electron", "Ea_el_eV")):
            cells = [
                c
                for c in truth["cells"].values()
                if c["recipe"] == recipe and c["type"] == cell_type
            ]
            assert len(cells) >= 3
            effects = [c["log10_effect"] for c in cells]
            off_mean.append(abs(np.mean(effects)))
            assert 0.02 < np.std(effects, ddof=1) < 0.4  # the 0.15-decade spread, 3 draws
            ea = [c["Ea_eV"] for c in cells]
            ea_spread.append(np.std(ea, ddof=1))
            assert abs(np.mean(ea) - r[ea_key]) < 0.04  # around the recipe's Ea
    assert min(off_mean) > 1e-4  # no recipe's cells are centred on its true value
    assert 0.003 < np.median(ea_spread) < 0.03  # every cell has its own activation energy


def test_balanced_option_still_centres_the_cells(tmp_path):
    settings = LabSettings(temperatures_C=(30.0,), ion_cells_per_recipe=3,
                           electron_cells_per_recipe=0, balanced=True)  # fmt: skip
    simulate_study({"dry": DRY}, tmp_path / "b", seed=4, settings=settings)
    cells = json.loads((tmp_path / "b" / "truth.json").read_text())["cells"].values()
    assert abs(np.mean([c["log10_effect"] for c in cells])) < 1e-9  # truth.json: 10 digits


def test_bundled_study_has_the_design_the_issue_asks_for(truth):
    manifest = tomllib.loads((BUNDLED / "manifest.toml").read_text())
    assert set(manifest["recipes"]) == set(PAPER["recipes"])
    temps = sorted({f["temperature_C"] for f in manifest["files"]})
    assert len(temps) >= 6 and temps[0] == 30 and temps[-1] == 75
    for recipe in manifest["recipes"]:
        for cell_type in ("ion", "electron"):
            cells = [
                c for c in manifest["cells"] if c["recipe"] == recipe and c["type"] == cell_type
            ]
            assert len(cells) >= 3
    suffixes = {(Path(f["path"]).parts[0], Path(f["path"]).suffix) for f in manifest["files"]}
    assert {("eis", ".mpt"), ("eis", ".csv"), ("dc", ".mpt"), ("dc", ".csv")} <= suffixes
    spectrum = read_spectrum(BUNDLED / "eis" / "dry_PTFE-ion-1_30C.mpt")
    f = spectrum["frequency"].values
    assert f[0] == pytest.approx(7e6) and f[-1] == pytest.approx(0.01)
    per_decade = (f.size - 1) / math.log10(f[0] / f[-1])
    assert per_decade == pytest.approx(10, abs=0.2)
    assert read_dc(BUNDLED / "dc" / "wet_NBR-electron-1_30C.mpt").attrs["n_steps"] >= 4
    assert sum(len(b) for b in _tree(BUNDLED).values()) < 3e6
    readme = (BUNDLED / "README.md").read_text()
    assert "simulated" in readme.lower()
    assert "sigmalab lab simulate --preset emley2023 --out datasets/emley2023" in readme
    assert PAPER["source"]["reference"] == "Emley et al. 2023, Mater. Futures 2 045102"


def test_arcs_sit_where_their_physical_capacitances_put_them(truth):
    """Separator bulk (geometric C) above 7 MHz; interfaces inside the window; the composite's
    transmission line closes inside the window and far below the interface arc."""
    tlm = parse_circuit("TLM1")
    for name, entry in truth["files"].items():
        if entry["kind"] != "eis":
            continue
        p = entry["parameters"]
        assert 1 / (2 * math.pi * p["R1"] * p["C1"]) > 2 * 7e6, name
        tau_int = (p["R2"] * p["CPE2_0"]) ** (1 / p["CPE2_1"])
        apex_int = 1 / (2 * math.pi * tau_int)
        assert 1e3 < apex_int < 1e6, name
        composite = {f"TLM1_{i}": p[f"TLM3_{i}"] for i in range(4)}
        f = np.geomspace(1e5, 0.01, 300)
        z = tlm.impedance(composite, f)
        apex = f[np.argmax(-z.imag)]
        assert apex_int > 100 * apex, name  # separate arcs, 2+ decades apart
        assert -z.imag[-1] < 0.1 * p["TLM3_0"], name  # closed by the sweep's 10 mHz
        assert z.real[-1] == pytest.approx(p["TLM3_0"], rel=0.02), name


def test_composite_resistance_is_thickness_over_sigma_area(truth):
    for name, entry in truth["files"].items():
        cell = truth["cells"][entry["cell"]]
        expected = cell["thickness_true_cm"] / (entry["sigma_S_per_cm"] * cell["area_true_cm2"])
        if entry["kind"] == "eis":
            got = entry["parameters"][entry["composite_resistance"]]
        else:
            got = entry["R_el_ohm"]
        assert got == pytest.approx(expected, rel=1e-8), name
        # σ at the cell's actual temperature, its own Ea
        t_true = entry["temperature_true_K"]
        sigma = cell["sigma_30C_S_per_cm"] * math.exp(
            -cell["Ea_eV"] / K_B_EV_PER_K * (1 / t_true - 1 / 303.15)
        )
        assert entry["sigma_S_per_cm"] == pytest.approx(sigma, rel=1e-8), name
        assert abs(t_true - entry["temperature_K"]) < 3.0  # 0.5 K sd around the set point


# --- files: formats and noise ---------------------------------------------------------------


def _header_line_count(path: Path) -> tuple[int, list[str]]:
    lines = path.read_bytes().decode("latin-1").split("\n")
    n = int(lines[1].split(":")[1])
    return n, lines


def test_mpt_files_have_the_structure_of_a_real_ec_lab_export():
    real_n, real = _header_line_count(INSTRUMENT_FILES / "exampleDataBioLogic.mpt")
    for path in (
        BUNDLED / "eis" / "wet_NBR-ion-2_48C.mpt",
        BUNDLED / "dc" / "dry_PTFE-electron-1_30C.mpt",
    ):
        n, ours = _header_line_count(path)
        assert ours[0] == real[0] == "EC-Lab ASCII FILE"
        assert ours[n - 1].startswith("freq/Hz\t" if "eis" in path.parts else "time/s\t")
        assert ours[n - 1].rstrip("\t").count("\t") >= 4
        float(ours[n].split("\t")[0])  # first data line right after the header
        assert "\r" not in path.read_bytes().decode("latin-1")
    eis_n, eis = _header_line_count(BUNDLED / "eis" / "wet_NBR-ion-2_48C.mpt")
    real_columns = real[real_n - 1].split("\t")[:5]
    assert eis[eis_n - 1].split("\t")[:5] == real_columns
    assert eis[3] == real[3] == "Potentio Electrochemical Impedance Spectroscopy"
    assert eis[eis_n - 1].rstrip("\t").endswith("Temperature/°C")
    assert "Device : SP-300" in "\n".join(eis)
    dc_n, dc = _header_line_count(BUNDLED / "dc" / "dry_PTFE-electron-1_30C.mpt")
    assert dc[3] == "Chronoamperometry / Chronocoulometry"
    assert dc[dc_n - 1].rstrip("\t").split("\t") == ["time/s", "control/V", "Ewe/V", "<I>/mA", "Ns"]


def _spectrum_residuals(folder: Path, name: str, entry: dict):
    """Scaled residuals of a spectrum against its true circuit with the sweep's drift."""
    spectrum = read_spectrum(folder / name)
    f = spectrum["frequency"].values
    z_true = true_impedance(entry["circuit"], entry["parameters"], f, entry["drift_rel"])
    z = spectrum["z_real"].values + 1j * spectrum["z_imag"].values
    return z, z_true, (z - z_true) / np.abs(z_true)


@pytest.mark.parametrize(
    "name",
    ["eis/wet_NBR-ion-1_30C.mpt", "eis/dry_PTFE-ion-3_75C.csv", "eis/dry_PTFE-ion-2_57C.mpt"],
)
def test_spectra_read_back_as_the_true_circuit_with_one_percent_noise(name, truth):
    entry = truth["files"][name]
    z, z_true, scaled = _spectrum_residuals(BUNDLED, name, entry)
    good = np.setdiff1d(np.arange(z.size), entry["outlier_points"])
    residuals = np.concatenate([scaled.real[good], scaled.imag[good]])
    clear = np.abs(z_true.imag) > 0.05 * np.abs(z_true)  # well above the noise
    capacitive = clear & (z_true.imag < 0)
    assert np.all(z.imag[capacitive] < 0)  # capacitive arcs read back with signed Im(Z) < 0
    assert np.all(z.imag[:3] > 0)  # the lead inductance at the top of the sweep
    assert abs(residuals.mean()) < 0.004
    assert 0.007 < residuals.std() < 0.013


def test_artefacts_are_drawn_and_recorded(truth):
    settings = LabSettings.from_dict(truth["settings"])
    assert settings == LabSettings(csv_cells=settings.csv_cells)  # the realistic defaults
    eis = [e for e in truth["files"].values() if e["kind"] == "eis"]
    drifts = [e["drift_rel"] for e in eis]
    assert 0.002 < np.std(drifts) < 0.01
    n_outliers = sum(len(e["outlier_points"]) for e in eis)
    assert 0.1 * len(eis) <= n_outliers <= 0.6 * len(eis)
    name, entry = next((k, e) for k, e in truth["files"].items() if e["outlier_points"])
    _, _, scaled = _spectrum_residuals(BUNDLED, name, entry)
    assert np.all(np.abs(scaled[entry["outlier_points"]]) > 0.05)  # 10 % of |Z| off
    inductance = [c["lead_inductance_H"] for c in truth["cells"].values() if c["type"] == "ion"]
    assert all(1e-7 <= v <= 1e-6 for v in inductance) and len(set(inductance)) > 1
    offsets = [e["temperature_true_K"] - e["temperature_K"] for e in truth["files"].values()]
    assert 0.3 < np.std(offsets) < 0.8
    contacts = [
        (e["temperature_true_K"], e["R_contact_ohm"], e["cell"])
        for e in truth["files"].values()
        if e["kind"] == "dc"
    ]
    for t, r, cell in contacts:
        c = truth["cells"][cell]
        assert r == pytest.approx(c["contact_resistance_30C_ohm"] * (1 + 0.003 * (t - 303.15)))
    assert 0.01 < np.median([r for _, r, _ in contacts]) < 0.04  # tens of mΩ, two-probe
    manifest = tomllib.loads((BUNDLED / "manifest.toml").read_text())["study"]
    assert manifest["circuit"] == "L0-R0-p(R1,CPE1)-TLMs2"
    assert manifest["dc_contact_ohm"] == pytest.approx(0.02)


def test_an_ideal_lab_has_no_random_artefacts(tmp_path):
    settings = LabSettings.ideal(temperatures_C=(30.0, 60.0), ion_cells_per_recipe=1,
                                 electron_cells_per_recipe=1)  # fmt: skip
    simulate_study({"wet": WET}, tmp_path / "i", seed=3, settings=settings)
    truth = json.loads((tmp_path / "i" / "truth.json").read_text())
    for entry in truth["files"].values():
        assert entry["temperature_true_K"] == entry["temperature_K"]
        assert entry.get("drift_rel", 0.0) == 0.0 and entry.get("outlier_points", []) == []
        assert entry.get("R_contact_ohm", 0.0) == 0.0
    cells = truth["cells"]
    assert cells["wet-ion-1"]["Ea_eV"] == truth["recipes"]["wet"]["Ea_ion_eV"]
    assert "dc_contact_ohm" not in tomllib.loads((tmp_path / "i" / "manifest.toml").read_text())


@pytest.mark.parametrize(
    "name", ["dc/dry_PTFE-electron-2_39C.mpt", "dc/wet_NBR-electron-3_66C.csv"]
)
def test_dc_records_follow_ohms_law_with_the_true_resistance(name, truth):
    entry = truth["files"][name]
    record = read_dc(BUNDLED / name)
    plateau = record.where(record["time_s"] % 30 > 10, drop=True)  # after the settle
    slope, offset = np.polyfit(plateau["voltage_V"], plateau["current_A"], 1)
    assert 1 / slope == pytest.approx(entry["R_el_ohm"] + entry["R_contact_ohm"], rel=0.02)
    assert -offset / slope == pytest.approx(entry["V_offset_V"], abs=3e-4)
    assert record.attrs["n_steps"] == len(entry["biases_V"])


# --- determinism, failures, options ---------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    recipes = {"dry": DRY, "wet": WET}
    first = simulate_study(recipes, tmp_path / "a", seed=5, settings=SMALL)
    simulate_study(recipes, tmp_path / "b", seed=5, settings=SMALL)
    simulate_study(recipes, tmp_path / "c", seed=6, settings=SMALL)
    a, b, c = (_tree(tmp_path / x) for x in "abc")
    assert a == b
    assert len(first.files) == 2 * 2 * 2
    assert all(a[f] != c[f] for f in first.files)


def test_failed_fabrication_is_reported_with_its_reason_not_as_data(tmp_path):
    recipes = {"dry": DRY, "crumbly": {"binder": "PTFE", "binder_wt_pct": 0.05, "process": "dry"}}
    result = simulate_study(recipes, tmp_path / "s", seed=1, settings=SMALL)
    assert {f.recipe for f in result.failures} == {"crumbly"}
    assert "0.05 wt% < 0.1 wt% threshold" in result.failures[0].reason
    manifest = tomllib.loads((tmp_path / "s" / "manifest.toml").read_text())
    failed = [c for c in manifest["cells"] if c.get("status") == "failed"]
    assert {c["recipe"] for c in failed} == {"crumbly"} and len(failed) == 2
    assert all("threshold" in c["failure_reason"] for c in failed)
    assert not any(f["cell"].startswith("crumbly") for f in manifest["files"])
    assert not list((tmp_path / "s").rglob("crumbly*"))
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    assert truth["recipes"]["crumbly"]["feasible"] is False
    assert truth["cells"]["crumbly-ion-1"]["status"] == "failed"


@pytest.mark.parametrize(
    ("recipe", "words"),
    [
        ({"binder": "PTFE", "binder_wt_pct": 0.05, "process": "dry"}, "did not hold together"),
        ({"binder": "NBR", "binder_wt_pct": 0.5, "process": "dry"}, "fibrillat"),
        ({"binder": "PTFE", "binder_wt_pct": 0.5, "process": "wet"}, "soluble"),
        ({"binder": "NBR", "binder_wt_pct": 0.1, "process": "wet"}, "cracked"),
        (
            {"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry", "se_wt_pct": 5},
            "percolation",
        ),
    ],
)
def test_infeasible_recipes_say_why(recipe, words):
    ok, reason = is_feasible(recipe)
    assert not ok and words in reason
    assert all(math.isnan(v) for v in true_log10_sigma(recipe).values())
    assert math.isnan(true_rate_retention(recipe))


@pytest.mark.parametrize("model", ["tlm", "rq"])
def test_composite_models(tmp_path, model):
    settings = LabSettings.ideal(
        temperatures_C=(30.0,),
        ion_cells_per_recipe=1,
        electron_cells_per_recipe=0,
        composite_model=model,
        noise_rel=0.0,
    )
    simulate_study({"wet": WET}, tmp_path / "t", seed=2, settings=settings)
    truth = json.loads((tmp_path / "t" / "truth.json").read_text())
    ((name, entry),) = truth["files"].items()
    cell = truth["cells"][entry["cell"]]
    p = entry["parameters"]
    r_ion = cell["thickness_true_cm"] / (entry["sigma_S_per_cm"] * cell["area_true_cm2"])
    assert p[entry["composite_resistance"]] == pytest.approx(r_ion, rel=1e-8)
    if model == "tlm":
        assert entry["circuit"].endswith("TLM3")
        # the electronic rail: this cell's own σ_el (wet recipe, 3.0e-3 S/cm, own cell effect)
        assert p["TLM3_1"] == pytest.approx(
            cell["thickness_true_cm"] / (cell["sigma_other_30C_S_per_cm"] * cell["area_true_cm2"]),
            rel=1e-8,
        )
        assert 0.3 < cell["sigma_other_30C_S_per_cm"] / 3.0e-3 < 3
    else:
        assert entry["circuit"].endswith("p(R3,CPE3)")
    # low-frequency limit: all resistances in series, composite = its ionic rail
    spectrum = read_spectrum(tmp_path / "t" / name)
    low = spectrum["z_real"].values[-1]
    series = p["R0"] + p["R1"] + p["R2"] + r_ion
    assert 0.98 * series < low < 1.001 * series
    circuit = tomllib.loads((tmp_path / "t" / "manifest.toml").read_text())["study"]["circuit"]
    assert circuit.endswith("TLMs2" if model == "tlm" else "p(R2,CPE2)")


def test_settings_and_recipes_are_validated(tmp_path):
    with pytest.raises(InputError, match="composite_model"):
        LabSettings(composite_model="foam")
    with pytest.raises(InputError, match="interface_alpha"):
        LabSettings(interface_alpha=(0.9, 0.7))
    with pytest.raises(InputError, match="drift_rel_sd, temperature_offset_sd_K"):
        LabSettings(drift_rel_sd=-1, temperature_offset_sd_K=-0.1)
    with pytest.raises(InputError, match="recipe 'x': field 'binder'"):
        simulate_study(
            {"x": {"binder": "PVA", "binder_wt_pct": 1, "process": "dry"}}, tmp_path / "x", seed=0
        )
    with pytest.raises(InputError, match="seed"):
        simulate_study({"dry": DRY}, tmp_path / "x", seed=-1)
    with pytest.raises(InputError, match="binder_wt_pct"):
        parse_recipe({"binder": "PTFE", "binder_wt_pct": 40, "process": "dry"})


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "lab-book.txt").write_text("do not delete")
    with pytest.raises(InputError, match="not written by the virtual lab"):
        simulate_study({"dry": DRY}, precious, seed=0, settings=SMALL)
    assert (precious / "lab-book.txt").read_text() == "do not delete"
    simulate_study({"dry": DRY}, tmp_path / "ours", seed=0, settings=SMALL)
    simulate_study({"wet": WET}, tmp_path / "ours", seed=0, settings=SMALL)  # replaces its own
    assert not list((tmp_path / "ours").rglob("dry-*"))


# --- physics: landscape, Arrhenius, rate proxy ------------------------------------------------


def test_landscape_reproduces_the_paper_and_moves_the_right_way():
    for recipe, paper in PAPER["recipes"].items():
        params = json.loads((BUNDLED / "truth.json").read_text())["recipes"][recipe]["params"]
        got = true_log10_sigma(params)
        assert got["sigma_ion"] == pytest.approx(
            math.log10(paper["sigma_ion_30C_S_per_cm"]), abs=1e-9
        )
        assert got["sigma_el"] == pytest.approx(
            math.log10(paper["sigma_el_30C_S_per_cm"]), abs=1e-9
        )
    ion = [true_log10_sigma({**DRY, "binder_wt_pct": w})["sigma_ion"] for w in (0.2, 0.5, 1, 2, 3)]
    assert np.all(np.diff(ion) < 0)  # more binder blocks more SE contacts
    assert ion[-1] > ion[0] - 1.0  # but the floor keeps 3 wt% from switching conduction off
    press = [true_log10_sigma({**DRY, "press_MPa": p})["sigma_ion"] for p in (100, 225, 350, 475)]
    gains = np.diff(press)
    assert np.all(gains > 0) and gains[-1] < gains[0] / 3  # denser is better, saturating
    assert true_log10_sigma(WET)["sigma_ion"] < true_log10_sigma(DRY)["sigma_ion"] - 1


def test_temperature_dependence_is_arrhenius_with_the_recorded_ea(truth):
    params = truth["recipes"]["wet_NBR"]["params"]
    low, high = true_log10_sigma(params, 30.0), true_log10_sigma(params, 75.0)
    inverse_T = 1 / 303.15 - 1 / 348.15
    Ea_ion = (high["sigma_ion"] - low["sigma_ion"]) * math.log(10) * K_B_EV_PER_K / inverse_T
    Ea_el = (high["sigma_el"] - low["sigma_el"]) * math.log(10) * K_B_EV_PER_K / inverse_T
    assert Ea_ion == pytest.approx(truth["recipes"]["wet_NBR"]["Ea_ion_eV"], rel=1e-9)
    assert Ea_el == pytest.approx(truth["recipes"]["wet_NBR"]["Ea_el_eV"], rel=1e-9)
    assert 0.3 < truth["recipes"]["dry_PTFE"]["Ea_ion_eV"] <= Ea_ion < 0.6
    assert 0 < Ea_el < 0.1


def test_rate_proxy_reproduces_the_dry_cathodes_retention():
    """physics.md §2.7: paper σ_ion 6.9e-5 S/cm at 30 °C, Ea 0.37 eV → 60 °C; C/3 89 %, C/2 83 %."""
    sigma_60 = 6.9e-5 * math.exp(-(0.37 / K_B_EV_PER_K) * (1 / 333.15 - 1 / 303.15))
    dry = PAPER["recipes"]["dry_PTFE"]
    assert capacity_retention(sigma_60, 1 / 3) == pytest.approx(
        dry["retention_C3_vs_C10_60C"], abs=0.015
    )
    assert capacity_retention(sigma_60, 1 / 2) == pytest.approx(
        dry["retention_C2_vs_C10_60C"], abs=0.015
    )
    wet = true_rate_retention(WET, 0.5)
    assert wet < true_rate_retention(DRY, 0.5) - 0.05  # the wet cathode is worse, as in the paper
    assert capacity_retention(1e3, 0.1) == pytest.approx(1.0)
    draws = xr.DataArray(np.array([1e-5, 1e-4, 1e-3]), dims="draw")
    pushed = capacity_retention(draws, 0.5)
    assert isinstance(pushed, xr.DataArray) and np.all(np.diff(pushed.values) > 0)


# --- recipes file and CLI -------------------------------------------------------------------


RECIPES_TOML = """\
[study]
name = "scan"
[lab]
seed = 4
temperatures_C = [30, 50]
ion_cells_per_recipe = 1
electron_cells_per_recipe = 1
[recipes.dry_0p3]
binder = "PTFE"
binder_wt_pct = 0.3
process = "dry"
press_MPa = 300
"""


def test_recipes_file_simulates_with_its_own_seed_and_settings(tmp_path):
    path = tmp_path / "recipes.toml"
    path.write_text(RECIPES_TOML)
    result = simulate_recipes_file(path, tmp_path / "out")
    manifest = tomllib.loads(result.manifest_path.read_text())
    assert manifest["study"]["name"] == "scan" and manifest["study"]["seed"] == 4
    assert manifest["recipes"]["dry_0p3"]["press_MPa"] == 300
    assert sorted({f["temperature_C"] for f in manifest["files"]}) == [30, 50]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[recipes.a]\nbinder = \n", r"line 2"),
        (
            '[recipes.a]\nbinder = "PTFE"\nbinder_wt_pct = -1\nprocess = "dry"\n',
            r"\[recipes\.a\].*binder_wt_pct",
        ),
        (
            '[lab]\nwobble = 1\n[recipes.a]\nbinder = "PTFE"\nbinder_wt_pct = 1\nprocess = "dry"\n',
            r"\[lab\].*wobble",
        ),
        ("[study]\nname = 'x'\n", "no \\[recipes"),
    ],
)
def test_bad_recipes_files_give_one_line_errors(tmp_path, text, match):
    path = tmp_path / "recipes.toml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=match) as info:
        simulate_recipes_file(path, tmp_path / "out")
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_cli_lab_simulate(tmp_path):
    cli = typer.Typer()
    cli.add_typer(lab_app, name="lab")  # as service/cli.py registers it
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        cli, ["lab", "simulate", "--preset", "emley2023", "--out", str(out), "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "108 data files" in result.output
    manifest = tomllib.loads((out / "manifest.toml").read_text())
    assert manifest["study"]["seed"] == 3
    assert "seed 3" in " ".join((out / "README.md").read_text().split())
    recipes = tmp_path / "recipes.toml"
    recipes.write_text(RECIPES_TOML)
    result = runner.invoke(
        cli, ["lab", "simulate", "--recipes", str(recipes), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["lab", "simulate", "--out", str(tmp_path / "n")])
    assert result.exit_code == 2 and "exactly one of --preset or --recipes" in result.output
    result = runner.invoke(
        cli, ["lab", "simulate", "--preset", "nope", "--out", str(tmp_path / "n")]
    )
    assert result.exit_code == 2 and "unknown preset 'nope'" in result.output
