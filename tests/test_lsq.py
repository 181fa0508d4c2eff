"""Deterministic CNLS fit: recovers simulated truth without user guesses; garbage is refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from inference.circuits import parse_circuit, simulate_spectrum
from inference.errors import CircuitError, InputError, ModelError
from inference.lsq import fit_lsq, initial_guess
from inference.spectrum import make_spectrum

# 5-layer cell, physics.md §2.5: 7 MHz → 1 Hz at 10 points per decade, 1 % noise; arcs
# (SE bulk, interfaces, composite) in distinct decades.
FREQ = np.logspace(np.log10(7e6), 0, 69)
CELL = parse_circuit("R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)")


def arc_q(r, f_apex, alpha):
    """CPE Q that puts the apex of R‖CPE at f_apex: (R·Q)^(1/α) = 1/(2π f_apex)."""
    return 1 / (r * (2 * np.pi * f_apex) ** alpha)


TRUTH = {
    "R0": 15.0, "R1": 80.0, "CPE1_0": arc_q(80, 2e5, 0.95), "CPE1_1": 0.95,
    "R2": 150.0, "CPE2_0": arc_q(150, 2e3, 0.85), "CPE2_1": 0.85,
    "R3": 600.0, "CPE3_0": arc_q(600, 10, 0.8), "CPE3_1": 0.8,
}  # fmt: skip


@pytest.fixture(scope="module")
def fits():
    return [
        fit_lsq(simulate_spectrum(CELL, TRUTH, FREQ, noise_rel=0.01, seed=s), CELL.string)
        for s in range(3)
    ]


def test_recovers_three_arc_cell_without_guesses(fits):
    for r in fits:
        assert r.success and r.flags == []
        p = r.params
        assert p["R0"] == pytest.approx(TRUTH["R0"], rel=0.02)
        total = sum(p[k] for k in ("R0", "R1", "R2", "R3"))
        assert total == pytest.approx(sum(TRUTH[k] for k in ("R0", "R1", "R2", "R3")), rel=0.02)
        for name in ("R1", "R2", "R3", "CPE1_1", "CPE2_1", "CPE3_1"):
            assert p[name] == pytest.approx(TRUTH[name], rel=0.08), name
        for arc in CELL.arcs:  # apex frequencies, what a reader of the Nyquist plot checks
            assert arc.tau_s(p) == pytest.approx(arc.tau_s(TRUTH), rel=0.08)
        # the Jacobian's standard errors cover the truth (|z| < 4.5 for every parameter)
        z = [(p[n] - TRUTH[n]) / r.stderr[n] for n in CELL.param_names]
        assert np.all(np.abs(z) < 4.5), dict(zip(CELL.param_names, np.round(z, 2), strict=True))
        # residuals at the 1 % noise level; one start was enough
        assert 0.007 < r.rms_rel < 0.013 and r.n_starts_used == 1


def test_result_layout(fits):
    r = fits[0]
    assert r.param_names == CELL.param_names
    np.testing.assert_array_equal(r.vector(), [r.params[n] for n in CELL.param_names])
    assert r.cov_log.shape == (10, 10) and np.all(np.diag(r.cov_log) > 0)
    np.testing.assert_allclose(np.exp(r.log_params[0]), r.params["R0"])
    assert r.residuals.shape == FREQ.shape and np.iscomplexobj(r.residuals)
    assert r.chi2 == pytest.approx(2 * r.cost)
    summary = r.summary()
    assert summary["lsq_success"] == 1 and summary["kk_passed"] == 1
    assert summary["lsq_R3"] == r.params["R3"]


def test_guesses_come_from_the_spectrum():
    ds = simulate_spectrum(CELL, TRUTH, FREQ, seed=0)
    guess = initial_guess(ds, CELL)
    assert guess["R0"] == pytest.approx(TRUTH["R0"], rel=0.3)
    for arc in CELL.arcs:  # each arc lands within half a decade of its true apex
        ratio = arc.tau_s(guess) / arc.tau_s(TRUTH)
        assert 10**-0.5 < ratio < 10**0.5, arc.label
    # written low → high frequency, the arcs are matched the other way round
    reverse = parse_circuit("R0-p(R3,CPE3)-p(R2,CPE2)-p(R1,CPE1)")
    flipped = initial_guess(ds, reverse, arcs_high_to_low=False)
    assert flipped["R3"] == pytest.approx(guess["R3"])


def test_multistart_rescues_a_bad_start_and_is_deterministic():
    ds = simulate_spectrum(CELL, TRUTH, FREQ, seed=1)
    wrong = {"R1": 1e5, "CPE1_0": 1e-1, "R2": 1e5, "R3": 1.0, "CPE3_0": 1e-12}
    first = fit_lsq(ds, CELL, initial=wrong, seed=0)
    again = fit_lsq(ds, CELL, initial=wrong, seed=0)
    assert first.n_starts_used > 1
    assert first.success and first.params["R3"] == pytest.approx(TRUTH["R3"], rel=0.08)
    np.testing.assert_array_equal(first.vector(), again.vector())


@pytest.mark.parametrize("weighting", ["modulus", "proportional", "unit"])
def test_weightings(weighting):
    ds = simulate_spectrum(CELL, TRUTH, FREQ, noise_rel=0.002, seed=4)
    r = fit_lsq(ds, CELL, weighting=weighting)
    assert r.success and r.weighting == weighting
    assert r.params["R3"] == pytest.approx(TRUTH["R3"], rel=0.03)


def test_other_elements_fit_without_guesses():
    truth = {"R0": 10.0, "R1": 100.0, "C1": 1e-8, "Wo1_0": 300.0, "Wo1_1": 0.5}
    ds = simulate_spectrum("R0-p(R1,C1)-Wo1", truth, FREQ, noise_rel=0.005, seed=0)
    r = fit_lsq(ds, "R0-p(R1,C1)-Wo1")
    for name, value in truth.items():
        assert r.params[name] == pytest.approx(value, rel=0.05), name
    truth = {"R0": 10.0, "R1": 100.0, "CPE1_0": 1e-7, "CPE1_1": 0.9,
             "TLM1_0": 500.0, "TLM1_1": 5.0, "TLM1_2": 1e-3, "TLM1_3": 0.9}  # fmt: skip
    circuit = "R0-p(R1,CPE1)-TLM1"
    r = fit_lsq(simulate_spectrum(circuit, truth, FREQ, noise_rel=0.005, seed=0), circuit)
    assert r.success
    assert r.params["TLM1_0"] == pytest.approx(500.0, rel=0.05)  # the composite's ionic resistance


def test_drifting_spectrum_is_fitted_and_flagged():
    seconds = np.cumsum(np.maximum(3 / FREQ, 0.5))
    z = CELL.impedance(TRUTH, FREQ) + 100.0 * seconds / seconds[-1]
    ds = make_spectrum(FREQ, z.real, z.imag, source="drift.csv")
    r = fit_lsq(ds, CELL)
    assert "kk_failed" in r.flags and not r.kk.passed
    assert r.summary()["kk_verdict"] == "fail"


def test_garbage_in_gives_one_line_errors():
    good = simulate_spectrum(CELL, TRUTH, FREQ, seed=0)
    with pytest.raises(CircuitError):
        fit_lsq(good, "R0-p(R1,CPE1")
    three = xr.Dataset(
        {"z_real": ("frequency", [1.0, 2.0, 3.0]), "z_imag": ("frequency", [-1.0, -2.0, -1.0])},
        coords={"frequency": [1e3, 1e2, 1e1]},
    )
    with pytest.raises(InputError, match="only 3 data points") as info:
        fit_lsq(three, CELL)
    assert "\n" not in str(info.value)
    nan = good.copy(deep=True)
    nan["z_imag"].values[10] = np.nan
    with pytest.raises(InputError, match="data point 11"):
        fit_lsq(nan, CELL)
    with pytest.raises(InputError, match="weighting"):
        fit_lsq(good, CELL, weighting="sigma")
    with pytest.raises(InputError, match="R9"):
        fit_lsq(good, CELL, initial={"R9": 1.0})
    five = good.isel(frequency=slice(0, 5))
    with pytest.raises(ModelError, match="too few") as info:
        fit_lsq(five, CELL)
    assert "\n" not in str(info.value)


def test_inductive_only_spectrum():
    ds = simulate_spectrum("R0-L0", [5.0, 1e-6], FREQ, noise_rel=0.001, seed=0)
    with pytest.raises(ModelError, match="no capacitive part") as info:
        fit_lsq(ds, CELL)
    assert "\n" not in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = fit_lsq(ds, "R0-L0")
    assert r.success
    assert r.params["L0"] == pytest.approx(1e-6, rel=0.01)


@pytest.mark.parametrize("cell", ["wet_NBR-ion-2", "dry_PTFE_solvent_SE-ion-3"])
def test_bundled_study_spectra_pass_kk_and_fit_the_truth(cell):
    """Simulated cells with a lead inductance, drift and outliers, fitted with the manifest's
    circuit: KK passes unless the sweep has an outlier, and the composite's R is recovered."""
    import json
    import tomllib

    from inference.readers import read_spectrum

    root = Path(__file__).resolve().parents[1] / "datasets" / "emley2023"
    truth = json.loads((root / "truth.json").read_text())["files"]
    manifest = tomllib.loads((root / "manifest.toml").read_text())
    circuit = parse_circuit(manifest["study"]["circuit"])
    files = sorted(k for k, v in truth.items() if v["cell"] == cell)
    assert len(files) >= 6
    for name in files:
        entry = truth[name]
        result = fit_lsq(read_spectrum(root / name), circuit)
        assert result.kk.passed == (not entry["outlier_points"]), (name, result.kk.max_residual)
        if not entry["outlier_points"]:
            assert result.success and not result.flags, (name, result.flags)
        true_r = entry["parameters"][entry["composite_resistance"]]
        assert abs(result.params[circuit.arcs[-1].r] / true_r - 1) < 0.05, name


