"""Circuit parsing, element formulas (vs independent complex references) and PyTensor gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from inference.circuits import ELEMENTS, parse_circuit, simulate_spectrum
from inference.errors import CircuitError, InputError

FREQ = np.logspace(7, -2, 46)


def _w(f):
    return 2 * np.pi * np.asarray(f)


# Complex references, written from the textbook formulas (not from inference.circuits).
REFERENCE = {
    "R": (lambda p, w: p[0] + 0 * w, [47.0]),
    "C": (lambda p, w: 1 / (1j * w * p[0]), [3e-7]),
    "L": (lambda p, w: 1j * w * p[0], [2e-6]),
    "CPE": (lambda p, w: 1 / (p[0] * (1j * w) ** p[1]), [2e-6, 0.83]),
    "W": (lambda p, w: p[0] * (1 - 1j) / np.sqrt(w), [35.0]),
    "Wo": (
        lambda p, w: p[0] / (np.sqrt(1j * w * p[1]) * np.tanh(np.sqrt(1j * w * p[1]))),
        [120.0, 0.3],
    ),
    "Ws": (
        lambda p, w: p[0] * np.tanh(np.sqrt(1j * w * p[1])) / np.sqrt(1j * w * p[1]),
        [80.0, 0.02],
    ),
}


def tlm_reference(p, w):
    """physics.md §2.5 with lengths: χ = R/L, ζ = L·Z_interface, contacted rail squared."""
    r_contacted, r_other, q, alpha = p
    length = 60e-4
    chi1, chi2 = r_contacted / length, r_other / length
    zeta = length / (q * (1j * w) ** alpha)
    lam = np.sqrt(zeta / (chi1 + chi2))
    return chi1 * chi2 * length / (chi1 + chi2) + 2 * chi1**2 * lam * np.tanh(
        length / (2 * lam)
    ) / (chi1 + chi2)


REFERENCE["TLM"] = (tlm_reference, [400.0, 30.0, 2e-5, 0.9])
# The short-rail line is the full one as its electronic rail vanishes (checked below too).
REFERENCE["TLMs"] = (lambda p, w: tlm_reference([p[0], 1e-13 * p[0], p[1], p[2]], w),
                     [400.0, 2e-5, 0.9])  # fmt: skip


def test_short_rail_line_is_a_cpe_short_warburg_and_the_full_line_minus_a_resistor():
    """TLMs with α = 1 is Ws with Z0 = R, τ = R·Q/4; its DC limit is R; and the full line is
    exactly a resistor R₁‖R₂ plus a TLMs (R₁²/(R₁+R₂), Q·(R₁+R₂)²/R₁², α)."""
    r, q = 250.0, 3e-4
    w = _w(FREQ)
    z = parse_circuit("TLMs1").impedance([r, q, 1.0], FREQ)
    np.testing.assert_allclose(z, REFERENCE["Ws"][0]([r, r * q / 4], w), rtol=1e-10)
    low = parse_circuit("TLMs1").impedance([r, q, 0.8], [1e-6])
    assert low[0] == pytest.approx(r, rel=1e-4)
    r2 = r / 7
    full = parse_circuit("TLM1").impedance([r, r2, q, 0.8], FREQ)
    total = r + r2
    short = parse_circuit("R0-TLMs1").impedance(
        [r * r2 / total, r**2 / total, q * total**2 / r**2, 0.8], FREQ
    )
    np.testing.assert_allclose(short, full, rtol=1e-10)


def test_every_registered_element_has_a_reference():
    assert set(ELEMENTS) == set(REFERENCE)


@pytest.mark.parametrize("symbol", sorted(REFERENCE))
def test_element_matches_complex_reference(symbol):
    formula, params = REFERENCE[symbol]
    circuit = parse_circuit(f"{symbol}1")
    z = circuit.impedance(params, FREQ)
    np.testing.assert_allclose(z, formula(params, _w(FREQ)), rtol=1e-10)


def test_nested_circuit_matches_complex_reference():
    c = parse_circuit("L0-R0-p(R1,CPE1)-p(C1,p(R2-W1,Ws1))-Wo1-TLM1")
    values = {
        "L0": 1e-7, "R0": 12.0, "R1": 90.0, "CPE1_0": 3e-8, "CPE1_1": 0.92, "C1": 1e-6,
        "R2": 40.0, "W1": 20.0, "Ws1_0": 60.0, "Ws1_1": 1e-3, "Wo1_0": 200.0, "Wo1_1": 2.0,
        "TLM1_0": 300.0, "TLM1_1": 10.0, "TLM1_2": 1e-4, "TLM1_3": 0.85,
    }  # fmt: skip
    w = _w(FREQ)
    ref = {s: REFERENCE[s][0] for s in REFERENCE}
    inner = 1 / (1 / (values["R2"] + ref["W"]([values["W1"]], w))
                 + 1 / ref["Ws"]([values["Ws1_0"], values["Ws1_1"]], w))  # fmt: skip
    expected = (
        ref["L"]([values["L0"]], w)
        + values["R0"]
        + 1 / (1 / values["R1"] + 1 / ref["CPE"]([values["CPE1_0"], values["CPE1_1"]], w))
        + 1 / (1 / ref["C"]([values["C1"]], w) + 1 / inner)
        + ref["Wo"]([values["Wo1_0"], values["Wo1_1"]], w)
        + ref["TLM"]([values[f"TLM1_{i}"] for i in range(4)], w)
    )
    np.testing.assert_allclose(c.impedance(values, FREQ), expected, rtol=1e-10)
    # a sequence in param_names order gives the same as the dict
    np.testing.assert_allclose(
        c.impedance([values[n] for n in c.param_names], FREQ), expected, rtol=1e-10
    )


def test_tlm_matches_a_discretised_ladder_network():
    """Solve the two-rail ladder (N segments, ionic rail contacted at both ends) numerically."""
    r_ion, r_el, q, alpha = 500.0, 40.0, 3e-5, 0.88
    n = 400
    freqs = np.array([1e-1, 3.0, 50.0, 1e3, 1e4])
    z_line = []
    for w in _w(freqs):
        # Nodes: ionic a_0..a_n, electronic b_0..b_n; unit current in at a_0, out at a_n (ground).
        y_int = q * (1j * w) ** alpha / n  # interface admittance per segment (trapezoid nodes)
        g_ion, g_el = n / r_ion, n / r_el
        size = 2 * (n + 1)
        a = np.zeros((size, size), complex)

        def link(i, j, g, a=a):
            a[i, i] += g
            a[j, j] += g
            a[i, j] -= g
            a[j, i] -= g

        for k in range(n):
            link(k, k + 1, g_ion)
            link(n + 1 + k, n + 2 + k, g_el)
        for k in range(n + 1):
            link(k, n + 1 + k, y_int / 2 if k in (0, n) else y_int)
        keep = [i for i in range(size) if i != n]  # ground a_n
        rhs = np.zeros(size, complex)
        rhs[0] = 1.0
        v = np.linalg.solve(a[np.ix_(keep, keep)], rhs[keep])
        z_line.append(v[0])
    z = parse_circuit("TLM1").impedance([r_ion, r_el, q, alpha], freqs)
    np.testing.assert_allclose(z, np.array(z_line), rtol=5e-3)


def test_tlm_limits():
    r_ion, r_el, q, alpha = 500.0, 40.0, 3e-5, 0.9
    c = parse_circuit("TLM1")
    low, high = c.impedance([r_ion, r_el, q, alpha], [1e-9, 1e12])
    assert low == pytest.approx(r_ion, rel=1e-4)  # DC: only the contacted (ionic) rail
    assert high.real == pytest.approx(r_ion * r_el / (r_ion + r_el), rel=1e-3)  # rails in parallel
    # electronic rail → ∞: a plain resistor R_ion at every frequency
    z_inf = c.impedance([r_ion, 1e12, q, alpha], FREQ)
    np.testing.assert_allclose(z_inf, r_ion, rtol=1e-6, atol=1e-6)


def test_no_overflow_warnings_at_extreme_frequencies():
    c = parse_circuit("L0-R0-p(R1,CPE1)-p(R2,C1)-W1-Wo1-Ws1-TLM1")
    params = [1e-6, 10, 100, 1e-6, 0.9, 50, 1e-9, 10, 100, 1e3, 100, 1e3, 500, 5, 1e-2, 0.9]
    f = np.logspace(-6, 12, 400)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = c.impedance(params, f)
    assert np.all(np.isfinite(z))
    # Wo and Ws at ωτ ~ 1e15, where a naive cosh/tanh of the complex argument overflows
    z_wo = parse_circuit("Wo1").impedance([100.0, 1e3], [1e12])
    assert abs(z_wo[0]) == pytest.approx(100.0 / np.sqrt(2 * np.pi * 1e15), rel=1e-9)


@pytest.mark.parametrize(
    "text, position, fragment",
    [
        ("R0-p(R1,CPE1", 12, "never closed"),
        ("R0-p(R1,CPE1))", 13, "without a matching"),
        ("R0-X1", 3, "unknown element 'X'"),
        ("R0-p()", 5, "empty 'p()'"),
        ("R0-p(R1,CPE1)-", 14, "ends here"),
        ("R0-p(R1,R0)", 8, "duplicate element name 'R0'"),
        ("R0--R1", 3, "expected an element"),
        ("R0-R", 4, "needs a number"),
        ("R0+R1", 2, "unexpected '+'"),
        ("", 0, "empty"),
    ],
)
def test_bad_circuit_points_at_offending_character(text, position, fragment):
    with pytest.raises(CircuitError) as info:
        parse_circuit(text)
    err = info.value
    assert err.position == position
    assert fragment in err.problem
    caret_line = str(err).splitlines()[-1]
    assert caret_line.index("^") - 2 == position  # message lines are indented by two spaces


def test_parse_names_units_bounds_and_round_trip():
    c = parse_circuit(" R0 - p(R1, CPE1) - p(R2,CPE2) ")
    assert c.string == "R0-p(R1,CPE1)-p(R2,CPE2)"
    assert c.param_names == ["R0", "R1", "CPE1_0", "CPE1_1", "R2", "CPE2_0", "CPE2_1"]
    assert c.param_units == ["Ohm", "Ohm", "Ohm^-1 s^a", "", "Ohm", "Ohm^-1 s^a", ""]
    assert c.param_bounds[3] == (0.0, 1.0) and c.param_bounds[0] == (0.0, np.inf)
    again = parse_circuit(c.string)
    assert again == c and again.param_names == c.param_names
    tlm = parse_circuit("R0-p(R1,C1)-TLM2")
    assert tlm.param_names == ["R0", "R1", "C1", "TLM2_0", "TLM2_1", "TLM2_2", "TLM2_3"]


def test_arcs_name_r_q_alpha_in_string_order():
    c = parse_circuit("R0-p(CPE1,R1)-p(R2,C2)-p(R3-W3,CPE3)-TLM4-TLMs5")
    arcs = [(a.r, a.q, a.alpha, a.kind) for a in c.arcs]
    assert arcs == [
        ("R1", "CPE1_0", "CPE1_1", "CPE"),
        ("R2", "C2", None, "C"),
        ("TLM4_0", "TLM4_2", "TLM4_3", "TLM"),
        ("TLMs5_0", "TLMs5_1", "TLMs5_2", "TLMs"),
    ]  # p(R3-W3,CPE3) is not a plain R‖CPE arc
    # τ = (RQ)^(1/α): the apex of −Im of R‖CPE sits at ω = 1/τ
    params = {"R1": 100.0, "CPE1_0": 1e-6, "CPE1_1": 0.8}
    tau = c.arcs[0].tau_s(params)
    z = parse_circuit("p(R1,CPE1)").impedance(params, np.logspace(-2, 8, 2001))
    f_apex = np.logspace(-2, 8, 2001)[np.argmax(-z.imag)]
    assert f_apex == pytest.approx(1 / (2 * np.pi * tau), rel=0.02)


def test_wrong_number_of_parameters_is_an_input_error():
    c = parse_circuit("R0-p(R1,CPE1)")
    with pytest.raises(InputError, match="4 parameters"):
        c.impedance([1.0, 2.0], FREQ)
    with pytest.raises(InputError, match="CPE1_1"):
        c.impedance({"R0": 1, "R1": 2, "CPE1_0": 1e-6}, FREQ)


def test_simulate_spectrum_noise_and_truth():
    c = parse_circuit("R0-p(R1,CPE1)")
    truth = {"R0": 10.0, "R1": 100.0, "CPE1_0": 1e-6, "CPE1_1": 0.9}
    f = np.logspace(6, 0, 400)
    ds = simulate_spectrum(c, truth, f, noise_rel=0.01, seed=3, temperature_K=303.15)
    z = c.impedance(truth, f)
    rel = np.r_[(ds.z_real.values - z.real), (ds.z_imag.values - z.imag)] / np.r_[abs(z), abs(z)]
    assert np.std(rel) == pytest.approx(0.01, rel=0.1)
    assert ds.attrs["true_R1"] == 100.0 and ds.attrs["temperature_K"] == 303.15
    assert ds.attrs["circuit"] == c.string


def test_impedance_py_agrees_on_names_and_values():
    circuits = pytest.importorskip("impedance.models.circuits")
    text = "L0-R0-p(R1,CPE1)-p(R2,C2)-W1-Wo1-Ws1"
    values = [1e-7, 10, 100, 1e-6, 0.85, 50, 1e-8, 20, 100, 0.5, 80, 0.01]
    theirs = circuits.CustomCircuit(text, initial_guess=values)
    names, units = theirs.get_param_names()
    ours = parse_circuit(text)
    assert ours.param_names == names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "simulating from initial parameters"
        z_theirs = theirs.predict(FREQ)
    np.testing.assert_allclose(ours.impedance(values, FREQ), z_theirs, rtol=1e-9)


@pytest.fixture(scope="module")
def pytensor_setup():
    pt = pytest.importorskip("pytensor.tensor")
    c = parse_circuit("R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)-TLM1-TLMs1-Wo1")
    values = np.array(
        [20, 50, 6e-8, 0.95, 100, 6e-6, 0.85, 400, 9e-5, 0.8, 300, 10, 1e-3, 0.9]
        + [200, 5e-4, 0.85, 150, 0.8]
    )
    return pt, c, values


def test_pytensor_graph_matches_numpy(pytensor_setup):
    import pytensor

    pt, c, values = pytensor_setup
    p = pt.dvector("p")
    re, im = c.evaluate(p, FREQ, xp=pt)
    fn = pytensor.function([p], [re, im], mode="FAST_COMPILE")
    re_n, im_n = fn(values)
    z = c.impedance(values, FREQ)
    np.testing.assert_allclose(re_n, z.real, rtol=1e-10)
    np.testing.assert_allclose(im_n, z.imag, rtol=1e-10)


def test_pytensor_gradient_matches_finite_differences(pytensor_setup):
    from pytensor.gradient import verify_grad

    pt, c, values = pytensor_setup
    f = np.logspace(6.8, 0, 30)
    z = c.impedance(values, f)
    scale = np.r_[np.abs(z), np.abs(z)]
    is_exponent = np.array([hi == 1.0 for _, hi in c.param_bounds])

    def relative_z(u):
        # log for positive parameters, logit for exponents: the coordinates the sampler sees
        natural = pt.switch(is_exponent, pt.sigmoid(u), pt.exp(u))
        re, im = c.evaluate(natural, f, xp=pt)
        return pt.concatenate([re, im]) / scale

    u0 = np.array(
        [np.log(v / (1 - v)) if e else np.log(v) for v, e in zip(values, is_exponent, strict=True)]
    )
    verify_grad(
        relative_z, [u0], rng=np.random.default_rng(0), eps=1e-7, abs_tol=1e-5, rel_tol=1e-4,
        mode="FAST_COMPILE",
    )  # fmt: skip
