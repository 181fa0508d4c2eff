"""Diagnostics and verdicts: one place for the thresholds and for what a result may be called.

Every fit summary, study summary, CLI table and report reads its numbers and its words from
here. Functions take plain xarray Datasets / dicts / DataFrames (never fit objects), so this
module imports nothing else of ours and opens no import circle.

Thresholds (the project's own, DESIGN.md § Inference)::

    r̂ (rank-normalised, split)   ≤ RHAT_MAX = 1.01       over every reported parameter
    ESS bulk and tail             ≥ ESS_MIN = 400         over every reported parameter
    divergent transitions         = 0
    E-BFMI per chain              ≥ BFMI_MIN = 0.3        (Betancourt 2016; ArviZ's warning level)
    at a support bound            none (see :func:`at_bound`)
    Kramers–Kronig (Lin-KK)       passed
    least-squares start           converged and not poor (``inference.lsq`` flags)

A record (one spectrum or DC record) gets a verdict :data:`VERDICTS`:

``ok``        every threshold met;
``warning``   fitted and kept in the analysis, but at least one threshold broken (each in
              ``reasons``);
``excluded``  left out of the analysis: its file or fit failed, or its chains disagree so much
              (r̂ > :data:`RHAT_EXCLUDE`) that they found different solutions.

A sampled layer (the Arrhenius model) is ``ok`` or ``warning`` by the same sampling thresholds.
A study's verdict (:func:`study_verdict`, the report's badge) is ``ok`` only when every layer
is ``ok`` and at least :data:`RECORDS_OK_MIN` of its records are ``ok``; the reasons always
count the records that are not.

Prior-dominated intervals (:func:`prior_dominated`): a posterior whose sd is more than
:data:`PRIOR_DOMINATED_RATIO` = 0.5 of its prior sd has learned little from the data (posterior
contraction below 75 %); its interval says more about the prior than about the measurement.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

RHAT_MAX = 1.01
ESS_MIN = 400
BFMI_MIN = 0.3
MAX_DIVERGENCES = 0
#: Chains this far apart (r̂ above) found different solutions: the record is excluded.
RHAT_EXCLUDE = 1.1
#: A posterior is against a bound when its 90 % interval's end on that side lies within this
#: fraction of the interval's width from the bound (a Gaussian posterior whose median is
#: within ~2 sd of the bound; a posterior piled against the bound is at ~0.03).
AT_BOUND_FRACTION = 0.1
AT_BOUND_PROB = 0.9
#: posterior sd / prior sd above this: the interval comes from the prior, not the data.
PRIOR_DOMINATED_RATIO = 0.5
#: Share of a study's records that must be ``ok`` for the study's verdict to be ``ok``.
RECORDS_OK_MIN = 0.95
VERDICTS = ("ok", "warning", "excluded")

#: Columns of the per-record verdict table (``summary.json`` ``diagnostics.records``).
RECORD_COLUMNS = [
    "record",
    "recipe",
    "cell",
    "temperature_C",
    "max_rhat",
    "min_ess_bulk",
    "min_ess_tail",
    "divergences",
    "bfmi",
    "at_bound",
    "verdict",
    "reasons",
]


# --------------------------------------------------------------------------------------------
# sampling diagnostics
# --------------------------------------------------------------------------------------------


def _extreme(values: Iterable[float], fn) -> float:
    finite = [float(v) for v in values if np.isfinite(v)]
    return float(fn(finite)) if finite else math.nan


def _per_variable(result) -> dict[str, float]:
    """Max over each variable's elements of an ArviZ result (Dataset or DataTree)."""
    if isinstance(result, xr.DataTree):
        result = result["posterior"].to_dataset() if "posterior" in result.children else result
        result = result.to_dataset() if isinstance(result, xr.DataTree) else result
    return {str(k): result[k].values for k in result.data_vars}


