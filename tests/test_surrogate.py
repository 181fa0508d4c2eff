"""GP surrogate: heteroscedastic noise, fit quality, ARD relevance, fantasies; log EI; Pareto."""

import numpy as np
import pytest
from scipy.stats import norm

from optimizer.acquisition import log_expected_improvement, log_probability_at_least
from optimizer.pareto import chebyshev_scalarize, hypervolume, pareto_mask
from optimizer.surrogate import GPSurrogate, _log_prior


def _disputed_fit(sd_a: float, sd_b: float) -> float:
    """Background points at y = 0.5; near x = 0.5 group A says 0 and group B says 1."""
    x_bg = np.array([0.0, 0.1, 0.2, 0.8, 0.9, 1.0])
    x_a, x_b = np.array([0.45, 0.5, 0.55]), np.array([0.47, 0.5, 0.53])
    X = np.concatenate([x_bg, x_a, x_b])[:, None]
    y = np.concatenate([np.full(6, 0.5), np.zeros(3), np.ones(3)])
    sd = np.concatenate([np.full(6, 0.05), np.full(3, sd_a), np.full(3, sd_b)])
    gp = GPSurrogate(random_state=0).fit(X, y, sd)
    return float(gp.predict([[0.5]])[0][0])


def test_mean_follows_precise_points_when_noisy_ones_disagree():
    assert _disputed_fit(sd_a=0.02, sd_b=1.0) < 0.2  # follows A (0)
    assert _disputed_fit(sd_a=1.0, sd_b=0.02) > 0.8  # same data, roles swapped: follows B (1)


def test_fit_recovers_a_known_function_with_calibrated_sd():
    rng = np.random.default_rng(0)
    X = rng.random((40, 2))
    f = lambda X: np.sin(5 * X[:, 0]) + X[:, 1] ** 2  # noqa: E731
    y = f(X) + 0.01 * rng.standard_normal(40)
    gp = GPSurrogate(random_state=0).fit(X, y, np.full(40, 0.01))
    Xt = rng.random((200, 2))
    mean, sd = gp.predict(Xt)
    err = np.abs(mean - f(Xt))
    assert err.max() < 0.15
    assert np.mean(err < 3 * sd + 0.01) > 0.9


def test_irrelevant_input_gets_a_longer_length_scale():
    rng = np.random.default_rng(1)
    X = rng.random((30, 2))
    y = np.sin(6 * X[:, 0])  # depends on column 0 only
    gp = GPSurrogate(random_state=0).fit(X, y)
    assert gp.length_scales_[1] > 5 * gp.length_scales_[0]


def test_fantasy_collapses_uncertainty_without_refit():
    rng = np.random.default_rng(2)
    X = rng.random((10, 1))
    gp = GPSurrogate(random_state=0).fit(X, np.cos(4 * X[:, 0]))
    x0 = np.array([[0.999]])
    m0, s0 = gp.predict(x0)
    g2 = gp.condition_on(x0, m0)
    m1, s1 = g2.predict(x0)
    assert s1[0] < 0.5 * s0[0]
    assert m1[0] == pytest.approx(m0[0], abs=1e-6)
    assert np.array_equal(g2.length_scales_, gp.length_scales_)


def test_fit_is_reproducible_with_a_seed():
    rng = np.random.default_rng(3)
    X, y = rng.random((25, 3)), rng.standard_normal(25)
    a = GPSurrogate(random_state=7).fit(X, y).hyperparameters_
    b = GPSurrogate(random_state=7).fit(X, y).hyperparameters_
    assert a == b


def test_hyperparameter_prior_gradient_matches_finite_differences_and_peaks_at_unit_scale():
    theta = np.log([0.7, 0.2, 1.0, 2.5, 0.01])  # [a, three length scales, nugget]
    value, grad = _log_prior(theta)
    step = 1e-6
    numeric = [
        (_log_prior(theta + step * e)[0] - _log_prior(theta - step * e)[0]) / (2 * step)
        for e in np.eye(len(theta))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    # exp(−0.1/λ − 0.1·λ) on λ = ℓ⁻² is largest at ℓ = 1: both shorter and longer scales cost.
    at = lambda ell: _log_prior(np.log([1.0, ell, 0.01]))[0]  # noqa: E731
    assert at(1.0) > at(0.3) and at(1.0) > at(3.0)


def test_log_ei_matches_closed_form_and_stays_finite_in_the_tail():
    mean = np.linspace(-5, 5, 41)
    sd = np.full_like(mean, 1.3)
    z = mean / sd
    naive = np.log(sd * (norm.pdf(z) + z * norm.cdf(z)))
    assert np.allclose(log_expected_improvement(mean, sd, 0.0), naive, rtol=1e-9, atol=1e-9)
    tail = log_expected_improvement(np.array([-40.0, -400.0, -4e7]), np.ones(3), 0.0)
    assert np.all(np.isfinite(tail)) and np.all(np.diff(tail) < 0)
    # asymptotically EI ≈ φ(z)/z² for z → −∞
    assert tail[1] == pytest.approx(norm.logpdf(-400.0) - 2 * np.log(400.0), rel=1e-4)
    assert log_probability_at_least(0.0, 1.0, 0.0) == pytest.approx(np.log(0.5))


def test_pareto_mask_and_hypervolume_on_hand_computed_fronts():
    Y = np.array([[1, 3], [2, 2], [3, 1], [1, 1], [2, 2]], float)
    assert pareto_mask(Y).tolist() == [True, True, True, False, True]
    # union of rectangles [0,1]x[0,3], [0,2]x[0,2], [0,3]x[0,1] = 3 + 2 + 1
    assert hypervolume(Y, [0, 0]) == pytest.approx(6.0)
    assert hypervolume([[1, 2, 3]], [0, 0, 0]) == pytest.approx(6.0)
    assert hypervolume([[2, 1, 1], [1, 2, 1]], [0, 0, 0]) == pytest.approx(3.0)
    rng = np.random.default_rng(0)
    P = rng.random((6, 3))
    U = rng.random((200_000, 3))
    dominated = (U[:, None, :] <= P[None]).all(axis=2).any(axis=1)
    assert hypervolume(P, [0, 0, 0]) == pytest.approx(dominated.mean(), abs=0.01)


def test_chebyshev_scalarisation_prefers_balanced_points_for_equal_weights():
    s, grad = chebyshev_scalarize([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], [0.5, 0.5])
    assert s[1] > s[0] and s[1] > s[2]
    assert grad.shape == (3, 2)
