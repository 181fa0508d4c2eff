"""Benchmark suite ``speed``: the waits a user feels outside a study.

1. A new user's ``sigmalab fit``: a fresh ``HOME`` (so empty caches) and no project variables
   (no ``PYTENSOR_FLAGS``, ``JAX_*``, ``SIGMALAB_*``); the same 3-arc fit run three times, each
   in a new process: the first pays tracing and compiling, the others should find it all in
   the package's own cache (``~/.cache/sigmalab``).
2. A spectrum of a new length in a warm process: the same spectrum fitted again (same length),
   then cut to a length in the same length bucket, then to one in another bucket (compiled
   before on this machine, so loaded from the cache), each in one process, after a warm-up fit.
3. What padding costs: one spectrum sampled at its own length (no padding) and padded to its
   bucket, CPU time per fit (median of 3, same compiled process).
4. ``import service.client``: wall time in a new interpreter (median of 7) against a bare
   ``python -c pass``, and which heavy packages it loaded.

Every figure comes from subprocesses of this run; ratios are within the run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optimizer.virtual_lab.writers import THREE_ARC_CIRCUIT as CIRCUIT
from optimizer.virtual_lab.writers import write_three_arc_cell

REPO = Path(__file__).resolve().parent.parent
#: The fitted spectrum: a simulated three-arc cell (69 points, 7 MHz–0.1 Hz), which CIRCUIT
#: describes, so each fit is one NUTS run and the figures measure caching, not reruns. (The
#: bundled study's composites are transmission lines: CIRCUIT fits them poorly, and the
#: rerun policy then samples 4× longer.)
SPECTRUM_NAME = "cell1_30C.mpt"
HEAVY = ("pymc", "pytensor", "jax", "ray")


def _clean_env(**extra) -> dict:
    keep = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTENSOR", "JAX", "SIGMALAB"))
    }
    return {**keep, **extra}


def _timed(cmd: list[str], env: dict, cwd=REPO) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def _new_user_rows(spectrum: Path) -> list[dict]:
    sigmalab = str(Path(sys.executable).parent / "sigmalab")
    with tempfile.TemporaryDirectory() as home:
        env = _clean_env(HOME=home)
        env.pop("XDG_CACHE_HOME", None)  # a new user: the default ~/.cache
        times = []
        for i in range(3):
            out = Path(home) / f"out{i}"
            times.append(_timed([sigmalab, "fit", str(spectrum), "--out", str(out)], env)[0])
    return [
        {"measure": "new user: first sigmalab fit (empty caches)", "value": times[0], "unit": "s",
         "detail": f"fresh HOME, {CIRCUIT}, 69 points, 2 × 1000 draws, writes .nc and .png"},
        {"measure": "new user: second sigmalab fit", "value": times[1], "unit": "s",
         "detail": f"third: {times[2]:.2f} s; goal ≤ 5 s"},
    ]  # fmt: skip


LENGTHS = r"""
import json, sys, time
from inference.fit import fit_spectrum
from inference.readers import read_spectrum
from inference.eis_model import padded_length
ds = read_spectrum(sys.argv[1])
n = ds.sizes["frequency"]
same = next(m for m in range(n - 1, 0, -1) if padded_length(m) == padded_length(n) and m < n)
other = next(m for m in range(n - 1, 0, -1) if padded_length(m) != padded_length(n))
def fit(spectrum, seed):
    events = []
    started = time.perf_counter()
    fit_spectrum(spectrum, sys.argv[2], seed=seed, progress=events.append)
    return time.perf_counter() - started, "compiling" in {e["phase"] for e in events}
if sys.argv[3] == "prime":
    fit(ds.isel(frequency=slice(0, other)), 0)
    raise SystemExit
