"""Optimizer benchmark: our GP campaign against random, Sobol, scikit-optimize and Optuna.

Problems (:mod:`benchmarks.problems`): Branin, Hartmann-6, a mixed categorical/integer/continuous
Branin, the virtual lab's σ_ion landscape (with a failure region: films below the binder threshold
do not form), the two-objective BraninCurrin (hypervolume), and the virtual lab's σ_ion/σ_el
trade-off (two objectives, a categorical process, failures, batches of 3 for every method). Each
method runs for the problem's budget, over several seeds (20; the trade-off at least 10).

Reported per problem and method: evaluations needed to close 95 % of the gap between the median
random point and the optimum (median and IQR over seeds; "> budget" when not reached), the median
simple regret at half and full budget (hypervolume regret for two objectives), the final progress
(fraction of the true front's hypervolume for two objectives), the fraction of failed
experiments, and the wall time per proposal. Random search also gets its exact law (geometric,
from the hit rate of 100 000 random points), since within the budget it seldom gets there at all.
Speed rows time ``ask(4)`` with 200 observations in a 6-D mixed space (one and two objectives).
"No worse than the best of skopt/Optuna within noise": the 90 % bootstrap interval of the median
difference (seeds resampled) reaches zero or below; for two objectives the same interval of the
final hypervolume regret against every other method.

Two objectives: ours by EHVI with its default reference point (from the observed front), also
with the problem's own reference point given (``Campaign(reference=...)``, the worst values worth
having, which the hypervolume is measured from) and by ParEGO.

Failures: our campaign is told ``failed`` (on the virtual-lab problem also run without the price
of a failure, ``p_success_min=0.5, failure_cost=0``, see :mod:`optimizer.feasibility`); Optuna marks
the trial failed; scikit-optimize gets the usual workaround, the worst value seen so far (it has
no notion of failure).

``python -m benchmarks optimizer --quick`` runs four problems with 3 seeds (the trade-off with
10); ``SIGMALAB_BENCH_PROBLEMS`` (comma-separated), ``SIGMALAB_BENCH_METHODS`` (``|``-separated)
and ``SIGMALAB_BENCH_SEEDS`` choose a subset while developing.
"""

from __future__ import annotations

import importlib.util
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.problems import NAMES, TRADEOFF_SEEDS, Problem, problem
from optimizer.campaign import Campaign
from optimizer.space import Categorical, Integer, Real, Space

RESULTS = Path(__file__).parent / "results"

SEEDS_FULL, SEEDS_QUICK = 20, 3


def _random_params(space: Space, rng: np.random.Generator) -> dict:
    z = rng.random(space.n_cont)
    cat = np.array([rng.integers(len(p.choices)) for p in space.categorical], int)
    return space.from_parts(space.round_unit(z), cat)


def run_ours(problem: Problem, seed: int, **settings) -> tuple[list, float]:
    c = Campaign(problem.spec, problem.objectives, seed=seed, **settings)
    values, spent = [], 0.0
    while len(values) < problem.budget:
        t = time.perf_counter()
        batch = c.ask(min(problem.batch, problem.budget - len(values)))
        spent += time.perf_counter() - t
        told = []
        for b in batch:
            v = problem.evaluate(b["params"])
            values.append(v)
            told.append(
                {"id": b["id"], "failed": True, "reason": "failed"}
                if v is None
                else {"id": b["id"], "values": v}
            )
        c.tell(told)
    return values, spent / problem.budget


def run_random(problem: Problem, seed: int) -> tuple[list, float]:
    space, rng = Space.from_spec(problem.spec), np.random.default_rng(seed)
    return [problem.evaluate(_random_params(space, rng)) for _ in range(problem.budget)], 0.0


def run_sobol(problem: Problem, seed: int) -> tuple[list, float]:
    space = Space.from_spec(problem.spec)
    points = space.sample(problem.budget, np.random.default_rng(seed))
    return [problem.evaluate(p) for p in points], 0.0


