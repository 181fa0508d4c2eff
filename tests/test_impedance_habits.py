"""impedance.py habits, checked against impedance.py itself on its own tutorial spectrum
(``tests/data/instrument-files/exampleData.csv``): ``constants=``, ``initial_guess=``,
``predict(f)``, ``(f, Z)`` pairs in and out, and a "poor fit" rule that stays quiet when a fit
is as good as impedance.py's (:mod:`inference.fit_quality`).

Both sides minimise the same objective (residuals weighted by |Z|: impedance.py's
``weight_by_modulus=True``, sigmalab's default) from the same starting values, so where both
converge their optima must agree: parameters within 1 %.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from impedance import preprocessing
from impedance.models.circuits import CustomCircuit

import inference
from inference.circuits import parse_circuit
from inference.fit_quality import POOR_FLOOR_REL, fit_quality
from inference.lsq import fit_lsq
from tests.conftest import INSTRUMENT_FILES

TUTORIAL = INSTRUMENT_FILES / "exampleData.csv"
WARBURG = "R0-p(R1,CPE1)-p(R2-Wo1,CPE2)"


@pytest.fixture(scope="module")
def tutorial():
    """impedance.py's tutorial data, read and trimmed as its tutorial does."""
    f, z = preprocessing.readCSV(str(TUTORIAL))
    return preprocessing.ignoreBelowX(f, z)


