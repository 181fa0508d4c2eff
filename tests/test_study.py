"""Study manifests: loading the bundled study and refusing inconsistent manifests."""

from __future__ import annotations

import copy
import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w
import xarray as xr

from inference.errors import FileFormatError, ManifestError
from inference.study import Study, load_study

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "datasets" / "emley2023"
MANIFEST = tomllib.loads((BUNDLED / "manifest.toml").read_text())


@pytest.fixture(scope="session")
def study() -> Study:
    return load_study(BUNDLED)


def test_bundled_study_loads_every_file_with_its_labels(study):
    files = MANIFEST["files"]
    assert len(study.measurements) == len(files)
    assert len(study.spectra()) + len(study.dc_records()) == len(files)
    cells = {c["id"]: c for c in MANIFEST["cells"]}
    for ds, entry in zip(study.measurements, files, strict=True):
        cell = cells[entry["cell"]]
        a = ds.attrs
        assert a["manifest_path"] == entry["path"]
        assert a["cell_id"] == entry["cell"] and a["recipe"] == cell["recipe"]
        assert a["cell_type"] == cell["type"]
        assert a["kind"] == {"ion": "eis", "electron": "dc"}[cell["type"]]
        assert a["kind"] == ("eis" if "frequency" in ds.dims else "dc")
        assert a["temperature_K"] == pytest.approx(entry["temperature_C"] + 273.15)
        assert a["thickness_cm"] == pytest.approx(cell["thickness_um"] * 1e-4)
        assert a["thickness_sd_cm"] == pytest.approx(cell["thickness_sd_um"] * 1e-4)
        assert a["area_cm2"] == cell["area_cm2"] and a["area_sd_cm2"] == cell["area_sd_cm2"]
        assert len(a["file_sha256"]) == 64


def test_selection_summary_and_tree(study):
    dry = study.spectra(recipe="dry_PTFE")
    assert len(dry) == 3 * 6 and {ds.attrs["recipe"] for ds in dry} == {"dry_PTFE"}
    one = study.dc_records(cell="wet_NBR-electron-2")
    assert [round(ds.attrs["temperature_K"] - 273.15) for ds in one] == [30, 39, 48, 57, 66, 75]
    assert study.spectra(cell="wet_NBR-electron-2") == []
    summary = study.summary()
    assert len(summary) == len(MANIFEST["cells"])
    assert set(summary.columns) >= {
        "recipe",
        "cell",
        "type",
        "n_temperatures",
        "T_min_C",
        "T_max_C",
    }
    assert (summary["n_temperatures"] == 6).all()
    assert (summary["T_min_C"] == 30).all() and (summary["T_max_C"] == 75).all()
    tree = study.to_datatree()
    assert isinstance(tree, xr.DataTree)
    assert set(tree.children) == set(MANIFEST["recipes"])
    node = tree["dry_PTFE/dry_PTFE-ion-1/eis_30C"]
    assert node.attrs["cell_id"] == "dry_PTFE-ion-1" and "z_real" in node.dataset
    assert tree["wet_NBR"].attrs["binder"] == "NBR"
    assert study.name == "emley2023"
    assert study.cells.loc["dry_PTFE-ion-1", "thickness_cm"] == pytest.approx(
        MANIFEST["cells"][0]["thickness_um"] * 1e-4
    )


def test_manifest_file_path_works_as_well_as_the_folder():
    study = load_study(BUNDLED / "manifest.toml")
    assert study.manifest_path == BUNDLED / "manifest.toml"
    assert len(study.measurements) == len(MANIFEST["files"])


# --- a small study to break -----------------------------------------------------------------