def convergence(posterior: xr.Dataset, var_names: Iterable[str] | None = None) -> dict:
    """``max_rhat``, ``min_ess_bulk``, ``min_ess_tail`` over ``var_names`` (default: all), with
    the variables that reach them (``worst_rhat_var``, ``worst_ess_var``).

    NaN when there is a single chain or draw too few (r̂ undefined), or no variable.
    """
    import arviz as az

    names = [n for n in (var_names or posterior.data_vars) if n in posterior.data_vars]
    if not names or posterior.sizes.get("chain", 0) < 1 or posterior.sizes.get("draw", 0) < 4:
        return {
            "max_rhat": math.nan,
            "min_ess_bulk": math.nan,
            "min_ess_tail": math.nan,
            "worst_rhat_var": "",
            "worst_ess_var": "",
        }
    post = posterior[names]
    rhat = {k: _extreme(np.ravel(v), max) for k, v in _per_variable(az.rhat(post)).items()}
    bulk = {k: _extreme(np.ravel(v), min) for k, v in _per_variable(az.ess(post)).items()}
    tail = _per_variable(az.ess(post, method="tail"))
    tail = {k: _extreme(np.ravel(v), min) for k, v in tail.items()}
    worst_ess = {k: min(bulk[k], tail[k]) for k in bulk}
    worst_r = max(rhat, key=lambda k: rhat[k] if np.isfinite(rhat[k]) else -1)
    worst_e = min(worst_ess, key=lambda k: worst_ess[k] if np.isfinite(worst_ess[k]) else np.inf)
    return {
        "max_rhat": _extreme(rhat.values(), max),
        "min_ess_bulk": _extreme(bulk.values(), min),
        "min_ess_tail": _extreme(tail.values(), min),
        "worst_rhat_var": worst_r,
        "worst_ess_var": worst_e,
    }


def bfmi(sample_stats: xr.Dataset | None) -> float:
    """Smallest E-BFMI over the chains (ArviZ's ``bfmi``); NaN without an ``energy`` statistic
    (e.g. Laplace draws)."""
    import arviz as az

    if sample_stats is None or "energy" not in sample_stats:
        return math.nan
    energy = sample_stats[["energy"]]
    if energy.sizes.get("draw", 0) < 3:
        return math.nan
    return _extreme(np.ravel(az.bfmi(energy)["energy"].values), min)


def divergences(sample_stats: xr.Dataset | None) -> int:
    """Number of divergent transitions (0 when the statistic is absent)."""
    if sample_stats is None or "diverging" not in sample_stats:
        return 0
    return int(np.asarray(sample_stats["diverging"].values, dtype=bool).sum())


def sampling(
    posterior: xr.Dataset, sample_stats: xr.Dataset | None, var_names: Iterable[str] | None = None
) -> dict:
    """Every sampling diagnostic of one posterior: :func:`convergence`, ``divergences``,
    ``bfmi``."""
    return {
        **convergence(posterior, var_names),
        "divergences": divergences(sample_stats),
        "bfmi": bfmi(sample_stats),
    }


#: A NUTS run that broke a threshold is run again, at most MAX_RERUNS times and only where that
#: can help: after divergent transitions with this target acceptance rate (the posteriors of
#: overlapping arcs are thin curved valleys whose curvature grows tenfold towards α → 1; on the
#: 8 hardest spectra of the bundled study, 2 seeds each, 0.99 left 0 divergences in 16 runs
#: against 215 at 0.9 and 297 at 0.97, for ~3× the time per draw), and when the ESS falls short
#: with as many more draws as the shortfall asks for (ESS grows in proportion), at most
#: MAX_DRAWS_FACTOR × the draws asked for; an r̂ above RHAT_MAX asks for twice the draws.
TARGET_ACCEPT_RETRY = 0.99
MAX_DRAWS_FACTOR = 4
MAX_RERUNS = 3


def next_run(
    diag: Mapping, runs_done: int, n_draws: int, draws: int, target_accept: float | None
) -> tuple[int, float | None] | None:
    """Settings ``(draws per chain, target acceptance)`` of the run after one whose
    :func:`sampling` diagnostics are ``diag``, or None when no rerun is due or can help.

    ``runs_done`` runs so far, the last with ``n_draws`` draws per chain and ``target_accept``
    (None: the sampler's default); ``draws`` is what the caller asked for."""
    if runs_done > MAX_RERUNS:
        return None
    again = bool(diag["divergences"]) and target_accept is None
    target = TARGET_ACCEPT_RETRY if again else target_accept
    wanted = n_draws
    short = min(diag["min_ess_bulk"], diag["min_ess_tail"])
    if np.isfinite(short) and short < ESS_MIN:
        # 1.5: a margin for the run-to-run scatter of ESS estimates
        wanted = int(np.ceil(1.5 * n_draws * ESS_MIN / max(short, 1.0)))
    if np.isfinite(diag["max_rhat"]) and diag["max_rhat"] > RHAT_MAX:
        # enough ESS but chains that have not yet mixed their slow directions
        wanted = max(wanted, 2 * n_draws)
    if wanted > n_draws and n_draws < MAX_DRAWS_FACTOR * draws:
        n_draws, again = min(wanted, MAX_DRAWS_FACTOR * draws), True
    return (n_draws, target) if again else None