fit(ds, 0)
out = {"n": n, "same": same, "other": other, "warm": fit(ds, 1)}
out["same_bucket"] = fit(ds.isel(frequency=slice(0, same)), 2)
out["other_bucket"] = fit(ds.isel(frequency=slice(0, other)), 3)
print(json.dumps(out))
"""


def _length_rows(spectrum: Path) -> list[dict]:
    env = _clean_env()
    _timed([sys.executable, "-c", LENGTHS, str(spectrum), CIRCUIT, "prime"], env)
    _, out = _timed([sys.executable, "-c", LENGTHS, str(spectrum), CIRCUIT, "run"], env)
    r = json.loads(out.strip().splitlines()[-1])
    warm, same, other = r["warm"][0], r["same_bucket"][0], r["other_bucket"][0]
    same_note = f"{same / warm:.2f}× the same-length fit (goal ≤ 1.2)"
    other_note = f"{other / warm:.2f}× (that bucket was traced on this machine before)"
    return [
        {"measure": f"warm process: same length ({r['n']} points)", "value": warm, "unit": "s",
         "detail": "second fit of the spectrum"},
        {"measure": f"warm process: new length in the bucket ({r['same']} points)",
         "value": same, "unit": "s",
         "detail": f"{same_note}; compiled: {r['same_bucket'][1]}"},
        {"measure": f"warm process: new length in another bucket ({r['other']} points)",
         "value": other, "unit": "s", "detail": f"{other_note}; compiled: {r['other_bucket'][1]}"},
    ]  # fmt: skip


PADDING = r"""
import json, sys, time
import numpy as np
from inference import eis_model
from inference.circuits import parse_circuit
from inference.lsq import fit_lsq
from inference.priors import default_priors
from inference.readers import read_spectrum
from inference.samplers import get_sampler
ds = read_spectrum(sys.argv[1]); c = parse_circuit(sys.argv[2])
f = ds["frequency"].values
priors = default_priors(c, f, ds["z_real"].values, ds["z_imag"].values)
init = eis_model.initial_point(c, fit_lsq(ds, c).params, ds, priors)
key = eis_model.model_key(c, priors, "normal")
smp = get_sampler(key, lambda: eis_model.build_model(c, priors))
out = {}
for length in (f.size, eis_model.padded_length(f.size)):
    data = eis_model.model_data(ds, priors, length=length)
    smp.run(data, init, draws=1000, seed=0)
    cpu = []
    for seed in range(3):
        started = time.process_time()
        smp.run(data, init, draws=1000, seed=seed + 1)
        cpu.append(time.process_time() - started)
    out[length] = float(np.median(cpu))
print(json.dumps(out))
"""


def _padding_rows(spectrum: Path) -> list[dict]:
    _, out = _timed([sys.executable, "-c", PADDING, str(spectrum), CIRCUIT], _clean_env())
    (n, own), (m, padded) = json.loads(out.strip().splitlines()[-1]).items()
    return [
        {"measure": f"padding cost: {n} points padded to {m}", "value": padded / own, "unit": "×",
         "detail": f"CPU per fit {own:.3f} s unpadded, {padded:.3f} s padded (median of 3)"},
    ]  # fmt: skip


def _import_rows() -> list[dict]:
    env = _clean_env()
    check = f"import sys, service.client; print([m for m in {HEAVY!r} if m in sys.modules])"
    loaded = _timed([sys.executable, "-c", check], env)[1].strip()
    client, bare = [], []
    for _ in range(7):
        client.append(_timed([sys.executable, "-c", "import service.client"], env)[0])
        bare.append(_timed([sys.executable, "-c", "pass"], env)[0])
    c, b = statistics.median(client), statistics.median(bare)
    return [
        {"measure": "import service.client (new interpreter)", "value": c - b, "unit": "s",
         "detail": f"{c:.3f} s process minus {b:.3f} s for `python -c pass`; heavy modules "
         f"loaded: {loaded}; goal ≤ 0.3 s"},
    ]  # fmt: skip


def run(quick: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        spectrum = write_three_arc_cell(Path(folder) / SPECTRUM_NAME)
        rows = _import_rows() + _new_user_rows(spectrum) + _length_rows(spectrum)
        if not quick:
            rows += _padding_rows(spectrum)
    return {
        "name": "speed",
        "title": "Speed users feel: a new user's second fit, a new length, padding, client import",
        "columns": ["measure", "value", "unit", "detail"],
        "rows": rows,
        "notes": (
            "Each figure from new processes of this run (wall time unless said). New user: "
            "HOME is an empty temporary folder and no PYTENSOR_*/JAX_*/SIGMALAB_* variables are "
            "set, so the package's own cache set-up is what is measured. Spectrum: a simulated "
            "three-arc cell (optimizer.virtual_lab.writers.write_three_arc_cell, 69 points) and "
            "the same cut short; buckets 16, 24, 32, 48, 64, 96, "
            "… points (inference.eis_model.padded_length)."
        ),
    }