def _small_manifest() -> dict:
    """Two recipes, one ion and one electron cell each, two temperatures, from the bundled files."""
    keep = {"dry_PTFE-ion-1", "dry_PTFE-electron-1", "wet_NBR-ion-1", "wet_NBR-electron-1"}
    files = [
        f for f in MANIFEST["files"] if f["cell"] in keep and f["temperature_C"] in (30.0, 75.0)
    ]
    return copy.deepcopy(
        {
            "study": {"name": "small"},
            "recipes": {k: MANIFEST["recipes"][k] for k in ("dry_PTFE", "wet_NBR")},
            "cells": [c for c in MANIFEST["cells"] if c["id"] in keep],
            "files": files,
        }
    )


def _write(folder: Path, manifest: dict) -> Path:
    folder.mkdir(exist_ok=True)
    for entry in manifest.get("files", []):
        source = BUNDLED / entry["path"]
        if source.exists():
            (folder / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, folder / entry["path"])
    path = folder / "manifest.toml"
    path.write_text(tomli_w.dumps(manifest))
    return path


def test_small_study_loads(tmp_path):
    study = load_study(_write(tmp_path / "s", _small_manifest()))
    assert len(study.spectra()) == 4 and len(study.dc_records()) == 4
    assert set(study.recipes) == {"dry_PTFE", "wet_NBR"}


def _cell(m, i=0):
    return m["cells"][i]


def _file(m, i=0):
    return m["files"][i]


