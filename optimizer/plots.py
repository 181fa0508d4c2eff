"""Figures of a campaign's progress, shared by every report that shows a campaign.

All functions take the campaign's saved state (:meth:`optimizer.campaign.Campaign.to_dict`, the
JSON a campaign file or the server's database holds) and return a matplotlib ``Figure`` (or
plain data); callers save it or inline it with :func:`png_tag`. One implementation serves the
closed-loop report (:mod:`optimizer.closed_loop`), the server's campaign report
(``service.campaigns.report``) and :func:`optimizer.campaign.plot_progress`.

- :func:`best_so_far_figure` — every observation (± sd) by the round it was proposed in, and the
  best so far per round (the convergence plot of one objective).
- :func:`pareto_front_figure` — the observed Pareto front after each round (two objectives).
- :func:`partial_dependence_figure` — the GP's partial dependence on one real parameter per
  choice of one categorical parameter (binder wt% per process by default).
- :func:`progress_figure` — expected improvement left and GP length scales per round;
  :func:`plot_progress` saves it for a :class:`~optimizer.campaign.Campaign`.

Partial dependence: the campaign's GP (:meth:`optimizer.campaign.Campaign.predict`, the model the
campaign itself fits); for each choice and each value on a grid of the real parameter, the other
parameters are averaged over :data:`PD_SAMPLES` points drawn from the search space (seed 0), which
shows the effect with everything else marginalised.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import numpy as np

from optimizer.pareto import pareto_mask

PD_GRID = 40
PD_SAMPLES = 64


def png_tag(fig, dpi: int = 90) -> str:
    """The figure as an inline ``<img>`` (base64 PNG, no external file); closes the figure."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _observed(state: Mapping) -> list[dict]:
    return [h for h in state["history"] if not h["failed"] and h["round"] is not None]


def best_per_round(state: Mapping, objective: str) -> list[tuple[int, float, float]]:
    """(round, best observed value of the round's own proposals, best so far) per round that
    has observations; rounds counted by when the experiments were proposed."""
    direction = state["objectives"][objective]
    pick = max if direction == "maximize" else min
    by_round: dict[int, list[float]] = {}
    for h in _observed(state):
        by_round.setdefault(h["round"], []).append(h["values"][objective])
    out, so_far = [], None
    for r in sorted(by_round):
        best = pick(by_round[r])
        so_far = best if so_far is None else pick(so_far, best)
        out.append((r, best, so_far))
    return out


def step_xy(rounds: list[int], values: list[float]) -> tuple[list, list]:
    """Points for ``ax.step(..., where="post")`` that show the last round's value too (a plain
    post-step ends on a zero-width segment at the last round)."""
    if not rounds:
        return [], []
    return [*rounds, rounds[-1] + 0.5], [*values, values[-1]]


def best_so_far_figure(state: Mapping, objective: str, ylabel: str | None = None):
    """Observations (± sd, grey) per round and the best so far (step line); None without any
    successful observation."""
    import matplotlib.pyplot as plt

    rows = best_per_round(state, objective)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for h in _observed(state):
        ax.errorbar(h["round"], h["values"][objective], yerr=h["sd"].get(objective, 0),
                    fmt="o", color="0.6", ms=4)  # fmt: skip
    ax.step(*step_xy([r for r, _, _ in rows], [s for _, _, s in rows]), where="post",
            color="C0", label="best so far")  # fmt: skip
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("round (when proposed)")
    ax.set_ylabel(ylabel or objective)
    ax.legend()
    return fig


def pareto_fronts(state: Mapping) -> list[tuple[int, np.ndarray]]:
    """(round, front) after each round: the Pareto front (rows of objective values, in the
    objectives' own units and order) of all observations proposed up to that round."""
    names = list(state["objectives"])
    sign = np.array([1.0 if state["objectives"][n] == "maximize" else -1.0 for n in names])
    obs = _observed(state)
    out = []
    for r in sorted({h["round"] for h in obs}):
        Y = np.array([[h["values"][n] for n in names] for h in obs if h["round"] <= r])
        front = Y[pareto_mask(Y * sign)]
        out.append((r, front[np.argsort(front[:, 0])]))
    return out


