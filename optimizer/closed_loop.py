"""The closed loop with the virtual lab: ask → make and measure → analyse → tell, round by round.

Example
-------
>>> from optimizer.campaign import Campaign
>>> from optimizer.closed_loop import DEFAULT_SPACE, run_closed_loop
>>> c = Campaign(DEFAULT_SPACE, {"sigma_ion": "maximize"}, seed=0)
>>> result = run_closed_loop(c, rounds=6, batch=2, out_dir="loop")
>>> result.best()["true"]["sigma_ion"]          # what the virtual lab says it really is

One round ``k``:

1. ``campaign.ask(batch)`` proposes recipes; the campaign is saved with them pending.
2. Each proposal becomes a virtual-lab recipe (:func:`lab_recipe`: the process picks its binder,
   dry → PTFE, wet → NBR, unless the space has a ``binder`` parameter), and
   :func:`~optimizer.virtual_lab.simulate_study` makes and measures its cells into
   ``out_dir/round_<k>/study`` (the same files a potentiostat would write).
3. A recipe whose film could not be made is told as failed, with the lab's reason.
4. :func:`inference.analysis.analyze_study` (``"lsq"`` or ``"nuts"`` stage-1 fits, Bayesian
   Arrhenius layer) turns the files into posteriors, told through
   :func:`optimizer.observations.observations_from_study` (the posterior mean and sd of the
   recipe-level log10 σ (S/cm) at ``temperature_C``; ``sigma_ion`` → ionic, ``sigma_el`` →
   electronic). A recipe the analysis could not fit is told as failed.
5. ``campaign.json`` and ``report.html`` are rewritten (atomically).

Resuming: the campaign file holds every told round and, after step 1, the pending proposals of
an unfinished one; :func:`resume_closed_loop` reloads it and the loop settings
(``closed_loop.json``), measures the pending proposals (the lab's seed depends only on the loop
seed and the round, so they are made exactly as before) and goes on, never repeating a round.

The report (``report.html``, self-contained: figures inlined as PNG) shows the convergence (best
measured per round with the true value of the best-measured recipe; the Pareto front per round
for two objectives), the GP partial dependence on binder wt% per process, the expected
improvement left and GP length scales per round, and every observation beside its true value.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.errors import InputError
from inference.summary import write_atomic
from optimizer.campaign import Campaign
from optimizer.errors import SpaceError
from optimizer.observations import OBJECTIVE_KINDS, observations_from_study
from optimizer.plots import (
    PD_SAMPLES,
    best_per_round,
    best_so_far_figure,
    default_pd_axes,
    pareto_front_figure,
    partial_dependence_figure,
    png_tag,
    progress_figure,
    step_xy,
)

#: The default search space of ``sigmalab campaign run``.
DEFAULT_SPACE = {
    "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
    "process": {"type": "categorical", "choices": ["dry", "wet"]},
    "press_MPa": {"type": "integer", "low": 100, "high": 500},
}
#: The binder each process can use, when the space does not choose the binder itself.
PROCESS_BINDER = {"dry": "PTFE", "wet": "NBR"}
CAMPAIGN_FILE = "campaign.json"
SETTINGS_FILE = "closed_loop.json"
REPORT_FILE = "report.html"

Progress = Callable[[dict], None]


def lab_recipe(params: Mapping) -> dict:
    """The virtual-lab recipe of a proposal: its parameters, plus the binder its process needs
    (dry → PTFE, wet → NBR; process ``dry`` when the space has none) unless given."""
    recipe = {"process": "dry", **params}
    recipe.setdefault("binder", PROCESS_BINDER.get(recipe["process"], "none"))
    return recipe


def true_values(params: Mapping, temperature_C: float = 30.0) -> dict[str, float]:
    """True log10 σ (S/cm) of a proposal's recipe from the virtual lab (NaN if it fails)."""
    from optimizer.virtual_lab import true_log10_sigma

    return true_log10_sigma(lab_recipe(params), temperature_C)


@dataclass
class ClosedLoopResult:
    """What :func:`run_closed_loop` did.

    Attributes
    ----------
    campaign : the campaign after the last round.
    out_dir, campaign_path, report_path : where the loop wrote.
    rounds_run : the rounds this call ran (a resumed loop skips those already done).
    temperature_C : temperature of the told conductivities, °C.
    """

    campaign: Campaign
    out_dir: Path
    campaign_path: Path
    report_path: Path
    rounds_run: list[int]
    temperature_C: float = 30.0

    def best(self) -> dict | None:
        """The best measured experiment (one objective) with its true value: ``{"id",
        "params", "values", "sd", "true"}``; None before any success."""
        best = self.campaign.best()
        if best is None:
            return None
        return {**best, "true": true_values(best["params"], self.temperature_C)}