# --------------------------------------------------------------------------------------------
# support bounds and priors
# --------------------------------------------------------------------------------------------


def at_bound(
    posterior: xr.Dataset,
    supports: Mapping[str, tuple[float, float]],
    prob: float = AT_BOUND_PROB,
    fraction: float = AT_BOUND_FRACTION,
) -> list[str]:
    """Parameters whose posterior piles against a bound of their support.

    Parameters
    ----------
    posterior : draws over (chain, draw).
    supports : parameter → (low, high) of the support the model gives it (e.g. a CPE
        exponent's ``(ALPHA_LOW, 1)``); infinite ends are never reached.
    prob, fraction : a parameter is at a bound when the end of its equal-tailed ``prob``
        interval on that side lies within ``fraction`` × the interval's width of the bound.

    Returns
    -------
    ``["CPE3_1 at lower bound 0.2", …]``: one phrase per parameter at a bound.
    """
    out = []
    tail = (1 - prob) / 2
    for name, (low, high) in supports.items():
        if name not in posterior:
            continue
        x = np.asarray(posterior[name].values, dtype=float).ravel()
        x = x[np.isfinite(x)]
        if x.size < 2:
            continue
        lo, hi = np.quantile(x, [tail, 1 - tail])
        width = max(hi - lo, 1e-12 * max(abs(lo), abs(hi), 1.0))
        if np.isfinite(low) and lo - low <= fraction * width:
            out.append(f"{name} at lower bound {low:g}")
        elif np.isfinite(high) and high - hi <= fraction * width:
            out.append(f"{name} at upper bound {high:g}")
    return out


def prior_dominated(posterior_sd: float, prior_sd: float) -> bool:
    """True when ``posterior_sd > PRIOR_DOMINATED_RATIO × prior_sd`` (little learned)."""
    if not (np.isfinite(posterior_sd) and np.isfinite(prior_sd)) or prior_sd <= 0:
        return False
    return bool(posterior_sd > PRIOR_DOMINATED_RATIO * prior_sd)


# --------------------------------------------------------------------------------------------
# verdicts
# --------------------------------------------------------------------------------------------


def sampling_reasons(d: Mapping) -> list[str]:
    """One phrase per broken sampling threshold of a diagnostics dict (NaN means not sampled)."""
    out = []
    rhat = d.get("max_rhat", math.nan)
    if rhat is not None and np.isfinite(rhat) and rhat > RHAT_MAX:
        out.append(f"r̂ {rhat:.3f} > {RHAT_MAX}")
    for key, label in (("min_ess_bulk", "ESS bulk"), ("min_ess_tail", "ESS tail")):
        value = d.get(key, math.nan)
        if value is not None and np.isfinite(value) and value < ESS_MIN:
            out.append(f"{label} {value:.0f} < {ESS_MIN}")
    n_div = int(d.get("divergences") or 0)
    if n_div > MAX_DIVERGENCES:
        out.append(f"{n_div} divergent transition{'s' if n_div > 1 else ''}")
    value = d.get("bfmi", math.nan)
    if value is not None and np.isfinite(value) and value < BFMI_MIN:
        out.append(f"E-BFMI {value:.2f} < {BFMI_MIN}")
    return out