def run_skopt(problem: Problem, seed: int) -> tuple[list, float]:
    from skopt import gp_minimize
    from skopt.space import Categorical as SkCat
    from skopt.space import Integer as SkInt
    from skopt.space import Real as SkReal

    space = Space.from_spec(problem.spec)
    dims = []
    for p in space.parameters:
        if isinstance(p, Real):
            dims.append(SkReal(p.low, p.high, name=p.name))
        elif isinstance(p, Integer):
            dims.append(SkInt(p.low, p.high, name=p.name))
        elif isinstance(p, Categorical):
            dims.append(SkCat(list(p.choices), name=p.name))
    names = [p.name for p in space.parameters]
    values: list = []
    worst = [0.0]

    def loss(x):
        v = problem.evaluate(
            {n: (int(a) if isinstance(a, np.integer) else a) for n, a in zip(names, x, strict=True)}
        )
        values.append(v)
        if v is None:
            return worst[0]
        worst[0] = max(worst[0], -v["y"]) if len(values) > 1 else -v["y"]
        return -v["y"]

    t = time.perf_counter()
    gp_minimize(loss, dims, n_calls=problem.budget, random_state=seed)
    return values, (time.perf_counter() - t) / problem.budget


def run_optuna(problem: Problem, seed: int, sampler_name: str) -> tuple[list, float]:
    """Optuna by ask/tell, ``problem.batch`` trials asked before any is told (TPE then lies
    constantly about the running ones, ``constant_liar``; the GP sampler fantasises them)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = Space.from_spec(problem.spec)
    if sampler_name == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=problem.batch > 1)
    else:
        sampler = optuna.samplers.GPSampler(seed=seed)
    study = optuna.create_study(directions=["maximize"] * len(problem.objectives), sampler=sampler)
    values: list = []
    t = time.perf_counter()
    while len(values) < problem.budget:
        trials = []
        for _ in range(min(problem.batch, problem.budget - len(values))):
            trial = study.ask()
            params = {}
            for p in space.parameters:
                if isinstance(p, Real):
                    params[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
                elif isinstance(p, Integer):
                    params[p.name] = trial.suggest_int(p.name, p.low, p.high)
                elif isinstance(p, Categorical):
                    params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            trials.append((trial, params))
        for trial, params in trials:
            v = problem.evaluate(params)
            values.append(v)
            if v is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, [v[k] for k in problem.objectives])
    return values, (time.perf_counter() - t) / problem.budget


OURS_NAME = "ours (GP: log EI; EHVI for two objectives)"
OURS = (OURS_NAME,)
RISKY = "ours, failures unpriced (P(success) ≥ 0.5, failure_cost 0)"
PAREGO = "ours, ParEGO"
GIVEN_REFERENCE = "ours, reference point given"
METHODS = {
    OURS_NAME: run_ours,
    RISKY: lambda p, s: run_ours(p, s, p_success_min=0.5, failure_cost=0.0),
    PAREGO: lambda p, s: run_ours(p, s, multi_objective="parego"),
    # EHVI told the problem's hypervolume reference (what a user states as the worst value worth
    # having) instead of the default that follows the observed front.
    GIVEN_REFERENCE: lambda p, s: run_ours(
        p, s, reference=dict(zip(p.objectives, p.hv_reference, strict=True))
    ),
    "random": run_random,
    "sobol": run_sobol,
    "skopt gp_minimize": run_skopt,
    "optuna TPE": lambda p, s: run_optuna(p, s, "tpe"),
    "optuna GP": lambda p, s: run_optuna(p, s, "gp"),
}


def _one(job: tuple[str, str, int]) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    name, method, seed = job
    prob = problem(name)
    values, s_per_proposal = METHODS[method](prob, seed)
    scores = prob.score(values)
    gap = (scores - prob.reference) / (prob.optimum - prob.reference)
    reached = np.flatnonzero(gap >= 0.95)
    return {
        "problem": name,
        "method": method,
        "seed": seed,
        "evals_to_95": int(reached[0]) + 1 if len(reached) else math.inf,
        # Simple regret after each evaluation (inf until the first successful one).
        "regret": [float(prob.optimum - v) for v in scores],
        "regret_half": float(prob.optimum - scores[len(scores) // 2 - 1]),
        "regret_final": float(prob.optimum - scores[-1]),
        "fraction_final": float(gap[-1]),
        "failure_rate": float(np.mean([v is None for v in values])),
        "failure_rate_after_10": float(np.mean([v is None for v in values[10:]])),
        "s_per_proposal": s_per_proposal,
    }


def _summary(runs: list[dict], budget: int) -> dict:
    e = np.array([r["evals_to_95"] for r in runs], float)
    # Not reached counts as budget + 1 so that medians and quartiles stay defined.
    q25, q50, q75 = np.percentile(np.minimum(e, budget + 1), [25, 50, 75])

    def fmt(v):
        return f"> {budget}" if v > budget else f"{v:.0f}"

    return {
        "evals_to_95_median": fmt(q50),
        "_median": q50,
        "evals_to_95_IQR": f"{fmt(q25)}–{fmt(q75)}",
        "reached_95": f"{int(np.isfinite(e).sum())}/{len(e)}",
        "regret_half_budget": float(np.median([r["regret_half"] for r in runs])),
        "regret_final": float(np.median([r["regret_final"] for r in runs])),
        "progress_final": float(np.median([r["fraction_final"] for r in runs])),
        "failure_rate": float(np.mean([r["failure_rate"] for r in runs])),
        "failure_rate_after_10": float(np.mean([r["failure_rate_after_10"] for r in runs])),
        "ms_per_proposal": 1e3 * float(np.median([r["s_per_proposal"] for r in runs])),
    }


def _evals(runs: list[dict], problem: str, method: str, budget: int) -> np.ndarray:
    e = [r["evals_to_95"] for r in runs if r["problem"] == problem and r["method"] == method]
    return np.minimum(np.array(e, float), budget + 1)


def _final(runs: list[dict], problem: str, method: str, key: str) -> np.ndarray:
    return np.array([r[key] for r in runs if r["problem"] == problem and r["method"] == method])


def _median_difference_interval(a: np.ndarray, b: np.ndarray, n: int = 4000) -> tuple[float, float]:
    """90 % bootstrap interval of median(a) − median(b), seeds resampled independently."""
    rng = np.random.default_rng(0)
    ma = np.median(rng.choice(a, (n, len(a))), axis=1)
    mb = np.median(rng.choice(b, (n, len(b))), axis=1)
    lo, hi = np.percentile(ma - mb, [5, 95])
    return float(lo), float(hi)


def plot_regret(runs: list[dict], names: list[str], path: Path) -> None:
    """Median simple regret vs evaluations, one panel per problem, one line per method."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for ax, n in zip(axes[0], names, strict=True):
        for i, m in enumerate(METHODS):
            curves = [r["regret"] for r in runs if r["problem"] == n and r["method"] == m]
            if not curves:
                continue
            median = np.median(np.array(curves, float), axis=0)  # inf (no success yet) sorts last
            ax.plot(
                np.arange(1, len(median) + 1),
                median,
                color=f"C{i}",
                label=m,
                lw=2.4 if m in OURS else 1.2,
            )
        ax.set(title=problem(n).title.split(" (")[0], xlabel="evaluations", yscale="log")
    axes[0][0].set_ylabel("median simple regret")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_lines()}
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_evals(v: float, budget: int) -> str:
    return f"> {budget}" if v > budget else f"{v:g}"


