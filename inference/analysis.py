"""Whole-study analysis: fit every spectrum and DC record, then the hierarchical Arrhenius layer.

>>> from inference.analysis import analyze_study
>>> result = analyze_study("datasets/emley2023", seed=0)          # doctest: +SKIP
>>> result.conductivity_table(temperature_C=30)                     # doctest: +SKIP
>>> result.compare("dry_PTFE", "wet_NBR", kind="ionic")             # doctest: +SKIP
>>> result.write("out/emley2023")      # result.nc, summary.json, report.html  # doctest: +SKIP

Stage 1 (per record, :func:`fit_records`): an ion cell's spectrum is fitted with the study's
circuit (:func:`inference.fit.fit_spectra`; one compiled sampler serves every spectrum of the
same structure); an electron cell's DC record with :func:`inference.dc.fit_dc`. The records are
cut into batches run by worker processes (``workers=``, default the available cores; or any
executor, e.g. Ray in the service, see :mod:`inference.workers`); every record has its own seed,
so the result does not depend on how many workers ran it. Each gives
draws of σ = L/(R·A) at the *reported* geometry, summarised as the mean and sd of log10 σ (the
fit's own uncertainty); the geometry's uncertainty is kept apart, per cell, because it moves all
temperatures of a cell together (see :mod:`inference.arrhenius`).

A record whose file or fit fails is listed in :attr:`StudyResult.failures` with the reason and
left out of stage 2; a spectrum that fails its Kramers–Kronig check is flagged and kept.

Stage 2: :func:`inference.arrhenius.fit_arrhenius` per kind (``ionic``, ``electronic``; the two
layers run side by side on the workers), or with
``joint=True`` the ionic layer is fitted together with every ion spectrum
(:func:`inference.arrhenius.fit_joint_arrhenius`; slow, see there).
"""

from __future__ import annotations

import json
import math
import platform
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from inference import arrhenius as arr
from inference import diagnostics as dg
from inference.errors import FitCancelled, InputError, ModelError, SigmalabError
from inference.rate_capability import retention_draws
from inference.summary import SCHEMA_VERSION, json_safe, write_atomic, write_summary

DEFAULT_CIRCUIT = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
ZERO_C_K = 273.15
KIND_OF_CELL = {"ion": "ionic", "electron": "electronic"}
#: Posterior draws per stage-1 fit used for the Nyquist bands (result.nc keeps them all,
#: unless ``keep_draws`` asks for fewer).
BAND_DRAWS = 200
#: Frequencies of the fitted Nyquist curves (log grid over the measured range).
CURVE_POINTS = 160
#: Rate-capability pushforward (physics.md §2.7): temperature and C-rates (h⁻¹).
RATE_TEMPERATURE_C = 60.0
RATE_C_RATES = (1 / 3, 1 / 2)
#: σ reported further than this outside a kind's measured temperatures is flagged (K).
EXTRAPOLATION_WARN_K = 10.0
ProgressFn = Callable[[dict], None]


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------


def _interval(draws: np.ndarray) -> tuple[float, float, float]:
    lo, med, hi = np.quantile(np.asarray(draws).ravel(), [0.05, 0.5, 0.95])
    return float(med), float(lo), float(hi)


