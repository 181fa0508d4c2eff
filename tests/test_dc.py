"""DC polarization: plateau detection and the Bayesian Ohm's-law fit (known truth)."""

from __future__ import annotations

import numpy as np
import pytest

from inference.dc import detect_plateaus, fit_dc
from inference.errors import InputError
from inference.spectrum import make_dc

R_TRUE = 50.0  # Ω
V0_TRUE = 0.004  # V
BIASES = (-0.2, -0.1, 0.1, 0.2, 0.3)


def record(decay_s: float, seed: int = 0, step_s: float = 60.0, noise_rel: float = 0.002):
    """Bias steps with a current that relaxes to (V − V0)/R with time constant ``decay_s``."""
    rng = np.random.default_rng(seed)
    t_step = np.linspace(0, step_s, 121)
    times, volts, amps, steps = [], [], [], []
    for k, v in enumerate(BIASES):
        i_ss = (v - V0_TRUE) / R_TRUE
        i = i_ss * (1 + 3 * np.exp(-t_step / decay_s))
        i = i + noise_rel * abs(i_ss) * rng.standard_normal(t_step.size)
        times.append(k * (step_s + 1) + t_step)
        volts.append(np.full(t_step.size, v))
        amps.append(i)
        steps.append(np.full(t_step.size, k))
    return make_dc(
        np.concatenate(times),
        np.concatenate(volts),
        np.concatenate(amps),
        step=np.concatenate(steps),
        thickness_cm=0.006,
        area_cm2=1.27,
    )


@pytest.fixture(scope="module")
def settled_fit():
    return fit_dc(record(decay_s=2.0), draws=300, tune=300, seed=1)


def test_plateaus_of_a_fast_relaxation_are_settled_and_at_ohms_law():
    steps = detect_plateaus(record(decay_s=2.0))
    assert len(steps) == len(BIASES)
    assert steps["settled"].all()
    expected = (np.array(BIASES) - V0_TRUE) / R_TRUE
    np.testing.assert_allclose(steps["current_A"], expected, rtol=0.01)


def test_fit_recovers_the_resistance_within_its_interval(settled_fit):
    r = settled_fit.posterior["R_ohm"].values.ravel()
    low, high = np.quantile(r, [0.05, 0.95])
    assert low <= R_TRUE <= high
    assert high / low < 1.2  # five clean steps pin R down to a few %
    assert settled_fit.warnings == []
    table = settled_fit.summary()
    assert {"R_ohm", "V0_V"} <= set(table.index)
    sigma = settled_fit.conductivity()
    np.testing.assert_allclose(np.median(sigma), 0.006 / (np.median(r) * 1.27), rtol=1e-6)


def test_non_settling_record_is_flagged():
    fit = fit_dc(record(decay_s=200.0), draws=300, tune=300)
    assert any("never settles" in w for w in fit.warnings)
    assert not fit.steps["settled"].any()


def test_plot_is_written(settled_fit, tmp_path):
    settled_fit.plot(tmp_path / "dc.png")
    assert (tmp_path / "dc.png").stat().st_size > 10_000


def test_netcdf_round_trip(settled_fit, tmp_path):
    import arviz as az

    path = settled_fit.to_netcdf(tmp_path / "dc.nc")
    tree = az.from_netcdf(path)
    np.testing.assert_allclose(
        tree.posterior["R_ohm"].values, np.exp(tree.posterior["log_R"].values)
    )


def test_one_bias_voltage_is_a_clear_error():
    t = np.linspace(0, 10, 50)
    rec = make_dc(t, np.full(50, 0.1), np.full(50, 0.002))
    with pytest.raises(InputError, match="two bias steps"):
        fit_dc(rec)


def test_a_known_contact_resistance_is_subtracted_with_its_uncertainty(settled_fit):
    from inference.errors import ModelError

    plain = settled_fit.conductivity().values.ravel()
    r = settled_fit.posterior["R_ohm"].values.ravel()
    exact = settled_fit.conductivity(contact_ohm=10.0).values.ravel()
    np.testing.assert_allclose(exact, 0.006 / ((r - 10.0) * 1.27), rtol=1e-12)
    assert np.median(exact) / np.median(plain) == pytest.approx(50 / 40, rel=0.02)
    spread = settled_fit.conductivity(contact_ohm=10.0, contact_sd_ohm=4.0).values.ravel()
    assert np.std(np.log(spread)) > 2 * np.std(np.log(exact))  # its sd widens σ
    with pytest.raises(ModelError, match="reaches the measured resistance"):
        settled_fit.conductivity(contact_ohm=60.0)
    with pytest.raises(InputError, match="contact_ohm"):
        settled_fit.conductivity(contact_ohm=-1.0)
