"""Batches from one GP by (log) expected improvement: one objective, and ParEGO for several.

One objective (:class:`GPBatch`): a GP on the successful observations (signed so that larger is
better), log EI over the best posterior mean among observed points that meet the outcome
constraints in mean (or UCB), plus log P(constraints met) and the failure classifier's log weight.
Batches and pending experiments by Kriging believer: pending experiments and the members already
chosen enter the GP at their predicted mean, which removes their uncertainty, and raise the
incumbent to their mean, so the next choice goes elsewhere.

Several objectives, ParEGO (:class:`ParEGOBatch`, Knowles 2006): every batch member draws random
weights on the simplex; the objectives, scaled to [0, 1] over the observations, are combined by
an augmented Chebyshev scalarisation; a GP on that scalar (its sd carried from the objectives'
sds to first order) gives log EI as above, with pending experiments and chosen members as
fantasies. Over rounds the weights cover the front. Kept as an option
(``Campaign(multi_objective="parego")``); expected hypervolume improvement
(:mod:`optimizer.recommenders.hypervolume`) is the default.
"""

from __future__ import annotations

import numpy as np

from optimizer.acquisition import log_expected_improvement, maximize, upper_confidence_bound
from optimizer.models import fit_gp, metric_arrays, signed
from optimizer.pareto import chebyshev_scalarize
from optimizer.recommenders.base import Recommendation, model_context, priced_select, relevance


class GPBatch:
    """One objective: log EI (or UCB) with Kriging-believer batches.

    Parameters
    ----------
    acquisition : ``"log_ei"`` or ``"ucb"``.
    ucb_beta : β of UCB (mean + β·sd).
    """

    strategy = "gp"

    def __init__(self, acquisition: str = "log_ei", ucb_beta: float = 2.0):
        self.acquisition = acquisition
        self.ucb_beta = ucb_beta

    def _member_model(self, campaign, ctx, j, chosen, model, rng):
        """The model that chooses batch member ``j`` (fantasies included)."""
        space = campaign.space
        if j > 0:
            x_last = space.encode([chosen[-1]])
            return model.condition_on(x_last, model.predict(x_last)[0])
        name, direction = next(iter(campaign.objectives.items()))
        y, sd = metric_arrays(ctx.ok, name)
        model = fit_gp(
            f"objective:{name}", ctx.X, signed(direction, y), sd, rng, ctx.hyperparameters
        )
        if len(ctx.pending_X):
            model = model.condition_on(ctx.pending_X, model.predict(ctx.pending_X)[0])
        return model

    def recommend(self, campaign, q, shared, rng) -> Recommendation:
        space = campaign.space
        ctx = model_context(campaign, rng)
        feas = ctx.feasibility
        out = Recommendation([], self.strategy)
        chosen: list[dict] = []
        model = None
        for j in range(q):
            fantasies = (
                np.vstack([ctx.pending_X, space.encode(chosen)]) if chosen else ctx.pending_X
            )
            model = self._member_model(campaign, ctx, j, chosen, model, rng)
            if j == 0:
                info = relevance(space, [model])
                out.length_scales, out.ranking = info["length_scales"], info["ranking"]
            mean_obs = model.predict(ctx.X)[0]
            best = float(mean_obs[ctx.meets].max()) if ctx.meets.any() else None
            if best is not None and len(fantasies):
                # Fantasies raise the incumbent too; otherwise EI stays positive right next to a
                # fantasy whose mean beats the best observation and the batch clusters there.
                best = max(best, float(model.predict(fantasies)[0].max()))
            anchors = [ctx.ok[i]["params"] for i in np.argsort(-mean_obs)[:5]]

            def acq(Xc, model=model, best=best):
                m, s = model.predict(Xc)
                if best is None:  # nothing meets the constraints yet: find where they are met
                    return feas.log_feasible(Xc)
                if self.acquisition == "ucb":
                    base = (upper_confidence_bound(m, s, self.ucb_beta) - best) / model.y_std_
                else:
                    base = log_expected_improvement(m, s, best)
                return base + feas.log_feasible(Xc)

            select = None
            if feas.failure is not None and best is not None:
                select = priced_select(
                    feas,
                    lambda Xc, model=model, best=best: log_expected_improvement(
                        *model.predict(Xc), best
                    ),
                    campaign.failure_cost * model.y_std_,
                    spread=j > 0,
                    spread_score=lambda Xc, model=model: model.predict(Xc)[1],
                )
            fixed = {n: chosen[0][n] for n in shared} if chosen else None
            known = np.vstack([ctx.exclude, space.encode(chosen)]) if chosen else ctx.exclude
            params, _ = maximize(
                acq, space, rng, fixed=fixed, anchors=anchors, exclude=known, select=select
            )
            if j == 0:
                x_new = space.encode([params])
                m, s = model.predict(x_new)
                out.expected_improvement = (
                    float(
                        np.exp(
                            log_expected_improvement(m, s, best)[0] + feas.log_feasible(x_new)[0]
                        )
                    )
                    if best is not None
                    else 0.0
                )
            chosen.append(params)
        out.params = chosen
        out.hyperparameters = ctx.hyperparameters
        return out


class ParEGOBatch(GPBatch):
    """Several objectives by ParEGO: random Chebyshev weights per batch member, log EI on the
    scalarised objective."""

    strategy = "parego"

    def __init__(self):
        super().__init__("log_ei")

    def _member_model(self, campaign, ctx, j, chosen, model, rng):
        cols, sds = [], []
        for name, direction in campaign.objectives.items():
            y, sd = metric_arrays(ctx.ok, name)
            y = signed(direction, y)
            lo, hi = y.min(), y.max()
            span = hi - lo if hi > lo else 1.0
            cols.append((y - lo) / span)
            sds.append(sd / span)
        Y_unit, SD_unit = np.column_stack(cols), np.column_stack(sds)
        weights = rng.dirichlet(np.ones(len(campaign.objectives)))
        s, grad = chebyshev_scalarize(Y_unit, weights)
        s_sd = np.sqrt(((grad * SD_unit) ** 2).sum(axis=1))
        model = fit_gp("scalarized", ctx.X, s, s_sd, rng, ctx.hyperparameters)
        space = campaign.space
        fantasies = np.vstack([ctx.pending_X, space.encode(chosen)]) if chosen else ctx.pending_X
        if len(fantasies):
            model = model.condition_on(fantasies, model.predict(fantasies)[0])
        return model