@dataclass
class StudyResult:
    """Everything a study analysis produced.

    Attributes
    ----------
    study_name, study_path : the study analysed.
    records : one row per spectrum / DC record: ``id``, ``file``, ``kind`` (ionic/electronic),
        ``recipe``, ``cell``, ``temperature_K``, ``log10_sigma``, ``log10_sigma_sd``,
        ``geometry_sd`` (decades), ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``,
        ``divergences``, ``bfmi``, ``at_bound`` (list), ``kk_passed``, ``flags``, ``status``
        (``ok``: used; ``failed``: the file or fit raised; ``excluded``: fitted but its chains
        disagree, r̂ > :data:`inference.diagnostics.RHAT_EXCLUDE`), ``reason``, ``verdict``
        (``ok``/``warning``/``excluded``, :mod:`inference.diagnostics`), ``reasons`` (list) and
        ``n_runs`` (NUTS runs, > 1 where a threshold asked for a rerun).
    arrhenius : kind → ArviZ DataTree of the Arrhenius layer (see :func:`arr.fit_arrhenius`).
    fits : record id → stage-1 fit as an ArviZ DataTree: ``posterior`` (natural-unit
        parameters, every draw), ``sample_stats`` and ``log_likelihood``.
    curves : record id → for a spectrum, data and fitted Nyquist median / 90 % band (dim
        ``frequency``); for a DC record, the steady-state current per bias step (dim ``step``).
    settings : kind (the study's, see :class:`inference.study.Study`), method, joint, seed,
        draws, chains, tune, circuit, resistance, temperatures_C, command, versions, date;
        ``simulated``, ``generator``, ``simulation_seed`` from the manifest's ``[study]``.
    timing_s : wall time per phase, s (``total`` included).
    paper : reference values from ``paper_values.toml`` (empty when absent).
    truth : true values from a simulated study's ``truth.json`` (empty when absent).
    """

    study_name: str
    study_path: str
    records: pd.DataFrame
    arrhenius: dict[str, xr.DataTree]
    fits: dict[str, xr.Dataset]
    curves: dict[str, xr.Dataset]
    settings: dict
    timing_s: dict[str, float]
    paper: dict = field(default_factory=dict)
    truth: dict = field(default_factory=dict)

    # -- tables ---------------------------------------------------------------------------

    @property
    def failures(self) -> pd.DataFrame:
        """Records left out of the analysis (failed or excluded): ``id``, ``file``, ``kind``,
        ``reason``."""
        failed = self.records[self.records["status"] != "ok"]
        return failed[["id", "file", "kind", "reason"]].reset_index(drop=True)

    @property
    def kk_failed(self) -> list[str]:
        """Spectra fitted and kept although their Kramers–Kronig check failed."""
        ok = self.records[(self.records["status"] == "ok") & (self.records["kind"] == "ionic")]
        return ok.loc[ok["kk_passed"] == False, "id"].tolist()  # noqa: E712 (NaN-safe)

    @property
    def kinds(self) -> list[str]:
        """Conductivity kinds with an Arrhenius layer, ionic first."""
        return [k for k in arr.KINDS if k in self.arrhenius]

    def recipes(self, kind: str) -> list[str]:
        """Recipes of ``kind``'s Arrhenius layer."""
        return [str(r) for r in self._tree(kind)["posterior"]["recipe"].values]

    def _tree(self, kind: str) -> xr.DataTree:
        if kind not in self.arrhenius:
            have = ", ".join(self.arrhenius) or "none"
            raise InputError(f"no {kind} conductivities in this study (Arrhenius layers: {have})")
        return self.arrhenius[kind]

    def log10_sigma_draws(self, kind: str, temperature_C: float = 30.0) -> xr.DataArray:
        """Posterior draws of the recipe-level log10 σ (S/cm) at ``temperature_C``."""
        return arr.log10_sigma_at(self._tree(kind), temperature_C + ZERO_C_K)

    def conductivity_table(self, temperature_C: float = 30.0) -> pd.DataFrame:
        """σ per recipe and kind at ``temperature_C``: median and 90 % interval, S/cm, and
        ``prior_dominated`` (:func:`inference.arrhenius.prior_check`)."""
        rows = []
        for kind in self.kinds:
            tree = self._tree(kind)
            draws = self.log10_sigma_draws(kind, temperature_C)
            for recipe in self.recipes(kind):
                med, lo, hi = _interval(10.0 ** draws.sel(recipe=recipe).values)
                check = arr.prior_check(tree, recipe, temperature_C + ZERO_C_K)
                rows.append(
                    {
                        "recipe": recipe,
                        "kind": kind,
                        "temperature_C": float(temperature_C),
                        "median_S_per_cm": med,
                        "ci90_lo_S_per_cm": lo,
                        "ci90_hi_S_per_cm": hi,
                        "prior_dominated": check["prior_dominated"],
                    }
                )
        return pd.DataFrame(rows)

    def activation_energy_table(self) -> pd.DataFrame:
        """Ea per recipe and kind: median and 90 % interval, eV, in the layer's Arrhenius form
        (``form``), and ``prior_dominated``."""
        rows = []
        for kind in self.kinds:
            tree = self._tree(kind)
            ea = tree["posterior"]["Ea"]
            for recipe in self.recipes(kind):
                med, lo, hi = _interval(ea.sel(recipe=recipe).values)
                rows.append(
                    {
                        "recipe": recipe,
                        "kind": kind,
                        "form": tree.attrs.get("arrhenius_form", "sigma"),
                        "median_eV": med,
                        "ci90_lo_eV": lo,
                        "ci90_hi_eV": hi,
                        "prior_dominated": arr.prior_check(tree, recipe)["prior_dominated"],
                    }
                )
        return pd.DataFrame(rows)

    def compare(self, a: str, b: str, kind: str = "ionic", temperature_C: float = 30.0) -> dict:
        """σ_a / σ_b at ``temperature_C``: median, 90 % interval and P(ratio > 1).

        Raises
        ------
        InputError
            Unknown recipe or kind.
        """
        draws = self.log10_sigma_draws(kind, temperature_C)
        known = self.recipes(kind)
        for name in (a, b):
            if name not in known:
                raise InputError(f"unknown recipe {name!r} for {kind}; recipes: {', '.join(known)}")
        log_ratio = (draws.sel(recipe=a) - draws.sel(recipe=b)).values.ravel()
        med, lo, hi = _interval(10.0**log_ratio)
        return {
            "numerator": a,
            "denominator": b,
            "kind": kind,
            "temperature_C": float(temperature_C),
            "ratio_median": med,
            "ratio_ci90": [lo, hi],
            "p_greater": float(np.mean(log_ratio > 0)),
        }

    def comparisons(self, temperature_C: float = 30.0) -> list[dict]:
        """Every pair of recipes once per kind, oriented so the median ratio is ≥ 1."""
        out = []
        for kind in self.kinds:
            recipes = self.recipes(kind)
            for i, a in enumerate(recipes):
                for b in recipes[i + 1 :]:
                    c = self.compare(a, b, kind, temperature_C)
                    out.append(
                        c if c["ratio_median"] >= 1 else self.compare(b, a, kind, temperature_C)
                    )
        return out

    def rate_capability_note(self) -> str:
        """Why there is no rate-capability prediction ("" when there is one)."""
        kind = self.settings.get("kind", "composite_cathode")
        if kind != "composite_cathode":
            return f"no prediction: the proxy is for composite cathodes, this study is {kind}"
        if "ionic" not in self.arrhenius:
            return "no prediction: the study has no ionic conductivity"
        t = self.records.loc[self.records["kind"] == "ionic", "temperature_K"] - ZERO_C_K
        lo, hi = float(t.min()), float(t.max())
        if not lo <= RATE_TEMPERATURE_C <= hi:
            return (
                f"no prediction: {RATE_TEMPERATURE_C:g} °C is outside the measured "
                f"{lo:g}–{hi:g} °C (σ_ion would be extrapolated)"
            )
        return ""

    def rate_capability_table(self) -> pd.DataFrame:
        """Model prediction: capacity retention vs C/10 at 60 °C from the σ_ion posterior.

        Pushes the recipe-level σ_ion(60 °C) draws through the physics.md §2.7 proxy
        (:mod:`inference.rate_capability`, its default electrode: 60 µm, 2.4 mAh/cm²) with the
        proxy's own error (:func:`inference.rate_capability.retention_draws`). Empty, with
        :meth:`rate_capability_note` saying why, unless the study is a composite cathode with
        an ionic layer measured across 60 °C.
        """
        if self.rate_capability_note():
            return pd.DataFrame(
                columns=["recipe", "temperature_C", "c_rate_per_h", "median", "ci90_lo", "ci90_hi"]
            )
        sigma = 10.0 ** self.log10_sigma_draws("ionic", RATE_TEMPERATURE_C)
        rows = []
        for k, recipe in enumerate(self.recipes("ionic")):
            s = sigma.sel(recipe=recipe).values.ravel()
            for c_rate in RATE_C_RATES:
                seed = int(self.settings.get("seed", 0)) + 10 * k
                med, lo, hi = _interval(retention_draws(s, c_rate, seed=seed))
                rows.append(
                    {
                        "recipe": recipe,
                        "temperature_C": RATE_TEMPERATURE_C,
                        "c_rate_per_h": c_rate,
                        "median": med,
                        "ci90_lo": lo,
                        "ci90_hi": hi,
                    }
                )
        return pd.DataFrame(rows)

    def outlier_probability(self) -> dict[str, float]:
        """Record id → posterior probability that the Arrhenius layer treats it as an outlier."""
        out = {}
        for tree in self.arrhenius.values():
            if "outlier_prob" in tree["posterior"]:
                prob = tree["posterior"]["outlier_prob"].mean(("chain", "draw"))
                out |= {
                    str(k): float(v) for k, v in zip(prob["obs"].values, prob.values, strict=True)
                }
        return out

    def posterior(self, rid: str, keep: int | None = None) -> xr.Dataset | None:
        """The stage-1 posterior of record ``rid`` (natural-unit parameters), thinned evenly
        to about ``keep`` draws when given; None when the record has no fit."""
        from inference.fit import thin_draws

        fit = self.fits.get(rid)
        if fit is None:
            return None
        post = fit["posterior"].to_dataset() if isinstance(fit, xr.DataTree) else fit
        return thin_draws(post, keep)

    def verdict_table(self) -> pd.DataFrame:
        """One row per stage-1 record: diagnostics, ``verdict`` and ``reasons``
        (:func:`inference.diagnostics.verdict_table`); what the report and the CLI show."""
        return dg.verdict_table(self.records)

    def layer_verdicts(self) -> dict[str, tuple[str, list[str]]]:
        """Arrhenius layer → (verdict, reasons) by the sampling thresholds."""
        return {
            f"{kind} Arrhenius layer": dg.layer_verdict(tree.attrs)
            for kind, tree in self.arrhenius.items()
        }

    def verdict(self) -> tuple[str, list[str]]:
        """The study's verdict (the report's badge): :func:`inference.diagnostics.study_verdict`."""
        return dg.study_verdict(self.records["verdict"].tolist(), self.layer_verdicts())

    def temperature_warnings(self) -> list[str]:
        """One line per requested temperature more than :data:`EXTRAPOLATION_WARN_K` outside
        the temperatures a kind was measured at (σ there is an Arrhenius extrapolation)."""
        out = []
        ok = self.records[self.records["status"] == "ok"]
        for kind in self.kinds:
            measured = ok.loc[ok["kind"] == kind, "temperature_K"].to_numpy(float) - ZERO_C_K
            if measured.size == 0:
                continue
            low, high = float(measured.min()), float(measured.max())
            for t in self.settings.get("temperatures_C", []):
                gap = max(low - t, t - high)
                if gap > EXTRAPOLATION_WARN_K:
                    side = "below" if t < low else "above"
                    out.append(
                        f"{kind} σ at {t:g} °C is extrapolated {gap:.0f} K {side} the measured "
                        f"{low:g}–{high:g} °C: the Arrhenius law is assumed to hold there"
                    )
        return out

    def diagnostics(self) -> dict:
        """Convergence of the Arrhenius layer(s) and of the stage-1 fits, KK flags, failures,
        the per-record verdicts and the study's verdict."""
        rhat, ess, tail, bfmi, div = [], [], [], [], 0
        for tree in self.arrhenius.values():
            rhat.append(float(tree.attrs["max_rhat"]))
            ess.append(float(tree.attrs["min_ess_bulk"]))
            tail.append(float(tree.attrs.get("min_ess_tail", math.nan)))
            bfmi.append(float(tree.attrs.get("bfmi", math.nan)))
            div += int(tree.attrs["divergences"])
        ok = self.records[self.records["status"] == "ok"]

        def agg(column, fn):
            values = pd.to_numeric(ok[column], errors="coerce").dropna()
            return float(fn(values)) if len(values) else None

        verdict, reasons = self.verdict()
        counts = self.records["verdict"].value_counts()
        return {
            "max_rhat": max(rhat) if rhat else math.nan,
            "min_ess_bulk": min(ess) if ess else math.nan,
            "min_ess_tail": min(tail) if tail else math.nan,
            "bfmi": min(bfmi) if bfmi else math.nan,
            "divergences": div,
            "kk_failed": self.kk_failed,
            "failed": [
                {"id": r.id, "file": r.file, "reason": r.reason} for r in self.failures.itertuples()
            ],
            "fits": {
                "n": int(len(ok)),
                "max_rhat": agg("max_rhat", np.max),
                "min_ess_bulk": agg("min_ess_bulk", np.min),
                "min_ess_tail": agg("min_ess_tail", np.min),
                "divergences": int(
                    pd.to_numeric(ok["divergences"], errors="coerce").fillna(0).sum()
                ),
                **{f"n_{v}": int(counts.get(v, 0)) for v in dg.VERDICTS},
            },
            "layers": {
                kind: {
                    "verdict": v,
                    "reasons": why,
                    **{
                        k: tree.attrs.get(k)
                        for k in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "bfmi")
                    },
                }
                for (kind, tree), (v, why) in zip(
                    self.arrhenius.items(), self.layer_verdicts().values(), strict=True
                )
            },
            "records": self.verdict_table().to_dict("records"),
            "verdict": verdict,
            "reasons": reasons,
        }

    # -- outputs --------------------------------------------------------------------------

    def summary_dict(self) -> dict:
        """The ``summary.json`` contract (:mod:`inference.summary`)."""
        temps = self.settings.get("temperatures_C", [30.0])
        conductivity = []
        for t in temps:
            for row in self.conductivity_table(t).itertuples():
                conductivity.append(
                    {
                        "recipe": row.recipe,
                        "kind": row.kind,
                        "temperature_C": float(t),
                        "median_S_per_cm": row.median_S_per_cm,
                        "ci90_S_per_cm": [row.ci90_lo_S_per_cm, row.ci90_hi_S_per_cm],
                        "prior_dominated": bool(row.prior_dominated),
                    }
                )
        energies = [
            {
                "recipe": r.recipe,
                "kind": r.kind,
                "form": r.form,
                "median_eV": r.median_eV,
                "ci90_eV": [r.ci90_lo_eV, r.ci90_hi_eV],
                "prior_dominated": bool(r.prior_dominated),
            }
            for r in self.activation_energy_table().itertuples()
        ]
        rate = [
            {
                "recipe": r.recipe,
                "temperature_C": r.temperature_C,
                "c_rate_per_h": r.c_rate_per_h,
                "median": r.median,
                "ci90": [r.ci90_lo, r.ci90_hi],
            }
            for r in self.rate_capability_table().itertuples()
        ]
        settings = {
            k: self.settings[k]
            for k in (
                "kind",
                "arrhenius_form",
                "method",
                "joint",
                "seed",
                "draws",
                "chains",
                "tune",
                "circuit",
            )
            if k in self.settings
        }
        settings["reference_temperature_K"] = {
            k: float(t.attrs["reference_temperature_K"]) for k, t in self.arrhenius.items()
        }
        return json_safe(
            {
                "schema_version": SCHEMA_VERSION,
                "study": self.study_name,
                "conductivity": conductivity,
                "activation_energy": energies,
                "comparisons": [c for t in temps for c in self.comparisons(t)],
                "diagnostics": self.diagnostics(),
                "rate_capability": rate,
                "rate_capability_note": self.rate_capability_note(),
                "warnings": self.temperature_warnings(),
                "settings": settings,
                "timing_s": dict(self.timing_s),
            }
        )

    def to_datatree(self, keep_draws: int | None = None) -> xr.DataTree:
        """One DataTree: ``/arrhenius/<kind>/…``, ``/fits/<id>/{posterior, sample_stats,
        log_likelihood, curves}``, ``/records`` (the stage-1 table with verdicts); provenance in
        the root's attrs.

        Every stage-1 draw is kept unless ``keep_draws`` asks for about that many per fit
        (evenly thinned, :func:`inference.fit.thin_draws`), for a small file.
        """
        from inference.fit import thin_draws

        nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs=_root_attrs(self))}
        for kind, tree in self.arrhenius.items():
            nodes[f"/arrhenius/{kind}"] = xr.Dataset(attrs=_netcdf_attrs(tree.attrs))
            for group in tree.children:
                nodes[f"/arrhenius/{kind}/{group}"] = tree[group].to_dataset()
        for rid, fit in self.fits.items():
            nodes[f"/fits/{rid}"] = xr.Dataset(attrs=_netcdf_attrs(fit.attrs))
            for group in fit.children:
                nodes[f"/fits/{rid}/{group}"] = thin_draws(fit[group].to_dataset(), keep_draws)
        for rid, curve in self.curves.items():
            nodes[f"/fits/{rid}/curves"] = curve
        records = self.records.copy()
        records["flags"] = records["flags"].astype(str)
        for column in ("at_bound", "reasons"):
            records[column] = records[column].map(lambda v: "; ".join(v) if v else "")
        records["kk_passed"] = records["kk_passed"].map({True: 1, False: 0}).astype(float)
        nodes["/records"] = xr.Dataset.from_dataframe(records.set_index("id")).rename(id="record")
        return xr.DataTree.from_dict(nodes)

    def to_netcdf(self, path, keep_draws: int | None = None) -> Path:
        """Write :meth:`to_datatree` to ``path`` (NetCDF4/HDF5), atomically; returns the path.

        The file opens with ``xr.open_datatree(path)`` and ArviZ alone, e.g.
        ``xr.open_datatree(path)["arrhenius/ionic"]`` and ``…["fits/<id>"]`` are ArviZ
        DataTrees (``az.loo`` works on the latter).
        """
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            self.to_datatree(keep_draws).to_netcdf(tmp, engine="h5netcdf")
            write_atomic(path, tmp.read_bytes())
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def report(self, path) -> Path:
        """Write the self-contained HTML report to ``path`` (atomically); returns the path."""
        from inference.report import render_report

        path = Path(path)
        write_atomic(path, render_report(self).encode("utf-8"))
        return path

    def write(self, out_dir, keep_draws: int | None = None) -> dict[str, Path]:
        """Write ``result.nc`` (``keep_draws``: see :meth:`to_datatree`), ``summary.json`` and
        ``report.html`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        paths = {"result": self.to_netcdf(out / "result.nc", keep_draws)}
        paths["report"] = self.report(out / "report.html")
        self.timing_s["write"] = time.perf_counter() - started
        write_summary(self.summary_dict(), out / "summary.json")
        paths["summary"] = out / "summary.json"
        return paths


def _netcdf_attrs(attrs: dict) -> dict:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, str | int | float | np.integer | np.floating):
            out[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str | np.str_) for v in value):
            out[key] = [str(v) for v in value]
        elif isinstance(value, list | tuple) and all(isinstance(v, int | float) for v in value):
            out[key] = list(value)
        else:
            out[key] = json.dumps(json_safe(value))
    return out


def _root_attrs(result: StudyResult) -> dict:
    s = result.settings
    return _netcdf_attrs(
        {
            "study": result.study_name,
            "study_path": result.study_path,
            "command": s.get("command", ""),
            "method": s.get("method", ""),
            "joint": s.get("joint", False),
            "seed": s.get("seed", 0),
            "circuit": s.get("circuit", ""),
            "created": s.get("date", ""),
            "versions": s.get("versions", {}),
            "settings": s,
            "timing_s": result.timing_s,
            "manifest_sha256": s.get("manifest_sha256", ""),
        }
    )


# --------------------------------------------------------------------------------------------
# reference values shipped with a study
# --------------------------------------------------------------------------------------------

_PAPER_KEYS = {
    "sigma_ion_30C_S_per_cm": ("ionic", 30.0),
    "sigma_el_30C_S_per_cm": ("electronic", 30.0),
}


def read_paper_values(study_dir) -> dict:
    """Reference numbers of ``paper_values.toml`` (optional file of a study folder).

    Returns
    -------
    ``{"source": str, "sigma": {(recipe, kind, temperature_C): S/cm}, "retention":
    {(recipe, c_rate_per_h): fraction}, "ratios": {name: value}}``; empty dict when absent.

    Raises
    ------
    InputError
        The file exists but is not valid TOML.
    """
    path = Path(study_dir) / "paper_values.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: TOML syntax error: {err}") from None
    sigma, retention = {}, {}
    for recipe, values in data.get("recipes", {}).items():
        for key, (kind, t) in _PAPER_KEYS.items():
            if isinstance(values.get(key), int | float):
                sigma[(recipe, kind, t)] = float(values[key])
        for key, c_rate in (("retention_C3_vs_C10_60C", 1 / 3), ("retention_C2_vs_C10_60C", 1 / 2)):
            if isinstance(values.get(key), int | float):
                retention[(recipe, c_rate)] = float(values[key])
    source = data.get("source", {})
    return {
        "source": source.get("reference", "paper_values.toml"),
        "sigma": sigma,
        "retention": retention,
        "ratios": {k: v for k, v in data.get("ratios", {}).items() if isinstance(v, int | float)},
    }


def read_truth(study_dir) -> dict:
    """True recipe values of a simulated study's ``truth.json`` (empty dict when absent).

    Returns ``{(recipe, kind): {"log10_sigma_30C": float, "Ea_eV": float}}``. Read as plain
    JSON: inference does not depend on the simulator that wrote it.
    """
    path = Path(study_dir) / "truth.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    out = {}
    for recipe, values in data.get("recipes", {}).items():
        for kind, suffix, ea in (("ionic", "ion", "Ea_ion_eV"), ("electronic", "el", "Ea_el_eV")):
            entry = {}
            if isinstance(values.get(f"log10_sigma_{suffix}_30C"), int | float):
                entry["log10_sigma_30C"] = float(values[f"log10_sigma_{suffix}_30C"])
            if isinstance(values.get(ea), int | float):
                entry["Ea_eV"] = float(values[ea])
            if entry:
                out[(recipe, kind)] = entry
    return out


# --------------------------------------------------------------------------------------------
# stage 1
# --------------------------------------------------------------------------------------------


def record_id(ds: xr.Dataset) -> str:
    """Identifier of a record: its file name without extension (``dry_PTFE-ion-1_30C``)."""
    return Path(str(ds.attrs.get("manifest_path", ds.attrs.get("source_file", "record")))).stem


def _geometry_sd_decades(a: dict) -> float:
    rel = math.hypot(a["thickness_sd_cm"] / a["thickness_cm"], a["area_sd_cm2"] / a["area_cm2"])
    return rel / math.log(10.0)


def _base_row(ds: xr.Dataset, rid: str) -> dict:
    a = ds.attrs
    return {
        "id": rid,
        "file": str(a.get("manifest_path", a.get("source_file", ""))),
        "kind": KIND_OF_CELL.get(a.get("cell_type"), "ionic"),
        "recipe": str(a.get("recipe", "")),
        "cell": str(a.get("cell_id", "")),
        "temperature_K": float(a.get("temperature_K", math.nan)),
        "log10_sigma": math.nan,
        "log10_sigma_sd": math.nan,
        "geometry_sd": math.nan,
        "max_rhat": math.nan,
        "min_ess_bulk": math.nan,
        "min_ess_tail": math.nan,
        "divergences": 0,
        "bfmi": math.nan,
        "at_bound": [],
        "kk_passed": None,
        "flags": "",
        "status": "ok",
        "reason": "",
        "verdict": "ok",
        "reasons": [],
        "n_runs": 0,
    }


def _fail(row: dict, reason: str) -> None:
    """Mark a record whose file or fit failed: left out, verdict ``excluded``."""
    row.update(status="failed", reason=reason, verdict="excluded", reasons=[reason])


def _summarise_sigma(row: dict, ds: xr.Dataset, fit, **conductivity_options) -> None:
    """Fill log10 σ (fit only, at the reported geometry), geometry sd and diagnostics."""
    a = ds.attrs
    draws = fit.conductivity(
        thickness_cm=a["thickness_cm"],
        area_cm2=a["area_cm2"],
        thickness_sd_cm=0.0,
        area_sd_cm2=0.0,
        **conductivity_options,
    )
    draws = np.asarray(draws).ravel()
    log_sigma = np.log10(draws[np.isfinite(draws) & (draws > 0)])
    if log_sigma.size < 2:
        raise ModelError("the fit gave no finite positive conductivity draws")
    row["log10_sigma"] = float(log_sigma.mean())
    row["log10_sigma_sd"] = float(log_sigma.std(ddof=1))
    row["geometry_sd"] = _geometry_sd_decades(a)
    diag = dict(fit.diagnostics or {})
    for key in ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "bfmi", "at_bound"):
        if diag.get(key) is not None:
            row[key] = diag[key]
    kk = getattr(fit, "kk", None)
    if kk is not None:
        row["kk_passed"] = bool(kk.passed)
    row["flags"] = " | ".join(fit.warnings)
    row["verdict"], row["reasons"] = fit.verdict, list(fit.reasons)
    row["n_runs"] = max(1, len(json.loads(fit.attrs.get("runs", "[]"))))
    if fit.verdict == "excluded":
        row["status"] = "excluded"
        row["reason"] = "fit did not converge: " + "; ".join(fit.reasons)


def _fit_tree(fit, names: list[str]) -> xr.DataTree:
    """The stage-1 fit kept in the result: posterior of ``names``, sample_stats, log-likelihood."""
    groups = {"posterior": fit.posterior[names], "sample_stats": fit.sample_stats}
    if fit.log_likelihood is not None:
        groups["log_likelihood"] = fit.log_likelihood
    tree = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    tree.attrs = {k: fit.attrs[k] for k in ("sampler", "seed", "runs", "verdict") if k in fit.attrs}
    return tree


def _nyquist_curves(ds: xr.Dataset, circuit, posterior: xr.Dataset) -> xr.Dataset:
    """Measured Z and the fitted model's median and 90 % band on a log frequency grid.

    The band is that of the model curve (no measurement noise), from the thinned draws.
    """
    from inference.fit import model_curves

    f = np.asarray(ds["frequency"].values, dtype=float)
    grid = np.geomspace(f.max(), f.min(), CURVE_POINTS)
    z = model_curves(
        circuit, posterior, grid, max_draws=posterior.sizes["chain"] * posterior.sizes["draw"]
    )
    re, im = z.real, z.imag
    q = [0.05, 0.5, 0.95]
    return xr.Dataset(
        {
            "z_real": ("frequency", np.asarray(ds["z_real"].values), {"units": "Ohm"}),
            "z_imag": ("frequency", np.asarray(ds["z_imag"].values), {"units": "Ohm"}),
            "fit_real": (
                ("quantile", "frequency_fit"),
                np.quantile(re, q, axis=0),
                {"units": "Ohm"},
            ),
            "fit_imag": (
                ("quantile", "frequency_fit"),
                np.quantile(im, q, axis=0),
                {"units": "Ohm"},
            ),
        },
        coords={"frequency": f, "frequency_fit": grid, "quantile": q},
        attrs={
            "temperature_K": float(ds.attrs.get("temperature_K", math.nan)),
            "cell": str(ds.attrs.get("cell_id", "")),
            "recipe": str(ds.attrs.get("recipe", "")),
        },
    )


def _dc_curves(ds: xr.Dataset, fit) -> xr.Dataset:
    """The steady-state current per bias step of a DC fit: the points of the report's I–V plot."""
    steps = fit.steps
    return xr.Dataset(
        {
            "voltage_V": ("step", steps["voltage_V"].to_numpy(float), {"units": "V"}),
            "current_A": ("step", steps["current_A"].to_numpy(float), {"units": "A"}),
            "current_sd_A": ("step", steps["current_sd_A"].to_numpy(float), {"units": "A"}),
            "settled": ("step", steps["settled"].to_numpy().astype("int8")),
        },
        coords={"step": steps["step"].to_numpy()},
        attrs={
            "temperature_K": float(ds.attrs.get("temperature_K", math.nan)),
            "cell": str(ds.attrs.get("cell_id", "")),
            "recipe": str(ds.attrs.get("recipe", "")),
        },
    )