def impedance_py(circuit, guess, f, z, constants=None):
    model = CustomCircuit(circuit, initial_guess=list(guess), constants=constants or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(f, z, weight_by_modulus=True)
    return model


def rms_rel(f, z, z_fit) -> float:
    d = (z - z_fit) / np.abs(z)
    return float(np.sqrt(np.mean(d.real**2 + d.imag**2) / 2))


CASES = [
    # circuit, impedance.py initial guess (without the constants), constants
    (WARBURG, [0.01, 0.01, 100, 0.9, 0.01, 0.05, 100, 1, 0.9], {}),
    (WARBURG, [0.01, 4, 0.85, 0.005, 0.13, 1000, 0.4, 0.9], {"R0": 0.016}),
    (WARBURG, [0.016, 0.01, 4, 0.005, 0.13, 1000, 0.4, 0.9], {"CPE1_1": 0.85}),
    ("R0-p(R1,CPE1)-p(R2,CPE2)", [0.01, 1, 0.9, 0.1, 100, 0.9], {"R0": 0.015}),
]


@pytest.mark.parametrize("circuit,guess,constants", CASES)
def test_constants_and_initial_guess_match_impedance_py(tutorial, circuit, guess, constants):
    f, z = tutorial
    theirs = impedance_py(circuit, guess, f, z, constants)
    fit = inference.fit_spectrum(
        (f, z), circuit, method="lsq", constants=constants, initial_guess=guess, draws=100
    )
    free = [n for n in parse_circuit(circuit).param_names if n not in constants]
    ours = np.array([fit.lsq.params[n] for n in free])
    # both converged: to the same residual, and that residual is a good fit
    assert rms_rel(f, z, theirs.predict(f)) == pytest.approx(fit.lsq.rms_rel, rel=1e-3)
    assert fit.lsq.success and "poor_fit" not in fit.lsq.flags
    np.testing.assert_allclose(ours, theirs.parameters_, rtol=0.01)
    for name, value in constants.items():
        assert fit.lsq.params[name] == value and fit.lsq.stderr[name] == 0.0
        assert np.all(fit.posterior[name].values == value)
    # predict(f): the fitted impedance, as impedance.py's predict gives it
    np.testing.assert_allclose(fit.predict(f), theirs.predict(f), rtol=0.01)
    np.testing.assert_allclose(fit.lsq.predict(f), theirs.predict(f), rtol=1e-3)


def test_initial_guess_by_name_and_bad_guesses(tutorial):
    f, z = tutorial
    guess = dict(zip(parse_circuit(WARBURG).param_names, CASES[0][1], strict=True))
    by_name = fit_lsq((f, z), WARBURG, initial=guess)
    by_list = inference.fit_spectrum((f, z), WARBURG, method="lsq", initial_guess=CASES[0][1])
    np.testing.assert_allclose(by_name.vector(), by_list.lsq.vector(), rtol=1e-6)
    with pytest.raises(inference.InputError, match="8 values for the 9 free parameters"):
        inference.fit_spectrum((f, z), WARBURG, method="lsq", initial_guess=CASES[0][1][:-1])
    with pytest.raises(inference.InputError, match="unknown parameter.*R9"):
        inference.fit_spectrum((f, z), WARBURG, method="lsq", constants={"R9": 1.0})
    with pytest.raises(inference.InputError, match="CPE1_1=1.5 is outside its bounds"):
        inference.fit_spectrum((f, z), WARBURG, method="lsq", constants={"CPE1_1": 1.5})
    with pytest.raises(inference.InputError, match="both initial and constants"):
        fit_lsq((f, z), WARBURG, initial={"R0": 0.01}, constants={"R0": 0.01})


def test_spectra_from_and_to_complex_arrays(tutorial):
    f, z = tutorial
    spec = inference.from_complex(f, z, temperature_K=298.15)
    assert spec.attrs["temperature_K"] == 298.15
    np.testing.assert_array_equal(spec["z_imag"].values, z.imag)
    f2, z2 = inference.to_complex(spec)
    np.testing.assert_array_equal(f2, f)
    np.testing.assert_array_equal(z2, z)
    with pytest.raises(inference.InputError, match="not a finite number"):
        inference.from_complex(f, np.where(f > 1, z, np.nan))


@pytest.mark.slow
def test_nuts_keeps_a_constant_and_recovers_the_rest():
    """NUTS with R0 fixed at its true value: the constant stays exact in every draw and the
    free parameters' credible intervals hold the truth."""
    truth = {"R0": 15.0, "R1": 120.0, "CPE1_0": 3e-6, "CPE1_1": 0.88}
    f = np.geomspace(1e6, 1.0, 36)
    spec = inference.simulate_spectrum("R0-p(R1,CPE1)", truth, f, noise_rel=0.01, seed=5)
    fit = inference.fit_spectrum(
        inference.to_complex(spec), "R0-p(R1,CPE1)", constants={"R0": 15.0},
        draws=300, tune=300, seed=1,
    )  # fmt: skip
    assert np.all(fit.posterior["R0"].values == 15.0)
    assert fit.attrs["constants"] == '{"R0": 15.0}'
    assert "log_R0" not in fit.posterior  # not sampled
    for name in ("R1", "CPE1_0", "CPE1_1"):  # 98 % intervals: three checks, one seed
        lo, hi = np.quantile(fit.posterior[name].values, [0.01, 0.99])
        assert lo <= truth[name] <= hi, (name, lo, truth[name], hi)
    z_true = parse_circuit("R0-p(R1,CPE1)").impedance(truth, f)
    assert np.max(np.abs(fit.predict(f) / z_true - 1)) < 0.01
    assert fit.diagnostics["max_rhat"] < 1.05


def test_the_poor_fit_rule_is_quiet_on_impedance_py_tutorial_fits(tutorial):
    """sigmalab's fits of the tutorial spectrum, as good as impedance.py's, are not poor; a
    circuit with an arc missing is."""
    f, z = tutorial
    tutorial_circuit = ("R0-p(R1,C1)-p(R2-Wo1,C2)", [0.01, 0.01, 100, 0.01, 0.05, 100, 1])
    for circuit, guess in (tutorial_circuit, CASES[0][:2]):
        theirs = rms_rel(f, z, impedance_py(circuit, guess, f, z).predict(f))
        ours = fit_lsq((f, z), circuit)
        assert ours.rms_rel <= theirs * 1.001
        assert "poor_fit" not in ours.flags and ours.success, ours.message
    wrong = fit_lsq((f, z), "R0-p(R1,CPE1)")
    assert "poor_fit" in wrong.flags and "fit is poor" in wrong.message


@pytest.mark.parametrize("noise_rel", [0.001, 0.03])
def test_the_poor_fit_rule_follows_the_noise(noise_rel):
    """Right circuit: not poor at 0.1 % noise nor at 3 % noise (above the 2 % floor); a missing
    arc is poor at either noise level."""
    truth = {"R0": 20.0, "R1": 200.0, "CPE1_0": 1e-7, "CPE1_1": 0.9,
             "R2": 300.0, "CPE2_0": 1e-4, "CPE2_1": 0.85}  # fmt: skip
    f = np.geomspace(1e6, 0.1, 50)
    spec = inference.simulate_spectrum(
        "R0-p(R1,CPE1)-p(R2,CPE2)", truth, f, noise_rel=noise_rel, seed=3
    )
    right = fit_lsq(spec, "R0-p(R1,CPE1)-p(R2,CPE2)")
    assert right.success and "poor_fit" not in right.flags, right.message
    assert right.quality.noise_rel == pytest.approx(noise_rel, rel=0.35)
    wrong = fit_lsq(spec, "R0-p(R1,CPE1)")
    assert "poor_fit" in wrong.flags, wrong.message
    assert wrong.quality.limit_rel == max(1.5 * wrong.quality.noise_rel, POOR_FLOOR_REL)
    assert fit_quality(wrong.rms_rel, wrong.kk) == wrong.quality