def pareto_front_figure(state: Mapping):
    """The observed Pareto front after each round (two objectives; lighter = earlier), with
    all observations in grey; None unless there are exactly two objectives and observations."""
    import matplotlib.pyplot as plt

    names = list(state["objectives"])
    fronts = pareto_fronts(state)
    if len(names) != 2 or not fronts:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    Y = np.array([[h["values"][n] for n in names] for h in _observed(state)])
    ax.plot(Y[:, 0], Y[:, 1], "o", color="0.75", ms=4, label="observations")
    cmap = plt.get_cmap("viridis")
    for i, (r, front) in enumerate(fronts):
        shade = cmap(0.15 + 0.85 * i / max(len(fronts) - 1, 1))
        ax.plot(front[:, 0], front[:, 1], "o-", color=shade, ms=4, label=f"after round {r}")
    ax.set_xlabel(f"{names[0]} ({state['objectives'][names[0]]})")
    ax.set_ylabel(f"{names[1]} ({state['objectives'][names[1]]})")
    ax.legend(fontsize="small")
    return fig


def partial_dependence(state: Mapping, objective: str, real: str, categorical: str):
    """GP partial dependence of ``objective`` on parameter ``real`` per choice of
    ``categorical``: ``(grid, {choice: (mean, sd)})``, or None with < 3 observations."""
    from optimizer.campaign import Campaign

    campaign = Campaign.from_dict(state)
    if len(campaign.successes()) < 3:
        return None
    space = campaign.space
    p = space.by_name[real]
    grid = np.linspace(p.low, p.high, PD_GRID)
    base = space.sample(PD_SAMPLES, np.random.default_rng(0))
    curves = {}
    for choice in space.by_name[categorical].choices:
        pts = [{**b, real: float(w), categorical: choice} for w in grid for b in base]
        mean, sd = campaign.predict(pts)
        m = mean[objective].reshape(PD_GRID, PD_SAMPLES)
        s = sd[objective].reshape(PD_GRID, PD_SAMPLES)
        curves[choice] = (m.mean(axis=1), np.sqrt((s**2).mean(axis=1)))
    return grid, curves


def default_pd_axes(state: Mapping) -> tuple[str | None, str | None]:
    """The (real, categorical) pair to show: binder_wt_pct and process when the space has
    them, else the first real/integer and the first categorical parameter."""
    from optimizer.space import Categorical, Integer, Real, Space

    space = Space.from_spec(state["space"])
    reals = [p.name for p in space.parameters if isinstance(p, Real | Integer)]
    cats = [p.name for p in space.parameters if isinstance(p, Categorical)]
    real = "binder_wt_pct" if "binder_wt_pct" in reals else (reals[0] if reals else None)
    cat = "process" if "process" in cats else (cats[0] if cats else None)
    return real, cat


def partial_dependence_figure(state: Mapping, objective: str, real: str, categorical: str):
    """GP mean ± 1 sd of ``objective`` against ``real``, one curve per ``categorical`` choice;
    None with fewer than 3 successful observations."""
    import matplotlib.pyplot as plt

    pd = partial_dependence(state, objective, real, categorical)
    if pd is None:
        return None
    grid, curves = pd
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (choice, (m, s)) in enumerate(curves.items()):
        ax.plot(grid, m, color=f"C{i}", label=f"{categorical} = {choice}")
        ax.fill_between(grid, m - s, m + s, color=f"C{i}", alpha=0.2)
    ax.set_xlabel(real)
    ax.set_ylabel(f"{objective}, GP mean ± sd")
    ax.legend()
    return fig


def progress_figure(state: Mapping):
    """Expected improvement left (top) and GP length scale of each parameter (bottom) per
    GP round. Falling expected improvement with stable length scales is the signal to stop."""
    import matplotlib.pyplot as plt

    from optimizer.space import Space

    rounds = [r for r in state["rounds"] if r["strategy"] == "gp"]
    fig, (ax_ei, ax_ls) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    x = [r["round"] for r in rounds]
    ax_ei.semilogy(x, [max(r["expected_improvement"], 1e-12) for r in rounds], "o-")
    ax_ei.set_ylabel("expected improvement left")
    for name in Space.from_spec(state["space"]).by_name:
        ls = [r["length_scales"].get(name, np.nan) for r in rounds]
        if not np.all(np.isnan(ls)):
            ax_ls.semilogy(x, ls, "o-", label=name)
    ax_ls.set_ylabel("GP length scale (unit range)\nshort = influential")
    ax_ls.set_xlabel("round")
    if ax_ls.get_legend_handles_labels()[0]:
        ax_ls.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_progress(campaign, path) -> None:
    """Plot, per round, the expected improvement left and the GP length scale of each parameter
    (:func:`progress_figure`) of ``campaign`` into ``path``.

    Falling expected improvement with stable length scales is the signal to stop.
    """
    import matplotlib.pyplot as plt

    fig = progress_figure(campaign.to_dict())
    fig.savefig(path)
    plt.close(fig)