BREAKS = {
    "missing file": (
        lambda m: _file(m).update(path="eis/not-there_30C.mpt"),
        r"files #1 \(eis/not-there_30C.mpt\).*file not found: eis/not-there_30C.mpt",
    ),
    "unknown recipe": (
        lambda m: _cell(m).update(recipe="dry_PVDF"),
        r"cells #1 \(dry_PTFE-ion-1\).*unknown recipe 'dry_PVDF'",
    ),
    "unknown cell": (
        lambda m: _file(m).update(cell="ghost-1"),
        r"files #1 .*unknown cell 'ghost-1'",
    ),
    "duplicate cell id": (
        lambda m: m["cells"].append(copy.deepcopy(_cell(m))),
        r"cells #5 \(dry_PTFE-ion-1\).*duplicate cell id 'dry_PTFE-ion-1'",
    ),
    "duplicate measurement": (
        lambda m: _file(m, 1).update(temperature_C=_file(m, 0)["temperature_C"]),
        r"files #2 .*duplicate eis measurement of cell 'dry_PTFE-ion-1' at 30 °C: also files #1",
    ),
    "duplicate file": (
        lambda m: m["files"].append({**_file(m), "temperature_C": 50.0}),
        r"files #9 .*duplicate file: also listed as files #1",
    ),
    "zero thickness": (
        lambda m: _cell(m).update(thickness_um=0.0),
        r"cells #1 .*impossible thickness_um = 0; expected > 0",
    ),
    "sd larger than thickness": (
        lambda m: _cell(m).update(thickness_sd_um=80.0),
        r"impossible thickness_sd_um = 80; expected 0 <= sd < thickness_um",
    ),
    "negative area": (
        lambda m: _cell(m, 1).update(area_cm2=-1.0),
        r"cells #2 \(dry_PTFE-electron-1\).*impossible area_cm2 = -1",
    ),
    "area sd too large": (
        lambda m: _cell(m).update(area_sd_cm2=2.0),
        r"impossible area_sd_cm2 = 2; expected 0 <= sd < area_cm2",
    ),
    "hot temperature": (
        lambda m: _file(m).update(temperature_C=900.0),
        r"files #1 .*temperature 900 °C is outside -100..500 °C",
    ),
    "two temperatures": (
        lambda m: _file(m).update(temperature_K=303.15),
        r"exactly one of 'temperature_C' or 'temperature_K'",
    ),
    "bad cell type": (
        lambda m: _cell(m).update(type="both"),
        r"'type' = 'both'; expected 'ion' or 'electron'",
    ),
    "missing geometry": (
        lambda m: _cell(m).pop("area_cm2"),
        r"cells #1 .*'area_cm2' is missing",
    ),
    "binder type not a string": (
        lambda m: m["recipes"]["wet_NBR"].update(binder=3),
        r"\[recipes.wet_NBR\].*'binder' must be a non-empty string, got 3",
    ),
    "unknown study kind": (
        lambda m: m.setdefault("study", {}).update(kind="cathode"),
        r"\[study\]: 'kind' = 'cathode'; expected one of composite_cathode, solid_electrolyte",
    ),
    "binder wt% out of range": (
        lambda m: m["recipes"]["wet_NBR"].update(binder_wt_pct=120),
        r"\[recipes.wet_NBR\].*'binder_wt_pct' = 120 is outside 0..100",
    ),
    "failed cell with data": (
        lambda m: _cell(m).update(status="failed", failure_reason="crumbled"),
        r"cell 'dry_PTFE-ion-1' is marked failed but has a file",
    ),
    "no recipes": (lambda m: m.pop("recipes"), r"no recipes"),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_inconsistent_manifests_are_refused_with_one_clear_line(tmp_path, name):
    manifest = _small_manifest()
    mutate, pattern = BREAKS[name]
    mutate(manifest)
    _write(tmp_path / "s", manifest)
    with pytest.raises(ManifestError, match=pattern) as info:
        load_study(tmp_path / "s")
    message = str(info.value)
    # named relative to the study folder: no absolute path of the machine in any message
    assert "\n" not in message and message.startswith("manifest.toml")
    assert str(tmp_path) not in message


def test_study_kind_is_given_or_follows_the_recipes(tmp_path):
    manifest = _small_manifest()
    assert load_study(_write(tmp_path / "a", manifest).parent).kind == "composite_cathode"
    for recipe in manifest["recipes"].values():
        for key in ("binder", "binder_wt_pct", "process"):
            recipe.pop(key)
    assert load_study(_write(tmp_path / "b", manifest).parent).kind == "other"
    manifest.setdefault("study", {})["kind"] = "solid_electrolyte"
    assert load_study(_write(tmp_path / "c", manifest).parent).kind == "solid_electrolyte"


def test_toml_syntax_error_names_the_line(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "manifest.toml").write_text('[study]\nname = "x"\n[recipes.a]\nbinder = PTFE\n')
    with pytest.raises(ManifestError, match=r"TOML syntax error.*line 4"):
        load_study(folder)


def test_missing_manifest_or_folder(tmp_path):
    with pytest.raises(ManifestError, match="no manifest.toml in this folder"):
        load_study(tmp_path)
    with pytest.raises(ManifestError, match="no such study folder"):
        load_study(tmp_path / "nowhere")


def test_an_unreadable_data_file_is_named(tmp_path):
    manifest = _small_manifest()
    path = _write(tmp_path / "s", manifest)
    broken = path.parent / manifest["files"][2]["path"]
    broken.write_text("this is not an impedance file\n")
    with pytest.raises(FileFormatError) as info:
        load_study(path)
    assert broken.name in str(info.value)


def test_failed_cells_without_geometry_and_kelvin_temperatures(tmp_path):
    manifest = _small_manifest()
    manifest["cells"].append(
        {
            "id": "wet_NBR-ion-9",
            "recipe": "wet_NBR",
            "type": "ion",
            "status": "failed",
            "failure_reason": "coating cracked on drying",
        }
    )
    entry = manifest["files"][0]
    entry["temperature_K"] = entry.pop("temperature_C") + 273.15
    study = load_study(_write(tmp_path / "s", manifest))
    assert list(study.failures.index) == ["wet_NBR-ion-9"]
    assert study.failures.loc["wet_NBR-ion-9", "failure_reason"] == "coating cracked on drying"
    assert study.measurements[0].attrs["temperature_K"] == pytest.approx(303.15)
    summary = study.summary().set_index("cell")
    assert summary.loc["wet_NBR-ion-9", "n_files"] == 0
    assert "wet_NBR-ion-9" in study.to_datatree()["wet_NBR"].children


# --- paths stay inside the study; temperatures agree with the files ---------------------------


def _outside_file(tmp_path) -> Path:
    outside = tmp_path / "elsewhere" / "secret.mpt"
    outside.parent.mkdir(parents=True)
    shutil.copyfile(BUNDLED / MANIFEST["files"][0]["path"], outside)
    return outside


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "missing outside"])
def test_paths_outside_the_study_folder_are_refused_without_naming_them(tmp_path, how):
    outside = _outside_file(tmp_path)
    manifest = _small_manifest()
    folder = tmp_path / "s"
    _write(folder, manifest)
    if how == "absolute":
        _file(manifest).update(path=str(outside))
    elif how == "dotdot":
        _file(manifest).update(path="../elsewhere/secret.mpt")
    elif how == "missing outside":
        _file(manifest).update(path="../../../../etc/no-such-file")
    (folder / "manifest.toml").write_text(tomli_w.dumps(manifest))
    if how == "symlink":
        link = folder / _file(manifest)["path"]
        link.unlink()
        link.symlink_to(outside)
    with pytest.raises(ManifestError) as info:
        load_study(folder)
    message = str(info.value)
    assert message.startswith("manifest.toml [files #1 (") and "\n" not in message
    expected = "absolute path refused" if how == "absolute" else "leads outside the study"
    assert expected in message
    assert str(tmp_path) not in message.replace(str(outside), "")  # only as the user wrote it
    if how != "absolute":
        assert str(tmp_path) not in message