def time_ask(n_obs: int = 200, q: int = 4, repeats: int = 3, two_objectives=False) -> dict:
    """Wall time of ask(q) with n_obs observations in a 6-D mixed space (cold and warm fit)."""
    spec = {
        **{f"x{i}": {"type": "real", "low": 0, "high": 1} for i in range(4)},
        "k": {"type": "integer", "low": 0, "high": 20},
        "c": {"type": "categorical", "choices": ["a", "b", "c"]},
    }
    objectives = {"y": "maximize", "z": "maximize"} if two_objectives else {"y": "maximize"}
    cold, warm = [], []
    for r in range(repeats):
        c = Campaign(spec, objectives, seed=r)
        rng = np.random.default_rng(r)
        obs = []
        for p in c.space.sample(n_obs, rng):
            y = -sum((p[f"x{i}"] - 0.3) ** 2 for i in range(4)) - (p["k"] - 5) ** 2 / 400
            z = -sum((p[f"x{i}"] - 0.7) ** 2 for i in range(4))
            values = {"y": y + {"a": 0, "b": 0.2, "c": 0.1}[p["c"]], "z": z}
            obs.append(
                {
                    "params": p,
                    "values": {k: values[k] for k in objectives},
                    "sd": {k: 0.02 for k in objectives},
                }
            )
        c.tell(obs)
        t = time.perf_counter()
        c.ask(q)
        cold.append(time.perf_counter() - t)
        t = time.perf_counter()
        c.ask(q)  # next round: the GP fit starts from the last hyperparameters
        warm.append(time.perf_counter() - t)
    return {"cold_s": float(np.median(cold)), "warm_s": float(np.median(warm))}


