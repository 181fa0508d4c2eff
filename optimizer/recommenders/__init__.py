"""Recommenders: small objects that propose a campaign's next batch from its state.

============================  ==================================================================
:class:`SobolDesign`          initial design, one scrambled Sobol sequence per campaign
:class:`GPBatch`              one objective: log EI (or UCB), Kriging-believer batches
:class:`EHVIBatch`            several objectives: noisy expected hypervolume improvement
                              (default), fantasised pending experiments, sequential greedy batches
:class:`ParEGOBatch`          several objectives: random Chebyshev scalarisations, log EI
:class:`TwoPhase`             the initial design, then a model-based recommender
============================  ==================================================================

Every recommender has ``recommend(campaign, q, shared, rng) -> Recommendation``; the campaign
(:class:`optimizer.campaign.Campaign`) keeps the state and records what is recommended.
"""

from optimizer.recommenders.base import Recommendation, Recommender, TwoPhase
from optimizer.recommenders.gp_batch import GPBatch, ParEGOBatch
from optimizer.recommenders.hypervolume import EHVIBatch
from optimizer.recommenders.initial import SobolDesign

__all__ = [
    "EHVIBatch",
    "GPBatch",
    "ParEGOBatch",
    "Recommendation",
    "Recommender",
    "SobolDesign",
    "TwoPhase",
]