PELLET = parse_circuit("p(R1,CPE1)-p(R2,CPE2)-CPE3")
PELLET_FREQ = np.geomspace(1e6, 0.03, 43)
PELLET_TRUTH = {
    "R1": 1e5, "CPE1_0": arc_q(1e5, 3e4, 0.85), "CPE1_1": 0.85,
    "R2": 1e6, "CPE2_0": arc_q(1e6, 1e2, 0.8), "CPE2_1": 0.8,
    "CPE3_0": 3e-7, "CPE3_1": 0.42,
}  # fmt: skip


def test_electrode_cpe_below_one_half_is_inside_the_support():
    """A blocking-electrode CPE at α = 0.42 (real pellets at 120 °C): fitted, not at a bound,
    and its interval covers the truth — the support (0.2, 1) is the Bayesian model's too."""
    from inference.priors import ALPHA_SUPPORT

    ds = simulate_spectrum(PELLET, PELLET_TRUTH, PELLET_FREQ, noise_rel=0.01, seed=2)
    r = fit_lsq(ds, PELLET)
    # (Lin-KK flags this compliant spectrum: a CPE tail at −38° running past f_min gets no
    # series capacitance in its model, the known limitation of inference.kramers_kronig.)
    assert r.success and not r.at_bound and set(r.flags) <= {"kk_failed"}
    lo, hi = r.intervals["CPE3_1"]
    assert ALPHA_SUPPORT[0] < lo < PELLET_TRUTH["CPE3_1"] < hi < 0.5