def _selection(quick: bool) -> tuple[list[str], list[str], int]:
    """Problems, methods and seeds of this run: the full suite, ``--quick``, or the
    ``SIGMALAB_BENCH_PROBLEMS`` / ``_METHODS`` (comma-separated) and ``_SEEDS`` overrides used
    while developing."""
    n_seeds = SEEDS_QUICK if quick else SEEDS_FULL
    names = list(NAMES) if not quick else ["branin", "mixed", "lab", "lab_tradeoff"]
    methods = [OURS_NAME, RISKY, PAREGO, GIVEN_REFERENCE, "random", "sobol", "optuna TPE"]
    if not quick:
        methods.append("skopt gp_minimize")
        if importlib.util.find_spec("torch") is not None:
            methods.append("optuna GP")
    env = os.environ.get
    names = (
        env("SIGMALAB_BENCH_PROBLEMS", "").split(",") if env("SIGMALAB_BENCH_PROBLEMS") else names
    )
    methods = (
        env("SIGMALAB_BENCH_METHODS", "").split("|") if env("SIGMALAB_BENCH_METHODS") else methods
    )
    return names, methods, int(env("SIGMALAB_BENCH_SEEDS", n_seeds))


def _verdict(n: str, by_method: dict, runs: list[dict]) -> str:
    """The done-when comparison of one problem, with a 90 % bootstrap interval where a median
    difference decides it."""
    prob = problem(n)
    budget = prob.budget
    ours = by_method[OURS_NAME]["_median"]
    rnd = by_method["random"]["_median"] if "random" in by_method else math.inf
    if not prob.multi:
        rnd = prob.random_evals_to_95(0.5)
    verdict = (
        f"{n}: median evals to 95 % ours {_fmt_evals(ours, budget)}, random "
        f"{_fmt_evals(rnd, budget) if prob.multi else f'{rnd:.0f} (exact)'} "
        f"({'≤' if ours <= rnd / 2 else 'NOT ≤'} half)"
    )
    rivals = [m for m in by_method if m.startswith(("skopt", "optuna"))]
    if rivals and not prob.multi:
        rival = min(rivals, key=lambda m: by_method[m]["_median"])
        lo, hi = _median_difference_interval(
            _evals(runs, n, OURS_NAME, budget), _evals(runs, n, rival, budget)
        )
        verdict += (
            f", best of skopt/Optuna {_fmt_evals(by_method[rival]['_median'], budget)} ({rival}); "
            f"median difference ours − {rival}: 90 % bootstrap interval [{lo:+.1f}, {hi:+.1f}]"
            f" ({'no worse within noise' if lo <= 0 else 'WORSE'})"
        )
        if n == "mixed" and "skopt gp_minimize" in by_method:
            skopt = by_method["skopt gp_minimize"]["_median"]
            verdict += f"; ours ≤ skopt's median: {'yes' if ours <= skopt else 'NO'}"
    if prob.multi:
        mine = _final(runs, n, OURS_NAME, "regret_final")
        verdict += f"; final hypervolume regret ours {np.median(mine):.3g}"
        for rival in [m for m in by_method if m != OURS_NAME and m != RISKY]:
            other = _final(runs, n, rival, "regret_final")
            lo, hi = _median_difference_interval(mine, other)
            verdict += (
                f", {rival} {np.median(other):.3g} (ours − it: [{lo:+.3g}, {hi:+.3g}], "
                f"{'ours ≤' if np.median(mine) <= np.median(other) else 'ours NOT ≤'})"
            )
        frac = np.median(_final(runs, n, OURS_NAME, "fraction_final"))
        verdict += f"; ours' final fraction of the true front's hypervolume {frac:.3f}"
    if n == "lab" and RISKY in by_method:
        after = {m: by_method[m]["failure_rate_after_10"] for m in by_method}
        verdict += (
            f"; failures after 10 evaluations: ours {after[OURS_NAME]:.0%}, "
            f"{RISKY} {after[RISKY]:.0%}, random {after['random']:.0%}"
        )
    return verdict


