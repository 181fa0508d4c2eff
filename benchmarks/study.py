"""Benchmark suite ``study``: whole-study analysis time and interval coverage.

1. The bundled study (datasets/emley2023, 54 EIS spectra + 54 DC records): ``analyze_study``
   cold (first call in a new process, which loads the samplers from the machine's cache) and
   warm (second call in that process), for stage-1 ``nuts`` with ``workers=1`` and ``2`` and
   ``lsq``, with the diagnostics of each; once more with empty caches (every sampler traced
   and compiled); next to impedance.py's CNLS fit of the same ion spectra in a loop, with
   the study's own circuit (``CustomCircuit.fit`` started from sigmalab's data-driven guess,
   computed outside the timed loop; the transmission-line elements impedance.py lacks are
   registered with it, computed by sigmalab's numpy element code), measured in the same run.
   The same study as a service job (HTTP, SQLite, embedded Ray of 1 and of 2 CPUs; its fits
   fan out as Ray tasks), server time from creation to finish of the second job.
2. Coverage: simulated studies with different true values (random binder type, wt % and
   process per recipe; 2 recipes × 3 ion + 3 electron cells × 4 temperatures; stage 1 ``lsq``
   to keep the run short), fraction of 90 % intervals of σ(30 °C) and Ea that contain the truth.

``SIGMALAB_BENCH_PARTS`` (comma-separated among ``bundled``, ``service``, ``coverage``) runs a
subset, whose files are then named after it (``study_bundled_service.json``…).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "datasets" / "emley2023"


def _impedance_elements() -> None:
    """Register sigmalab's elements that impedance.py lacks (the transmission lines) with
    impedance.py, computed by sigmalab's own numpy element code."""
    from impedance.models.circuits import elements as theirs

    from inference.circuits.elements import ELEMENTS

    for symbol, spec in ELEMENTS.items():
        if symbol in theirs.circuit_elements:
            continue

        def z(p, f, func=spec.impedance):
            re, im = func(np, p, 2 * np.pi * np.asarray(f))
            return re + 1j * im

        z.__name__ = symbol
        theirs.element(num_params=spec.n_params, units=list(spec.units))(z)


def _guess(ds, circuit) -> list[float]:
    """sigmalab's data-driven starting values (untimed), so the baseline starts well."""
    from inference.lsq import initial_guess

    guess = initial_guess(ds, circuit)
    return [guess[n] for n in circuit.param_names]


def _impedance_loop(study) -> tuple[float, str]:
    """Seconds for impedance.py's CNLS over every ion spectrum of ``study``, with the circuit
    the study's analysis fits (its manifest's), and that circuit."""
    from impedance.models.circuits import CustomCircuit

    from inference.analysis import DEFAULT_CIRCUIT
    from inference.circuits import parse_circuit

    _impedance_elements()
    circuit = parse_circuit(study.info.get("circuit") or DEFAULT_CIRCUIT)
    spectra = [ds for ds in study.spectra() if ds.attrs.get("cell_type") == "ion"]
    guesses = [_guess(ds, circuit) for ds in spectra]
    started = time.perf_counter()
    for ds, guess in zip(spectra, guesses, strict=True):
        z = ds["z_real"].values + 1j * ds["z_imag"].values
        CustomCircuit(circuit.string, initial_guess=guess).fit(ds["frequency"].values, z)
    return time.perf_counter() - started, circuit.string


def _timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


#: One configuration of the bundled-study timing, run in a new process: two analyses (the
#: first pays start-up and whatever compiling the caches do not spare, the second is warm);
#: "prime" runs one analysis only, to fill the caches for the current code.
STUDY_RUN = r"""
import json, sys, time
from inference.analysis import analyze_study
method, workers = sys.argv[2], int(sys.argv[3])
out = {}
phases = (("cold", 0),) if sys.argv[4:] == ["prime"] else (("cold", 0), ("warm", 1))
for phase, seed in phases:
    started = time.perf_counter()
    result = analyze_study(sys.argv[1], method=method, seed=seed, workers=workers)
    rec = result.records[result.records["kind"] == "ionic"]
    out[phase] = {"wall_s": time.perf_counter() - started, "timing": result.timing_s,
                  "diagnostics": result.diagnostics(),
                  "fit_rhat_above_1.01": int((rec["max_rhat"] > 1.01).sum()),
                  "fit_median_ess": float(rec["min_ess_bulk"].median())}
print(json.dumps(out, default=float))
"""


