"""A study: the manifest that maps instrument files to recipes, cells and temperatures.

The manifest is ``<study>/manifest.toml``; paths in it are relative to its folder::

    [study]                          # optional; any keys, kept as given
    name = "emley2023"
    description = "dry vs wet composite cathodes"
    kind = "composite_cathode"       # or "solid_electrolyte", "other" (see Study.kind)
    # f_min_Hz = 5.0                 # frequency window of every spectrum (Hz), and
    # f_max_Hz = 2.5e5               # drop_inductive = true: drop points with Im(Z) > 0;
    # drop_inductive = false         # a cell or file entry may set its own (most specific wins)

    [study.reader]                   # optional: reader options for every file (see below)
    # format = "novocontrol"         # skip detection
    # columns = "Freq.[Hz],Zs'[ohm],Zs''[ohm]"   # frequency, Re, Im: header text or 0-based
    # imag_sign = -1                 # the file stores -Im(Z) under a plain header
    # decimal = ","                  # decimal mark
    # delimiter = "tab"              # or ";", ",", "whitespace"

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
    # columns = [0, 1, 2]            # reader options and window keys may be given per file
    # f_min_Hz = 10.0                # (or per cell), overriding [study.reader] / [study]

:func:`load_study` checks the whole manifest first (every problem raises
:class:`~inference.errors.ManifestError` naming the manifest, the entry and what was expected),
then reads every file with :func:`inference.readers.read_spectrum` / ``read_dc`` (a bad file
raises :class:`~inference.errors.FileFormatError` naming it) and trims each spectrum to its
window (:func:`inference.window.trim`).

Paths are confined to the study folder (or to ``root``): an absolute ``path``, or one that
leads outside (``..``, a symbolic link) is refused before anything is opened, and no message
names a path other than as written in the manifest or relative to the study folder. A file
that states its own temperature (a temperature column, a Novocontrol fixed value) must agree
with the manifest within :data:`TEMPERATURE_TOLERANCE_K`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import tomllib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import pandas as pd
import xarray as xr

from inference.errors import FileFormatError, InputError, ManifestError
from inference.readers import read_dc, read_spectrum
from inference.readers.options import check_options
from inference.window import WINDOW_KEYS, trim

MANIFEST_NAME = "manifest.toml"
CELL_TYPES = ("ion", "electron")
#: What a study measures (``[study] kind``); it chooses priors and which predictions apply.
STUDY_KINDS = ("composite_cathode", "solid_electrolyte", "other")
#: Recipe fields that make a study a composite cathode when ``kind`` is not given.
BINDER_FIELDS = ("binder", "binder_wt_pct", "process")
KINDS = ("eis", "dc")
DEFAULT_KIND = {"ion": "eis", "electron": "dc"}
TEMPERATURE_RANGE_C = (-100.0, 500.0)
#: A file that states its temperature may differ from the manifest's by at most this (K).
TEMPERATURE_TOLERANCE_K = 2.0
ZERO_C_K = 273.15
#: Reader options a manifest may give ([study.reader], cells, files); ``max_bytes`` stays the
#: reader's (a manifest from a client must not lift the size limit).
READER_KEYS = ("format", "columns", "imag_sign", "decimal", "delimiter")
_FILE_KEYS = ("path", "cell", "temperature_C", "temperature_K", "kind")
_CELL_KEYS = ("id", "recipe", "type", "status", "failure_reason", "thickness_um")
_CELL_KEYS += ("thickness_sd_um", "area_cm2", "area_sd_cm2")
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
        the manifest), ``file_sha256``, the reader options used (``reader_options``, JSON) and,
        for a trimmed spectrum, its window (see :func:`inference.window.trim`).
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
        _check_keys(manifest, entry, cell, _CELL_KEYS)
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


def _check_keys(manifest, entry: str, table: dict, known: tuple[str, ...]) -> None:
    """Refuse a key that is a misspelt reader option or window key (``colums``, ``f_min``)."""
    options = (*READER_KEYS, *WINDOW_KEYS)
    for key in table:
        if key in known or key in options:
            continue
        close = difflib.get_close_matches(key, options, n=1, cutoff=0.75)
        if close:
            raise ManifestError(manifest, f"unknown key {key!r}: did you mean {close[0]!r}?", entry)


def _reader_options(manifest, entry: str, table: dict) -> dict:
    """The reader options of a manifest table, checked (ManifestError naming ``entry``)."""
    options = {k: table[k] for k in READER_KEYS if k in table}
    try:
        check_options(options)
    except InputError as err:
        raise ManifestError(manifest, str(err), entry) from None
    return options


def _window(manifest, entry: str, table: dict) -> dict:
    """The window keys of a manifest table, checked."""
    window = {}
    for key in ("f_min_Hz", "f_max_Hz"):
        if key in table:
            value = _number(manifest, entry, table, key)
            if not value > 0:
                raise ManifestError(manifest, f"'{key}' = {value:g}; expected > 0 Hz", entry)
            window[key] = value
    if "drop_inductive" in table:
        if not isinstance(table["drop_inductive"], bool):
            raise ManifestError(
                manifest,
                f"'drop_inductive' = {table['drop_inductive']!r}; expected true or false",
                entry,
            )
        window["drop_inductive"] = table["drop_inductive"]
    low, high = window.get("f_min_Hz"), window.get("f_max_Hz")
    if low is not None and high is not None and low > high:
        raise ManifestError(manifest, f"'f_min_Hz' = {low:g} is above 'f_max_Hz' = {high:g}", entry)
    return window


def _study_settings(manifest, data: dict, info: dict) -> tuple[dict, dict]:
    """``[study.reader]`` options and the ``[study]`` window: the defaults of every file."""
    reader = info.get("reader", {})
    if not isinstance(reader, dict):
        raise ManifestError(manifest, "'reader' must be a table ([study.reader])", "study")
    unknown = sorted(set(reader) - set(READER_KEYS))
    if unknown:
        raise ManifestError(
            manifest,
            f"unknown reader option(s) {', '.join(map(repr, unknown))}; options are "
            f"{', '.join(READER_KEYS)}",
            "study.reader",
        )
    return _reader_options(manifest, "study.reader", reader), _window(manifest, "study", info)


@dataclass(frozen=True)
class _FileEntry:
    path: Path
    as_written: str
    cell_id: str
    kind: str
    temperature_K: float
    entry: str = ""
    reader: dict = field(default_factory=dict)
    window: dict = field(default_factory=dict)


def _is_absolute(rel: str) -> bool:
    """Absolute on this system or on Windows (``C:\\data``, ``\\\\server\\share``, ``/x``)."""
    win = PureWindowsPath(rel)
    return Path(rel).is_absolute() or win.is_absolute() or bool(win.drive) or rel[:1] in "/\\"


def _confined(manifest, entry: str, folder: Path, root: Path, rel: str) -> Path:
    """``folder/rel`` resolved, refused when absolute or outside ``root`` (``..``, symlinks).

    Checked before the file is looked at, so that a refusal says nothing about what exists
    outside the study.
    """
    if _is_absolute(rel):
        raise ManifestError(
            manifest, "absolute path refused: give the path relative to the study folder", entry
        )
    try:
        path = (folder / rel).resolve()
    except (OSError, RuntimeError, ValueError):  # NUL byte, name too long, symlink loop
        raise ManifestError(manifest, "not a usable file path", entry) from None
    if not path.is_relative_to(root):
        raise ManifestError(
            manifest,
            "path leads outside the study folder ('..' or a symbolic link); files must lie "
            "inside it",
            entry,
        )
    return path


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _check_files(
    manifest, data: dict, cells: pd.DataFrame, folder: Path, root: Path, defaults: tuple
) -> list[_FileEntry]:
    study_reader, study_window = defaults
    cell_settings = {
        str(c.get("id")): (
            _reader_options(manifest, f"cells #{i + 1} ({c.get('id')})", c),
            _window(manifest, f"cells #{i + 1} ({c.get('id')})", c),
        )
        for i, c in enumerate(_table_list(manifest, data, "cells"))
    }
    entries, seen_paths, seen_keys = [], {}, {}
    for i, item in enumerate(_table_list(manifest, data, "files")):
        entry = f"files #{i + 1}"
        rel = _text(manifest, entry, item, "path")
        entry = f"files #{i + 1} ({rel})"
        _check_keys(manifest, entry, item, _FILE_KEYS)
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
        path = _confined(manifest, entry, folder, root, rel)
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
        if not _is_file(path):
            raise ManifestError(manifest, f"file not found: {rel}", entry)
        cell_reader, cell_window = cell_settings.get(cell_id, ({}, {}))
        reader = {**study_reader, **cell_reader, **_reader_options(manifest, entry, item)}
        window = {**study_window, **cell_window, **_window(manifest, entry, item)}
        entries.append(_FileEntry(path, rel, cell_id, kind, temperature_K, entry, reader, window))
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


def _shown(path: Path, given, root: Path) -> str:
    """How messages name the manifest: as the caller wrote it, unless that is absolute."""
    if not Path(given).is_absolute():
        return str(path if Path(given).is_dir() else given)
    return str(path.resolve().relative_to(root))


def _parse(path, root) -> tuple[Path, Path, Path, str, bytes, dict]:
    """The manifest file, its folder, the confinement root, its name for messages, its bytes
    and its TOML content."""
    manifest = _manifest_file(Path(path))
    folder = manifest.resolve().parent
    confine = Path(root).resolve() if root is not None else folder
    if not folder.is_relative_to(confine):
        raise ManifestError(manifest.name, "the manifest lies outside the folder it must stay in")
    shown = _shown(manifest, path, confine)
    raw = manifest.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ManifestError(shown, f"not UTF-8 text (byte {err.start})") from None
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(shown, f"TOML syntax error: {err}") from None
    return manifest, folder, confine, shown, raw, data


def check_paths(path, *, root=None) -> None:
    """Refuse a manifest whose ``[[files]]`` paths leave the study folder (or ``root``).

    The confinement :func:`load_study` applies, without reading any data file: for a server
    that checks a study at submission and loads it later.

    Raises
    ------
    ManifestError
        An absolute path, ``..`` or a symbolic link out; names the entry, no resolved path.
    """
    _, folder, confine, shown, _, data = _parse(path, root)
    for i, item in enumerate(_table_list(shown, data, "files")):
        rel = item.get("path")
        if isinstance(rel, str):
            _confined(shown, f"files #{i + 1} ({rel})", folder, confine, rel)


def load_study(path, *, unreadable: str = "raise", root=None) -> Study:
    """Load a study folder (or its ``manifest.toml``) with all its spectra and DC records.

    Parameters
    ----------
    path : the study folder or its manifest.
    unreadable : ``"raise"`` (default) stops at the first data file that cannot be read;
        ``"record"`` skips it and lists it in :attr:`Study.unreadable` with the reason, so an
        analysis can go on and report it. Manifest errors always raise.
    root : the folder that every data file must lie in (default: the manifest's folder); a
        server passes the upload folder. The manifest must lie inside it too.

    Raises
    ------
    ManifestError
        Missing manifest or data file, TOML syntax error (with its line), unknown recipe or
        cell, duplicate cell ids or measurements, impossible geometry, temperature outside
        −100..500 °C or more than 2 K from the one the file states, a path outside the study
        folder, a bad reader option or window; one line naming the manifest and the entry.
    FileFormatError
        A data file cannot be read (names the file as the manifest writes it).
    """
    manifest, folder, confine, shown, raw, data = _parse(path, root)
    info = data.get("study", {})
    if not isinstance(info, dict):
        raise ManifestError(shown, "'study' must be a table ([study])")
    defaults = _study_settings(shown, data, info)
    recipes = _check_recipes(shown, data)
    kind = _study_kind(shown, info, recipes)
    cells = _check_cells(shown, data, recipes)
    entries = _check_files(shown, data, cells, folder, confine, defaults)
    if unreadable not in ("raise", "record"):
        raise ValueError(f"unreadable must be 'raise' or 'record', got {unreadable!r}")
    measurements, skipped = [], []
    for entry in entries:
        cell = cells.loc[entry.cell_id]
        try:
            measurements.append(_read(shown, entry, cell))
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


def _read(manifest: str, entry: _FileEntry, cell: pd.Series) -> xr.Dataset:
    """Read one file; errors and warnings name it as the manifest writes it."""
    reader = read_spectrum if entry.kind == "eis" else read_dc
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = reader(entry.path, **entry.reader)
    except FileFormatError as err:
        raise FileFormatError(entry.as_written, err.problem, err.line) from None
    except InputError as err:
        raise ManifestError(manifest, str(err), entry.entry) from None
    for w in caught:
        message = str(w.message).replace(str(entry.path), entry.as_written)
        warnings.warn(message, w.category, stacklevel=3)
    file_temperature = ds.attrs.get("temperature_K")
    if file_temperature is not None:
        ds.attrs["file_temperature_K"] = file_temperature
        if abs(file_temperature - entry.temperature_K) > TEMPERATURE_TOLERANCE_K:
            raise ManifestError(
                manifest,
                f"the manifest gives {entry.temperature_K - ZERO_C_K:g} °C but the file states "
                f"{file_temperature - ZERO_C_K:.1f} °C (more than "
                f"{TEMPERATURE_TOLERANCE_K:g} K apart)",
                entry.entry,
            )
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
    if entry.reader:
        ds.attrs["reader_options"] = json.dumps(entry.reader)
    if entry.kind == "eis" and entry.window:
        try:
            ds = trim(ds, **entry.window)
        except InputError as err:
            problem = str(err).split(": ", 1)[-1]
            raise ManifestError(manifest, f"{entry.as_written}: {problem}", entry.entry) from None
    return ds