def test_a_parameter_at_a_bound_gets_a_one_sided_interval_never_zero_width():
    """A series resistance the data do not need goes to the fit's lower limit: it is named, its
    interval is [0, limit] with the limit where the profile χ² has risen by 1.96² s², and the
    Laplace draws of method="lsq" are one-sided too."""
    from inference.fit import fit_spectrum

    circuit = "R0-" + PELLET.string
    ds = simulate_spectrum(PELLET, PELLET_TRUTH, PELLET_FREQ, noise_rel=0.01, seed=3)
    r = fit_lsq(ds, circuit)
    assert r.at_bound == {"R0": "lower"} and "at_bound:R0" in r.flags
    lo, hi = r.intervals["R0"]
    assert lo == 0.0 and hi > 10 * r.params["R0"]
    # the bound is where the profile crosses: R0 at the limit costs 1.96² s² more, below it less
    assert 0.0 < hi < 0.05 * PELLET_TRUTH["R1"]
    fit = fit_spectrum(ds, circuit, method="lsq", lsq=r, draws=2000, chains=2, seed=0)
    row = fit.summary().loc["R0"]
    assert row["bound"] == "lower" and row["q5"] == 0.0 and row["q95"] == pytest.approx(hi)
    draws = fit.posterior["R0"].values
    assert draws.min() >= 0.0 and np.quantile(draws, 0.95) == pytest.approx(hi, rel=0.1)
    assert fit.verdict == "warning" and any("R0 at lower bound" in x for x in fit.reasons)
    # the other parameters keep their two-sided intervals, which cover the truth
    for name in ("R1", "R2", "CPE3_1"):
        lo, hi = r.intervals[name]
        assert lo < PELLET_TRUTH[name] < hi, name


def test_an_ideal_capacitor_puts_its_exponent_at_the_upper_bound():
    """An arc that is a true R‖C fitted with a CPE: α goes to 1, named, interval [limit, 1]."""
    truth = {**PELLET_TRUTH, "CPE2_1": 1.0, "CPE2_0": arc_q(1e6, 1e2, 1.0)}
    ds = simulate_spectrum(PELLET, truth, PELLET_FREQ, noise_rel=0.01, seed=4)
    r = fit_lsq(ds, PELLET)
    assert r.at_bound == {"CPE2_1": "upper"} and "at_bound:CPE2_1" in r.flags
    lo, hi = r.intervals["CPE2_1"]
    assert hi == 1.0 and 0.98 < lo < 0.9993
