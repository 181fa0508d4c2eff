"""Several objectives: batches by expected hypervolume improvement over noisy, pending fantasies.

Each objective gets its own GP (:func:`optimizer.models.fit_gp`, signed so larger is better,
each observation with its own noise). Batch member j is the maximiser of

    log EHVI(x) + log P(outcome constraints met) + failure log weight,

    EHVI(x) = (1/S) Σ_s E[ HVI(f(x) | front_s) | f(B) = F_s ],

where B holds the observed points (those meeting the constraints in posterior mean), the pending
experiments and the members already chosen, and F_1..F_S are S joint posterior draws of every
objective at B (noisy expected hypervolume improvement, Daulton et al. 2021, "Parallel Bayesian
optimization of multiple noisy objectives with expected hypervolume improvement", with sequential
greedy batches). Each draw gives a front (its Pareto set) and a Gaussian f(x) given f(B) = F_s;
the expected improvement over that front is exact, a sum over the front's non-dominated boxes
of products of one-dimensional gains (:func:`optimizer.acquisition
.log_expected_hypervolume_improvement`), so only the front is Monte Carlo, with common draws for
every candidate of one member (the acquisition is deterministic and smooth for the local search).

- Noise: an observation told with a large sd is uncertain in the draws, so a lucky noisy value
  does not block the part of the front it seems to cover.
- Pending experiments and earlier batch members are fantasies: in every draw they take a value
  from the posterior, so a region near a pending point is worth less in the draws where that point
  lands well, and the batch spreads along the front.
- With no pending point and observations known to 1e-3 sd, every draw would be the same: one
  draw at the posterior mean is used.
- Reference point: given (``Campaign(reference=...)``, objective units: the worst value still
  worth having), or by default the nadir of the observed front less 0.75 of the front's range
  per objective. It follows the front, and the front's ends grow by about that margin per
  round. BoTorch's 10 % hugs the observed front: its ends are worth little, so a front whose
  observed part is short never reaches its true ends (the benchmarks' σ_ion/σ_el trade-off,
  10 seeds, 24 evaluations, median fraction of the true front's hypervolume: 0.845 at 10 %
  before the batch risk below, with it 0.858 at 50 %, 0.890 at 75 %, 0.908 at 100 %, and with
  the failure price below 0.920 at 75 %, 0.937 at 100 %); far references value extremes beyond
  what is counted: BraninCurrin's final hypervolume regret (4 seeds, 50 evaluations) 0.17 at
  10 %, 0.32 at 50 %, 0.55 at 75 %, 1.34 at 100 %, and 1.6–1.8 with the worst observed values
  (Optuna's choice; Optuna's GP sampler 1.73).
- Batches after a failure plan their risk over the members (:class:`optimizer.recommenders.base
  .BatchRisk`): one may probe the edge of a failure region where the front may lie.
- Failed experiments price a risky proposal as in :mod:`optimizer.recommenders.gp_batch`, with the
  cost ``Π_k (failure_cost × sd_k)``, the hypervolume of a box ``failure_cost`` observed sds wide
  per objective (for one objective gp_batch's ``failure_cost × sd``). A box one sd wide per
  objective (``failure_cost × Π_k sd_k``) priced a failure far above the improvement one
  experiment brings late in a campaign (a product of small gains), and the batch chose the
  safest candidates (binder 3 wt% on the σ_ion/σ_el trade-off): 0.890 of the true front's
  hypervolume against 0.920 with the box (10 seeds), at 3.1 against 4.0 failures in 24.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from optimizer.acquisition import log_expected_hypervolume_improvement, maximize
from optimizer.models import fit_gp, metric_arrays, signed
from optimizer.pareto import nondominated_boxes, pareto_mask
from optimizer.recommenders.base import (
    BatchRisk,
    Recommendation,
    model_context,
    priced_select,
    relevance,
)

N_DRAWS = 8
REFERENCE_MARGIN = 0.75  # default reference: the observed front's nadir less this × its range
_CERTAIN_SD = 1e-3  # posterior sd (standardised) below which one draw stands for all


def default_reference(Y: np.ndarray) -> np.ndarray:
    """Reference point for signed objective values ``Y`` (n, k): the nadir of their front less
    ``REFERENCE_MARGIN`` (0.75) of the front's range per objective (of all values' range where
    the front has none)."""
    front = Y[pareto_mask(Y)]
    nadir = front.min(axis=0)
    span = np.ptp(front, axis=0)
    span = np.where(span > 0, span, np.ptp(Y, axis=0))
    return nadir - REFERENCE_MARGIN * np.where(span > 0, span, np.maximum(np.abs(nadir), 1.0))


class EHVIBatch:
    """Noisy expected hypervolume improvement, sequential greedy batches.

    Parameters
    ----------
    reference : ``{objective: value}`` in objective units (a minimised objective's reference is
        its worst acceptable value), or None for :func:`default_reference`.
    n_draws : S, joint posterior draws of the baseline (front and fantasies).
    """

    strategy = "ehvi"

    def __init__(self, reference: Mapping[str, float] | None = None, n_draws: int = N_DRAWS):
        self.reference = reference
        self.n_draws = n_draws

    def recommend(self, campaign, q, shared, rng) -> Recommendation:
        space = campaign.space
        ctx = model_context(campaign, rng)
        feas = ctx.feasibility
        names = list(campaign.objectives)
        Y, models = [], []
        for name in names:
            y, sd = metric_arrays(ctx.ok, name)
            y = signed(campaign.objectives[name], y)
            Y.append(y)
            models.append(fit_gp(f"objective:{name}", ctx.X, y, sd, rng, ctx.hyperparameters))
        Y = np.column_stack(Y)
        if self.reference is not None:
            ref = np.array(
                [signed(campaign.objectives[n], self.reference[n]) for n in names], float
            )
        else:
            ref = default_reference(Y[ctx.meets] if ctx.meets.any() else Y)
        out = Recommendation([], self.strategy, **relevance(space, models))
        cost = float(np.prod([campaign.failure_cost * m.y_std_ for m in models]))
        chosen: list[dict] = []
        risk = BatchRisk(ctx.feasibility, q, ctx.X)
        for j in range(q):
            feas = risk.member()
            extra = np.vstack([ctx.pending_X, space.encode(chosen)]) if chosen else ctx.pending_X
            B = np.vstack([ctx.X, extra])
            in_front = np.concatenate([ctx.meets, feas.meets(extra)]) if len(extra) else ctx.meets
            log_ehvi, anchors = self._acquisition(models, B, in_front, ref, len(extra), rng)
            anchors = [ctx.ok[i]["params"] for i in anchors]

            def acq(Xc, log_ehvi=log_ehvi, feas=feas):
                return log_ehvi(Xc) + feas.log_feasible(Xc)

            select = None
            if feas.failure is not None:
                select = priced_select(
                    feas,
                    log_ehvi,
                    cost,
                    # The fantasies spread the batch already; the fallback to the least explored
                    # candidate chose ones of EHVI ≈ 0 (a dominated category) when nothing paid.
                    spread=False,
                    spread_score=None,
                )
            fixed = {n: chosen[0][n] for n in shared} if chosen else None
            known = np.vstack([ctx.exclude, space.encode(chosen)]) if chosen else ctx.exclude
            params, value = maximize(
                acq, space, rng, fixed=fixed, anchors=anchors, exclude=known, select=select
            )
            if j == 0:
                out.expected_improvement = float(np.exp(acq(space.encode([params]))[0]))
            risk.add(space.encode([params]))
            chosen.append(params)
        out.params = chosen
        out.hyperparameters = ctx.hyperparameters
        return out

    def _acquisition(self, models, B, in_front, ref, n_extra, rng):
        """log EHVI over S draws at the baseline B, and the indices of observed front points
        (anchors for the local search)."""
        n_obs = len(B) - n_extra
        means, sds = zip(*(m.predict(B) for m in models), strict=True)
        certain = n_extra == 0 and all(
            (s / m.y_std_).max() < _CERTAIN_SD for s, m in zip(sds, models, strict=True)
        )
        if certain:
            draws = [mu[None, :] for mu in means]
        else:
            draws = [m.sample_latent(B, self.n_draws, rng) for m in models]
        conditionals = [m.given_latent(B, F) for m, F in zip(models, draws, strict=True)]
        F = np.stack(draws, axis=2)  # (S, |B|, k)
        boxes = [nondominated_boxes(F[s][in_front], ref) for s in range(len(F))]
        owner = np.concatenate([np.full(len(lo), s) for s, (lo, _) in enumerate(boxes)])
        lower = np.vstack([lo for lo, _ in boxes])
        upper = np.vstack([up for _, up in boxes])
        mean_obs = np.column_stack(means)[:n_obs]
        front = np.flatnonzero(in_front[:n_obs])
        if len(front):
            front = front[pareto_mask(mean_obs[front])]
            front = front[np.argsort(mean_obs[front, 0])]
            front = front[np.unique(np.linspace(0, len(front) - 1, 5).round().astype(int))]
        log_s = np.log(len(F))

        def log_ehvi(Xc):
            # (1/S) Σ_s Σ_(boxes of draw s): every box carries the conditional mean of its draw.
            preds = [c.predict(Xc) for c in conditionals]
            mean = np.stack([p[0][:, owner] for p in preds], axis=2)  # (m, boxes, k)
            sd = np.column_stack([p[1] for p in preds])
            return log_expected_hypervolume_improvement(mean, sd, lower, upper) - log_s

        return log_ehvi, list(front)
