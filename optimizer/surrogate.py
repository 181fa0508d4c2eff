"""Gaussian-process surrogate of one objective over an encoded search space.

Model, on inputs already encoded by :class:`optimizer.space.Space` (unit-scaled continuous columns,
one-hot categorical columns)::

    y_i = f(x_i) + e_i,   f ~ GP(0, a · Matern52_ARD(x, x')),   e_i ~ N(0, sd_i² + nugget)

- ARD: every encoded column has its own length scale, so each categorical choice is its own
  direction with its own length scale; no choice is treated as lying between two others.
- Per-observation noise: ``sd_i`` is the posterior sd of the measured objective (e.g. of log10 σ
  from an EIS fit), passed to scikit-learn as the array ``alpha``; the nugget is learned on top of
  it, so a noisy observation pulls the mean less than a precise one.
- Outputs are standardised (mean 0, sd 1) before fitting; predictions come back in objective units.
- Hyperparameters (a, length scales, nugget) are fitted by scikit-learn's
  ``GaussianProcessRegressor`` (L-BFGS-B with restarts, ``random_state`` fixed so the fit is
  reproducible) to the maximum of marginal likelihood × prior (:func:`_log_prior`, the priors of
  Optuna's GP sampler). Without the prior, the first rounds' fits (≤ 20 points in 6-D) often
  chose very short or very long length scales; on Hartmann-6 the prior brought the median number
  of evaluations to 95 % of the optimum from 46 to 34.5 (20 seeds, with the acquisition changes of
  the same commit; ``benchmarks/results/optimizer.md``).
- Length scales are bounded to [0.02, 3] on the unit-scaled inputs (:data:`LENGTH_SCALE_BOUNDS`).
  At ℓ = 3 the Matérn-5/2 correlation across the whole range is already 0.9: longer scales add
  nothing the GP can model, but let it declare a weak parameter irrelevant for good, after which
  EI never moves along it. With the old bound of 50 the benchmark's mixed problem stalled at a
  regret of 0.05 in most seeds (its integer parameter, a small quadratic effect, sat at ℓ = 50);
  with 3 it converges (see ``benchmarks/results/optimizer.md``).
  Predictions then use our own numpy posterior so that fantasy points (pending experiments, batch
  members) can be added cheaply without refitting.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize
from scipy.spatial.distance import cdist
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

_SQRT5 = np.sqrt(5.0)
LENGTH_SCALE_BOUNDS = (0.02, 3.0)
_JITTER = 1e-10


class Matern52(Matern):
    """scikit-learn's ``Matern(nu=2.5)`` with a cheaper gradient (fewer (n, n, d) temporaries).

    The marginal-likelihood gradient dominates the fit time; this computes
    ``dK/dlog l_k = 5/3 · (1 + s) · exp(−s) · (x_k − x'_k)² / l_k²`` with ``s = √5·r`` in one pass.
    """

    def __init__(self, length_scale=1.0, length_scale_bounds=(1e-5, 1e5)):
        super().__init__(length_scale, length_scale_bounds, nu=2.5)

    def __call__(self, X, Y=None, eval_gradient=False):
        if Y is not None or not eval_gradient:
            return super().__call__(X, Y, eval_gradient)
        X = np.atleast_2d(X)
        ls = np.broadcast_to(np.asarray(self.length_scale, float), (X.shape[1],))
        Z = X / ls
        D = (Z[:, None, :] - Z[None, :, :]) ** 2
        s = np.sqrt(5.0 * D.sum(axis=2))
        e = np.exp(-s)
        K = (1.0 + s + s * s / 3.0) * e
        if self.hyperparameter_length_scale.fixed:
            return K, np.empty((X.shape[0], X.shape[0], 0))
        G = D * ((5.0 / 3.0) * (1.0 + s) * e)[:, :, None]
        if not self.anisotropic:
            G = G.sum(axis=2, keepdims=True)
        return K, G


def _log_prior(theta: np.ndarray) -> tuple[float, np.ndarray]:
    """log prior density (up to a constant) and its gradient at ``theta`` = [log a, log ℓ_1..d,
    log nugget], the layout of our kernel ``a · Matern52(ℓ) + White(nugget)``.

    The priors of Optuna's GPSampler (``optuna._gp.prior``), in standardised units: a ~ Gamma(2, 1),
    nugget ~ Gamma(1.1, 30), and on each inverse squared length scale λ = ℓ⁻² the density
    exp(−0.1/λ − 0.1·λ), which keeps ℓ away from both the point-memorising short end and the
    "irrelevant parameter" long end while data are few.
    """
    u, t, w = theta[0], theta[1:-1], theta[-1]
    lam_inv, lam = np.exp(2 * t), np.exp(-2 * t)
    value = (u - np.exp(u)) - 0.1 * (lam_inv + lam).sum() + (0.1 * w - 30 * np.exp(w))
    grad = np.concatenate([[1 - np.exp(u)], -0.2 * (lam_inv - lam), [0.1 - 30 * np.exp(w)]])
    return float(value), grad


def _map_lbfgsb(obj_func, initial_theta, bounds):
    """scikit-learn's optimizer hook: minimise −(log marginal likelihood + log prior)."""

    def neg_log_posterior(theta):
        nll, grad = obj_func(theta)
        lp, lp_grad = _log_prior(theta)
        return nll - lp, grad - lp_grad

    # Hyperparameters need not be precise to 1e-9 of the likelihood; this halves the evaluations.
    res = minimize(
        neg_log_posterior,
        initial_theta,
        method="L-BFGS-B",
        jac=True,
        bounds=bounds,
        options={"ftol": 1e-7, "gtol": 1e-4, "maxiter": 200},
    )
    return res.x, res.fun


class GPSurrogate:
    """Heteroscedastic GP regression with a Matérn-5/2 ARD kernel.

    Parameters
    ----------
    n_restarts : extra random starts of the hyperparameter optimisation (after the first start).
    random_state : seed of those restarts.
    length_scale_bounds : bounds of each length scale, in unit-scaled input coordinates.
    nugget_bounds : bounds of the learned extra noise variance, in standardised output units.
    warm_start : hyperparameters (:attr:`hyperparameters_` of an earlier fit) for the first start;
        default amplitude 1, length scales 0.5, nugget 0.01.

    Attributes
    ----------
    amplitude_ : signal variance a (standardised units).
    length_scales_ : (d,) length scale per encoded column.
    nugget_ : learned noise variance (standardised units).
    y_mean_, y_std_ : output standardisation, objective units.
    X_train_ : (n, d) conditioning inputs (observations plus any fantasies).

    Examples
    --------
    >>> gp = GPSurrogate(random_state=0).fit(X, y, sd=y_sd)
    >>> mean, sd = gp.predict(X_new)
    """

    def __init__(
        self,
        n_restarts: int = 2,
        random_state: int | None = None,
        length_scale_bounds: tuple[float, float] = LENGTH_SCALE_BOUNDS,
        nugget_bounds: tuple[float, float] = (1e-6, 1.0),
        warm_start: dict | None = None,
    ):
        self.n_restarts = n_restarts
        self.warm_start = warm_start
        self.random_state = random_state
        self.length_scale_bounds = length_scale_bounds
        self.nugget_bounds = nugget_bounds

    def fit(self, X, y, sd=None) -> GPSurrogate:
        """Fit hyperparameters and the posterior.

        Parameters
        ----------
        X : (n, d) encoded inputs.
        y : (n,) observed objective values.
        sd : (n,) standard deviation of each observation (same units as y), or None for unknown.
        """
        X = np.asarray(X, float)
        y = np.asarray(y, float)
        self.y_mean_ = float(y.mean())
        std = float(y.std())
        self.y_std_ = std if std > 1e-12 else 1.0
        ys = (y - self.y_mean_) / self.y_std_
        alpha = self._noise(sd, len(y))
        d = X.shape[1]
        start = {"amplitude": 1.0, "length_scales": np.full(d, 0.5), "nugget": 1e-2}
        if self.warm_start is not None and len(self.warm_start["length_scales"]) == d:
            start = self.warm_start
        kernel = ConstantKernel(
            float(np.clip(start["amplitude"], 1e-2, 1e2)), (1e-2, 1e2)
        ) * Matern52(
            np.clip(np.asarray(start["length_scales"], float), *self.length_scale_bounds),
            self.length_scale_bounds,
        ) + WhiteKernel(float(np.clip(start["nugget"], *self.nugget_bounds)), self.nugget_bounds)
        gp = GaussianProcessRegressor(
            kernel,
            alpha=alpha,
            normalize_y=False,
            optimizer=_map_lbfgsb,
            n_restarts_optimizer=self.n_restarts,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            # Hitting a bound (e.g. an irrelevant input's length scale at its maximum) is expected.
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(X, ys)
        k = gp.kernel_
        self.amplitude_ = float(k.k1.k1.constant_value)
        self.length_scales_ = np.broadcast_to(np.atleast_1d(k.k1.k2.length_scale), (d,)).copy()
        self.nugget_ = float(k.k2.noise_level)
        self._condition(X, ys, alpha + self.nugget_)
        return self

    @property
    def hyperparameters_(self) -> dict:
        """Fitted hyperparameters as plain data (to save, or to warm-start the next fit)."""
        return {
            "amplitude": self.amplitude_,
            "length_scales": [float(v) for v in self.length_scales_],
            "nugget": self.nugget_,
        }

    def _noise(self, sd, n: int) -> np.ndarray:
        if sd is None:
            return np.full(n, _JITTER)
        sd = np.asarray(sd, float)
        return (sd / self.y_std_) ** 2 + _JITTER

    def _kernel(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        s = _SQRT5 * cdist(A / self.length_scales_, B / self.length_scales_)
        return self.amplitude_ * (1.0 + s + s * s / 3.0) * np.exp(-s)

    def _condition(self, X: np.ndarray, ys: np.ndarray, noise: np.ndarray) -> None:
        K = self._kernel(X, X)
        K[np.diag_indices_from(K)] += noise
        self.X_train_, self._ys, self._noise_var = X, ys, noise
        self._L = cholesky(K, lower=True)
        self._alpha = cho_solve((self._L, True), ys)

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and sd of the latent objective f at X (objective units, without noise)."""
        X = np.atleast_2d(np.asarray(X, float))
        ks = self._kernel(X, self.X_train_)
        mean = ks @ self._alpha
        v = solve_triangular(self._L, ks.T, lower=True, check_finite=False)
        var = np.maximum(self.amplitude_ - np.einsum("ij,ij->j", v, v), 1e-12 * self.amplitude_)
        return mean * self.y_std_ + self.y_mean_, np.sqrt(var) * self.y_std_

    def predict_cov(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean (m,) and covariance (m, m) of the latent f at X (objective units)."""
        X = np.atleast_2d(np.asarray(X, float))
        ks = self._kernel(X, self.X_train_)
        v = solve_triangular(self._L, ks.T, lower=True, check_finite=False)
        cov = self._kernel(X, X) - v.T @ v
        return (ks @ self._alpha) * self.y_std_ + self.y_mean_, cov * self.y_std_**2

    def sample_latent(self, X, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint posterior draws (n, m) of the latent f at X (objective units)."""
        mean, cov = self.predict_cov(X)
        w, V = np.linalg.eigh(cov)
        root = V * np.sqrt(np.maximum(w, 0.0))
        return mean + rng.standard_normal((n, len(mean))) @ root.T

    def given_latent(self, X_B, F_B) -> LatentConditional:
        """The GP conditioned on latent values ``F_B`` (S, |B|) at ``X_B`` instead of the data:
        for each of the S draws, the distribution of f elsewhere given f at ``X_B`` (used to
        fantasise pending experiments and the noisy incumbent front together)."""
        return LatentConditional(self, np.atleast_2d(np.asarray(X_B, float)), np.atleast_2d(F_B))

    def condition_on(self, X_new, y_new, sd_new=None) -> GPSurrogate:
        """A copy conditioned on extra points with the same hyperparameters (no refit).

        Used for fantasies: pending experiments and already chosen batch members enter with their
        predicted mean (Kriging believer), which collapses the uncertainty there.
        """
        X_new = np.atleast_2d(np.asarray(X_new, float))
        y_new = (np.atleast_1d(np.asarray(y_new, float)) - self.y_mean_) / self.y_std_
        noise_new = self._noise(sd_new, len(y_new)) + self.nugget_
        out = copy.copy(self)
        out._condition(
            np.vstack([self.X_train_, X_new]),
            np.concatenate([self._ys, y_new]),
            np.concatenate([self._noise_var, noise_new]),
        )
        return out


class LatentConditional:
    """f at new points given f = ``F_B`` at ``X_B`` (noise-free), one Gaussian per draw of F_B.

    With the kernel's amplitude a and K_BB its Gram matrix at X_B: mean_s(x) = k_xB K_BB⁻¹ f_s,
    var(x) = a − k_xB K_BB⁻¹ k_Bx (the same for every draw s). A jitter of 1e-6·a keeps K_BB
    positive definite where points of X_B nearly coincide.

    Attributes
    ----------
    n_draws : S, the number of conditioning draws.
    """

    def __init__(self, gp: GPSurrogate, X_B: np.ndarray, F_B: np.ndarray):
        self.gp, self.X_B = gp, X_B
        K = gp._kernel(X_B, X_B)
        K[np.diag_indices_from(K)] += 1e-6 * gp.amplitude_
        self._L = cholesky(K, lower=True)
        fs = (np.asarray(F_B, float) - gp.y_mean_) / gp.y_std_
        self._W = solve_triangular(self._L, fs.T, lower=True, check_finite=False)  # (|B|, S)
        self.n_draws = fs.shape[0]

    def predict(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Means (m, S) per conditioning draw and the common sd (m,), objective units."""
        gp = self.gp
        X = np.atleast_2d(np.asarray(X, float))
        v = solve_triangular(self._L, gp._kernel(X, self.X_B).T, lower=True, check_finite=False)
        var = np.maximum(gp.amplitude_ - np.einsum("ij,ij->j", v, v), 1e-12 * gp.amplitude_)
        return (v.T @ self._W) * gp.y_std_ + gp.y_mean_, np.sqrt(var) * gp.y_std_
