"""What every recommender shares: the recommendation it returns, the two-phase switch from the
initial design to a model, and the per-ask context of the model-based ones.

A recommender is a small object with one method::

    recommend(campaign, q, shared, rng) -> Recommendation

It reads the campaign's state (space, objectives, history, pending, hyperparameters, settings)
and never changes it; :meth:`Campaign.ask <optimizer.campaign.Campaign.ask>` records what the
recommendation says (pending proposals, the Sobol count, the fitted hyperparameters, the round's
diagnostics). A new strategy is a new class, not another branch inside ``ask`` (BayBE's design).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from optimizer.models import Feasibility, fit_feasibility

if TYPE_CHECKING:
    from optimizer.campaign import Campaign


@dataclass
class Recommendation:
    """A recommended batch and what the campaign records with it.

    Attributes
    ----------
    params : the proposed parameter sets (complete, typed).
    strategy : ``"sobol"``, ``"gp"`` (one objective), ``"ehvi"`` or ``"parego"``.
    expected_improvement : acquisition value at the first proposal in objective units (expected
        hypervolume improvement, a product of objective units, for EHVI; the 0–1 scalarised
        scale for ParEGO), times P(feasible); None for the initial design.
    length_scales : GP length scale per parameter (shortest over the models; short = influential).
    ranking : parameter names, most influential first.
    n_sobol : Sobol points consumed so far (initial design), or None if unchanged.
    hyperparameters : the fitted hyperparameters per model key, or None if unchanged.
    """

    params: list[dict]
    strategy: str
    expected_improvement: float | None = None
    length_scales: dict = field(default_factory=dict)
    ranking: list = field(default_factory=list)
    n_sobol: int | None = None
    hyperparameters: dict | None = None

    def info(self) -> dict:
        """The round's diagnostics as saved in ``Campaign.rounds``."""
        return {
            "strategy": self.strategy,
            "expected_improvement": self.expected_improvement,
            "length_scales": self.length_scales,
            "ranking": self.ranking,
        }


class Recommender(Protocol):
    def recommend(
        self, campaign: Campaign, q: int, shared: list[str], rng: np.random.Generator
    ) -> Recommendation: ...


class TwoPhase:
    """The initial design until ``campaign.n_initial`` experiments are told or pending (and while
    fewer than two have succeeded), then the model-based recommender."""

    def __init__(self, initial: Recommender, model: Recommender):
        self.initial = initial
        self.model = model

    def recommend(self, campaign, q, shared, rng) -> Recommendation:
        told_or_pending = len(campaign.history) + len(campaign.pending)
        if told_or_pending < campaign.n_initial or len(campaign.successes()) < 2:
            return self.initial.recommend(campaign, q, shared, rng)
        return self.model.recommend(campaign, q, shared, rng)


@dataclass
class Context:
    """What a model-based recommender needs in one ask, fitted once and shared by the batch.

    Attributes
    ----------
    ok : successful observations; X : their encoded inputs.
    pending_X : encoded pending experiments.
    exclude : encoded points a proposal must differ from (observed, pending, failed).
    feasibility : outcome-constraint GPs and the failure classifier.
    meets : (len(ok),) whether each observation meets the constraints in posterior mean.
    hyperparameters : a copy of the campaign's, updated by every fit of this ask.
    """

    ok: list[dict]
    X: np.ndarray
    pending_X: np.ndarray
    exclude: np.ndarray
    feasibility: Feasibility
    meets: np.ndarray
    hyperparameters: dict


def model_context(campaign: Campaign, rng: np.random.Generator) -> Context:
    """Fit the constraint and failure models and collect the encoded data of one ask."""
    space = campaign.space
    empty = np.zeros((0, space.n_encoded))
    ok = campaign.successes()
    X = space.encode([h["params"] for h in ok])
    pending = [p["params"] for p in campaign.pending.values()]
    pending_X = space.encode(pending) if pending else empty
    hyperparameters = dict(campaign.hyperparameters)
    feasibility = fit_feasibility(
        space,
        campaign.history,
        campaign.outcome_constraints,
        campaign.p_success_min,
        rng,
        hyperparameters,
    )
    failed = [h["params"] for h in campaign.history if h["failed"]]
    exclude = np.vstack([X, pending_X, space.encode(failed) if failed else empty])
    return Context(ok, X, pending_X, exclude, feasibility, feasibility.meets(X), hyperparameters)


