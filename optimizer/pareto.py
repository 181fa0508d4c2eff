"""Pareto fronts, hypervolume, the non-dominated boxes behind expected hypervolume improvement,
and the ParEGO scalarisation, for objectives to *maximise*.

Minimised objectives are negated by the caller before they reach these functions.
"""

from __future__ import annotations

import numpy as np


def pareto_mask(Y) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``Y`` (n, k), all objectives maximised.

    A row is dominated when another row is ≥ in every objective and > in at least one.
    Duplicated non-dominated rows are all kept.
    """
    Y = np.asarray(Y, float)
    n = len(Y)
    mask = np.ones(n, bool)
    for i in range(n):
        ge = (Y[i] <= Y).all(axis=1)
        gt = (Y[i] < Y).any(axis=1)
        if (ge & gt).any():
            mask[i] = False
    return mask


def hypervolume(Y, reference) -> float:
    """Volume dominated by ``Y`` (n, k) and bounded below by ``reference`` (k,), maximisation.

    Exact: a sweep for two objectives, recursive slicing along the last objective for more
    (fine for the front sizes of a lab campaign, tens of points).
    """
    Y = np.asarray(Y, float)
    ref = np.asarray(reference, float)
    if Y.size == 0:
        return 0.0
    Y = Y[(ref < Y).all(axis=1)]
    if len(Y) == 0:
        return 0.0
    Y = Y[pareto_mask(Y)]
    if Y.shape[1] == 1:
        return float(Y[:, 0].max() - ref[0])
    if Y.shape[1] == 2:
        Y = Y[np.argsort(-Y[:, 0])]
        volume, y_prev = 0.0, ref[1]
        for y0, y1 in Y:
            if y1 > y_prev:
                volume += (y0 - ref[0]) * (y1 - y_prev)
                y_prev = y1
        return float(volume)
    levels = np.sort(np.unique(Y[:, -1]))
    volume, lower = 0.0, ref[-1]
    for level in levels:
        above = Y[Y[:, -1] >= level, :-1]
        volume += hypervolume(above, ref[:-1]) * (level - lower)
        lower = level
    return float(volume)


def nondominated_boxes(front, reference) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint boxes that tile the region above ``reference`` not dominated by ``front``.

    The hypervolume improvement of a point y is then exactly
    ``Σ_boxes Π_k max(0, min(y_k, upper_k) − lower_k)`` (Yang et al. 2019, "Efficient computation
    of expected hypervolume improvement using box decomposition"), which makes the expectation
    over independent Gaussian objectives a sum of products of one-dimensional terms
    (:func:`optimizer.acquisition.log_expected_hypervolume_improvement`).

    Construction: a grid over the first k − 1 objectives from the front's coordinates; in each
    grid column the dominated part is everything up to the best last objective among the front
    points that cover the column, so the rest is one box reaching to +inf. (n + 1)^(k−1) boxes
    for n front points; empty columns are dropped.

    Parameters
    ----------
    front : (n, k) points (need not be non-dominated; points not above ``reference`` are ignored).
    reference : (k,) lower corner of the hypervolume.

    Returns
    -------
    lower, upper : (b, k) box corners; upper may be +inf.
    """
    ref = np.asarray(reference, float)
    k = len(ref)
    Y = np.asarray(front, float).reshape(-1, k)
    Y = Y[(ref < Y).all(axis=1)]
    if len(Y):
        Y = Y[pareto_mask(Y)]
    if k == 1:
        top = max(ref[0], Y[:, 0].max()) if len(Y) else ref[0]
        return np.array([[top]]), np.array([[np.inf]])
    edges = [np.concatenate([[ref[i]], np.unique(Y[:, i]), [np.inf]]) for i in range(k - 1)]
    grids = np.meshgrid(*[np.arange(len(e) - 1) for e in edges], indexing="ij")
    idx = np.stack([g.ravel() for g in grids], axis=1)  # (cells, k − 1)
    lo = np.column_stack([edges[i][idx[:, i]] for i in range(k - 1)])
    hi = np.column_stack([edges[i][idx[:, i] + 1] for i in range(k - 1)])
    if len(Y):
        covers = (Y[None, :, : k - 1] >= hi[:, None, :]).all(axis=2)  # (cells, n)
        level = np.where(covers, Y[None, :, -1], -np.inf).max(axis=1)
        level = np.maximum(level, ref[-1])
    else:
        level = np.full(len(lo), ref[-1])
    lower = np.column_stack([lo, level])
    upper = np.column_stack([hi, np.full(len(lo), np.inf)])
    return lower, upper


def chebyshev_scalarize(Y_unit, weights, rho: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Augmented Chebyshev scalarisation for maximisation (ParEGO, Knowles 2006).

    ``s = min_i(w_i·y_i) + rho·Σ_i w_i·y_i`` on objectives scaled to [0, 1]. Maximising ``s`` for
    random weights on the simplex reaches every part of the Pareto front, convex or not.

    Returns
    -------
    s : (n,) scalarised values.
    gradient : (n, k) ds/dy_i, used to carry each objective's sd onto ``s`` (first order).
    """
    Y_unit = np.asarray(Y_unit, float)
    w = np.asarray(weights, float)
    wy = Y_unit * w
    active = np.argmin(wy, axis=1)
    s = wy[np.arange(len(wy)), active] + rho * wy.sum(axis=1)
    gradient = np.tile(rho * w, (len(wy), 1))
    gradient[np.arange(len(wy)), active] += w[active]
    return s, gradient
