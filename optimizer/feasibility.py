"""Where do experiments fail? A GP classifier on success/failure of past experiments.

A failed experiment (a film that did not form, a cell that shorted) has no objective value. Instead
of inventing a bad value for it (the usual workaround, which distorts the objective's GP), the
campaign learns P(success | x) from all told experiments, multiplies it into the acquisition
(adds its log to log EI), treats P(success) below ``p_success_min`` as infeasible and prices a
failure (``failure_cost``, below), so proposals move away from regions that fail while the
objective's GP sees only real measurements.

Model: scikit-learn's ``GaussianProcessClassifier`` (Laplace approximation, logistic link) with a
Matérn-5/2 ARD kernel on the same encoded inputs as the surrogate, hyperparameters by marginal
likelihood with a fixed ``random_state``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessClassifier
from sklearn.gaussian_process.kernels import ConstantKernel, Matern

_P_FLOOR = 1e-12
# Two campaign settings decide how much risk a proposal may take (measured on the virtual lab's
# landscape, whose optimum sits right at the dry-film threshold; benchmarks/optimizer.py, 20 seeds,
# 40 evaluations, failures counted after the first 10; random proposals fail 5 %):
#
# - ``p_success_min``: candidates below this P(success) are not proposed (Gelbart et al. 2014
#   constrain P(feasible) ≥ 1 − δ). Multiplying P into EI alone is not enough: where the objective's
#   GP extrapolates upward into a failure region, EI there stays orders of magnitude above EI
#   elsewhere. With the threshold alone: 0.5 → 38 % of proposals fail (the campaign bisects the
#   film threshold to a thousandth of a wt%), 0.8 → 9 % fail and 95 % of the optimum takes 24.5
#   evaluations, 0.9 → it never gets there (the classifier's P rises slowly away from a failure).
# - ``failure_cost``: a failed experiment is a spent experiment that gains nothing, and the final
#   choice among candidates maximises the expected utility P·EI − (1 − P)·c, with c =
#   failure_cost × the sd of the observed objective values. A risky candidate must promise an
#   improvement worth the risk: early, when EI near the boundary is large, the campaign still
#   probes it; once the improvement left there is small, it proposes likely successes instead.
#   With p_success_min 0.7: failure_cost 0.05 → 4.5 % fail, 17 evaluations to 95 %; 0.1 → 3 %
#   fail, 19 evaluations (16/20 seeds reach 95 % within 40); with 0.5: 0.15 → 2.7 % fail, 7/20
#   reach 95 %.
#
# Defaults 0.7 and 0.1 (benchmark: 3 % fail vs random 4.8 %; unpriced, 0.5 and 0: 41 % fail, 12
# evaluations to 95 %): fewer failures than random proposals, still ahead of Optuna TPE (30.5).
# Raise both where a failed experiment costs more than a measured one (material, a shorted cell);
# set failure_cost 0 to count a failure as nothing but the lost experiment.
P_SUCCESS_MIN = 0.7
FAILURE_COST = 0.1
_PENALTY_SLOPE = 100.0


class FailureModel:
    """P(success) over the encoded search space.

    Parameters
    ----------
    random_state : seed of the hyperparameter restarts.
    n_restarts : extra random starts of the hyperparameter optimisation.

    Attributes
    ----------
    classifier_ : the fitted ``GaussianProcessClassifier``, or None when the data hold only one
        class (then every point is as likely to succeed as the observed rate says).
    success_rate_ : fraction of successful experiments.
    """

    def __init__(self, random_state: int | None = None, n_restarts: int = 0):
        self.random_state = random_state
        self.n_restarts = n_restarts

    def fit(self, X, success) -> FailureModel:
        """Fit on encoded inputs ``X`` (n, d) and booleans ``success`` (n,)."""
        X = np.asarray(X, float)
        success = np.asarray(success, bool)
        self.success_rate_ = float(success.mean()) if len(success) else 1.0
        self.classifier_ = None
        if success.all() or not success.any():
            return self
        d = X.shape[1]
        kernel = ConstantKernel(4.0, (0.1, 1e2)) * Matern(np.full(d, 0.5), (0.02, 50.0), nu=2.5)
        gpc = GaussianProcessClassifier(
            kernel, n_restarts_optimizer=self.n_restarts, random_state=self.random_state
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gpc.fit(X, success.astype(int))
        self.classifier_ = gpc
        return self

    def log_weight(self, X, p_min: float = P_SUCCESS_MIN) -> np.ndarray:
        """Additive term for a log acquisition: log P(success), minus a steep (continuous) penalty
        where P(success) < ``p_min``."""
        logp = self.log_prob_success(X)
        return logp - _PENALTY_SLOPE * np.maximum(0.0, np.log(p_min) - logp)

    def expected_utility(self, X, gain, cost: float) -> np.ndarray:
        """P(success)·gain − (1 − P(success))·cost at encoded inputs ``X``: what a proposal is worth
        when a failure gains nothing and costs ``cost`` (same units as ``gain``)."""
        p = np.exp(self.log_prob_success(X))
        return p * np.asarray(gain, float) - (1.0 - p) * cost

    def log_prob_success(self, X) -> np.ndarray:
        """log P(success) at encoded inputs ``X`` (m, d), floored at log 1e-12."""
        X = np.atleast_2d(np.asarray(X, float))
        if self.classifier_ is None:
            return np.full(len(X), np.log(max(self.success_rate_, _P_FLOOR)))
        p = self.classifier_.predict_proba(X)[:, 1]
        return np.log(np.maximum(p, _P_FLOOR))
