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