def _study_run(method: str, workers: int, *extra: str, **env) -> dict:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", STUDY_RUN, str(BUNDLED), method, str(workers), *extra],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"analyze_study {method} workers={workers}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _say(rows: list[dict]) -> None:
    """Rows as they are measured, on stderr (the table comes at the end of a long run)."""
    for row in rows:
        print(f"  {row['measure']}: {row['value']:.4g} {row['unit']}  {row['detail']}",
              file=sys.stderr, flush=True)  # fmt: skip


def _diagnostic_row(label: str, run: dict) -> dict:
    d = run["diagnostics"]
    f = d["fits"]
    return {
        "measure": f"diagnostics ({label})",
        "value": d["max_rhat"],
        "unit": "r̂",
        "detail": f"Arrhenius max r̂ {d['max_rhat']:.4f}, min ESS {d['min_ess_bulk']:.0f}, "
        f"divergences {d['divergences']}; stage-1 fits: max r̂ {f['max_rhat']:.3f}, "
        f"{run['fit_rhat_above_1.01']} above 1.01, min ESS {f['min_ess_bulk']:.0f} (median "
        f"{run['fit_median_ess']:.0f}), divergences {f['divergences']}, records left out "
        f"{len(d['failed'])}",
    }


def _ok_share_row(label: str, run: dict) -> dict:
    d = run["diagnostics"]
    fits = d["fits"]
    n = fits["n_ok"] + fits["n_warning"] + fits["n_excluded"]
    return {
        "measure": f"stage-1 records ok ({label})",
        "value": fits["n_ok"] / max(n, 1),
        "unit": "share",
        "detail": f"{fits['n_ok']} ok, {fits['n_warning']} warning, {fits['n_excluded']} "
        f"excluded of {n}; study verdict {d['verdict']}"
        + (f" ({'; '.join(d['reasons'])})" if d["reasons"] else "")
        + " (goal ≥ 0.95 with nuts, verdict ok)",
    }


def _bundled_rows(quick: bool) -> list[dict]:
    from inference.study import load_study

    study = load_study(BUNDLED)
    rows = []
    cnls, circuit = _impedance_loop(study)
    n = len([d for d in study.spectra() if d.attrs.get("cell_type") == "ion"])
    rows.append(
        {
            "measure": "impedance.py CNLS loop (baseline)",
            "value": cnls,
            "unit": "s",
            "detail": f"{n} spectra, CustomCircuit.fit of the study's {circuit} (TLM elements: "
            "sigmalab's numpy code registered with impedance.py)",
        }
    )
    _say(rows)
    configs = [("lsq", 1), ("lsq", 2)] if quick else [("nuts", 1), ("nuts", 2), ("lsq", 2)]
    # Cold means a new process, not new code: the caches are filled for this code first.
    _study_run(configs[0][0], 2, "prime")
    for method, workers in configs:
        run = _study_run(method, workers)
        cold, warm = run["cold"]["wall_s"], run["warm"]["wall_s"]
        t = run["warm"]["timing"]
        detail = ", ".join(f"{k} {v:.1f} s" for k, v in t.items() if k not in ("total", "load"))
        label = f"{method}, workers={workers}"
        rows += [
            {"measure": f"analyze_study {label} cold", "value": cold, "unit": "s",
             "detail": f"first call in a new process; {cold / warm:.2f}× warm (goal ≤ 1.5)"},
            {"measure": f"analyze_study {label} warm", "value": warm, "unit": "s",
             "detail": detail},
            {"measure": f"warm / CNLS loop ({label})", "value": warm / cnls, "unit": "×",
             "detail": "goal ≤ 0.5 (moonshot 0.25) for nuts"},
            _diagnostic_row(label, run["warm"]),
            _ok_share_row(label, run["warm"]),
        ]  # fmt: skip
        _say(rows[-5:])
    if not quick:
        with tempfile.TemporaryDirectory() as empty:
            first = _study_run("nuts", 2, "prime", SIGMALAB_CACHE_DIR=empty)["cold"]["wall_s"]
        rows.append(
            {
                "measure": "analyze_study nuts, workers=2, first ever (empty caches)",
                "value": first,
                "unit": "s",
                "detail": "new process, SIGMALAB_CACHE_DIR empty: every sampler traced and "
                "compiled once (the workers wait for each other's, see sampler_store)",
            }
        )
        _say(rows[-1:])
    return rows


