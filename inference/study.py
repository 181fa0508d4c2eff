"""A study: the manifest that maps instrument files to recipes, cells and temperatures.

The manifest is ``<study>/manifest.toml``; paths in it are relative to its folder::

    [study]                          # optional; any keys, kept as given
    name = "emley2023"
    description = "dry vs wet composite cathodes"
    kind = "composite_cathode"       # or "solid_electrolyte", "other" (see Study.kind)

    [recipes.dry_PTFE]               # one table per recipe
    binder = "PTFE"                  # optional: binder type (any name)
    binder_wt_pct = 0.5              # optional: wt % of all solids, 0..100
    process = "dry"                  # optional: process name (any name)
    press_MPa = 375                  # any further keys are process parameters, kept as given

    [[cells]]                        # one table per cell
    id = "dry_PTFE-ion-1"            # unique
    recipe = "dry_PTFE"              # a recipe above
    type = "ion"                     # ion = Li|SE|composite|SE|Li (EIS → σ_ion),
                                     # electron = Ti|composite|Ti (DC → σ_el)
    thickness_um = 60.8              # composite thickness and its sd, µm (0 <= sd < value)
    thickness_sd_um = 2.0
    area_cm2 = 1.267                 # electrode area and its sd, cm² (0 <= sd < value)
    area_sd_cm2 = 0.01
    # status = "failed"              # a cell that could not be made: give failure_reason,
    # failure_reason = "..."         # no geometry and no files

    [[files]]                        # one table per instrument file
    path = "eis/dry_PTFE-ion-1_30C.mpt"
    cell = "dry_PTFE-ion-1"
    temperature_C = 30.0             # or temperature_K; -100..500 °C
    # kind = "eis"                   # "eis" or "dc"; default eis for ion cells, dc for electron

:func:`load_study` checks the whole manifest first (every problem raises
:class:`~inference.errors.ManifestError` naming the manifest, the entry and what was expected),
then reads every file with :func:`inference.readers.read_spectrum` / ``read_dc`` (a bad file
raises :class:`~inference.errors.FileFormatError` naming it).
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from inference.errors import FileFormatError, ManifestError
from inference.readers import read_dc, read_spectrum

MANIFEST_NAME = "manifest.toml"
CELL_TYPES = ("ion", "electron")
#: What a study measures (``[study] kind``); it chooses priors and which predictions apply.
STUDY_KINDS = ("composite_cathode", "solid_electrolyte", "other")
#: Recipe fields that make a study a composite cathode when ``kind`` is not given.
BINDER_FIELDS = ("binder", "binder_wt_pct", "process")
KINDS = ("eis", "dc")
DEFAULT_KIND = {"ion": "eis", "electron": "dc"}
TEMPERATURE_RANGE_C = (-100.0, 500.0)
ZERO_C_K = 273.15
CELL_COLUMNS = [
    "recipe",
    "type",
    "status",
    "failure_reason",
    "thickness_cm",
    "thickness_sd_cm",
    "area_cm2",
    "area_sd_cm2",
]


@dataclass
class Study:
    """Every spectrum and DC record of a study, labelled by recipe, cell and temperature.

    Attributes
    ----------
    manifest_path : the manifest read; file paths are relative to its folder.
    info : the manifest's ``[study]`` table (``name``, ``description``, …).
    kind : ``composite_cathode``, ``solid_electrolyte`` or ``other``: ``[study] kind``, else
        ``composite_cathode`` when any recipe gives a binder field, else ``other``.
    recipes : recipe name → its fields as given (binder, binder_wt_pct, process, …).
    cells : DataFrame indexed by ``cell_id`` with columns ``recipe``, ``type``, ``status``
        (``ok``/``failed``), ``failure_reason``, ``thickness_cm``, ``thickness_sd_cm``,
        ``area_cm2``, ``area_sd_cm2`` (NaN geometry for failed cells).
    measurements : one Dataset per file, in manifest order: spectra (dim ``frequency``) and
        DC records (dim ``time``) as the readers return them, with attrs ``recipe``,
        ``cell_id``, ``cell_type``, ``kind``, ``temperature_K``, ``thickness_cm``,
        ``thickness_sd_cm``, ``area_cm2``, ``area_sd_cm2``, ``manifest_path`` (as written in
        the manifest) and ``file_sha256``.
    manifest_sha256 : hash of the manifest's bytes, for provenance.
    unreadable : files skipped by ``load_study(..., unreadable="record")``, each a dict with
        ``file``, ``recipe``, ``cell_id``, ``cell_type``, ``kind``, ``temperature_K``, ``reason``.
    """

    manifest_path: Path
    info: dict
    recipes: dict[str, dict]
    cells: pd.DataFrame
    measurements: list[xr.Dataset] = field(repr=False)
    manifest_sha256: str = ""
    unreadable: list[dict] = field(default_factory=list)
    kind: str = "other"

    @property
    def name(self) -> str:
        """The study's name (``[study] name``, else its folder's name)."""
        return str(self.info.get("name", self.manifest_path.parent.name))

    @property
    def failures(self) -> pd.DataFrame:
        """Cells that could not be made: ``recipe``, ``type``, ``failure_reason``."""
        failed = self.cells[self.cells["status"] == "failed"]
        return failed[["recipe", "type", "failure_reason"]]

    def _select(self, kind, recipe, cell, cell_type) -> Iterator[xr.Dataset]:
        for ds in self.measurements:
            a = ds.attrs
            if a["kind"] != kind:
                continue
            if recipe is not None and a["recipe"] != recipe:
                continue
            if cell is not None and a["cell_id"] != cell:
                continue
            if cell_type is not None and a["cell_type"] != cell_type:
                continue
            yield ds

    def spectra(self, recipe=None, cell=None, cell_type=None) -> list[xr.Dataset]:
        """Impedance spectra, optionally of one recipe / cell / cell type, in manifest order."""
        return list(self._select("eis", recipe, cell, cell_type))

    def dc_records(self, recipe=None, cell=None, cell_type=None) -> list[xr.Dataset]:
        """DC records, optionally of one recipe / cell / cell type, in manifest order."""
        return list(self._select("dc", recipe, cell, cell_type))

    def summary(self) -> pd.DataFrame:
        """One row per cell: recipe, cell, type, status, files, temperatures, T range (°C)."""
        rows = []
        for cell_id, cell in self.cells.iterrows():
            temps = sorted(
                {
                    ds.attrs["temperature_K"] - ZERO_C_K
                    for ds in self.measurements
                    if ds.attrs["cell_id"] == cell_id
                }
            )
            n_files = sum(ds.attrs["cell_id"] == cell_id for ds in self.measurements)
            rows.append(
                {
                    "recipe": cell["recipe"],
                    "cell": cell_id,
                    "type": cell["type"],
                    "status": cell["status"],
                    "n_files": n_files,
                    "n_temperatures": len(temps),
                    "T_min_C": round(temps[0], 2) if temps else math.nan,
                    "T_max_C": round(temps[-1], 2) if temps else math.nan,
                }
            )
        return pd.DataFrame(rows)

    def to_datatree(self) -> xr.DataTree:
        """The study as a tree ``/<recipe>/<cell>/<kind>_<T>C``.

        For example ``/dry_PTFE/dry_PTFE-ion-1/eis_30C`` is that cell's spectrum at 30 °C.
        The root carries the ``[study]`` attrs, each recipe node its fields, each cell node its
        geometry; booleans become 0/1 so the tree can be written to NetCDF.
        """
        tree = {"/": xr.Dataset(attrs=_netcdf_attrs(self.info))}
        for name, fields_ in self.recipes.items():
            tree[f"/{name}"] = xr.Dataset(attrs=_netcdf_attrs(fields_))
        for cell_id, cell in self.cells.iterrows():
            attrs = {k: v for k, v in cell.items() if not _is_missing(v)}
            tree[f"/{cell['recipe']}/{cell_id}"] = xr.Dataset(attrs=_netcdf_attrs(attrs))
        for ds in self.measurements:
            a = ds.attrs
            temperature_C = round(a["temperature_K"] - ZERO_C_K, 2)
            tree[f"/{a['recipe']}/{a['cell_id']}/{a['kind']}_{temperature_C:g}C"] = ds
        return xr.DataTree.from_dict(tree)


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _netcdf_attrs(attrs: dict) -> dict:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, str | int | float) or (
            isinstance(value, list) and all(isinstance(v, int | float | str) for v in value)
        ):
            out[key] = value
        else:
            out[key] = str(value)
    return out


def _manifest_file(path: Path) -> Path:
    if path.is_dir():
        candidate = path / MANIFEST_NAME
        if not candidate.is_file():
            raise ManifestError(path, f"no {MANIFEST_NAME} in this folder")
        return candidate
    if not path.is_file():
        raise ManifestError(path, "no such study folder or manifest file")
    return path


def _number(manifest, entry: str, table: dict, key: str) -> float:
    value = table.get(key)
    if value is None:
        raise ManifestError(manifest, f"'{key}' is missing", entry)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ManifestError(manifest, f"'{key}' must be a number, got {value!r}", entry)
    return float(value)


def _text(manifest, entry: str, table: dict, key: str) -> str:
    value = table.get(key)
    if value is None:
        raise ManifestError(manifest, f"'{key}' is missing", entry)
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(manifest, f"'{key}' must be a non-empty string, got {value!r}", entry)
    return value


def _table_list(manifest, data: dict, key: str) -> list[dict]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ManifestError(manifest, f"'{key}' must be an array of tables ([[{key}]])")
    return value


def _check_recipes(manifest, data: dict) -> dict[str, dict]:
    recipes = data.get("recipes")
    if not isinstance(recipes, dict) or not recipes:
        raise ManifestError(manifest, "no recipes: expected at least one [recipes.<name>] table")
    for name, fields_ in recipes.items():
        entry = f"recipes.{name}"
        if not isinstance(fields_, dict):
            raise ManifestError(manifest, "must be a table of recipe fields", entry)
        for key in ("binder", "process"):
            if key in fields_:
                _text(manifest, entry, fields_, key)
        if "binder_wt_pct" in fields_:
            wt = _number(manifest, entry, fields_, "binder_wt_pct")
            if not 0 <= wt <= 100:
                raise ManifestError(manifest, f"'binder_wt_pct' = {wt:g} is outside 0..100", entry)
    return recipes


def _study_kind(manifest, info: dict, recipes: dict) -> str:
    """``[study] kind``, checked; else the default rule of :class:`Study`."""
    if "kind" not in info:
        has_binder = any(key in r for r in recipes.values() for key in BINDER_FIELDS)
        return "composite_cathode" if has_binder else "other"
    kind = info["kind"]
    if kind not in STUDY_KINDS:
        raise ManifestError(
            manifest, f"'kind' = {kind!r}; expected one of {', '.join(STUDY_KINDS)}", "study"
        )
    return kind


def _check_cells(manifest, data: dict, recipes: dict) -> pd.DataFrame:
    rows, seen = {}, set()
    for i, cell in enumerate(_table_list(manifest, data, "cells")):
        entry = f"cells #{i + 1}"
        cell_id = _text(manifest, entry, cell, "id")
        entry = f"cells #{i + 1} ({cell_id})"
        if cell_id in seen:
            raise ManifestError(manifest, f"duplicate cell id {cell_id!r}", entry)
        seen.add(cell_id)
        recipe = _text(manifest, entry, cell, "recipe")
        if recipe not in recipes:
            known = ", ".join(recipes)
            raise ManifestError(manifest, f"unknown recipe {recipe!r}; recipes are: {known}", entry)
        cell_type = _text(manifest, entry, cell, "type")
        if cell_type not in CELL_TYPES:
            raise ManifestError(
                manifest, f"'type' = {cell_type!r}; expected 'ion' or 'electron'", entry
            )
        status = cell.get("status", "ok")
        if status not in ("ok", "failed"):
            raise ManifestError(
                manifest, f"'status' = {status!r}; expected 'ok' or 'failed'", entry
            )
        row = {"recipe": recipe, "type": cell_type, "status": status, "failure_reason": ""}
        if status == "failed":
            row["failure_reason"] = _text(manifest, entry, cell, "failure_reason")
            row |= dict.fromkeys(CELL_COLUMNS[4:], math.nan)
        else:
            row |= _geometry(manifest, entry, cell)
        rows[cell_id] = row
    if not rows:
        raise ManifestError(manifest, "no cells: expected at least one [[cells]] table")
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=CELL_COLUMNS)
    frame.index.name = "cell_id"
    return frame


def _geometry(manifest, entry: str, cell: dict) -> dict:
    thickness = _number(manifest, entry, cell, "thickness_um")
    thickness_sd = _number(manifest, entry, cell, "thickness_sd_um")
    area = _number(manifest, entry, cell, "area_cm2")
    area_sd = _number(manifest, entry, cell, "area_sd_cm2")
    if thickness <= 0:
        raise ManifestError(
            manifest, f"impossible thickness_um = {thickness:g}; expected > 0", entry
        )
    if not 0 <= thickness_sd < thickness:
        raise ManifestError(
            manifest,
            f"impossible thickness_sd_um = {thickness_sd:g}; expected 0 <= sd < thickness_um "
            f"({thickness:g})",
            entry,
        )
    if area <= 0:
        raise ManifestError(manifest, f"impossible area_cm2 = {area:g}; expected > 0", entry)
    if not 0 <= area_sd < area:
        raise ManifestError(
            manifest,
            f"impossible area_sd_cm2 = {area_sd:g}; expected 0 <= sd < area_cm2 ({area:g})",
            entry,
        )
    return {
        "thickness_cm": thickness * 1e-4,
        "thickness_sd_cm": thickness_sd * 1e-4,
        "area_cm2": area,
        "area_sd_cm2": area_sd,
    }


@dataclass(frozen=True)
class _FileEntry:
    path: Path
    as_written: str
    cell_id: str
    kind: str
    temperature_K: float


def _check_files(manifest: Path, data: dict, cells: pd.DataFrame) -> list[_FileEntry]:
    root = manifest.parent
    entries, seen_paths, seen_keys = [], {}, {}
    for i, item in enumerate(_table_list(manifest, data, "files")):
        entry = f"files #{i + 1}"
        rel = _text(manifest, entry, item, "path")
        entry = f"files #{i + 1} ({rel})"
        cell_id = _text(manifest, entry, item, "cell")
        if cell_id not in cells.index:
            raise ManifestError(
                manifest, f"unknown cell {cell_id!r}; add it under [[cells]]", entry
            )
        cell = cells.loc[cell_id]
        if cell["status"] == "failed":
            raise ManifestError(
                manifest, f"cell {cell_id!r} is marked failed but has a file", entry
            )
        temperature_K = _temperature_K(manifest, entry, item)
        kind = item.get("kind", DEFAULT_KIND[cell["type"]])
        if kind not in KINDS:
            raise ManifestError(manifest, f"'kind' = {kind!r}; expected 'eis' or 'dc'", entry)
        path = (root / rel).resolve()
        if path in seen_paths:
            raise ManifestError(
                manifest, f"duplicate file: also listed as {seen_paths[path]}", entry
            )
        seen_paths[path] = entry
        key = (cell_id, round(temperature_K, 6), kind)
        if key in seen_keys:
            raise ManifestError(
                manifest,
                f"duplicate {kind} measurement of cell {cell_id!r} at "
                f"{temperature_K - ZERO_C_K:g} °C: also {seen_keys[key]}",
                entry,
            )
        seen_keys[key] = entry
        if not path.is_file():
            raise ManifestError(manifest, f"file not found: {rel} (looked for {path})", entry)
        entries.append(_FileEntry(path, rel, cell_id, kind, temperature_K))
    return entries


def _temperature_K(manifest, entry: str, item: dict) -> float:
    has_c, has_k = "temperature_C" in item, "temperature_K" in item
    if has_c == has_k:
        raise ManifestError(
            manifest, "give exactly one of 'temperature_C' or 'temperature_K'", entry
        )
    if has_c:
        celsius = _number(manifest, entry, item, "temperature_C")
    else:
        celsius = _number(manifest, entry, item, "temperature_K") - ZERO_C_K
    low, high = TEMPERATURE_RANGE_C
    if not low <= celsius <= high:
        raise ManifestError(
            manifest, f"temperature {celsius:g} °C is outside {low:g}..{high:g} °C", entry
        )
    return celsius + ZERO_C_K


def load_study(path, *, unreadable: str = "raise") -> Study:
    """Load a study folder (or its ``manifest.toml``) with all its spectra and DC records.

    Parameters
    ----------
    path : the study folder or its manifest.
    unreadable : ``"raise"`` (default) stops at the first data file that cannot be read;
        ``"record"`` skips it and lists it in :attr:`Study.unreadable` with the reason, so an
        analysis can go on and report it. Manifest errors always raise.

    Raises
    ------
    ManifestError
        Missing manifest or data file, TOML syntax error (with its line), unknown recipe or
        cell, duplicate cell ids or measurements, impossible geometry, temperature outside
        −100..500 °C; one line naming the manifest and the entry.
    FileFormatError
        A data file cannot be read (names the file).
    """
    manifest = _manifest_file(Path(path))
    raw = manifest.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ManifestError(manifest, f"not UTF-8 text (byte {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(manifest, f"TOML syntax error: {err}") from None
    info = data.get("study", {})
    if not isinstance(info, dict):
        raise ManifestError(manifest, "'study' must be a table ([study])")
    recipes = _check_recipes(manifest, data)
    kind = _study_kind(manifest, info, recipes)
    cells = _check_cells(manifest, data, recipes)
    entries = _check_files(manifest, data, cells)
    if unreadable not in ("raise", "record"):
        raise ValueError(f"unreadable must be 'raise' or 'record', got {unreadable!r}")
    measurements, skipped = [], []
    for entry in entries:
        cell = cells.loc[entry.cell_id]
        try:
            measurements.append(_read(entry, cell))
        except FileFormatError as err:
            if unreadable == "raise":
                raise
            skipped.append(
                {
                    "file": entry.as_written,
                    "recipe": cell["recipe"],
                    "cell_id": entry.cell_id,
                    "cell_type": cell["type"],
                    "kind": entry.kind,
                    "temperature_K": entry.temperature_K,
                    "reason": str(err),
                }
            )
    return Study(
        manifest_path=manifest,
        info=dict(info),
        recipes={name: dict(fields_) for name, fields_ in recipes.items()},
        cells=cells,
        measurements=measurements,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        unreadable=skipped,
        kind=kind,
    )


def _read(entry: _FileEntry, cell: pd.Series) -> xr.Dataset:
    reader = read_spectrum if entry.kind == "eis" else read_dc
    ds = reader(entry.path)
    file_temperature = ds.attrs.get("temperature_K")
    if file_temperature is not None:
        ds.attrs["file_temperature_K"] = file_temperature
    ds.attrs.update(
        recipe=cell["recipe"],
        cell_id=entry.cell_id,
        cell_type=cell["type"],
        kind=entry.kind,
        temperature_K=entry.temperature_K,
        thickness_cm=float(cell["thickness_cm"]),
        thickness_sd_cm=float(cell["thickness_sd_cm"]),
        area_cm2=float(cell["area_cm2"]),
        area_sd_cm2=float(cell["area_sd_cm2"]),
        manifest_path=entry.as_written,
        file_sha256=hashlib.sha256(entry.path.read_bytes()).hexdigest(),
    )
    return ds