def test_root_confines_to_a_folder_above_the_manifest(tmp_path):
    manifest = _small_manifest()
    for entry in manifest["files"]:
        entry["path"] = "../data/" + entry["path"]
    upload = tmp_path / "upload"
    (upload / "study").mkdir(parents=True)
    for entry in _small_manifest()["files"]:
        target = upload / "data" / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUNDLED / entry["path"], target)
    (upload / "study" / "manifest.toml").write_text(tomli_w.dumps(manifest))
    with pytest.raises(ManifestError, match="leads outside the study"):
        load_study(upload / "study")
    study = load_study(upload / "study", root=upload)
    assert len(study.measurements) == len(manifest["files"])
    with pytest.raises(ManifestError, match="outside the folder it must stay in"):
        load_study(upload / "study", root=upload / "data")


def test_file_not_found_names_only_the_relative_path(tmp_path):
    manifest = _small_manifest()
    _file(manifest).update(path="eis/gone.mpt")
    _write(tmp_path / "s", manifest)
    with pytest.raises(ManifestError) as info:
        load_study(tmp_path / "s")
    assert str(info.value).endswith("file not found: eis/gone.mpt")


def test_a_temperature_that_contradicts_the_file_is_refused(tmp_path):
    manifest = _small_manifest()
    entry = _file(manifest)  # the file's Temperature/°C column reads 30 °C
    entry["temperature_C"] = 300.0
    _write(tmp_path / "s", manifest)
    with pytest.raises(ManifestError) as info:
        load_study(tmp_path / "s", unreadable="record")
    message = str(info.value)
    assert "files #1" in message and "\n" not in message
    assert "manifest gives 300 °C but the file states 30.0 °C" in message
    entry["temperature_C"] = 31.5  # within 2 K
    _write(tmp_path / "t", manifest)
    ds = load_study(tmp_path / "t").measurements[0]
    assert ds.attrs["file_temperature_K"] == pytest.approx(303.15, abs=0.5)


def test_unreadable_file_errors_name_the_file_relative_to_the_study(tmp_path):
    manifest = _small_manifest()
    path = _write(tmp_path / "s", manifest)
    (path.parent / manifest["files"][2]["path"]).write_text("not an impedance file\n")
    with pytest.raises(FileFormatError) as info:
        load_study(path)
    assert str(info.value).startswith(manifest["files"][2]["path"] + ":")
    study = load_study(path, unreadable="record")
    assert str(tmp_path) not in study.unreadable[0]["reason"]


# --- reader options and frequency windows in the manifest -------------------------------------