def _check_objectives(campaign: Campaign) -> None:
    for name in campaign.metrics:
        if name not in OBJECTIVE_KINDS:
            raise SpaceError(
                f"objectives.{name}",
                f"the virtual lab measures {sorted(OBJECTIVE_KINDS)}, not {name!r}",
            )


def _round_seed(seed: int, round_: int) -> int:
    return int(np.random.SeedSequence([seed, round_]).generate_state(1)[0] >> 1)


def _emit(progress: Progress | None, **event) -> None:
    if progress is not None:
        progress(event)


def _measure_round(
    campaign: Campaign,
    round_: int,
    out_dir: Path,
    settings: dict,
    lab_settings,
    analysis_options: Mapping,
    progress: Progress | None,
) -> None:
    """Make, measure, analyse and tell the pending proposals of ``round_``."""
    from inference.analysis import analyze_study
    from optimizer.virtual_lab import simulate_study

    pending = {pid: p["params"] for pid, p in campaign.pending.items() if p["round"] == round_}
    round_dir = out_dir / f"round_{round_:03d}"
    round_dir.mkdir(parents=True, exist_ok=True)
    seed = _round_seed(settings["seed"], round_)
    _emit(progress, stage="make", round=round_, n=len(pending))
    made = simulate_study(
        {pid: lab_recipe(params) for pid, params in pending.items()},
        round_dir / "study",
        seed=seed,
        settings=lab_settings,
        name=f"closed-loop round {round_}",
        description=f"Virtual-lab cells of campaign round {round_} (proposals {list(pending)}).",
    )
    failed = {}
    for cell in made.failures:
        failed.setdefault(cell.recipe, cell.reason)
    source = {"study": f"{round_dir.name}/study", "method": settings["method"]}
    observations = [
        {"id": pid, "failed": True, "reason": reason, "source": source}
        for pid, reason in failed.items()
    ]
    measured = [pid for pid in pending if pid not in failed]
    if measured:
        _emit(progress, stage="analyze", round=round_, n=len(measured))
        result = analyze_study(
            made.out_dir,
            method=settings["method"],
            temperatures_C=(settings["temperature_C"],),
            seed=seed,
            progress=(lambda e: _emit(progress, stage="analyze", round=round_, detail=e))
            if progress
            else None,
            **analysis_options,
        )
        (round_dir / "summary.json").write_text(json.dumps(result.summary_dict(), indent=1))
        observations += round_observations(
            campaign, result, measured, settings["temperature_C"], source
        )
    campaign.tell(observations)


def round_observations(
    campaign: Campaign, result, measured: list[str], temperature_C: float, source: dict
) -> list[dict]:
    """What the loop tells for the measured proposals ``measured`` (pending ids, the recipe
    names of the round's study): :func:`~optimizer.observations.observations_from_study`, a
    proposal without a conductivity told as failed."""
    return observations_from_study(
        result,
        campaign.metrics,
        {pid: {"id": pid} for pid in measured},
        temperature_C=temperature_C,
        source=source,
        missing="fail",
    )