def failure_reason(err: BaseException) -> str:
    """One line saying why a record failed; the exception type when it is not one of ours."""
    text = str(err).splitlines()[0] if str(err) else ""
    return text if isinstance(err, SigmalabError) else f"{type(err).__name__}: {text}"


def _report_progress(progress, stage, i, total, rid, event=None):
    if progress is not None:
        progress({"stage": stage, "done": i, "total": total, "id": rid, **(event or {})})


STAGE_OF_KIND = {"ionic": "ionic fits", "electronic": "electronic fits"}


def fit_records(
    batch, circuit: str, resistance: str, options: dict, contact=None, should_stop=None
) -> list:
    """Stage 1 of a batch of records, the unit of work of :mod:`inference.workers`.

    Parameters
    ----------
    batch : ``(kind, record, seed)`` triples: kind ``"ionic"`` (a spectrum, fitted with
        ``circuit``) or ``"electronic"`` (a DC record).
    circuit, resistance : the ion cells' circuit string and composite resistance parameter.
    options : stage-1 settings (``method``, ``draws``, ``tune``, ``chains``).
    contact : ``contact_ohm``, ``contact_sd_ohm`` of the DC set-up (:func:`dc_contact`),
        subtracted from each electron cell's resistance; none when omitted.
    should_stop : polled inside each fit (only when run in this process).

    Returns
    -------
    One ``(row, fit tree or None, Nyquist curves or None)`` per record (the tree: every draw,
    sample_stats, log-likelihood; the curves from thinned draws). A record whose
    fit fails is excluded with the reason; :class:`FitCancelled` propagates.
    """
    from inference.circuits import parse_circuit
    from inference.dc import fit_dc
    from inference.fit import fit_spectra, thin_draws

    c = parse_circuit(circuit)
    dc_options = {k: v for k, v in options.items() if k != "method"}
    out = []
    for kind, ds, seed in batch:
        row = _base_row(ds, record_id(ds))
        post = curve = None
        try:
            if kind == "ionic":
                (fit,) = fit_spectra([ds], c, **options, seed=seed, should_stop=should_stop)
                _summarise_sigma(row, ds, fit, resistance=resistance)
                post = _fit_tree(fit, [*c.param_names, "sigma_rel"])
                curve = _nyquist_curves(ds, c, thin_draws(fit.posterior, BAND_DRAWS))
            else:
                fit = fit_dc(ds, **dc_options, seed=seed, should_stop=should_stop)
                _summarise_sigma(row, ds, fit, **(contact or {}))
                post = _fit_tree(fit, ["R_ohm", "V0_V"])
                curve = _dc_curves(ds, fit)
        except FitCancelled:
            raise
        except Exception as err:  # noqa: BLE001 — one bad record must not sink the study
            _fail(row, failure_reason(err))
        out.append((row, post, curve))
    return out


