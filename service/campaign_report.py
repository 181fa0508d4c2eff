"""The campaign report: one self-contained HTML page (figures inline as PNG).

Sections: best so far per round (figure and table), the Pareto front after each round (two or
more objectives), every proposal with the GP's predicted value and uncertainty at the time it
was proposed and what was then measured, the GP's partial dependence on binder wt% per process
type, and links to each round's study report (the ``analyze_study`` job's ``report.html``).

Partial dependence: the GP is fitted to every successful observation; for each process type and
each binder wt% on a grid, the other parameters are averaged over 64 points drawn from the
search space (seed 0), which shows the binder effect with everything else marginalised.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np

from service.models import CampaignInfo, ProposalInfo, RunInfo

PD_GRID = 40
PD_SAMPLES = 64


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _params(params: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def best_per_round(state: dict, objective: str) -> list[tuple[int, float, float]]:
    """(round, best observed value of the round's own proposals, best so far) per round that
    has observations; rounds counted by when the experiments were proposed."""
    direction = state["objectives"][objective]
    pick = max if direction == "maximize" else min
    by_round: dict[int, list[float]] = {}
    for h in state["history"]:
        if not h["failed"] and h["round"] is not None:
            by_round.setdefault(h["round"], []).append(h["values"][objective])
    out, so_far = [], None
    for r in sorted(by_round):
        best = pick(by_round[r])
        so_far = best if so_far is None else pick(so_far, best)
        out.append((r, best, so_far))
    return out


def _best_figure(state: dict, objective: str) -> str:
    import matplotlib.pyplot as plt

    rows = best_per_round(state, objective)
    if not rows:
        return "<p>No successful observation yet.</p>"
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for h in state["history"]:
        if not h["failed"] and h["round"] is not None:
            ax.errorbar(h["round"], h["values"][objective], yerr=h["sd"].get(objective, 0),
                        fmt="o", color="0.6", ms=4)  # fmt: skip
    ax.step([r for r, _, _ in rows], [s for _, _, s in rows], where="post", color="C0",
            label="best so far")  # fmt: skip
    ax.set_xlabel("round (when proposed)")
    ax.set_ylabel(f"{objective} (log10 S/cm at 30 °C)")
    ax.legend()
    table = _table(
        ["round", "best of round", "best so far"],
        [[str(r), _fmt(b), _fmt(s)] for r, b, s in rows],
    )
    return _png(fig) + table


def partial_dependence(state: dict, objective: str, real: str, categorical: str):
    """GP partial dependence of ``objective`` on parameter ``real`` per choice of
    ``categorical``: ``(grid, {choice: (mean, sd)})``, or None with < 3 observations."""
    from optimizer.campaign import Campaign
    from optimizer.surrogate import GPSurrogate

    campaign = Campaign.from_dict(state)
    ok = [h for h in campaign.history if not h["failed"]]
    if len(ok) < 3:
        return None
    space = campaign.space
    X = space.encode([h["params"] for h in ok])
    y = np.array([h["values"][objective] for h in ok])
    sd = np.array([h["sd"].get(objective, 0.0) for h in ok])
    gp = GPSurrogate(n_restarts=1, random_state=0).fit(X, y, sd)
    p = space.by_name[real]
    grid = np.linspace(p.low, p.high, PD_GRID)
    base = space.sample(PD_SAMPLES, np.random.default_rng(0))
    curves = {}
    for choice in space.by_name[categorical].choices:
        means, sds = [], []
        for w in grid:
            pts = [{**b, real: float(w), categorical: choice} for b in base]
            m, s = gp.predict(space.encode(pts))
            means.append(m.mean())
            sds.append(float(np.sqrt(np.mean(s**2))))
        curves[choice] = (np.array(means), np.array(sds))
    return grid, curves


def _pd_section(state: dict, objective: str) -> str:
    from optimizer.space import Categorical, Integer, Real, Space

    space = Space.from_spec(state["space"])
    reals = [p.name for p in space.parameters if isinstance(p, Real | Integer)]
    cats = [p.name for p in space.parameters if isinstance(p, Categorical)]
    real = "binder_wt_pct" if "binder_wt_pct" in reals else (reals[0] if reals else None)
    cat = "process" if "process" in cats else (cats[0] if cats else None)
    if real is None or cat is None:
        return "<p>The space has no real × categorical pair to show.</p>"
    pd = partial_dependence(state, objective, real, cat)
    if pd is None:
        return "<p>Too few observations for a GP yet.</p>"
    import matplotlib.pyplot as plt

    grid, curves = pd
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (choice, (m, s)) in enumerate(curves.items()):
        ax.plot(grid, m, color=f"C{i}", label=f"{cat} = {choice}")
        ax.fill_between(grid, m - s, m + s, color=f"C{i}", alpha=0.2)
    ax.set_xlabel(real)
    ax.set_ylabel(f"{objective}, GP mean ± sd")
    ax.legend()
    return (
        f"<p>GP partial dependence on {html.escape(real)} per {html.escape(cat)} (other "
        f"parameters averaged over {PD_SAMPLES} points of the space; band: ±1 sd).</p>" + _png(fig)
    )


def render_report(
    info: CampaignInfo,
    state: dict,
    runs: list[RunInfo],
    proposals: list[ProposalInfo],
    link_base: str = "",
) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    info : the campaign as the API returns it.
    state : the optimizer campaign's saved state (history with observed values).
    runs, proposals : the campaign's runs and proposals.
    link_base : URL prefix of the campaign (``/v1/campaigns/<id>``) for the study links.
    """
    objectives = list(state["objectives"])
    observed = {h["id"]: h for h in state["history"]}
    spec = info.spec
    parts = [
        f"<h1>Campaign {html.escape(info.name)}</h1>",
        f"<p>id {info.id} · {info.status} · objectives "
        f"{html.escape(', '.join(f'{k} ({v})' for k, v in state['objectives'].items()))} · "
        f"q = {spec['q']} · schedule {html.escape(str(spec['schedule']))} · overlap "
        f"{spec['overlap']} · catch-up {spec['catch_up']} · next fire "
        f"{_fmt(info.next_fire_at)}</p>",
        f"<p>{info.n_observations} observations, {info.n_failed} failed, "
        f"{info.n_pending} pending.</p>",
        "<h2>Best so far per round</h2>",
    ]
    for objective in objectives:
        parts.append(_best_figure(state, objective))
    if len(objectives) > 1:
        parts.append("<h2>Pareto front after each round</h2>")
        for r in runs:
            if r.pareto:
                front = "; ".join(
                    ", ".join(f"{k}={_fmt(v)}" for k, v in p["values"].items()) for p in r.pareto
                )
                parts.append(f"<p>after run {r.id[:8]} (round {r.round}): {front}</p>")
    parts.append("<h2>Proposals</h2>")
    rows = []
    for p in proposals:
        h = observed.get(p.id)
        for m in objectives:
            pred = (p.predicted or {}).get(m)
            got = "failed: " + _fmt(h["reason"]) if h and h["failed"] else (
                f"{_fmt(h['values'][m])} ± {_fmt(h['sd'].get(m))}" if h else "–"
            )  # fmt: skip
            rows.append([p.id, str(p.round), _params(p.params), m,
                         f"{_fmt(pred['mean'])} ± {_fmt(pred['sd'])}" if pred else "initial design",
                         got, p.status])  # fmt: skip
    parts.append(
        _table(["id", "round", "parameters", "objective", "predicted", "measured", "status"], rows)
    )
    parts.append("<h2>Partial dependence</h2>")
    for objective in objectives:
        parts.append(_pd_section(state, objective))
    parts.append("<h2>Rounds</h2>")
    rows = []
    for r in runs:
        if r.status in ("skipped", "missed"):
            continue
        link = (
            f'<a href="{link_base}/runs/{r.id}/study-report">study report</a>'
            if r.analyze_job and r.status in ("succeeded", "idle")
            else "–"
        )
        rows.append([r.id[:8], _fmt(r.fire_time), r.trigger, r.status, _fmt(r.round),
                     _fmt(r.n_told), link, _fmt(r.message)])  # fmt: skip
    parts.append(
        _table(["run", "fired", "trigger", "status", "round", "told", "analysis", "note"], rows)
    )
    skipped = sum(r.status == "skipped" for r in runs)
    missed = sum(r.status == "missed" for r in runs)
    parts.append(f"<p>{skipped} fires skipped (overlap), {missed} missed (catch-up).</p>")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Campaign "
        f"{html.escape(info.name)}</title><style>{style}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
