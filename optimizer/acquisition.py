"""Acquisition functions and their maximisation over a mixed search space.

Acquisition functions (all for *maximisation* of the objective):

- ``log_expected_improvement``: log EI, computed stably far into the tail (Ament et al.,
  NeurIPS 2023, "Unexpected improvements to expected improvement"), so that the optimiser still
  sees a slope where plain EI underflows to zero. Default.
- ``upper_confidence_bound``: mean + β·sd.
- ``log_probability_at_least``: log P(f ≥ threshold) for outcome constraints and, added to log EI,
  gives constrained EI (Gardner et al. 2014).
- ``log_expected_hypervolume_improvement``: log EHVI of several independent Gaussian objectives
  over the non-dominated boxes of a front (:func:`optimizer.pareto.nondominated_boxes`), exact:
  in each box the improvement is a product of one-dimensional clipped gains whose expectations
  are differences of EIs, computed in log space like log EI, so it keeps a slope far into the
  dominated region.

Maximisation (:func:`maximize`): the function is evaluated on many scrambled-Sobol candidates at
once (every categorical combination when there are few, Sobol-drawn choices otherwise), plus small
perturbations of the best observed points; the best candidate and others drawn by roulette
(probability ∝ exp(log acquisition)) start a multi-start L-BFGS-B (SLSQP when the space has
linear constraints) over the continuous coordinates with the categorical choices held. All starts
are optimised as one stacked problem; because the sum of independent starts is separable, its
gradient comes from ``1 + d`` batched evaluations (forward differences), so the acquisition needs
no gradient code of its own. Integer coordinates are optimised relaxed and rounded at the end.
An optional ``select`` score then chooses among all evaluated candidates (the campaign uses it to
price failed experiments, :mod:`optimizer.feasibility`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
from scipy.optimize import LinearConstraint, minimize
from scipy.special import erfcx, log_ndtr, ndtr

from optimizer.errors import CampaignError
from optimizer.space import Categorical, Integer, Space

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)
_LOG_SQRT_PI_2 = 0.5 * np.log(np.pi / 2)
_FD_STEP = 1e-6
_DUPLICATE_TOL = 1e-6

Acquisition = Callable[[np.ndarray], np.ndarray]


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 − exp(x)) for x < 0, accurate on both sides of −log 2."""
    return np.where(x > -np.log(2), np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def _log_h(z: np.ndarray) -> np.ndarray:
    """log(φ(z) + z·Φ(z)), the standardised EI, without underflow for very negative z."""
    z = np.asarray(z, float)
    out = np.empty_like(z)
    upper = z > -1.0
    zu = z[upper]
    out[upper] = np.log(np.exp(-0.5 * zu * zu - _LOG_SQRT_2PI) + zu * ndtr(zu))
    zl = z[~upper]
    tail = zl < -1e6
    # For z < 0: h = φ(z)·(1 − |z|·erfcx(|z|/√2)·√(π/2)); beyond 1e6 the bracket is 1/z².
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.log(erfcx(-zl / np.sqrt(2)) * np.abs(zl)) + _LOG_SQRT_PI_2
        mid = -0.5 * zl * zl - _LOG_SQRT_2PI + _log1mexp(np.minimum(c, -1e-300))
    out[~upper] = np.where(tail, -0.5 * zl * zl - _LOG_SQRT_2PI - 2 * np.log(np.abs(zl)), mid)
    return out


def log_expected_improvement(mean, sd, best) -> np.ndarray:
    """log E[max(f − best, 0)] for f ~ N(mean, sd²) (same units as the objective).

    Parameters
    ----------
    mean, sd : posterior mean and sd of the objective at the candidates.
    best : incumbent value to improve on (a number, or an array broadcasting with ``mean``).
    """
    sd = np.maximum(np.asarray(sd, float), 1e-12)
    return np.log(sd) + _log_h((np.asarray(mean, float) - best) / sd)


def log_expected_hypervolume_improvement(mean, sd, lower, upper) -> np.ndarray:
    """log E[HVI(y)] for y_k ~ N(mean_k, sd_k²) independent, exact over the given boxes.

    Parameters
    ----------
    mean : (m, k) posterior mean of the k objectives (maximised) at m candidates, or (m, b, k):
        a mean per box (boxes of several fronts, each with its own conditional mean).
    sd : (m, k) posterior sd.
    lower, upper : (b, k) non-dominated boxes (``upper`` may be +inf).

    E[max(0, min(y, u) − l)] = EI(l) − EI(u) per dimension (EI at threshold t: E[max(y − t, 0)]),
    and E[HVI] = Σ_boxes Π_k of those (independence); all in log space. Returns (m,).
    """
    mean = np.asarray(mean, float)
    lower = np.asarray(lower, float)
    if mean.ndim == 2:
        mean = np.broadcast_to(mean[:, None, :], (len(mean), *lower.shape))
    sd = np.broadcast_to(np.maximum(np.asarray(sd, float), 1e-12)[:, None, :], mean.shape)
    lower = np.broadcast_to(lower[None], mean.shape)
    upper = np.asarray(upper, float)
    log_box = log_expected_improvement(mean, sd, lower)
    finite = np.broadcast_to(np.isfinite(upper)[None], mean.shape)
    if finite.any():
        log_hi = log_expected_improvement(
            mean[finite], sd[finite], np.broadcast_to(upper[None], mean.shape)[finite]
        )
        with np.errstate(divide="ignore"):
            log_box[finite] += _log1mexp(np.minimum(log_hi - log_box[finite], -1e-300))
    log_box = log_box.sum(axis=2)  # (m, b)
    top = log_box.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return top[:, 0] + np.log(np.exp(log_box - top).sum(axis=1))


def upper_confidence_bound(mean, sd, beta: float = 2.0) -> np.ndarray:
    """mean + beta·sd."""
    return np.asarray(mean, float) + beta * np.asarray(sd, float)


def log_probability_at_least(mean, sd, threshold: float) -> np.ndarray:
    """log P(f ≥ threshold) for f ~ N(mean, sd²)."""
    sd = np.maximum(np.asarray(sd, float), 1e-12)
    return log_ndtr((np.asarray(mean, float) - threshold) / sd)


def _category_combos(space: Space, fixed_cat: dict[int, int]) -> list[tuple[int, ...]]:
    ranges = [
        [fixed_cat[j]] if j in fixed_cat else range(len(p.choices))
        for j, p in enumerate(space.categorical)
    ]
    return list(itertools.product(*ranges))


def _raw_candidates(
    space: Space,
    rng: np.random.Generator,
    n_raw: int,
    fixed_cont: dict[int, float],
    fixed_cat: dict[int, int],
    anchors: tuple[np.ndarray, np.ndarray] | None,
    max_combos: int,
) -> tuple[np.ndarray, np.ndarray]:
    z, cat = space.sobol_parts(n_raw, rng)
    n_combos = int(np.prod([len(p.choices) for p in space.categorical])) if space.categorical else 1
    if space.categorical and n_combos <= max_combos:
        combos = np.array(_category_combos(space, fixed_cat), int)
        z = np.repeat(z, len(combos), axis=0)
        cat = np.tile(combos, (n_raw, 1))
    zs, cats = [z], [cat]
    if anchors is not None and len(anchors[0]):
        za, ca = anchors
        reps = 32
        local = np.repeat(za, reps, 0) + 0.05 * rng.standard_normal((len(za) * reps, za.shape[1]))
        # Integer columns step by whole units: a relaxed step of 0.05 would round back to the
        # anchor's own value, and the search could never move along a weakly relevant integer.
        for j, p in enumerate(space.continuous):
            if isinstance(p, Integer):
                local[:, j] = np.repeat(za[:, j], reps) + rng.integers(-1, 2, len(local)) / (
                    p.high - p.low
                )
        zs += [np.clip(local, 0.0, 1.0), za]
        cats += [np.repeat(ca, reps, 0), ca]
    z = np.vstack(zs)
    cat = np.vstack(cats).astype(int)
    for j, v in fixed_cont.items():
        z[:, j] = v
    for j, v in fixed_cat.items():
        cat[:, j] = v
    return space.round_unit(z), cat


def _is_duplicate(x: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    if exclude is None or len(exclude) == 0:
        return np.zeros(len(x), bool)
    d = np.abs(x[:, None, :] - exclude[None, :, :]).max(axis=2)
    return (d < _DUPLICATE_TOL).any(axis=1)


def _local_search(
    acq: Acquisition,
    space: Space,
    z0: np.ndarray,
    cat: np.ndarray,
    free: np.ndarray,
    maxiter: int,
) -> np.ndarray:
    """Jointly refine starts ``z0`` (m, n_cont) over the ``free`` continuous columns."""
    m, d = z0.shape[0], len(free)
    base = z0.copy()

    def unpack(v: np.ndarray) -> np.ndarray:
        z = base.copy()
        z[:, free] = v.reshape(m, d)
        return z

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        z = unpack(v)
        step = np.where(z[:, free] + _FD_STEP <= 1.0, _FD_STEP, -_FD_STEP)
        stack = [z]
        for k, j in enumerate(free):
            zk = z.copy()
            zk[:, j] += step[:, k]
            stack.append(zk)
        values = acq(space.encode_parts(np.vstack(stack), np.tile(cat, (d + 1, 1))))
        values = values.reshape(d + 1, m)
        grad = (values[1:] - values[0]).T / step
        return -float(values[0].sum()), -grad.ravel()

    x0 = z0[:, free].ravel()
    bounds = [(0.0, 1.0)] * (m * d)
    if space.constraints:
        A, b = space.unit_constraints()
        fixed_cols = np.setdiff1d(np.arange(space.n_cont), free)
        b_starts = b[None, :] - z0[:, fixed_cols] @ A[:, fixed_cols].T  # (m, k)
        A_big = np.kron(np.eye(m), A[:, free])
        res = minimize(
            fun,
            x0,
            jac=True,
            method="SLSQP",
            bounds=bounds,
            constraints=[LinearConstraint(A_big, -np.inf, b_starts.ravel())],
            options={"maxiter": maxiter},
        )
    else:
        res = minimize(
            fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter}
        )
    return np.clip(unpack(res.x), 0.0, 1.0)


def _pick_starts(
    values: np.ndarray, best: int, n_starts: int, rng: np.random.Generator
) -> np.ndarray:
    """The best candidate plus ``n_starts − 1`` others drawn with probability ∝ exp(value − best)
    (roulette on the log acquisition, as Optuna's GP sampler does): the starts spread over several
    promising basins instead of crowding the best one."""
    finite = np.isfinite(values)
    weight = np.exp(np.where(finite, values, -np.inf) - values[best])
    weight[best] = 0.0
    k = min(n_starts - 1, int((weight > 0).sum()))
    if k == 0:
        return np.array([best])
    others = rng.choice(len(values), k, replace=False, p=weight / weight.sum())
    return np.concatenate([[best], others])


def maximize(
    acq: Acquisition,
    space: Space,
    rng: np.random.Generator,
    *,
    fixed: dict | None = None,
    anchors: list[dict] | None = None,
    exclude: np.ndarray | None = None,
    select: Acquisition | None = None,
    n_raw: int = 2048,
    n_starts: int = 10,
    max_combos: int = 16,
    maxiter: int = 60,
) -> tuple[dict, float]:
    """Find an admissible parameter set that maximises ``acq``.

    Parameters
    ----------
    acq : vectorised acquisition, encoded inputs (m, n_encoded) → values (m,), finite.
    space : the search space (constraints and feasibility rule are respected).
    rng : source of the Sobol scrambling and the anchor perturbations.
    fixed : parameter values the result must take (batch-shared settings).
    anchors : good parameter sets (e.g. the best observations) to search around as well.
    exclude : encoded points the result must differ from (observed, pending, batch members).
    select : vectorised score, encoded inputs → (m,), that chooses among the evaluated
        candidates (Sobol points, local optima) instead of ``acq``; −inf marks a candidate as
        inadmissible (e.g. too likely to fail). When no new admissible candidate scores above
        −inf, ``acq`` chooses.
    n_raw : Sobol points per categorical combination (total capped by ``max_combos`` combinations).
    n_starts : local searches, started from the best raw candidate and others drawn by roulette.
    maxiter : iterations of each local search.

    Returns
    -------
    params : the chosen parameter set (complete, typed).
    value : its acquisition value.
    """
    fixed = fixed or {}
    fixed_cont, fixed_cat = {}, {}
    for name, value in fixed.items():
        p = space.by_name[name]
        if isinstance(p, Categorical):
            fixed_cat[space.categorical.index(p)] = p.choices.index(value)
        elif p in space.continuous:
            fixed_cont[space.continuous.index(p)] = p.to_unit(value)
    anchor_parts = None
    if anchors:
        parts = [space.to_parts(a) for a in anchors]
        anchor_parts = (
            np.array([a for a, _ in parts]).reshape(len(parts), space.n_cont),
            np.array([c for _, c in parts], int).reshape(len(parts), len(space.categorical)),
        )
    z, cat = _raw_candidates(space, rng, n_raw, fixed_cont, fixed_cat, anchor_parts, max_combos)
    ok = np.ones(len(z), bool)
    if space.constraints:
        A, b = space.unit_constraints()
        ok &= (z @ A.T <= b + 1e-9).all(axis=1)
    values = np.where(ok, acq(space.encode_parts(z, cat)), -np.inf)

    free = np.array([j for j in range(space.n_cont) if j not in fixed_cont], int)
    order = np.argsort(-values, kind="stable")
    if len(free) and np.isfinite(values[order[0]]):
        starts = _pick_starts(values, order[0], n_starts, rng)
        z_opt = space.round_unit(_local_search(acq, space, z[starts], cat[starts], free, maxiter))
        v_opt = acq(space.encode_parts(z_opt, cat[starts]))
        if space.constraints:
            v_opt = np.where((z_opt @ A.T <= b + 1e-9).all(axis=1), v_opt, -np.inf)
        z = np.vstack([z_opt, z])
        cat = np.vstack([cat[starts], cat])
        values = np.concatenate([v_opt, values])
        order = np.argsort(-values, kind="stable")

    x_all = space.encode_parts(z, cat)
    rankings = [values]
    if select is not None:
        rankings.insert(0, np.where(np.isfinite(values), select(x_all), -np.inf))
    for score in rankings:
        for i in np.argsort(-score, kind="stable"):
            if not np.isfinite(score[i]):
                break
            if _is_duplicate(x_all[i : i + 1], exclude)[0]:
                continue
            params = space.from_parts(z[i], cat[i])
            if space.admissible(params):
                return params, float(values[i])
    raise CampaignError(
        "no admissible new candidate found: the constraints, feasibility rule and shared "
        "settings leave no untried point"
    )