def _fit_stage1(
    work, circuit, resistance, options, contact, executor, workers, progress, should_stop
):
    """Every record's stage-1 fit, in ``work``'s order: ``[(row, posterior, curves), …]``.

    Spectra go first (they take longest), DC records fill in behind them.
    """
    from inference import workers as pool

    work = sorted(work, key=lambda item: item[0] != "ionic")
    parts = pool.batches(work, workers)
    totals = {k: sum(item[0] == k for item in work) for k in STAGE_OF_KIND}
    done = dict.fromkeys(STAGE_OF_KIND, 0)
    for kind, total in totals.items():
        if total:
            _report_progress(progress, STAGE_OF_KIND[kind], 0, total, "")

    def on_done(i, results):
        for (kind, ds, _), _result in zip(parts[i], results, strict=True):
            done[kind] += 1
            _report_progress(progress, STAGE_OF_KIND[kind], done[kind], totals[kind], record_id(ds))

    inline = executor is None
    results = pool.run_batches(
        fit_records,
        parts,
        circuit,
        resistance,
        options,
        contact,
        *((should_stop,) if inline else ()),
        executor=executor,
        on_done=on_done,
        should_stop=should_stop,
    )
    return [r for batch in results for r in batch]


def _fit_layers(batch) -> list:
    """Two-stage Arrhenius layers ``(kind, data, options)`` → ``(tree, wall time s)``."""
    out = []
    for kind, data, options in batch:
        started = time.perf_counter()
        out.append((arr.fit_arrhenius(data, kind, **options), time.perf_counter() - started))
    return out