def run_closed_loop(
    campaign: Campaign,
    rounds: int,
    batch: int,
    *,
    out_dir,
    method: str = "lsq",
    lab_settings=None,
    seed: int = 0,
    temperature_C: float = 30.0,
    analysis_options: Mapping | None = None,
    progress: Progress | None = None,
) -> ClosedLoopResult:
    """Run the campaign against the virtual lab until it has ``rounds`` rounds.

    Parameters
    ----------
    campaign : a campaign whose metrics are among :data:`OBJECTIVE_KINDS`; a fresh one runs
        ``rounds`` rounds, one with rounds already done (see :func:`resume_closed_loop`) only the
        missing ones, starting with the pending proposals of an unfinished round.
    rounds : total number of rounds (asks) the campaign has when the loop ends.
    batch : proposals per round.
    out_dir : folder for ``campaign.json``, ``closed_loop.json``, ``report.html`` and
        ``round_<k>/`` (study files and the analysis' ``summary.json``).
    method : stage-1 fits of the study analysis, ``"lsq"`` (fast) or ``"nuts"``.
    lab_settings : :class:`~optimizer.virtual_lab.LabSettings` (defaults when omitted).
    seed : seed of the virtual lab and the analysis (round ``k`` uses a seed derived from
        ``(seed, k)``).
    temperature_C : temperature of the told conductivities, °C (must be a measured one).
    analysis_options : further keyword arguments of :func:`inference.analysis.analyze_study`
        (e.g. ``draws``, ``tune``, ``chains``).
    progress : called with ``{"stage": "ask" | "make" | "analyze" | "tell" | "round",
        "round": k, ...}`` as the loop proceeds; the ``"round"`` event carries ``"best"``.

    Raises
    ------
    InputError
        An objective the lab cannot measure, bad lab settings, a temperature not measured, or
        a fresh campaign with an ``out_dir`` that holds a campaign already.
    """
    from optimizer.virtual_lab import LabSettings

    if method not in ("lsq", "nuts"):
        raise InputError(f"method must be 'lsq' or 'nuts', got {method!r}")
    for name, value, least in (("rounds", rounds, 1), ("batch", batch, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InputError(f"{name} must be an integer >= {least}, got {value!r}")
    _check_objectives(campaign)
    lab_settings = lab_settings or LabSettings()
    if float(temperature_C) not in [float(t) for t in lab_settings.temperatures_C]:
        raise InputError(
            f"temperature_C = {temperature_C:g} °C is not among the lab's measurement "
            f"temperatures {list(lab_settings.temperatures_C)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "method": method,
        "seed": seed,
        "batch": batch,
        "temperature_C": float(temperature_C),
        "lab_settings": lab_settings.to_dict(),
        "analysis_options": dict(analysis_options or {}),
    }
    campaign_path = out_dir / CAMPAIGN_FILE
    if campaign_path.exists() and not (campaign.history or campaign.pending):
        raise InputError(f"{out_dir}: holds a campaign already; resume it or choose a new folder")
    write_atomic(out_dir / SETTINGS_FILE, json.dumps(settings, indent=1).encode())
    result = ClosedLoopResult(
        campaign, out_dir, campaign_path, out_dir / REPORT_FILE, [], float(temperature_C)
    )
    unfinished = sorted({p["round"] for p in campaign.pending.values()})
    for round_ in unfinished:
        _measure_round(
            campaign, round_, out_dir, settings, lab_settings, settings["analysis_options"],
            progress,
        )  # fmt: skip
        _finish_round(result, round_, rounds, settings, progress)
    while campaign.round < rounds:
        _emit(progress, stage="ask", round=campaign.round + 1, n=batch)
        proposals = campaign.ask(batch)
        campaign.save(campaign_path)
        _measure_round(
            campaign, proposals.round, out_dir, settings, lab_settings,
            settings["analysis_options"], progress,
        )  # fmt: skip
        _finish_round(result, proposals.round, rounds, settings, progress)
    if not result.rounds_run:  # nothing left to do: the files still reflect these settings
        campaign.save(campaign_path)
        write_report(campaign, result.report_path, settings)
    return result


def _finish_round(
    result: ClosedLoopResult, round_: int, rounds: int, settings: dict, progress
) -> None:
    campaign = result.campaign
    _emit(progress, stage="tell", round=round_)
    campaign.save(result.campaign_path)
    write_report(campaign, result.report_path, settings)
    result.rounds_run.append(round_)
    told = [h for h in campaign.history if h["round"] == round_]
    best = result.best() if len(campaign.objectives) == 1 else None
    _emit(
        progress,
        stage="round",
        round=round_,
        rounds=rounds,
        n_told=len(told),
        n_failed=sum(h["failed"] for h in told),
        best=best,
    )


def resume_closed_loop(
    out_dir, rounds: int, *, progress: Progress | None = None
) -> ClosedLoopResult:
    """Continue a loop from ``out_dir/campaign.json`` with the settings it was started with
    (``closed_loop.json``) until the campaign has ``rounds`` rounds.

    Raises
    ------
    InputError
        No campaign or settings file in ``out_dir`` (or an unreadable one).
    """
    from optimizer.virtual_lab import LabSettings

    out_dir = Path(out_dir)
    path = out_dir / SETTINGS_FILE
    try:
        settings = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; nothing to resume in {out_dir}") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON (line {err.lineno}): {err.msg}") from None
    campaign = Campaign.load(out_dir / CAMPAIGN_FILE)
    return run_closed_loop(
        campaign,
        rounds,
        settings["batch"],
        out_dir=out_dir,
        method=settings["method"],
        lab_settings=LabSettings.from_dict(settings["lab_settings"]),
        seed=settings["seed"],
        temperature_C=settings["temperature_C"],
        analysis_options=settings.get("analysis_options"),
        progress=progress,
    )


# -- report ------------------------------------------------------------------------------------


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _convergence(state: dict, objective: str, temperature_C: float) -> str:
    fig = best_so_far_figure(state, objective, f"{objective} (log10 S/cm at {temperature_C:g} °C)")
    if fig is None:
        return "<p>No successful observation yet.</p>"
    # The true value of the best-measured recipe so far: what the campaign would really deliver.
    pick = max if state["objectives"][objective] == "maximize" else min
    rows, incumbent = [], None
    ok = [h for h in state["history"] if not h["failed"] and h["round"] is not None]
    for r, best_round, best_so_far in best_per_round(state, objective):
        cands = [h for h in ok if h["round"] <= r]
        incumbent = pick(cands, key=lambda h: h["values"][objective])
        true = true_values(incumbent["params"], temperature_C)[objective]
        rows.append((r, best_round, best_so_far, incumbent["id"], true))
    ax = fig.axes[0]
    ax.step(*step_xy([r[0] for r in rows], [r[4] for r in rows]), where="post", color="C3",
            ls="--", label="true value of the best measured")  # fmt: skip
    ax.legend()
    table = _table(
        ["round", "best of round", "best so far (measured)", "its id", "its true value"],
        [[str(r), _fmt(b), _fmt(s), html.escape(i), _fmt(t)] for r, b, s, i, t in rows],
    )
    return png_tag(fig) + table


def render_report(campaign: Campaign, settings: Mapping) -> str:
    """The closed-loop report as one self-contained HTML page (no links, figures inlined)."""
    state = campaign.to_dict()
    objectives = list(campaign.objectives)
    temperature_C = float(settings.get("temperature_C", 30.0))
    lab = settings.get("lab_settings", {})
    n_failed = sum(h["failed"] for h in campaign.history)
    wanted = ", ".join(f"{k} ({v})" for k, v in state["objectives"].items())
    cells = f"{_fmt(lab.get('ion_cells_per_recipe'))} ion + " + _fmt(
        lab.get("electron_cells_per_recipe")
    )
    parts = [
        "<h1>Closed loop with the virtual lab</h1>",
        f"<p>objectives {html.escape(wanted)} (log10 S/cm at {temperature_C:g} °C) · "
        f"{campaign.round} rounds of "
        f"{settings.get('batch', '–')} · analysis {html.escape(str(settings.get('method')))} · "
        f"seed {settings.get('seed')} · campaign seed {campaign.seed} · lab: "
        f"{cells} electron cells per recipe at "
        f"{html.escape(str(lab.get('temperatures_C')))} °C</p>",
        f"<p>{len(campaign.history) - n_failed} observations, {n_failed} failed, "
        f"{len(campaign.pending)} pending.</p>",
        "<h2>Convergence</h2>",
    ]
    for objective in objectives:
        parts.append(_convergence(state, objective, temperature_C))
    if len(objectives) == 2:
        parts.append("<h2>Pareto front after each round</h2>")
        fig = pareto_front_figure(state)
        parts.append(png_tag(fig) if fig is not None else "<p>No observation yet.</p>")
    parts.append("<h2>Partial dependence</h2>")
    real, cat = default_pd_axes(state)
    for objective in objectives:
        fig = partial_dependence_figure(state, objective, real, cat) if real and cat else None
        if fig is None:
            parts.append("<p>Too few observations (or no real × categorical pair) yet.</p>")
            continue
        parts.append(
            f"<p>GP partial dependence of {html.escape(objective)} on {html.escape(real)} per "
            f"{html.escape(cat)} (other parameters averaged over {PD_SAMPLES} points of the "
            "space; band ±1 sd).</p>" + png_tag(fig)
        )
    gp_rounds = [r for r in state["rounds"] if r["strategy"] == "gp"]
    parts.append("<h2>Expected improvement left and length scales</h2>")
    if gp_rounds:
        parts.append(png_tag(progress_figure(state)))
        parts.append(
            _table(
                ["round", "expected improvement left", "ranking (most influential first)"],
                [
                    [str(r["round"]), _fmt(r["expected_improvement"]), ", ".join(r["ranking"])]
                    for r in gp_rounds
                ],
            )
        )
    else:
        parts.append("<p>No GP round yet (initial design only).</p>")
    parts.append("<h2>Observations</h2>")
    rows = []
    for h in campaign.history:
        true = true_values(h["params"], temperature_C)
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in h["params"].items())
        for m in objectives:
            measured = (
                "failed: " + _fmt(h["reason"])
                if h["failed"]
                else f"{_fmt(h['values'][m])} ± {_fmt(h['sd'].get(m), 2)}"
            )
            rows.append([html.escape(h["id"]), _fmt(h["round"]), params, m, measured,
                         _fmt(true[m])])  # fmt: skip
    parts.append(
        _table(["id", "round", "parameters", "objective", "measured", "true (virtual lab)"], rows)
    )
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Closed loop</title>"
        f"<style>{style}</style></head><body>" + "\n".join(parts) + "</body></html>"
    )


def write_report(campaign: Campaign, path, settings: Mapping) -> Path:
    """Write :func:`render_report` to ``path`` atomically; returns the path."""
    path = Path(path)
    write_atomic(path, render_report(campaign, settings).encode("utf-8"))
    return path
