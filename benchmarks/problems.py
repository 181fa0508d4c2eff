"""Benchmark problems for the optimizer: test functions and the virtual lab's landscape.

Every problem is to *maximise*. Single-objective problems give ``{"y": value}``; the
two-objective ones give a value per objective. ``evaluate`` returns None for a failed experiment
(a film that did not form). ``optimum`` is the best value (or the best hypervolume, from a dense
grid); ``reference`` the median value of a uniformly random point (0 for hypervolume), so progress
= (best − reference) / (optimum − reference) and "95 % of the optimum" means 95 % of that gap
closed. ``batch`` is the number of proposals per round (1: sequential); ``min_seeds`` the fewest
seeds a run measures the problem with (its done-when figure is a median over at least that many).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from optimizer.pareto import hypervolume
from optimizer.space import Space


@dataclass
class Problem:
    """A benchmark problem: search space, objective(s) to maximise, known optimum."""

    name: str
    title: str
    spec: dict
    objectives: dict
    evaluate: Callable[[dict], dict | None]
    budget: int
    optimum: float = math.nan
    reference: float = math.nan
    hv_reference: list = field(default_factory=list)
    p_random_95: float = math.nan
    batch: int = 1
    min_seeds: int = 0

    def random_evals_to_95(self, q: float) -> float:
        """The q-quantile of random search's evaluations to 95 %: the first hit of a geometric
        law with the hit rate ``p_random_95`` of 100 000 random points (single objective)."""
        p = self.p_random_95
        if not p > 0:
            return math.inf
        return float(max(1, math.ceil(math.log1p(-q) / math.log1p(-p))))

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def score(self, values: list[dict | None]) -> np.ndarray:
        """Best value (or hypervolume) so far after each evaluation; failures score nothing."""
        out, best, points = [], -np.inf, []
        for v in values:
            if v is not None:
                if self.multi:
                    points.append([v[k] for k in self.objectives])
                    best = hypervolume(np.array(points), self.hv_reference)
                else:
                    best = max(best, v["y"])
            out.append(best)
        return np.array(out)


def branin(x1, x2):
    """Branin–Hoo on x1 ∈ [−5, 10], x2 ∈ [0, 15]; global minimum 0.397887."""
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x):
    """Hartmann-6 on [0, 1]^6 (to maximise); global maximum 3.32237."""
    x = np.atleast_2d(x)
    inner = ((x[:, None, :] - _H6_P[None]) ** 2 * _H6_A[None]).sum(axis=2)
    return (_H6_ALPHA * np.exp(-inner)).sum(axis=1)


_MIXED_OFFSET = {"a": 0.0, "b": -0.3, "c": -0.15}


def mixed(p: dict) -> float:
    """Branin on two unit reals (mirrored for choice b) plus an integer term; maximise."""
    u = p["x1"] if p["cat"] != "b" else 1.0 - p["x1"]
    value = -branin(15 * u - 5, 15 * p["x2"]) / 50
    return float(value - 0.05 * (p["k"] - 7) ** 2 / 9 + _MIXED_OFFSET[p["cat"]])


def branin_currin(x1: float, x2: float) -> tuple[float, float]:
    """BraninCurrin (two objectives to minimise on [0, 1]², as in BoTorch's test problems):
    Branin on (15·x1 − 5, 15·x2) and Currin, whose exponential factor is in x2 (an earlier
    version of this benchmark put x1 there, which made Currin a function of x1 alone)."""
    f1 = float(branin(15 * x1 - 5, 15 * x2))
    x2 = max(x2, 1e-12)
    f2 = (
        (1 - math.exp(-1 / (2 * x2)))
        * (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60)
        / (100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)
    )
    return f1, float(f2)


RANDOM_DRAWS = 100_000


def _random_values(evaluate, spec, n=RANDOM_DRAWS) -> np.ndarray:
    """Objective at ``n`` uniformly random points (NaN where the experiment fails)."""
    space = Space.from_spec(spec)
    rng = np.random.default_rng(12345)
    values = np.full(n, np.nan)
    for i in range(n):
        z = rng.random(space.n_cont)
        cat = np.array([rng.integers(len(p.choices)) for p in space.categorical], int)
        v = evaluate(space.from_parts(space.round_unit(z), cat))
        if v is not None:
            values[i] = v["y"]
    return values


def _single(name, title, spec, evaluate, budget, optimum) -> Problem:
    """A single-objective problem with its random-search reference and 95 % hit rate."""
    values = _random_values(evaluate, spec)
    reference = float(np.nanmedian(values))
    threshold = reference + 0.95 * (optimum - reference)
    return Problem(
        name,
        title,
        spec,
        {"y": "maximize"},
        evaluate,
        budget,
        optimum=optimum,
        reference=reference,
        p_random_95=float(np.mean(values >= threshold)),  # NaN (failure) compares False
    )


LAB_SPEC = {
    "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
    "process": {"type": "categorical", "choices": ["dry", "wet"]},
    "press_MPa": {"type": "integer", "low": 100, "high": 500},
}
_LAB_BINDER = {"dry": "PTFE", "wet": "NBR"}  # the binder each process can use


def lab_recipe(p: dict) -> dict:
    """The virtual lab's recipe for benchmark parameters (the process fixes the binder)."""
    return {**p, "binder": _LAB_BINDER[p["process"]]}


def lab_sigma_ion(p: dict) -> dict | None:
    """True log10 σ_ion (S/cm, 30 °C) of the virtual lab, or None when the film does not form."""
    from optimizer.virtual_lab import is_feasible, true_log10_sigma

    recipe = lab_recipe(p)
    if not is_feasible(recipe)[0]:
        return None
    return {"y": true_log10_sigma(recipe)["sigma_ion"]}


TRADEOFF_SPEC = {
    "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
    "process": {"type": "categorical", "choices": ["dry", "wet"]},
    "carbon_wt_pct": {"type": "real", "low": 0.5, "high": 12},
    "press_MPa": {"type": "integer", "low": 100, "high": 500},
}
#: Active material share of the binder-free solids, wt %: SE is what carbon leaves of the rest.
TRADEOFF_ACTIVE_WT_PCT = 60.0
TRADEOFF_REFERENCE = [-6.0, -3.0]  # log10 S/cm: σ_ion 1 µS/cm, σ_el 1 mS/cm
TRADEOFF_SEEDS = 10  # its done-when figure is a median over at least 10 seeds


def lab_tradeoff(p: dict) -> dict | None:
    """True log10 σ_ion and log10 σ_el (S/cm, 30 °C) of a cathode with 60 wt% NMC whose other
    40 wt% are shared by carbon and SE (more carbon: electrons up, ions down), or None when the
    film does not form (binder below the process threshold)."""
    from optimizer.virtual_lab import is_feasible, true_log10_sigma

    recipe = lab_recipe(p) | {"se_wt_pct": 100.0 - TRADEOFF_ACTIVE_WT_PCT - p["carbon_wt_pct"]}
    if not is_feasible(recipe)[0]:
        return None
    return true_log10_sigma(recipe)


def _front_2d(Y: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a large (n, 2) array (sort and sweep, n log n)."""
    Y = Y[np.lexsort((-Y[:, 1], -Y[:, 0]))]
    keep = Y[:, 1] > np.maximum.accumulate(np.concatenate([[-np.inf], Y[:-1, 1]]))
    return Y[keep]


def _tradeoff_front() -> np.ndarray:
    """The true σ_ion/σ_el front of :func:`lab_tradeoff` on a dense grid (binder every 0.05 wt%,
    carbon every 0.05 wt%, pressure every 25 MPa, both processes: 0.48 M recipes; the grid holds
    both processes' binder thresholds, where the front lies)."""
    rows = []
    for process in ("dry", "wet"):
        for w in np.round(np.linspace(0, 3, 61), 6):
            for c in np.round(np.linspace(0.5, 12, 231), 6):
                for press in range(100, 501, 25):
                    v = lab_tradeoff(
                        {"binder_wt_pct": float(w), "process": process,
                         "carbon_wt_pct": float(c), "press_MPa": press}
                    )  # fmt: skip
                    if v is not None:
                        rows.append((v["sigma_ion"], v["sigma_el"]))
    return _front_2d(np.array(rows))


NAMES = ("branin", "hartmann6", "mixed", "lab", "branin_currin", "lab_tradeoff")


def problems() -> dict[str, Problem]:
    """All benchmark problems (each computed once, see :func:`problem`)."""
    return {name: problem(name) for name in NAMES}


@cache
def problem(name: str) -> Problem:
    """One benchmark problem with its optimum and random-median reference, computed once."""
    if name == "branin":
        spec = {
            "x1": {"type": "real", "low": -5, "high": 10},
            "x2": {"type": "real", "low": 0, "high": 15},
        }
        ev = lambda p: {"y": -float(branin(p["x1"], p["x2"]))}  # noqa: E731
        return _single("branin", "Branin (2 reals)", spec, ev, 40, -0.397887)
    if name == "hartmann6":
        spec = {f"x{i}": {"type": "real", "low": 0, "high": 1} for i in range(1, 7)}
        ev = lambda p: {"y": float(hartmann6([p[f"x{i}"] for i in range(1, 7)])[0])}  # noqa: E731
        return _single("hartmann6", "Hartmann-6 (6 reals)", spec, ev, 60, 3.32237)
    if name == "mixed":
        spec = {
            "x1": {"type": "real", "low": 0, "high": 1},
            "x2": {"type": "real", "low": 0, "high": 1},
            "k": {"type": "integer", "low": 0, "high": 10},
            "cat": {"type": "categorical", "choices": ["a", "b", "c"]},
        }
        ev = lambda p: {"y": mixed(p)}  # noqa: E731
        title = "Mixed Branin (2 reals, integer, 3-way categorical)"
        return _single("mixed", title, spec, ev, 50, -0.397887 / 50)
    if name == "lab":
        grid_w = np.linspace(0, 3, 3001)
        best = max(
            v["y"]
            for proc in ("dry", "wet")
            for w in grid_w
            if (v := lab_sigma_ion({"binder_wt_pct": float(w), "process": proc, "press_MPa": 500}))
        )
        title = (
            "Virtual lab log10 σ_ion (binder wt%, process, pressure; films below the binder "
            "threshold fail)"
        )
        return _single("lab", title, LAB_SPEC, lab_sigma_ion, 40, best)
    if name == "branin_currin":
        spec = {
            "x1": {"type": "real", "low": 0, "high": 1},
            "x2": {"type": "real", "low": 0, "high": 1},
        }

        def ev_bc(p):
            f1, f2 = branin_currin(p["x1"], p["x2"])
            return {"f1": -f1, "f2": -f2}

        g = np.linspace(0, 1, 301)
        front = _front_2d(np.array([[-v for v in branin_currin(a, b)] for a in g for b in g]))
        ref = [-18.0, -6.0]
        return Problem(
            "branin_currin",
            "BraninCurrin, two objectives (hypervolume, reference (18, 6))",
            spec,
            {"f1": "maximize", "f2": "maximize"},
            ev_bc,
            50,
            optimum=hypervolume(front, ref),
            reference=0.0,
            hv_reference=ref,
        )
    if name == "lab_tradeoff":
        return Problem(
            "lab_tradeoff",
            "Virtual lab σ_ion/σ_el trade-off (binder wt%, process, carbon wt% at 60 wt% NMC, "
            "pressure; films below the binder threshold fail; batches of 3; hypervolume, "
            "reference (−6, −3) log10 S/cm)",
            TRADEOFF_SPEC,
            {"sigma_ion": "maximize", "sigma_el": "maximize"},
            lab_tradeoff,
            24,
            optimum=hypervolume(_tradeoff_front(), TRADEOFF_REFERENCE),
            reference=0.0,
            hv_reference=TRADEOFF_REFERENCE,
            batch=3,
            min_seeds=TRADEOFF_SEEDS,
        )
    raise KeyError(f"unknown benchmark problem {name!r}; problems: {', '.join(NAMES)}")
