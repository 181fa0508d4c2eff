"""Which equivalent circuit does a spectrum support? PSIS-LOO over circuits (``az.compare``).

>>> circuits = ["R0-p(R1,CPE1)", "R0-p(R1,CPE1)-p(R2,CPE2)"]
>>> cmp = compare_circuits(spectrum, circuits)  # doctest: +SKIP
>>> cmp.table                 # ArviZ's compare table, one row per circuit  # doctest: +SKIP
>>> cmp.preferred, cmp.message                                              # doctest: +SKIP

Each circuit is fitted with NUTS (:func:`inference.fit.fit_spectrum`); its pointwise
log-likelihood (one term per measured frequency, Re and Im together) gives the expected log
predictive density by Pareto-smoothed importance-sampling leave-one-out (``elpd_loo``), and
``az.compare`` ranks the circuits by it, with the standard error ``dse`` of each difference to
the best.

The choice (the *one-standard-error rule* of cross-validation): circuits whose ``elpd_diff`` to
the best is within :data:`SE_FACTOR` × its ``dse`` are **indistinguishable** from it by these
data, and among those the one with the fewest parameters is **preferred**. Otherwise the best
is preferred. A fit that is not ``ok`` (:mod:`inference.diagnostics`) or whose LOO is unreliable
(Pareto k̂ above ArviZ's threshold on some point) is named in the message; its elpd is shown
but not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from inference.circuits import parse_circuit
from inference.errors import InputError

__all__ = ["CircuitComparison", "compare_circuits"]

#: A difference in elpd within this many standard errors (``dse``) does not tell circuits apart.
SE_FACTOR = 1.0


@dataclass
class CircuitComparison:
    """Outcome of :func:`compare_circuits`.

    Attributes
    ----------
    table : ``az.compare``'s DataFrame indexed by circuit (``rank``, ``elpd``, ``p``,
        ``elpd_diff``, ``dse``, ``p_worse``, ``weight``, ``se``, ``diag_elpd`` — Pareto k̂
        above the threshold, when any) plus ``n_params``, ``verdict`` (the fit's,
        :mod:`inference.diagnostics`) and ``indistinguishable``.
    fits : circuit → :class:`~inference.fit.SpectrumFit`.
    preferred : the circuit chosen (module docstring).
    best : the circuit with the highest elpd.
    indistinguishable : circuits within :data:`SE_FACTOR` standard errors of the best (the best
        included).
    message : one sentence saying which is preferred and how sure that is.
    """

    table: pd.DataFrame
    fits: dict
    preferred: str
    best: str
    indistinguishable: list[str] = field(default_factory=list)
    message: str = ""


def compare_circuits(
    spectrum,
    circuits,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    **fit_options,
) -> CircuitComparison:
    """Fit each of ``circuits`` to ``spectrum`` and rank them by PSIS-LOO.

    Parameters
    ----------
    spectrum : spectrum Dataset.
    circuits : two or more circuit strings (impedance.py syntax), e.g.
        ``["R0-p(R1,CPE1)", "R0-p(R1,CPE1)-p(R2,CPE2)"]``.
    draws, tune, chains, seed : NUTS settings of every fit.
    fit_options : further options of :func:`inference.fit.fit_spectrum` (``sampler``,
        ``likelihood``, ``priors`` are per circuit and so not accepted here).

    Raises
    ------
    InputError
        Fewer than two distinct circuits, a bad circuit string, or a bad spectrum.
    """
    import arviz as az

    from inference.fit import fit_spectrum

    parsed = [parse_circuit(c) for c in circuits]
    names = list(dict.fromkeys(c.string for c in parsed))
    if len(names) < 2:
        raise InputError(f"compare_circuits needs two or more distinct circuits, got {names}")
    if "priors" in fit_options:
        raise InputError("compare_circuits: priors are per circuit; fit them one by one")
    fits = {
        name: fit_spectrum(
            spectrum, name, draws=draws, tune=tune, chains=chains, seed=seed, **fit_options
        )
        for name in names
    }
    table = az.compare({n: f.to_datatree() for n, f in fits.items()})
    table = pd.DataFrame(table)
    # ArviZ ≥ 1 signs the difference (≤ 0 for a worse circuit); kept as the gap to the best.
    table["elpd_diff"] = table["elpd_diff"].abs()
    table["n_params"] = [parse_circuit(n).n_params for n in table.index]
    table["verdict"] = [fits[n].verdict for n in table.index]
    best = str(table.index[table["rank"].argmin()])
    close = table["elpd_diff"] <= SE_FACTOR * table["dse"].fillna(0.0)
    close[best] = True
    table["indistinguishable"] = close
    tied = [str(n) for n in table.index[close]]
    preferred = min(tied, key=lambda n: (table.loc[n, "n_params"], table.loc[n, "rank"]))
    return CircuitComparison(
        table=table,
        fits=fits,
        preferred=preferred,
        best=best,
        indistinguishable=tied,
        message=_message(table, fits, preferred, best, tied),
    )


def _message(table, fits, preferred, best, tied) -> str:
    if len(tied) == 1:
        runner = table.sort_values("rank").index[1]
        diff, dse = table.loc[runner, "elpd_diff"], table.loc[runner, "dse"]
        text = (
            f"{preferred} is preferred: elpd_loo {diff:.1f} higher than the next ({runner}), "
            f"{diff / max(dse, 1e-12):.1f} standard errors"
        )
    else:
        others = ", ".join(n for n in tied if n != preferred)
        text = (
            f"{preferred} is preferred but indistinguishable from {others}: their elpd_loo "
            f"differ by less than {SE_FACTOR:g} standard error"
        )
        if preferred != best:
            text += f" (the highest elpd, {best}, has more parameters)"
    doubts = [n for n, f in fits.items() if f.verdict != "ok"]
    unreliable = [str(n) for n in table.index if _flagged(table.loc[n, "diag_elpd"])]
    if doubts:
        text += "; fits with warnings: " + ", ".join(doubts)
    if unreliable:
        text += "; PSIS-LOO unreliable (Pareto k̂ too high) for: " + ", ".join(unreliable)
    return text + "."


def _flagged(diag) -> bool:
    """True when an ``az.compare`` ``diag_elpd`` cell names a problem ("" or missing if not)."""
    return isinstance(diag, str) and bool(diag.strip())