def arrhenius_data(records: pd.DataFrame, kind: str) -> arr.ArrheniusData | None:
    """Stage-2 input of ``kind`` from the stage-1 table (failed records excluded)."""
    ok = records[(records["status"] == "ok") & (records["kind"] == kind)]
    if ok.empty:
        return None
    return arr.ArrheniusData(
        recipe=ok["recipe"].to_numpy(),
        cell=ok["cell"].to_numpy(),
        temperature_K=ok["temperature_K"].to_numpy(float),
        log10_sigma=ok["log10_sigma"].to_numpy(float),
        log10_sigma_sd=ok["log10_sigma_sd"].to_numpy(float),
        geometry_sd=ok["geometry_sd"].to_numpy(float),
        source=ok["id"].to_numpy(),
    )


# --------------------------------------------------------------------------------------------
# the analysis
# --------------------------------------------------------------------------------------------


def dc_contact(info: dict) -> dict[str, float]:
    """The manifest's ``[study] dc_contact_ohm`` / ``dc_contact_sd_ohm``: the two-probe DC
    set-up's series resistance (Ω, e.g. measured on a blank die) and its sd, subtracted from
    every electron cell's resistance; 0 when not given.

    Raises
    ------
    InputError
        Not a number >= 0.
    """
    out = {}
    for key, name in (("dc_contact_ohm", "contact_ohm"), ("dc_contact_sd_ohm", "contact_sd_ohm")):
        value = info.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise InputError(f"[study] {key} = {value!r}: expected a resistance >= 0 (Ω)")
        out[name] = float(value)
    return out


