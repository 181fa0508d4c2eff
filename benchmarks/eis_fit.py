"""Benchmark: sigmalab's deterministic fit (``fit_lsq``) against impedance.py's CustomCircuit.fit.

Twenty simulated 5-layer-cell spectra (physics.md §2.5: R0 plus three R‖CPE arcs in distinct
decades, 7 MHz → 1 Hz at 10 points/decade, 1 % relative noise on Re and Im), the same for
both fitters. impedance.py needs an initial guess: it gets ours (``initial_guess``), so the
comparison is of the optimisers, while our time includes guessing, the Kramers–Kronig check
and any restarts. Rows are keyed by ``spectrum`` so other fitters (e.g. NUTS) can add columns:
reuse :func:`simulated_cases` and extend :data:`COLUMNS`.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from inference.circuits import parse_circuit, simulate_spectrum
from inference.fit_quality import POOR_FACTOR, POOR_FLOOR_REL, fit_quality
from inference.lsq import fit_lsq, initial_guess

CIRCUIT = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
FREQ_HZ = np.logspace(np.log10(7e6), 0, 69)
NOISE_REL = 0.01
AGREEMENT = 0.05
COLUMNS = [
    "spectrum",
    "kk_passed",
    "lsq_s",
    "impedance_py_s",
    "lsq_success",
    "impedance_py_success",
    "lsq_rms_over_truth",
    "impedance_py_rms_over_truth",
    "lsq_R_err_pct",
    "impedance_py_R_err_pct",
    "max_param_diff_pct",
    "agree_5pct",
    "nuts_s",
    "nuts_max_rhat",
    "nuts_min_ess",
    "nuts_divergences",
    "nuts_vs_lsq_pct",
]


def simulated_cases(n: int = 20, seed: int = 2024) -> list[dict]:
    """``n`` spectra with random truths: dicts with spectrum, circuit, truth, dataset."""
    rng = np.random.default_rng(seed)
    c = parse_circuit(CIRCUIT)
    cases = []
    for i in range(n):
        truth = {"R0": 10 ** rng.uniform(0.7, 1.5)}
        arcs = [((1.5, 2.2), (4.5, 5.5), (0.88, 0.98)),
                ((1.7, 2.5), (2.5, 3.5), (0.78, 0.92)),
                ((2.3, 3.3), (0.7, 1.5), (0.70, 0.90))]  # fmt: skip
        for k, (log_r, log_f, alpha_range) in enumerate(arcs, start=1):
            r, f_apex, alpha = (
                10 ** rng.uniform(*log_r),
                10 ** rng.uniform(*log_f),
                rng.uniform(*alpha_range),
            )
            truth |= {
                f"R{k}": r,
                f"CPE{k}_0": 1 / (r * (2 * np.pi * f_apex) ** alpha),
                f"CPE{k}_1": alpha,
            }
        truth = {name: truth[name] for name in c.param_names}
        ds = simulate_spectrum(c, truth, FREQ_HZ, noise_rel=NOISE_REL, seed=seed + i)
        cases.append({"spectrum": f"sim{i:02d}", "circuit": CIRCUIT, "truth": truth, "dataset": ds})
    return cases


def _impedance_py_fit(ds, guess: list[float]):
    from impedance.models.circuits import CustomCircuit

    f = ds["frequency"].values
    z = ds["z_real"].values + 1j * ds["z_imag"].values
    model = CustomCircuit(CIRCUIT, initial_guess=guess)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(f, z, weight_by_modulus=True)
        except (RuntimeError, ValueError):
            return None
    return np.asarray(model.parameters_)


def _rms_rel(circuit, params, ds) -> float:
    """rms of (Z − Z_model)/|Z| over Re and Im."""
    z = ds["z_real"].values + 1j * ds["z_imag"].values
    d = (z - circuit.impedance(params, ds["frequency"].values)) / np.abs(z)
    return float(np.sqrt(np.mean(d.real**2 + d.imag**2) / 2))


def _max_rel(a, b, names, prefix=""):
    picks = [i for i, n in enumerate(names) if n.startswith(prefix)]
    return float(100 * np.max(np.abs(np.asarray(a)[picks] / np.asarray(b)[picks] - 1)))


def lsq_rows(cases: list[dict]) -> list[dict]:
    """One row per case: our fit and impedance.py's, timed, against each other and the truth."""
    circuit = parse_circuit(CIRCUIT)
    names = circuit.param_names
    rows = []
    for case in cases:
        ds, truth = case["dataset"], np.array([case["truth"][n] for n in names])
        started = time.perf_counter()
        ours = fit_lsq(ds, CIRCUIT)
        lsq_s = time.perf_counter() - started
        guess = initial_guess(ds, CIRCUIT)
        started = time.perf_counter()
        theirs = _impedance_py_fit(ds, [guess[n] for n in names])
        impedance_s = time.perf_counter() - started
        rms_truth = _rms_rel(circuit, truth, ds)
        # "converged" for impedance.py: no exception and a fit as good as ours must be to succeed
        poor_limit = fit_quality(ours.rms_rel, ours.kk).limit_rel
        their_rms = _rms_rel(circuit, theirs, ds) if theirs is not None else np.inf
        row = {
            "spectrum": case["spectrum"],
            "kk_passed": bool(ours.kk.passed),
            "lsq_s": lsq_s,
            "impedance_py_s": impedance_s,
            "lsq_success": bool(ours.success),
            "impedance_py_success": bool(their_rms <= poor_limit),
            "lsq_rms_over_truth": ours.rms_rel / rms_truth,
            "lsq_R_err_pct": _max_rel(ours.vector(), truth, names, "R"),
        }
        if theirs is not None:
            diff = _max_rel(ours.vector(), theirs, names)
            row |= {
                "impedance_py_rms_over_truth": their_rms / rms_truth,
                "impedance_py_R_err_pct": _max_rel(theirs, truth, names, "R"),
                "max_param_diff_pct": diff,
                "agree_5pct": bool(diff <= 100 * AGREEMENT),
            }
        rows.append(row)
    return rows


