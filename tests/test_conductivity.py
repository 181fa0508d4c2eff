"""σ = L/(R·A) with geometry uncertainty propagated through resistance draws."""

from __future__ import annotations

import numpy as np
import pytest

from inference.circuits import parse_circuit
from inference.conductivity import composite_resistance_name, conductivity_draws
from inference.errors import InputError

R_DRAWS = np.random.default_rng(0).lognormal(np.log(300.0), 0.05, size=(2, 500))


def test_zero_geometry_sd_is_exactly_l_over_ra():
    sigma = conductivity_draws(R_DRAWS, thickness_cm=0.006, area_cm2=1.267)
    np.testing.assert_array_equal(sigma, 0.006 / (R_DRAWS * 1.267))
    assert sigma.shape == R_DRAWS.shape


def test_geometry_uncertainty_widens_the_interval_not_the_centre():
    exact = conductivity_draws(R_DRAWS, thickness_cm=0.006, area_cm2=1.267)
    noisy = conductivity_draws(
        R_DRAWS,
        thickness_cm=0.006,
        thickness_sd_cm=0.0006,
        area_cm2=1.267,
        area_sd_cm2=0.05,
        seed=3,
    )

    def width(x):
        lo, hi = np.quantile(x, [0.05, 0.95])
        return hi - lo

    assert width(noisy) > 1.5 * width(exact)  # 10 % thickness sd vs 5 % resistance sd
    assert np.median(noisy) == pytest.approx(np.median(exact), rel=0.03)


def test_truncation_keeps_geometry_positive():
    sigma = conductivity_draws(
        R_DRAWS, thickness_cm=0.006, thickness_sd_cm=0.006, area_cm2=1.0, seed=1
    )
    assert np.all(sigma > 0)


@pytest.mark.parametrize(
    "bad",
    [{"thickness_cm": -1.0}, {"area_cm2": 0.0}, {"thickness_cm": 0.006, "thickness_sd_cm": -0.1}],
)
def test_bad_geometry_is_an_input_error(bad):
    kwargs = {"thickness_cm": 0.006, "area_cm2": 1.0, **bad}
    with pytest.raises(InputError):
        conductivity_draws(R_DRAWS, **kwargs)


def test_resistance_choice_by_cell_type():
    c = parse_circuit("R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)")
    assert composite_resistance_name(c) == "R3"  # lowest-frequency arc: the composite
    assert composite_resistance_name(c, resistance="R2") == "R2"
    assert composite_resistance_name(parse_circuit("R0-p(R1,CPE1)-TLM1")) == "TLM1_0"
    with pytest.raises(InputError, match="R9"):
        composite_resistance_name(c, resistance="R9")
    with pytest.raises(InputError, match="DC fit"):
        composite_resistance_name(c, cell_type="electron")