def record_verdict(
    diagnostics: Mapping,
    *,
    at_bound: Iterable[str] = (),
    kk_passed: bool | None = None,
    kk_finding: str = "",
    lsq_flags: Iterable[str] = (),
    other: Iterable[str] = (),
    failed: str = "",
) -> tuple[str, list[str]]:
    """Verdict and reasons of one record (spectrum or DC record).

    Parameters
    ----------
    diagnostics : ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``bfmi``
        (NaN / absent for a least-squares record: nothing sampled, nothing to judge).
    at_bound : phrases of :func:`at_bound` (or the least-squares fit's bound hits).
    kk_passed : Kramers–Kronig verdict (None: not checked); ``kk_finding`` the check's own
        phrase for a failure (:meth:`inference.kramers_kronig.KKResult.finding`), if any.
    lsq_flags : the least-squares fit's flags (``poor_fit``, ``not_converged``; ``kk_failed``
        and ``at_bound:…`` are covered by the arguments above).
    other : further problems of the record, one phrase each (e.g. DC steps that never settle).
    failed : why the file or fit failed ("" when it did not).
    """
    if failed:
        return "excluded", [failed]
    rhat = diagnostics.get("max_rhat", math.nan)
    if rhat is not None and np.isfinite(rhat) and rhat > RHAT_EXCLUDE:
        return "excluded", [f"r̂ {rhat:.2f} > {RHAT_EXCLUDE}: the chains found different solutions"]
    reasons = sampling_reasons(diagnostics)
    reasons += [str(b) for b in at_bound]
    if kk_passed is False:
        reasons.append(kk_finding or "Kramers–Kronig check failed")
    flags = set(lsq_flags)
    if "poor_fit" in flags:
        reasons.append("least-squares fit poor (residual well above the Lin-KK noise level)")
    if "not_converged" in flags:
        reasons.append("least-squares fit did not converge")
    reasons += [str(o) for o in other]
    return ("warning" if reasons else "ok"), reasons


def layer_verdict(diagnostics: Mapping) -> tuple[str, list[str]]:
    """Verdict of a sampled layer (e.g. an Arrhenius model) from its diagnostics dict."""
    reasons = sampling_reasons(diagnostics)
    return ("warning" if reasons else "ok"), reasons


def verdict_table(records: pd.DataFrame) -> pd.DataFrame:
    """The per-record verdict table (:data:`RECORD_COLUMNS`) of a study's stage-1 records.

    ``records`` needs ``id``, ``recipe``, ``cell``, ``temperature_K``, the sampling
    diagnostics, ``at_bound`` (``;``-separated phrases), ``verdict`` and ``reasons``
    (``;``-separated), as :class:`inference.analysis.StudyResult` keeps them.
    """
    rows = []
    for r in records.to_dict("records"):
        rows.append(
            {
                "record": str(r["id"]),
                "recipe": str(r.get("recipe", "")),
                "cell": str(r.get("cell", "")),
                "temperature_C": float(r.get("temperature_K", math.nan)) - 273.15,
                "max_rhat": _float(r.get("max_rhat")),
                "min_ess_bulk": _float(r.get("min_ess_bulk")),
                "min_ess_tail": _float(r.get("min_ess_tail")),
                "divergences": int(r.get("divergences") or 0),
                "bfmi": _float(r.get("bfmi")),
                "at_bound": _split(r.get("at_bound", "")),
                "verdict": str(r.get("verdict", "ok")),
                "reasons": _split(r.get("reasons", "")),
            }
        )
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def study_verdict(
    record_verdicts: Iterable[str], layers: Mapping[str, tuple[str, list[str]]]
) -> tuple[str, list[str]]:
    """A study's verdict (the report's badge) from its records' verdicts and its layers'.

    ``ok`` when every layer is ``ok`` and at least :data:`RECORDS_OK_MIN` of the records are
    ``ok``; else ``warning``. The reasons name each layer's problems and count the records
    that are not ``ok``.
    """
    verdicts = list(record_verdicts)
    reasons = []
    for name, (verdict, why) in layers.items():
        if verdict != "ok":
            reasons.append(f"{name}: " + "; ".join(why))
    n = len(verdicts)
    counts = {v: verdicts.count(v) for v in VERDICTS}
    if counts["warning"]:
        reasons.append(f"{counts['warning']} of {n} records with warnings")
    if counts["excluded"]:
        reasons.append(f"{counts['excluded']} of {n} records excluded")
    share_ok = counts["ok"] / n if n else 0.0
    ok = all(v == "ok" for v, _ in layers.values()) and bool(layers) and share_ok >= RECORDS_OK_MIN
    if not layers:
        reasons.append("no conductivity layer could be fitted")
    return ("ok" if ok else "warning"), reasons


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _split(text) -> list[str]:
    if isinstance(text, list | tuple):
        return [str(t) for t in text]
    return [t.strip() for t in str(text or "").split(";") if t.strip()]
