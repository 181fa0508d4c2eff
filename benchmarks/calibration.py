"""Benchmark suite ``calibration``: do the default pipeline's 90 % intervals hold the truth on
realistic simulated studies?

Each study comes from the realistic virtual lab (:class:`optimizer.virtual_lab.LabSettings`
defaults: transmission-line composites, cells drawn around their recipe with their own Ea,
lead inductance, drift, outliers, temperature offsets, a two-probe DC contact) with two random
recipes — one dry (PTFE) and one wet (NBR), each with a random binder content, pressing
pressure and carbon content — and 3 ion + 3 electron cells per recipe at 30, 45, 60 and 75 °C.
Every study is analysed by :func:`inference.analysis.analyze_study` as a user would run it
(its defaults, the manifest's circuit and contact), with stage-1 ``lsq`` for runtime; the first
:data:`N_NUTS` studies are analysed again with stage-1 NUTS (the default) to show the two agree.

Per study, kind (ionic, electronic) and quantity — σ(30 °C) and Ea of each recipe, and the
dry/wet ratio of σ(30 °C) — the row counts whether the equal-tailed 90 % interval holds the
truth of ``truth.json`` and its width (decades for σ and the ratio, eV for Ea). The target is a
coverage of 0.85–0.95.

Studies are cached one JSON line each (``$TMPDIR/sigmalab-calibration/``, keyed by the
settings below; study ``i`` is the same whatever the number of studies), so an interrupted run
resumes where it stopped; delete the folder to start afresh. ``python -m benchmarks calibration
--quick``: 6 studies, 2 with NUTS. On a shared machine, ``SIGMALAB_CALIBRATION_STUDIES`` /
``SIGMALAB_CALIBRATION_NUTS`` set the numbers and ``SIGMALAB_CALIBRATION_BUDGET_S`` stops
starting studies after that many seconds: the table then reports the studies that finished
(its ``n_studies`` says how many).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np

N_STUDIES = 120
N_NUTS = 24
QUICK = (6, 2)
SEED = 2025
TEMPERATURES_C = (30.0, 45.0, 60.0, 75.0)
CELLS = 3
TARGET = (0.85, 0.95)
KINDS = ("ionic", "electronic")
TRUTH_KEYS = {
    "ionic": ("sigma_ion_30C_S_per_cm", "Ea_ion_eV"),
    "electronic": ("sigma_el_30C_S_per_cm", "Ea_el_eV"),
}


def random_recipes(rng: np.random.Generator) -> dict:
    """One dry (PTFE) and one wet (NBR) recipe with random binder, pressure and carbon, both
    makeable (redrawn until the lab can make them)."""
    from optimizer.virtual_lab import is_feasible

    recipes = {}
    for name, binder, process in (("dry", "PTFE", "dry"), ("wet", "NBR", "wet")):
        while True:
            recipe = {
                "binder": binder,
                "binder_wt_pct": round(float(rng.uniform(0.2, 3.0)), 2),
                "process": process,
                "press_MPa": round(float(rng.uniform(250.0, 500.0)), 0),
                "carbon_wt_pct": round(float(rng.uniform(1.5, 5.0)), 2),
            }
            if is_feasible(recipe)[0]:
                recipes[name] = recipe
                break
    return recipes


def _interval_row(quantity, kind, recipe, lo, hi, true, width) -> dict:
    return {
        "quantity": quantity,
        "kind": kind,
        "recipe": recipe,
        "covered": bool(lo <= true <= hi),
        "width": float(width),
        "true": float(true),
        "lo": float(lo),
        "hi": float(hi),
    }


def study_rows(result, truth: dict) -> list[dict]:
    """Interval checks of one analysed study against its ``truth.json`` recipes."""
    sigma = result.conductivity_table(30.0)
    ea = result.activation_energy_table()
    rows = []
    for kind in KINDS:
        if kind not in result.kinds:
            continue
        s_key, e_key = TRUTH_KEYS[kind]
        for recipe, t in truth.items():
            s = sigma[(sigma.recipe == recipe) & (sigma.kind == kind)]
            e = ea[(ea.recipe == recipe) & (ea.kind == kind)]
            if s.empty:
                continue
            s, e = s.iloc[0], e.iloc[0]
            lo, hi = s.ci90_lo_S_per_cm, s.ci90_hi_S_per_cm
            width = math.log10(hi / lo)
            rows.append(_interval_row("sigma_30C", kind, recipe, lo, hi, t[s_key], width))
            lo, hi = e.ci90_lo_eV, e.ci90_hi_eV
            rows.append(_interval_row("Ea", kind, recipe, lo, hi, t[e_key], hi - lo))
        if {"dry", "wet"} <= set(result.recipes(kind)):
            c = result.compare("dry", "wet", kind, 30.0)
            lo, hi = c["ratio_ci90"]
            true = truth["dry"][s_key] / truth["wet"][s_key]
            width = math.log10(hi / lo)
            rows.append(_interval_row("dry_wet_ratio", kind, "dry/wet", lo, hi, true, width))
    return rows


def _cache_file() -> Path:
    key = json.dumps([SEED, TEMPERATURES_C, CELLS, "v2"]).encode()
    folder = Path(os.environ.get("TMPDIR", tempfile.gettempdir())) / "sigmalab-calibration"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{hashlib.sha256(key).hexdigest()[:12]}.jsonl"


def _load_cache(path: Path) -> dict:
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            done[(entry["study"], entry["method"])] = entry
    return done


def run_study(i: int, method: str, workdir: Path) -> dict:
    """Simulate study ``i`` (deterministic in ``i``) and analyse it with stage-1 ``method``."""
    from inference.analysis import analyze_study
    from optimizer.virtual_lab import LabSettings, simulate_study

    rng = np.random.default_rng([SEED, i])
    settings = LabSettings(
        temperatures_C=TEMPERATURES_C,
        ion_cells_per_recipe=CELLS,
        electron_cells_per_recipe=CELLS,
    )
    out = workdir / f"study_{i:03d}"
    recipes = random_recipes(rng)
    simulate_study(recipes, out, seed=SEED * 1000 + i, settings=settings, name=f"cal{i}")
    truth = json.loads((out / "truth.json").read_text())["recipes"]
    started = time.perf_counter()
    result = analyze_study(out, method=method, seed=i)
    elapsed = time.perf_counter() - started
    records = result.records
    d = result.diagnostics()
    return {
        "study": i,
        "method": method,
        "recipes": recipes,
        "rows": study_rows(result, truth),
        "seconds": elapsed,
        "records_left_out": int((records["status"] != "ok").sum()),
        "records": int(len(records)),
        "arrhenius_max_rhat": d["max_rhat"],
        "arrhenius_divergences": d["divergences"],
        "fit_divergences": d["fits"]["divergences"],
        "sigma_el_over_ion_30C": {
            r: truth[r]["sigma_el_30C_S_per_cm"] / truth[r]["sigma_ion_30C_S_per_cm"] for r in truth
        },
    }


def summarise(studies: list[dict]) -> list[dict]:
    """Coverage and mean width per method, quantity and kind."""
    groups: dict[tuple, list] = {}
    for study in studies:
        for row in study["rows"]:
            key = (study["method"], row["quantity"], row["kind"])
            groups.setdefault(key, []).append((study["study"], row))
    out = []
    for (method, quantity, kind), items in sorted(groups.items()):
        covered = [r["covered"] for _, r in items]
        coverage = float(np.mean(covered))
        out.append(
            {
                "method": method,
                "quantity": quantity,
                "kind": kind,
                "n_studies": len({s for s, _ in items}),
                "n_intervals": len(items),
                "covered": int(sum(covered)),
                "coverage_90": coverage,
                "mean_width": float(np.mean([r["width"] for _, r in items])),
                "width_unit": "eV" if quantity == "Ea" else "decades",
                "within_target": bool(TARGET[0] <= coverage <= TARGET[1]),
            }
        )
    return out


def agreement(studies: list[dict]) -> dict:
    """How the NUTS studies' interval midpoints compare with the same studies' lsq ones."""
    by = {(s["study"], s["method"]): s for s in studies}
    diffs, same = [], 0
    total = 0
    for (i, method), nuts in by.items():
        if method != "nuts" or (i, "lsq") not in by:
            continue
        for a, b in zip(nuts["rows"], by[(i, "lsq")]["rows"], strict=True):
            mid = (
                (lambda r: (r["lo"] + r["hi"]) / 2)
                if a["quantity"] == "Ea"
                else (lambda r: math.log10(r["lo"] * r["hi"]) / 2)
            )
            diffs.append(abs(mid(a) - mid(b)) / max(a["width"], 1e-12))
            same += a["covered"] == b["covered"]
            total += 1
    return {
        "n_intervals": total,
        "median_midpoint_shift_over_width": float(np.median(diffs)) if diffs else math.nan,
        "same_verdict_fraction": same / total if total else math.nan,
    }


def plan_of(n_studies: int, n_nuts: int) -> list[tuple[int, str]]:
    """lsq for every study, NUTS for the first ``n_nuts`` spread among them (so that a run
    stopped by its budget has some of each)."""
    every = max(n_studies // max(n_nuts, 1), 1)
    plan = []
    for i in range(n_studies):
        plan.append((i, "lsq"))
        j = (i + 1) // every - 1
        if (i + 1) % every == 0 and j < n_nuts:
            plan.append((j, "nuts"))
    return plan


def run(quick: bool = False) -> dict:
    n_studies, n_nuts = QUICK if quick else (N_STUDIES, N_NUTS)
    n_studies = int(os.environ.get("SIGMALAB_CALIBRATION_STUDIES", n_studies))
    n_nuts = min(int(os.environ.get("SIGMALAB_CALIBRATION_NUTS", n_nuts)), n_studies)
    budget_s = float(os.environ.get("SIGMALAB_CALIBRATION_BUDGET_S", "inf"))
    cache = _cache_file()
    done = _load_cache(cache)
    plan = plan_of(n_studies, n_nuts)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, method in plan:
            if (i, method) in done:
                continue
            if time.perf_counter() - started > budget_s:
                print(f"calibration: budget of {budget_s:g} s spent, summarising", flush=True)
                break
            entry = run_study(i, method, Path(tmp))
            done[(i, method)] = entry
            with cache.open("a") as fh:
                fh.write(json.dumps(entry, default=float) + "\n")
            print(f"calibration: study {i} {method} {entry['seconds']:.0f} s", flush=True)
    studies = [done[key] for key in plan if key in done]
    n_studies = len({s["study"] for s in studies if s["method"] == "lsq"})
    n_nuts = len({s["study"] for s in studies if s["method"] == "nuts"})
    rows = summarise(studies)
    agree = agreement(studies)
    seconds = {m: [s["seconds"] for s in studies if s["method"] == m] for m in ("lsq", "nuts")}
    ratios = [
        v for s in studies if s["method"] == "lsq" for v in s["sigma_el_over_ion_30C"].values()
    ]
    temperatures = ", ".join(f"{t:g}" for t in TEMPERATURES_C)
    notes = (
        f"{n_studies} studies simulated by sigmalab's virtual lab (LabSettings defaults; 2 random "
        f"recipes, dry PTFE and wet NBR, binder 0.2-3 wt%, 250-500 MPa, carbon 1.5-5 wt%; "
        f"{CELLS} ion + {CELLS} electron cells per recipe at {temperatures} °C; "
        f"sigma_el/sigma_ion at 30 °C {min(ratios):.0f}-{max(ratios):.0f}), analysed by "
        "analyze_study with its defaults (manifest circuit L0-R0-p(R1,CPE1)-TLMs2, blank-die DC "
        f"contact); stage 1 lsq for all, NUTS for the first {n_nuts}. Coverage of the 90 % "
        "intervals of the truth in truth.json; width in decades (sigma, ratio) or eV (Ea). "
        f"Median analysis time {np.median(seconds['lsq']):.0f} s (lsq)"
        + (f", {np.median(seconds['nuts']):.0f} s (nuts)" if seconds["nuts"] else "")
        + f"; wall {time.perf_counter() - started:.0f} s this call (cached studies not rerun). "
        f"NUTS vs lsq on the same studies: interval midpoints differ by a median "
        f"{agree['median_midpoint_shift_over_width']:.2f} interval widths, same covered/not "
        f"verdict for {agree['same_verdict_fraction']:.0%} of {agree['n_intervals']} intervals."
    )
    return {
        "name": "calibration",
        "title": "Calibration of the default pipeline on realistic simulated studies",
        "columns": [
            "method",
            "quantity",
            "kind",
            "n_studies",
            "covered",
            "n_intervals",
            "coverage_90",
            "mean_width",
            "width_unit",
            "within_target",
        ],
        "rows": rows,
        "agreement_nuts_lsq": agree,
        "studies": studies,
        "notes": notes,
    }
