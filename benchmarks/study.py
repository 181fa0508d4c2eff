"""Benchmark suite ``study``: whole-study analysis time and interval coverage.

1. The bundled study (datasets/emley2023, 54 EIS spectra + 54 DC records): ``analyze_study``
   cold (first call in a fresh process: compilation included) and warm (second call), for
   stage-1 ``nuts`` (default) and ``lsq``; next to impedance.py's CNLS fit of the same 54
   spectra in a loop (``CustomCircuit.fit`` started from sigmalab's data-driven guess, computed
   outside the timed loop), measured in the same run.
2. Coverage: simulated studies with different true values (random binder type, wt % and
   process per recipe; 2 recipes × 3 ion + 3 electron cells × 4 temperatures; stage 1 ``lsq``
   to keep the run short), fraction of 90 % intervals of σ(30 °C) and Ea that contain the truth.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "datasets" / "emley2023"
CIRCUIT = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
IMPEDANCE_GUESS = [1.0, 10.0, 1e-7, 0.9, 20.0, 1e-6, 0.9, 100.0, 1e-5, 0.85]


def _guess(ds) -> list[float]:
    """sigmalab's data-driven starting values (untimed), so the baseline starts well."""
    from inference.circuits import parse_circuit
    from inference.lsq import initial_guess

    c = parse_circuit(CIRCUIT)
    try:
        guess = initial_guess(ds, c)
    except Exception:  # noqa: BLE001 — a spectrum the guesser cannot read keeps the fixed guess
        return list(IMPEDANCE_GUESS)
    return [guess[n] for n in c.param_names]


def _impedance_loop(study) -> float:
    """Seconds for impedance.py's CNLS over every ion spectrum of ``study``."""
    from impedance.models.circuits import CustomCircuit

    spectra = [ds for ds in study.spectra() if ds.attrs.get("cell_type") == "ion"]
    guesses = [_guess(ds) for ds in spectra]
    started = time.perf_counter()
    for ds, guess in zip(spectra, guesses, strict=True):
        z = ds["z_real"].values + 1j * ds["z_imag"].values
        CustomCircuit(CIRCUIT, initial_guess=guess).fit(ds["frequency"].values, z)
    return time.perf_counter() - started


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def _bundled_rows(quick: bool) -> list[dict]:
    from inference.analysis import analyze_study
    from inference.study import load_study

    study = load_study(BUNDLED)
    rows = []
    cnls = _impedance_loop(study)
    n = len([d for d in study.spectra() if d.attrs.get("cell_type") == "ion"])
    rows.append(
        {
            "measure": "impedance.py CNLS loop (baseline)",
            "value": cnls,
            "unit": "s",
            "detail": f"{n} spectra, CustomCircuit.fit",
        }
    )
    for method in ("lsq",) if quick else ("nuts", "lsq"):
        result, cold = _timed(lambda m=method: analyze_study(study, method=m, seed=0))
        result, warm = _timed(lambda m=method: analyze_study(study, method=m, seed=1))
        t = result.timing_s
        detail = ", ".join(f"{k} {v:.1f} s" for k, v in t.items() if k not in ("total", "load"))
        rows.append(
            {
                "measure": f"analyze_study {method} cold",
                "value": cold,
                "unit": "s",
                "detail": "first call in the process (compilation included)",
            }
        )
        rows.append(
            {
                "measure": f"analyze_study {method} warm",
                "value": warm,
                "unit": "s",
                "detail": detail,
            }
        )
        rows.append(
            {
                "measure": f"warm / CNLS loop ({method})",
                "value": warm / cnls,
                "unit": "×",
                "detail": "goal ≤ 3",
            }
        )
        d = result.diagnostics()
        rows.append(
            {
                "measure": f"Arrhenius max r̂ / min ESS ({method})",
                "value": d["max_rhat"],
                "unit": "",
                "detail": f"min ESS bulk {d['min_ess_bulk']:.0f}, divergences "
                f"{d['divergences']}, records left out {len(d['failed'])}",
            }
        )
        fits = d["fits"]
        n = fits["n_ok"] + fits["n_warning"] + fits["n_excluded"]
        rows.append(
            {
                "measure": f"stage-1 records ok ({method})",
                "value": fits["n_ok"] / max(n, 1),
                "unit": "share",
                "detail": f"{fits['n_ok']} ok, {fits['n_warning']} warning, "
                f"{fits['n_excluded']} excluded of {n}; study verdict {d['verdict']}"
                + (f" ({'; '.join(d['reasons'])})" if d["reasons"] else "")
                + " (goal ≥ 0.95 with nuts, verdict ok)",
            }
        )
    return rows