def _versions() -> dict[str, str]:
    import arviz
    import pymc
    import pytensor

    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "xarray": xr.__version__,
        "pymc": pymc.__version__,
        "pytensor": pytensor.__version__,
        "arviz": arviz.__version__,
    }
    try:
        from importlib.metadata import version

        out["sigmalab"] = version("sigmalab")
    except Exception:  # not installed as a distribution (e.g. run from a source tree)
        out["sigmalab"] = "source"
    return out


def analyze_study(
    study,
    *,
    method: str = "nuts",
    joint: bool = False,
    temperatures_C: Sequence[float] = (30.0,),
    circuit: str | None = None,
    resistance: str | None = None,
    draws: int = 2000,
    tune: int = 1500,
    chains: int = 4,
    fit_draws: int = 1000,
    fit_tune: int = 1000,
    fit_chains: int = 2,
    seed: int = 0,
    priors: dict | None = None,
    arrhenius: str | None = None,
    progress: ProgressFn | None = None,
    command: str = "",
    workers: int | None = None,
    executor=None,
    should_stop: Callable[[], bool] | None = None,
) -> StudyResult:
    """Analyse a study: stage-1 fits of every record, then the Arrhenius layer per kind.

    Parameters
    ----------
    study : a :class:`inference.study.Study` or the path of a study folder / manifest.
    method : stage-1 EIS fits, ``"nuts"`` (posterior) or ``"lsq"`` (least squares with its
        covariance; fast).
    joint : fit the ionic Arrhenius layer jointly with all ion spectra (slow; see
        :func:`inference.arrhenius.fit_joint_arrhenius`); the electronic layer stays two-stage.
    temperatures_C : temperatures (°C) at which σ is tabulated and compared.
    circuit : ion-cell circuit (default: manifest ``[study] circuit``, else
        :data:`DEFAULT_CIRCUIT`); resistance : its composite resistance parameter (default:
        manifest ``[study] composite_resistance``, else the last arc's R).
    draws, tune, chains : Arrhenius sampler; fit_draws, fit_tune, fit_chains : stage-1 NUTS.
    seed : random seed of every sampler.
    priors : ``{"ionic": {...}, "electronic": {...}}`` overrides of the study kind's priors,
        :data:`inference.arrhenius.KIND_PRIORS`.
    arrhenius : Arrhenius form, ``"sigma"`` or ``"sigmaT"`` (default: manifest
        ``[study] arrhenius``, else :data:`inference.arrhenius.DEFAULT_FORM` of the study's kind:
        σ for composite cathodes, σ·T for solid electrolytes).
    progress : called with dicts ``{"stage", "done", "total", ...}`` as work proceeds.
    command : the command line, recorded in the result and report.
    workers : processes for the stage-1 fits and the Arrhenius layers (default: the cores
        this process may use; 1 runs everything here). The results do not depend on it: every
        record has its own seed (``seed`` + its index among the records of its kind).
    executor : a :class:`concurrent.futures.Executor` to run them instead (e.g. the service's
        Ray executor); ``workers`` then only sets the batch size.
    should_stop : polled while fits run; returning True raises :class:`FitCancelled`.

    Raises
    ------
    InputError
        Bad study folder / manifest, unknown method, bad circuit string; a single bad data file
        or failed fit does not raise but is listed in ``result.failures``.
    FitCancelled
        ``should_stop`` returned True; nothing is returned.
    """
    from inference import workers as pool
    from inference.circuits import parse_circuit
    from inference.conductivity import composite_resistance_name

    started = time.perf_counter()
    timing: dict[str, float] = {}
    if method not in ("nuts", "lsq"):
        raise InputError(f"method must be 'nuts' or 'lsq', got {method!r}")
    if isinstance(study, str | Path):
        from inference.study import load_study

        study = load_study(study, unreadable="record")
    timing["load"] = time.perf_counter() - started
    study_dir = Path(study.manifest_path).parent
    info = study.info
    contact = dc_contact(info)
    circuit_obj = parse_circuit(circuit or info.get("circuit") or DEFAULT_CIRCUIT)
    resistance = composite_resistance_name(
        circuit_obj, "ion", resistance or info.get("composite_resistance")
    )
    priors = priors or {}
    unknown = set(priors) - set(arr.KINDS)
    if unknown:
        raise InputError(f"priors: unknown kind(s) {sorted(unknown)}; expected {arr.KINDS}")
    form = arr.check_form(
        arrhenius or info.get("arrhenius") or arr.DEFAULT_FORM.get(study.kind, "sigma")
    )

    workers = pool.default_workers() if workers is None else max(1, int(workers))
    if executor is None and workers > 1:
        executor = pool.local_executor(workers)
    fit_options = {"draws": fit_draws, "tune": fit_tune, "chains": fit_chains}
    spectra = [ds for ds in study.spectra() if ds.attrs.get("cell_type") == "ion"]
    dc = [ds for ds in study.dc_records() if ds.attrs.get("cell_type") == "electron"]
    work = [("ionic", ds, seed + i) for i, ds in enumerate(spectra)]
    work += [("electronic", ds, seed + i) for i, ds in enumerate(dc)]
    t0 = time.perf_counter()
    stage1 = _fit_stage1(
        work,
        circuit_obj.string,
        resistance,
        {**fit_options, "method": method},
        contact,
        executor,
        workers,
        progress,
        should_stop,
    )
    timing["fits"] = time.perf_counter() - t0
    rows = [row for row, _, _ in stage1]
    fits = {row["id"]: post for row, post, _ in stage1 if post is not None}
    curves = {row["id"]: curve for row, _, curve in stage1 if curve is not None}
    for skipped in study.unreadable:
        ds = xr.Dataset(attrs={**skipped, "manifest_path": skipped["file"]})
        row = _base_row(ds, record_id(ds))
        _fail(row, skipped["reason"])
        rows.append(row)
    records = pd.DataFrame(rows, columns=list(_base_row(xr.Dataset(), "").keys()))

    layers = {}
    for kind in arr.KINDS:
        data = arrhenius_data(records, kind)
        if data is not None:
            options = {
                "priors": priors.get(kind),
                "form": form,
                "study_kind": study.kind,
                "draws": draws,
                "tune": tune,
                "chains": chains,
                "seed": seed,
            }
            layers[kind] = (data, options)
    for kind in layers:
        if progress is not None:
            progress({"stage": f"{kind} Arrhenius", "phase": "sampling", "done": 0, "total": 1})
    trees: dict[str, xr.DataTree] = {}
    if joint and "ionic" in layers:
        t0 = time.perf_counter()
        data, options = layers.pop("ionic")
        trees["ionic"] = arr.fit_joint_arrhenius(
            [ds for ds in spectra if record_id(ds) in set(data.source)],
            circuit_obj,
            resistance,
            fits=fits,
            **options,
        )
        timing["arrhenius_ionic"] = time.perf_counter() - t0
    work = [[(kind, data, options)] for kind, (data, options) in layers.items()]
    for [(tree, seconds)], kind in zip(
        pool.run_batches(_fit_layers, work, executor=executor, should_stop=should_stop),
        layers,
        strict=True,
    ):
        trees[kind], timing[f"arrhenius_{kind}"] = tree, seconds
    for kind in trees:
        if progress is not None:
            progress({"stage": f"{kind} Arrhenius", "phase": "done", "done": 1, "total": 1})
    trees = {kind: trees[kind] for kind in arr.KINDS if kind in trees}

    timing["total"] = time.perf_counter() - started
    settings = {
        "kind": study.kind,
        "arrhenius_form": form,
        "workers": int(workers),
        "method": method,
        "joint": bool(joint),
        "seed": int(seed),
        "draws": int(draws),
        "chains": int(chains),
        "tune": int(tune),
        "fit_draws": int(fit_draws),
        "fit_chains": int(fit_chains),
        "fit_tune": int(fit_tune),
        "circuit": circuit_obj.string,
        "resistance": resistance,
        "temperatures_C": [float(t) for t in temperatures_C],
        "command": command,
        "versions": _versions(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "manifest_sha256": getattr(study, "manifest_sha256", ""),
        "dc_contact": contact,
        "simulated": bool(info.get("simulated", False)),
        "generator": str(info.get("generator", "")),
        "simulation_seed": info.get("seed"),
    }
    return StudyResult(
        study_name=study.name,
        study_path=str(study_dir),
        records=records,
        arrhenius=trees,
        fits=fits,
        curves=curves,
        settings=settings,
        timing_s=timing,
        paper=read_paper_values(study_dir),
        truth=read_truth(study_dir),
    )
