"""The initial design: the next points of one scrambled Sobol sequence of the campaign seed."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import qmc

from optimizer.errors import CampaignError
from optimizer.recommenders.base import Recommendation

_SOBOL_STREAM = 0x5B01  # second seed word of the initial-design Sobol sequence


class SobolDesign:
    """Space-filling proposals: one scrambled Sobol sequence per campaign (seed
    ``[campaign.seed, 0x5B01]``), continued where the last initial batch stopped
    (``campaign.n_sobol``), skipping repeats of known points and inadmissible ones; categorical
    choices come from their own Sobol coordinates. Batch-shared parameters take the first
    member's values."""

    def recommend(self, campaign, q, shared, rng) -> Recommendation:
        space = campaign.space
        d = space.n_cont + len(space.categorical)
        sampler = qmc.Sobol(
            d, scramble=True, rng=np.random.default_rng([campaign.seed, _SOBOL_STREAM])
        )
        known = campaign.known_points()
        n_sobol = campaign.n_sobol
        chosen: list[dict] = []
        while len(chosen) < q:
            total = 1 << math.ceil(math.log2(n_sobol + 4 * q + 16))
            u = sampler.random(total)
            sampler.reset()
            for row in u[n_sobol:]:
                n_sobol += 1
                z = space.round_unit(row[: space.n_cont])
                cat = [
                    min(int(v * len(p.choices)), len(p.choices) - 1)
                    for v, p in zip(row[space.n_cont :], space.categorical, strict=True)
                ]
                params = space.from_parts(z, np.array(cat, int))
                if chosen:
                    params.update({n: chosen[0][n] for n in shared})
                x = space.encode([params])
                seen = np.vstack([known, space.encode(chosen)]) if chosen else known
                if len(seen) and (np.abs(seen - x).max(axis=1) < 1e-9).any():
                    continue
                if space.admissible(params):
                    chosen.append(params)
                    if len(chosen) == q:
                        break
            if n_sobol > 1 << 20:
                raise CampaignError("the initial design found no admissible new point")
        return Recommendation(chosen, "sobol", n_sobol=n_sobol)
