"""From a fitted study to campaign observations: the one estimator every path uses.

The GP of a campaign models **log10 σ (S/cm) at one temperature** per recipe. From the recipe-level
posterior draws of a study analysis (:meth:`inference.analysis.StudyResult.log10_sigma_draws`:
the Arrhenius layer's log10 σ_ref and Ea pushed to ``temperature_C``) each objective is told as

    value = mean of the draws of log10 σ,   sd = their standard deviation (ddof 0),

over every draw dimension (chain, draw). The mean is the posterior's least-squares estimate of the
quantity the GP models and the sd its posterior uncertainty, which the GP takes as that
observation's own noise (:mod:`optimizer.surrogate`). The posterior of log10 σ is close to normal
(it is a sum of normal-ish terms in log space), so mean ± sd is all the GP's Gaussian likelihood can
use; a median with an sd from the 90 % interval (what the scheduled campaign told before) differs
from it by the skew of the draws and gave the GP other data for the same study.

Used by :meth:`optimizer.campaign.Campaign.tell_study`, the closed loop with the virtual lab
(:mod:`optimizer.closed_loop`) and the service's scheduled campaigns (``service.scheduler``), so
one study gives the campaign the same observations whichever way it runs.

A result may be a :class:`~inference.analysis.StudyResult` (or any object with that
``log10_sigma_draws(kind, temperature_C)`` method) or the ``xr.DataTree`` of its ``result.nc``
(``xr.open_datatree(path)``): the draws are then read from ``/arrhenius/<kind>``.
"""

from __future__ import annotations

from collections.abc import Mapping

import xarray as xr

from optimizer.errors import ObservationError

#: Campaign metric → conductivity kind of the study analysis (told as log10 σ, S/cm).
OBJECTIVE_KINDS = {"sigma_ion": "ionic", "sigma_el": "electronic"}
_MISSING = ("raise", "fail", "skip")


def log10_sigma_draws(result, kind: str, temperature_C: float) -> xr.DataArray | None:
    """Recipe-level draws of log10 σ (S/cm) at ``temperature_C`` (dims: ``recipe`` and draw
    dimensions), or None when the result has no ``kind`` layer."""
    if isinstance(result, xr.DataTree):
        from inference.arrhenius import log10_sigma_at

        layers = result.children.get("arrhenius")
        if layers is None or kind not in layers.children:
            return None
        return log10_sigma_at(layers[kind], temperature_C + 273.15)
    kinds = getattr(result, "kinds", None)
    if kinds is not None and kind not in kinds:
        return None
    return result.log10_sigma_draws(kind, temperature_C)


def estimate(draws: xr.DataArray) -> dict[str, tuple[float, float]]:
    """Recipe → (mean, sd) of the draws over every dimension but ``recipe`` (the module's
    documented estimator)."""
    dims = [d for d in draws.dims if d != "recipe"]
    mean, sd = draws.mean(dim=dims), draws.std(dim=dims)
    return {
        str(r): (float(mean.sel(recipe=r)), float(sd.sel(recipe=r))) for r in draws["recipe"].values
    }


def observations_from_study(
    result,
    objectives,
    recipes: Mapping[str, Mapping],
    *,
    temperature_C: float = 30.0,
    kinds: Mapping[str, str] | None = None,
    source: Mapping | None = None,
    missing: str = "raise",
) -> list[dict]:
    """Observations for :meth:`Campaign.tell <optimizer.campaign.Campaign.tell>` from a study.

    Parameters
    ----------
    result : a ``StudyResult``, an object with its ``log10_sigma_draws``, or the DataTree of a
        saved ``result.nc``.
    objectives : the metrics to tell (e.g. ``campaign.metrics``).
    recipes : recipe name in the result → what identifies the experiment in the campaign:
        ``{"id": pending id}`` or ``{"params": {...}}``, optionally with its own ``"source"``.
    temperature_C : temperature of the told conductivities, °C.
    kinds : metric → conductivity kind; default :data:`OBJECTIVE_KINDS`.
    source : provenance added to every observation's ``source`` (e.g. the result's job id).
    missing : a recipe without a conductivity for some metric: ``"raise"`` an
        :class:`ObservationError`, tell it as ``"fail"``-ed (the reason names the kind), or
        ``"skip"`` it.

    Returns
    -------
    list of ``{"id" | "params", "values", "sd", "source"}`` (or failed entries), in the order of
    ``recipes``; values and sds by :func:`estimate`.
    """
    if missing not in _MISSING:
        raise ValueError(f"missing must be one of {_MISSING}, got {missing!r}")
    kinds = dict(OBJECTIVE_KINDS if kinds is None else kinds)
    objectives = list(objectives)
    unknown = [m for m in objectives if m not in kinds]
    if unknown:
        raise ObservationError(
            "observations_from_study.kinds", f"no conductivity kind for metric(s) {unknown}"
        )
    posteriors = {}
    for m in objectives:
        draws = log10_sigma_draws(result, kinds[m], temperature_C)
        posteriors[m] = {} if draws is None else estimate(draws)
    out = []
    for recipe, ident in recipes.items():
        ident = dict(ident)
        obs_source = {
            "recipe": recipe,
            "temperature_C": float(temperature_C),
            **(source or {}),
            **(ident.pop("source", None) or {}),
        }
        absent = [m for m in objectives if recipe not in posteriors[m]]
        if absent:
            what = ", ".join(kinds[m] for m in absent)
            reason = f"analysis gave no {what} conductivity at {temperature_C:g} °C"
            if missing == "raise":
                raise ObservationError(f"observations_from_study.{recipe}", reason)
            if missing == "fail":
                out.append({**ident, "failed": True, "reason": reason, "source": obs_source})
            continue
        out.append(
            {
                **ident,
                "values": {m: posteriors[m][recipe][0] for m in objectives},
                "sd": {m: posteriors[m][recipe][1] for m in objectives},
                "source": obs_source,
            }
        )
    return out
