"""The campaign's models: one GP per measured metric, the outcome constraints and the failure
classifier, fitted the same way for every recommender and for :meth:`Campaign.predict
<optimizer.campaign.Campaign.predict>`.

- :func:`fit_gp` — a :class:`~optimizer.surrogate.GPSurrogate` on the successful observations,
  each with its own noise (the sd told with it). Two hyperparameter restarts while data are few;
  past 100 points one when cold, none when warm-started from the last fit of the same model
  (L-BFGS-B from those hyperparameters only), which keeps ``ask(4)`` near a second. The fitted
  hyperparameters are written back under the model's key (``"objective:<name>"``,
  ``"constraint:<name>"``, ``"scalarized"``), so a saved and loaded campaign fits exactly as the
  original would.
- :class:`Feasibility` — log P(outcome constraints met) from a GP per constrained metric plus the
  failure classifier's log weight (:mod:`optimizer.feasibility`), added to any log acquisition.

Objectives are *signed* before they reach a model: minimised ones are negated, so every
acquisition maximises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from optimizer.acquisition import log_probability_at_least
from optimizer.feasibility import FailureModel
from optimizer.surrogate import GPSurrogate


def signed(direction: str, values) -> np.ndarray:
    """Values as an acquisition sees them: negated for a minimised objective."""
    values = np.asarray(values, float)
    return values if direction == "maximize" else -values


def metric_arrays(ok: list[dict], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Told values and sds (0 where none was told) of metric ``name`` over observations ``ok``."""
    y = np.array([h["values"][name] for h in ok], float)
    sd = np.array([h["sd"].get(name, 0.0) for h in ok], float)
    return y, sd


def fit_gp(key: str, X, y, sd, rng: np.random.Generator, hyperparameters: dict) -> GPSurrogate:
    """Fit the GP of model ``key`` and record its hyperparameters in ``hyperparameters``."""
    warm = hyperparameters.get(key)
    gp = GPSurrogate(
        # Past 100 points a fit warm-started from the last one only refines it (the likelihood
        # surface moves little per round); a cold one gets one restart.
        n_restarts=2 if len(y) <= 100 else (0 if warm is not None else 1),
        random_state=int(rng.integers(2**31 - 1)),
        warm_start=warm,
    ).fit(X, y, sd)
    hyperparameters[key] = gp.hyperparameters_
    return gp


@dataclass
class Feasibility:
    """Outcome-constraint GPs and the failure classifier of one ask.

    Attributes
    ----------
    constraints : ``[(gp, {"min": x, "max": y}), …]``, one per constrained metric.
    failure : the fitted :class:`FailureModel`, or None before the first failure.
    p_success_min : proposals need at least this predicted P(success).
    """

    constraints: list = field(default_factory=list)
    failure: FailureModel | None = None
    p_success_min: float = 0.7

    def log_feasible(self, X: np.ndarray) -> np.ndarray:
        """log P(every outcome constraint met) + the failure classifier's log weight at X."""
        total = np.zeros(len(X))
        for gp, bounds in self.constraints:
            m, s = gp.predict(X)
            if "min" in bounds:
                total += log_probability_at_least(m, s, bounds["min"])
            if "max" in bounds:
                total += log_probability_at_least(-m, s, -bounds["max"])
        if self.failure is not None:
            total += self.failure.log_weight(X, self.p_success_min)
        return total

    def meets(self, X: np.ndarray) -> np.ndarray:
        """Whether the constraints hold in posterior mean at X (incumbent candidates)."""
        ok = np.ones(len(X), bool)
        for gp, bounds in self.constraints:
            m, _ = gp.predict(X)
            ok &= (m >= bounds.get("min", -np.inf)) & (m <= bounds.get("max", np.inf))
        return ok


def fit_feasibility(
    space,
    history: list[dict],
    outcome_constraints: Mapping[str, Mapping[str, float]],
    p_success_min: float,
    rng: np.random.Generator,
    hyperparameters: dict,
) -> Feasibility:
    """Fit the constraint GPs (on the successes) and the failure classifier (on all told)."""
    ok = [h for h in history if not h["failed"]]
    X = space.encode([h["params"] for h in ok])
    constraints = []
    for name, bounds in outcome_constraints.items():
        y, sd = metric_arrays(ok, name)
        constraints.append((fit_gp(f"constraint:{name}", X, y, sd, rng, hyperparameters), bounds))
    failure = None
    if any(h["failed"] for h in history):
        failure = FailureModel(random_state=int(rng.integers(2**31 - 1))).fit(
            space.encode([h["params"] for h in history]), [not h["failed"] for h in history]
        )
    return Feasibility(constraints, failure, p_success_min)