def nuts_rows(cases: list[dict], rows: list[dict]) -> dict:
    """Add warm NUTS timings and diagnostics to ``rows``; returns cold/warm timing figures.

    blackjax NUTS, 2 chains x 1000 draws after 1000 tuning steps, started from our lsq fit
    (not timed here). The first spectrum pays the compile, with JAX's persistent compilation
    cache and sigmalab's sampler store off so that "cold" means cold (tracing and compiling);
    the others reuse the compiled sampler.
    """
    import os

    import jax

    from inference.fit import fit_spectrum
    from inference.samplers import clear_cache

    names = parse_circuit(CIRCUIT).param_names
    starts = [fit_lsq(case["dataset"], CIRCUIT) for case in cases]
    clear_cache()
    jax.config.update("jax_enable_compilation_cache", False)
    store = os.environ.get("SIGMALAB_CACHE_DIR")
    os.environ["SIGMALAB_CACHE_DIR"] = "off"  # read by inference.sampler_store on each use
    try:
        times = []
        for case, start, row in zip(cases, starts, rows, strict=True):
            started = time.perf_counter()
            fit = fit_spectrum(case["dataset"], CIRCUIT, lsq=start, seed=1)
            times.append(time.perf_counter() - started)
            d = fit.diagnostics
            medians = np.array([np.median(fit.posterior[n].values) for n in names])
            row |= {
                "nuts_s": times[-1],
                "nuts_max_rhat": d["max_rhat"],
                "nuts_min_ess": min(d["min_ess_bulk"], d["min_ess_tail"]),
                "nuts_divergences": d["divergences"],
                "nuts_vs_lsq_pct": _max_rel(medians, start.vector(), names, "R"),
            }
    finally:
        jax.config.update("jax_enable_compilation_cache", True)
        if store is None:
            os.environ.pop("SIGMALAB_CACHE_DIR")
        else:
            os.environ["SIGMALAB_CACHE_DIR"] = store
    warm = float(np.median(times[1:])) if len(times) > 1 else float("nan")
    return {"cold_s": times[0], "compile_s": times[0] - warm, "warm_s": warm}


def run(quick: bool = False) -> dict:
    cases = simulated_cases(5 if quick else 20)
    rows = lsq_rows(cases)
    nuts = nuts_rows(cases, rows)
    converged = [r for r in rows if r["nuts_max_rhat"] <= 1.01 and r["nuts_min_ess"] >= 400]
    both = [r for r in rows if r["lsq_success"] and r["impedance_py_success"]]
    agree = sum(r["agree_5pct"] for r in both)
    optimum = sum(r["lsq_rms_over_truth"] <= 1 for r in rows)
    lsq_median = float(np.median([r["lsq_s"] for r in rows]))
    imp_median = float(np.median([r["impedance_py_s"] for r in rows]))
    notes = (
        f"{len(rows)} simulated spectra, circuit {CIRCUIT}, 69 points 7 MHz-1 Hz, "
        f"{NOISE_REL:.0%} noise. Both converged on {len(both)}; all parameters agree within "
        f"{AGREEMENT:.0%} on {agree} of them. Median time per spectrum: lsq {lsq_median:.3f} s "
        f"(guess + Lin-KK + fit + restarts), impedance.py {imp_median:.3f} s (fit only, from "
        "our initial guess, weight_by_modulus=True). *_R_err_pct: largest relative error of "
        "R0..R3 against the simulated truth (noise-limited: lsq reached an rms at or below "
        f"the truth's on {optimum} of {len(rows)} spectra, *_rms_over_truth <= 1). impedance.py "
        "counts as converged when its rms is within the bound lsq uses to call a fit poor "
        f"(max({POOR_FACTOR} x the Lin-KK noise, {POOR_FLOOR_REL:.0%} of |Z|), "
        "inference.fit_quality). Baseline measured in the same run. "
        f"NUTS (blackjax, 2 chains x 1000 draws + 1000 tune, from the lsq fit): warm "
        f"{nuts['warm_s']:.2f} s per spectrum (median; target <= 0.75 s), cold first call "
        f"{nuts['cold_s']:.1f} s = compile {nuts['compile_s']:.1f} s + one fit (target <= 10 s); "
        f"r_hat <= 1.01 and ESS >= 400 on {len(converged)} of {len(rows)}; nuts_vs_lsq_pct: "
        "largest relative difference of the R0..R3 posterior medians from the lsq fit."
    )
    return {
        "name": "eis_fit",
        "title": "EIS fit: sigmalab lsq and NUTS vs impedance.py CustomCircuit.fit",
        "columns": COLUMNS,
        "rows": rows,
        "notes": notes,
    }