def run(quick: bool = False) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    names, methods, n_seeds = _selection(quick)
    jobs = [
        (n, m, s)
        for n in names
        for m in methods
        for s in range(max(n_seeds, problem(n).min_seeds))
        if not (m.startswith("skopt") and problem(n).multi)
        # the failure settings only matter where experiments fail; ParEGO only for two objectives
        and (m != RISKY or n == "lab")
        and (m not in (PAREGO, GIVEN_REFERENCE) or problem(n).multi)
    ]
    for n in names:  # compute optima once before forking
        problem(n)
    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(_one, jobs))
    rows, verdicts = [], []
    for n in names:
        prob = problem(n)
        budget = prob.budget
        by_method = {
            m: _summary([r for r in runs if r["problem"] == n and r["method"] == m], budget)
            for m in methods
            if any(r["problem"] == n and r["method"] == m for r in runs)
        }
        for m, s in by_method.items():
            rows.append(
                {
                    "problem": n,
                    "method": m,
                    "budget": budget if prob.batch == 1 else f"{budget} ({prob.batch}/round)",
                    **{k: v for k, v in s.items() if not k.startswith("_")},
                }
            )
        if not prob.multi:
            # Random search's law is known exactly (geometric), beyond any budget.
            q25, rnd, q75 = (prob.random_evals_to_95(q) for q in (0.25, 0.5, 0.75))
            rows.append(
                {
                    "problem": n,
                    "method": "random, exact (geometric law)",
                    "evals_to_95_median": f"{rnd:.0f}",
                    "evals_to_95_IQR": f"{q25:.0f}–{q75:.0f}",
                    "reached_95": f"hit rate {prob.p_random_95:.2g}",
                }
            )
        if OURS_NAME in by_method:
            verdicts.append(_verdict(n, by_method, runs))
    # A subset run (SIGMALAB_BENCH_PROBLEMS) writes its own files beside the full suite's.
    suffix = "" if names == list(NAMES) else "_" + "_".join(names)
    figure = RESULTS / f"optimizer_regret{suffix}.png"
    plot_regret(runs, names, figure)
    for label, two, repeats in (("", False, 3), (", two objectives (EHVI)", True, 1)):
        speed = time_ask(repeats=repeats, two_objectives=two)
        rows.append(
            {
                "problem": f"speed: ask(4), 200 obs, 6-D mixed{label}",
                "method": OURS_NAME,
                "ms_per_proposal": 1e3 * speed["warm_s"],
                "evals_to_95_median": f"cold fit {speed['cold_s']:.2f} s, "
                f"warm {speed['warm_s']:.2f} s per ask(4)",
            }
        )
    return {
        "name": f"optimizer{suffix}",
        "title": "GP optimizer vs baselines (evaluations to 95 % of the optimum gap)",
        "columns": [
            "problem",
            "method",
            "budget",
            "evals_to_95_median",
            "evals_to_95_IQR",
            "reached_95",
            "regret_half_budget",
            "regret_final",
            "progress_final",
            "failure_rate",
            "failure_rate_after_10",
            "ms_per_proposal",
        ],
        "rows": rows,
        "runs": [
            {
                k: [None if math.isinf(x) else x for x in v]
                if k == "regret"
                else (None if isinstance(v, float) and math.isinf(v) else v)
                for k, v in r.items()
            }
            for r in runs
        ],
        "notes": (
            f"![median simple regret vs evaluations]({figure.name}) "
            f"{n_seeds} seeds per problem and method (lab_tradeoff at least "
            f"{TRADEOFF_SEEDS}), one proposal per evaluation except "
            "lab_tradeoff (batches of 3 for every method: Optuna asks 3 trials before telling "
            "any, TPE with constant_liar), 2 worker processes. Progress = (best − median "
            "random value)/(optimum − median random value); for two objectives the hypervolume "
            "over the true front's (regret = hypervolume regret; progress_final = fraction of "
            "the true front's hypervolume at the budget; lab_tradeoff's front from a dense grid "
            "of 0.48 M recipes). Failed experiments: ours told 'failed' (GP classifier), Optuna "
            "trial failed, skopt given the worst value so far. skopt has no multi-objective "
            "mode. ms_per_proposal: for ours the ask() time, for skopt/Optuna the whole "
            "optimize() time per trial (includes the cheap objective). Speed rows: ask(4) after "
            "a cold hyperparameter fit (first ask) and a warm one (the next round, starting "
            "from the saved hyperparameters), median of 3 (1 for two objectives). Not reached "
            "counts as budget + 1 in medians and in the bootstrap of the median difference. "
            "'random, exact': the first of independent uniform draws to reach 95 % follows a "
            "geometric law whose hit rate is measured on 100 000 random points "
            "(benchmarks.problems). " + " | ".join(verdicts)
        ),
    }