def _service_rows(quick: bool) -> list[dict]:
    """The bundled study as a service job on an embedded Ray of 1 and of 2 CPUs."""
    import shutil

    import ray

    from benchmarks.service import _start_service
    from service.client import Client

    method = "lsq" if quick else "nuts"
    times = {}
    for cpus in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "service"
            (data / "datasets").mkdir(parents=True)
            shutil.copytree(BUNDLED, data / "datasets" / BUNDLED.name)
            url, token, server, dispatcher = _start_service(data, num_cpus=cpus)
            try:
                with Client(url, token) as client:
                    runs = []
                    for seed in (0, 1):  # the first job starts the Ray workers
                        job = client.submit_study(dataset=BUNDLED.name, method=method, seed=seed)
                        info = job.wait(timeout=3600, progress=False).info
                        runs.append((info.finished_at - info.created_at).total_seconds())
                    times[cpus] = runs
                    print(f"  study job on {cpus} Ray CPU(s): {runs}", file=sys.stderr, flush=True)
            finally:
                server.should_exit = True
                dispatcher.stop()
                ray.shutdown()
    one, two = times[1][1], times[2][1]
    return [
        {"measure": f"study job ({method}) on Ray, 1 CPU", "value": one, "unit": "s",
         "detail": f"server created→finished, second job (first: {times[1][0]:.1f} s)"},
        {"measure": f"study job ({method}) on Ray, 2 CPUs", "value": two, "unit": "s",
         "detail": f"second job (first: {times[2][0]:.1f} s)"},
        {"measure": "study job: 2 CPUs / 1 CPU", "value": two / one, "unit": "×",
         "detail": "goal ≤ 0.6"},
    ]  # fmt: skip


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


PARTS = ("bundled", "service", "coverage")


def run(quick: bool = False) -> dict:
    """Run the suite (``quick``: lsq only on the bundled study, 5 coverage studies)."""
    chosen = os.environ.get("SIGMALAB_BENCH_PARTS", "")
    parts = [p for p in chosen.split(",") if p] or list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"SIGMALAB_BENCH_PARTS: unknown {sorted(unknown)}; expected {PARTS}")
    rows = []
    if "bundled" in parts:
        rows += _bundled_rows(quick)
    if "service" in parts:
        rows += _service_rows(quick)
    if "coverage" in parts:
        rows += _coverage_rows(5 if quick else 20)
    suffix = "" if set(parts) == set(PARTS) else "_" + "_".join(p for p in PARTS if p in parts)
    return {
        "name": f"study{suffix}",
        "title": "Study analysis: time on the bundled study and interval coverage",
        "columns": ["measure", "value", "unit", "detail"],
        "rows": rows,
        "notes": (
            "Bundled study: datasets/emley2023 (54 EIS spectra, 54 DC records); cold = first "
            "analyze_study call in a new process (samplers loaded from the machine's cache, "
            "worker processes started), warm = second call; 'first ever' = cold with empty "
            "caches. workers = stage-1 worker processes (inference.workers). Study job: the "
            "service over HTTP with an embedded Ray of 1 or 2 CPUs. Baseline: impedance.py "
            "CustomCircuit.fit over the same 54 spectra, same run, same machine. "
            "Coverage: simulated studies with random recipes (binder, wt %, process), "
            "truth from truth.json; σ at 30 °C and Ea per recipe and kind."
        ),
    }