def _random_recipes(rng) -> dict:
    recipes = {}
    for name in ("r1", "r2"):
        binder = str(rng.choice(["PTFE", "NBR"]))
        recipes[name] = {
            "binder": binder,
            "binder_wt_pct": float(np.round(rng.uniform(0.2, 2.5), 2)),
            "process": "dry" if binder == "PTFE" else "wet",
        }
    return recipes


def _coverage_rows(n_studies: int) -> list[dict]:
    from inference.analysis import analyze_study
    from optimizer.virtual_lab import LabSettings, simulate_study

    settings = LabSettings(
        temperatures_C=(30.0, 45.0, 60.0, 75.0), ion_cells_per_recipe=3, electron_cells_per_recipe=3
    )
    hits = {(q, k): [] for q in ("sigma_30C", "Ea") for k in ("ionic", "electronic")}
    times = []
    rng = np.random.default_rng(2024)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_studies):
            out = Path(tmp) / f"s{i}"
            simulate_study(_random_recipes(rng), out, seed=100 + i, settings=settings)
            truth = json.loads((out / "truth.json").read_text())["recipes"]
            result, elapsed = _timed(lambda out=out, i=i: analyze_study(out, method="lsq", seed=i))
            times.append(elapsed)
            sigma = result.conductivity_table(30.0)
            ea = result.activation_energy_table()
            for recipe, t in truth.items():
                for kind, s_key, e_key in (
                    ("ionic", "sigma_ion_30C_S_per_cm", "Ea_ion_eV"),
                    ("electronic", "sigma_el_30C_S_per_cm", "Ea_el_eV"),
                ):
                    s = sigma[(sigma.recipe == recipe) & (sigma.kind == kind)]
                    e = ea[(ea.recipe == recipe) & (ea.kind == kind)]
                    if s.empty:
                        continue
                    s, e = s.iloc[0], e.iloc[0]
                    hits[("sigma_30C", kind)].append(
                        s.ci90_lo_S_per_cm <= t[s_key] <= s.ci90_hi_S_per_cm
                    )
                    hits[("Ea", kind)].append(e.ci90_lo_eV <= t[e_key] <= e.ci90_hi_eV)
    rows = []
    for (quantity, kind), values in hits.items():
        rows.append(
            {
                "measure": f"coverage of 90 % interval: {quantity} {kind}",
                "value": float(np.mean(values)) if values else float("nan"),
                "unit": "",
                "detail": f"{sum(values)}/{len(values)} over {n_studies} studies (goal 0.85–0.95)",
            }
        )
    rows.append(
        {
            "measure": "simulated study analysis time (median)",
            "value": float(np.median(times)),
            "unit": "s",
            "detail": "2 recipes × 6 cells × 4 temperatures, stage 1 lsq",
        }
    )
    return rows


def run(quick: bool = False) -> dict:
    """Run the suite (``quick``: lsq only on the bundled study, 5 coverage studies)."""
    rows = _bundled_rows(quick) + _coverage_rows(5 if quick else 20)
    return {
        "name": "study",
        "title": "Study analysis: time on the bundled study and interval coverage",
        "columns": ["measure", "value", "unit", "detail"],
        "rows": rows,
        "notes": (
            "Bundled study: datasets/emley2023 (54 EIS spectra, 54 DC records); cold = first "
            "analyze_study call in the process, warm = second call (compiled samplers cached). "
            "Baseline: impedance.py CustomCircuit.fit over the same 54 spectra, same run, same "
            "machine. Coverage: simulated studies with random recipes (binder, wt %, process), "
            "truth from truth.json; σ at 30 °C and Ea per recipe and kind."
        ),
    }