def relevance(space, models) -> dict:
    """Length scale per parameter (the shortest over its encoded columns and the models) and
    the ranking, most influential first."""
    scales: dict[str, float] = {}
    for model in models:
        for owner, ls in zip(space.encoded_owner, model.length_scales_, strict=True):
            scales[owner] = min(scales.get(owner, np.inf), float(ls))
    return {"length_scales": scales, "ranking": sorted(scales, key=scales.get)}


def priced_select(feasibility: Feasibility, log_gain, cost: float, spread: bool, spread_score):
    """The final choice among evaluated candidates when failures have a price.

    Expected utility u = P(success)·gain − (1 − P(success))·cost, gain = the acquisition's
    improvement × P(outcome constraints met) (``log_gain(X)`` without the failure term): a risky
    candidate must pay for its risk; candidates below ``p_success_min`` are inadmissible. When
    nothing pays (u < 0 everywhere, u ≈ −(1 − P)·cost) and ``spread`` (a later batch member),
    the least explored of the near-best candidates (``spread_score``, e.g. the posterior sd the
    fantasies lowered) is chosen, so a batch does not pile onto the likeliest success.
    """
    failure, p_min = feasibility.failure, feasibility.p_success_min

    def select(Xc):
        gain = log_gain(Xc) + feasibility.log_feasible(Xc) - failure.log_weight(Xc, p_min)
        u = failure.expected_utility(Xc, np.exp(gain), cost)
        u[failure.log_prob_success(Xc) < np.log(p_min)] = -np.inf
        if not spread or (u >= 0).any():
            return u
        return np.where(u >= u.max() - 0.1 * cost, spread_score(Xc), -np.inf)

    return select


P_SUCCESS_FLOOR = 0.5  # no batch member is proposed that is likelier to fail than to succeed


class BatchRisk:
    """A batch's failure risk, planned over its members instead of capped per member.

    Sequential proposals need P(success) ≥ ``p_success_min`` each. A batch of q is allowed
    q·(1 − p_success_min) expected failures, spent where they buy the most: one member may probe
    the edge of a failure region, down to P(success) ≥ min(0.5, ``p_success_min``) (never likelier
    to fail than to succeed), when the others can stay where success is likely. Members are
    chosen in turn; member j's threshold is what the batch's mean P(success) ≥ ``p_success_min``
    leaves it once the members already chosen are counted and the ones still to come are
    assumed as safe as the likeliest success among the observations (``p_top``), and never above
    ``p_success_min``. A candidate is priced by its own risk as before (:func:`priced_select`).
    For q = 1, or before the first failure, this is the sequential rule.

    Measured on the benchmarks' σ_ion/σ_el trade-off (failures at the film's binder threshold,
    where its front lies): with a per-member cap the batch kept binder ≈ 1 wt% for rounds after
    one failure at 0, since the classifier's P(success) rises slowly away from it.
    """

    def __init__(self, feasibility: Feasibility, q: int, X_observed: np.ndarray):
        self.feasibility = feasibility
        self.q = q
        self.p_chosen: list[float] = []
        failure = feasibility.failure
        self.p_top = (
            float(np.exp(failure.log_prob_success(X_observed)).max())
            if failure is not None and len(X_observed)
            else 1.0
        )

    def member(self) -> Feasibility:
        """The feasibility rule of the next member (its P(success) threshold)."""
        feas = self.feasibility
        p_min = feas.p_success_min
        if feas.failure is None or self.q == 1:
            return feas
        later = self.q - len(self.p_chosen) - 1
        need = self.q * p_min - sum(self.p_chosen) - later * max(self.p_top, p_min)
        floor = min(P_SUCCESS_FLOOR, p_min)
        return replace(feas, p_success_min=float(np.clip(need, floor, p_min)))

    def add(self, x_encoded: np.ndarray) -> None:
        """Record a chosen member (encoded, (1, d))."""
        failure = self.feasibility.failure
        p = 1.0 if failure is None else float(np.exp(failure.log_prob_success(x_encoded))[0])
        self.p_chosen.append(p)
