"""The campaign report: one self-contained HTML page (figures inline as PNG).

Sections: best so far per round (figure and table), the Pareto front after each round (two or
more objectives), every proposal with the GP's predicted value and uncertainty at the time it
was proposed and what was then measured, the GP's partial dependence on binder wt% per process
type, and links to each round's study report (the ``analyze_study`` job's ``report.html``).

The figures (best so far, Pareto front per round, partial dependence) come from
:mod:`optimizer.plots`, which the closed-loop report of :mod:`optimizer.closed_loop` uses too.
"""

from __future__ import annotations

import html
import math

from optimizer.plots import (
    PD_SAMPLES,
    best_per_round,
    best_so_far_figure,
    default_pd_axes,
    pareto_front_figure,
    partial_dependence_figure,
    png_tag,
)
from service.models import CampaignInfo, ProposalInfo, RunInfo


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


def _best_figure(state: dict, objective: str) -> str:
    fig = best_so_far_figure(state, objective, f"{objective} (log10 S/cm at 30 °C)")
    if fig is None:
        return "<p>No successful observation yet.</p>"
    table = _table(
        ["round", "best of round", "best so far"],
        [[str(r), _fmt(b), _fmt(s)] for r, b, s in best_per_round(state, objective)],
    )
    return png_tag(fig) + table


def _pd_section(state: dict, objective: str) -> str:
    real, cat = default_pd_axes(state)
    if real is None or cat is None:
        return "<p>The space has no real × categorical pair to show.</p>"
    fig = partial_dependence_figure(state, objective, real, cat)
    if fig is None:
        return "<p>Too few observations for a GP yet.</p>"
    return (
        f"<p>GP partial dependence on {html.escape(real)} per {html.escape(cat)} (other "
        f"parameters averaged over {PD_SAMPLES} points of the space; band: ±1 sd).</p>"
        + png_tag(fig)
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
        fig = pareto_front_figure(state)
        if fig is not None:
            parts.append(png_tag(fig))
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