def _pellet_study(folder: Path, files: list[tuple[Path, float]], **study) -> Path:
    """A solid-electrolyte study of one pellet from real files at their temperatures."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for source, temperature_C in files:
        shutil.copyfile(source, folder / source.name)
        entries.append({"path": source.name, "cell": "pellet-1", "temperature_C": temperature_C})
    manifest = {
        "study": {"name": "pellet", "kind": "solid_electrolyte", **study},
        "recipes": {"LPSCl": {}},
        "cells": [
            {
                "id": "pellet-1",
                "recipe": "LPSCl",
                "type": "ion",
                "thickness_um": 2100.0,
                "thickness_sd_um": 10.0,
                "area_cm2": 0.503,
                "area_sd_cm2": 0.005,
            }
        ],
        "files": entries,
    }
    (folder / "manifest.toml").write_text(tomli_w.dumps(manifest))
    return folder


READERS = REPO / "tests" / "data"
CSV = READERS / "instrument-files" / "exampleData.csv"
EXTERNAL = READERS / "instrument-files-external"


def test_reader_options_from_study_cell_and_file_most_specific_wins(tmp_path):
    folder = _pellet_study(
        tmp_path / "p",
        [(CSV, 25.0), (EXTERNAL / "exampleDataPowersuite.txt", 35.0)],
        reader={"imag_sign": -1},
    )
    data = tomllib.loads((folder / "manifest.toml").read_text())
    data["files"][1]["imag_sign"] = 1  # this file's own setting wins over [study.reader]
    (folder / "manifest.toml").write_text(tomli_w.dumps(data))
    study = load_study(folder)
    csv, powersuite = study.spectra()
    first = [float(v) for v in CSV.read_text().splitlines()[0].split(",")]
    assert float(csv.z_imag[0]) == -first[2]  # negated by [study.reader]
    assert powersuite.attrs["reader_options"] == '{"imag_sign": 1}'
    assert float(powersuite.z_imag[0]) == -49014.063  # as stored: "0.1  423929.46  -49014.063"
    assert study.kind == "solid_electrolyte"


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"reader": {"colums": "0,1,2"}}, r"\[study.reader\]: unknown reader option.*'colums'"),
        ({"reader": {"imag_sign": 5}}, r"\[study.reader\]: imag_sign = 5; expected \+1 or -1"),
        ({"f_min_Hz": -3}, r"\[study\]: 'f_min_Hz' = -3; expected > 0 Hz"),
        ({"f_min_Hz": 10.0, "f_max_Hz": 1.0}, r"'f_min_Hz' = 10 is above 'f_max_Hz' = 1"),
    ],
)
def test_bad_reader_options_and_windows_are_refused(tmp_path, change, pattern):
    folder = _pellet_study(tmp_path / "p", [(CSV, 25.0)], **change)
    with pytest.raises(ManifestError, match=pattern) as info:
        load_study(folder)
    assert "\n" not in str(info.value)


def test_misspelt_entry_keys_and_empty_windows_name_the_entry(tmp_path):
    folder = _pellet_study(tmp_path / "p", [(CSV, 25.0)])
    data = tomllib.loads((folder / "manifest.toml").read_text())
    data["files"][0]["f_min_hz"] = 5.0
    (folder / "manifest.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(ManifestError, match=r"files #1 .*unknown key 'f_min_hz': did you mean"):
        load_study(folder)
    data["files"][0] = {**data["files"][0], "f_min_Hz": 1e9}
    data["files"][0].pop("f_min_hz")
    (folder / "manifest.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(ManifestError) as info:
        load_study(folder)
    message = str(info.value)
    assert "files #1 (exampleData.csv)" in message and "keeps 0 of 66 points" in message
    assert str(tmp_path) not in message


def test_windows_from_study_cell_and_file(tmp_path):
    files = [(CSV, 25.0), (EXTERNAL / "exampleDataPowersuite.txt", 35.0)]
    folder = _pellet_study(tmp_path / "p", files, f_max_Hz=1e4, drop_inductive=True)
    data = tomllib.loads((folder / "manifest.toml").read_text())
    data["cells"][0]["f_min_Hz"] = 1.0
    data["files"][1]["f_max_Hz"] = 1e5  # wins over [study] f_max_Hz
    (folder / "manifest.toml").write_text(tomli_w.dumps(data))
    csv, powersuite = load_study(folder).spectra()
    for ds, f_max in ((csv, 1e4), (powersuite, 1e5)):
        f = ds.frequency.values
        assert f.min() >= 1.0 and f.max() <= f_max and (ds.z_imag.values <= 0).all()
        assert ds.attrs["f_min_Hz"] == 1.0 and ds.attrs["f_max_Hz"] == f_max
        assert ds.attrs["n_points_dropped"] == ds.attrs["n_points_measured"] - f.size > 0


def test_every_real_file_loads_through_a_manifest(tmp_path):
    readers = [
        p
        for folder in ("instrument-files", "instrument-files-more", "instrument-files-external")
        for p in sorted((READERS / folder).iterdir())
        if p.suffix.lower() in (".txt", ".csv", ".dta", ".mpt", ".z", ".par")
        and "LICENSE" not in p.name
        and p.name not in ("exampleDataBioLogic_MissingFreq.mpt", "chronoa_data.dta")
    ]
    series = REPO.parent / "shared" / "data" / "real-spectra" / "eisfitpython-s04147"
    series = series if series.is_dir() else REPO.parent.parent / series.relative_to(REPO.parent)
    novocontrol = sorted(series.glob("s04147-*deg.txt"))
    files = [(p, 20.0 + i) for i, p in enumerate(readers)]
    files += [(p, float(p.stem.split("-")[1].removesuffix("deg"))) for p in novocontrol]
    folder = _pellet_study(tmp_path / "all", files)
    # the Gamry chronoamperometry record as an electron cell's DC file
    data = tomllib.loads((folder / "manifest.toml").read_text())
    data["cells"].append({**data["cells"][0], "id": "pellet-dc", "type": "electron"})
    shutil.copyfile(READERS / "instrument-files-more" / "chronoa_data.dta", folder / "ca.dta")
    data["files"].append({"path": "ca.dta", "cell": "pellet-dc", "temperature_C": 25.0})
    (folder / "manifest.toml").write_text(tomli_w.dumps(data))
    with pytest.warns(UserWarning, match=r"^exampleDataGamryABORT.DTA: the run was aborted"):
        study = load_study(folder)
    assert len(study.spectra()) == len(files) and len(study.dc_records()) == 1
    assert not study.unreadable and len(readers) >= 16
    temperatures = {round(ds.attrs["temperature_K"] - 273.15) for ds in study.spectra()}
    assert not novocontrol or temperatures >= {120, 140, 150, 160, 170, 180, 190, 200}


def test_unusable_paths_are_one_line_errors(tmp_path):
    folder = _pellet_study(tmp_path / "p", [(CSV, 25.0)])
    data = tomllib.loads((folder / "manifest.toml").read_text())
    for bad, expected in (
        ("a\x00b.csv", "not a usable file path"),
        ("C:\\data\\x.csv", "absolute"),
    ):
        data["files"][0]["path"] = bad
        (folder / "manifest.toml").write_text(tomli_w.dumps(data))
        with pytest.raises(ManifestError, match=expected):
            load_study(folder)


# --- the same window from the CLI, the manifest and by hand gives the same fit ----------------

CIRCUIT = "L0-R0-p(R1,CPE1)"  # the file has an inductive high-frequency tail
FIT = {"method": "lsq", "draws": 50, "chains": 1, "seed": 3}


def _cli(*args):
    from typer.testing import CliRunner

    from service.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_fit_window_from_cli_manifest_and_by_hand_agree(tmp_path):
    from inference import fit_spectrum, read_spectrum, trim

    by_hand = fit_spectrum(trim(read_spectrum(CSV), f_min_Hz=5), CIRCUIT, **FIT)
    assert by_hand.attrs["n_points_dropped"] == 32 and by_hand.attrs["f_min_Hz"] == 5
    assert by_hand.observed.sizes["frequency"] == 66 - 32
    assert by_hand.kk.to_dataset().sizes["frequency"] == 34  # KK on the points fitted
    folder = _pellet_study(tmp_path / "p", [(CSV, 25.0)], f_min_Hz=5.0)
    (spectrum,) = load_study(folder).spectra()
    from_manifest = fit_spectrum(spectrum, CIRCUIT, **FIT)
    keyword = fit_spectrum(read_spectrum(CSV), CIRCUIT, f_min_Hz=5, **FIT)
    out = tmp_path / "out"
    cli = _cli(
        "fit", CSV, "--circuit", CIRCUIT, "--f-min", 5, "--method", "lsq", "--draws", 50,
        "--chains", 1, "--seed", 3, "--out", out,
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert "32 of 66 points dropped, 34 fitted" in cli.output
    written = xr.open_datatree(out / "exampleData.nc", engine="h5netcdf")
    for fit in (from_manifest, keyword):
        for name in ("L0", "R0", "R1", "CPE1_1"):
            assert (fit.posterior[name].values == by_hand.posterior[name].values).all()
    for name in ("L0", "R0", "R1"):
        assert (written["posterior"][name].values == by_hand.posterior[name].values).all()
    assert written.attrs["n_points_dropped"] == 32


def _polar_file(tmp_path) -> Path:
    path = tmp_path / "polar.csv"
    path.write_text(
        "freq/Hz,|Z|/Ohm,Phase/deg\n" + "".join(f"{10**k},{100 + k},-{10 + k}\n" for k in range(8))
    )
    path.write_text(path.read_text().replace("-13\n", "-213\n"))
    return path


@pytest.mark.parametrize(
    ("args", "message", "names_file"),
    [
        (["--f-min", "1e9"], "keeps 0 of 66 points", True),
        (["--columns", "0,1,Zim"], "column 'Zim' not found; columns are", True),
        ("polar", "line 5: '-213' in column 'Phase/deg'; a phase must lie within ±180°", True),
        (["--f-min", "10", "--f-max", "1"], "f_min_Hz = 10 is above f_max_Hz = 1", False),
        (["--imag-sign", "2"], "imag_sign = 2; expected +1 or -1", False),
        (["--decimal", ";"], "decimal = ';'; expected '.' or ','", False),
        (["--format", "potentiostat"], "unknown format 'potentiostat'", False),
    ],
)
def test_fit_cli_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path, args, message, names_file
):
    out = tmp_path / "out"
    path = _polar_file(tmp_path) if args == "polar" else CSV
    flags = [] if args == "polar" else args
    result = _cli("fit", path, "--method", "lsq", "--draws", 20, "--out", out, *flags)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]
    assert (path.name in lines[0]) == names_file
    assert not out.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: _file(m).update(path="../elsewhere/secret.mpt"), "leads outside the study"),
        (lambda m: _file(m).update(temperature_C=390.0), "but the file states 30.0 °C"),
        (lambda m: m["study"].update(reader={"colums": "0,1,2"}), "unknown reader option"),
    ],
)
def test_analyze_cli_refuses_bad_manifests_before_writing(tmp_path, change, message):
    _outside_file(tmp_path)
    manifest = _small_manifest()
    _write(tmp_path / "s", manifest)
    change(manifest)
    (tmp_path / "s" / "manifest.toml").write_text(tomli_w.dumps(manifest))
    out = tmp_path / "out"
    result = _cli("analyze", tmp_path / "s", "--out", out, "--method", "lsq", "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output and "manifest.toml [" in result.output
    assert str(tmp_path / "elsewhere") not in result.output
    assert not out.exists()
