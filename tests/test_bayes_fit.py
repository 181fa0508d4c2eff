"""Bayesian EIS fits against simulated spectra with known truth (one compile per session)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import binom

from inference import eis_model
from inference.circuits import parse_circuit, simulate_spectrum
from inference.errors import CircuitError, InputError, ModelError
from inference.fit import FitCancelled, fit_spectra, fit_spectrum
from inference.priors import default_priors, priors_from_json
from inference.spectrum import make_spectrum

pytestmark = pytest.mark.slow

CIRCUIT = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
FREQ_HZ = np.logspace(np.log10(7e6), 0, 69)
N_SPECTRA = 40
#: Small runs, without the reruns that would lengthen them to meet ESS ≥ 400.
SETTINGS = {"draws": 300, "tune": 300, "chains": 2, "retry": False}
THICKNESS_CM, AREA_CM2 = 0.006, 1.267


def truth(rng) -> dict:
    """A 5-layer-cell-like truth: three R‖CPE arcs in distinct decades (physics.md §2.5)."""
    out = {"R0": 10 ** rng.uniform(0.7, 1.5)}
    arcs = [((1.5, 2.2), (4.5, 5.5), (0.88, 0.98)),
            ((1.7, 2.5), (2.5, 3.5), (0.78, 0.92)),
            ((2.3, 3.3), (0.7, 1.5), (0.70, 0.90))]  # fmt: skip
    for k, (log_r, log_f, alpha_range) in enumerate(arcs, start=1):
        r, f_apex, alpha = (
            10 ** rng.uniform(*log_r),
            10 ** rng.uniform(*log_f),
            rng.uniform(*alpha_range),
        )
        out |= {
            f"R{k}": r,
            f"CPE{k}_0": 1 / (r * (2 * np.pi * f_apex) ** alpha),
            f"CPE{k}_1": alpha,
        }
    return out


@pytest.fixture(scope="session")
def cases():
    rng = np.random.default_rng(7)
    out = []
    for i in range(N_SPECTRA):
        t = truth(rng)
        ds = simulate_spectrum(
            CIRCUIT,
            t,
            FREQ_HZ,
            noise_rel=0.01,
            seed=100 + i,
            thickness_cm=THICKNESS_CM,
            area_cm2=AREA_CM2,
        )
        out.append((t, ds))
    return out


@pytest.fixture(scope="session")
def fits(cases):
    events = []
    result = fit_spectra(
        [ds for _, ds in cases], CIRCUIT, seed=11, progress=events.append, **SETTINGS
    )
    return result, events


def covered(fit, name, value, prob=0.9) -> bool:
    lo, hi = np.quantile(fit.posterior[name].values, [(1 - prob) / 2, (1 + prob) / 2])
    return bool(lo <= value <= hi)


def test_90pct_intervals_cover_the_truth_at_the_nominal_rate(cases, fits):
    result, _ = fits
    # With true coverage 0.9, fewer than 32 of 40 happens with probability 1.5 % (Binomial); with
    # 0.75 (intervals ~30 % too narrow) 70 % of the time. Ten spectra could not tell them apart.
    minimum = 32
    assert binom.cdf(minimum - 1, N_SPECTRA, 0.9) < 0.02
    assert binom.cdf(minimum - 1, N_SPECTRA, 0.75) > 0.5
    for name in ("R1", "R2", "R3"):
        hits = sum(covered(f, name, t[name]) for (t, _), f in zip(cases, result, strict=True))
        assert hits >= minimum, f"{name}: {hits}/{N_SPECTRA} intervals contain the truth"
    sigma_hits = 0
    for (t, _), f in zip(cases, result, strict=True):
        sigma = f.conductivity().values
        lo, hi = np.quantile(sigma, [0.05, 0.95])
        sigma_hits += lo <= THICKNESS_CM / (t["R3"] * AREA_CM2) <= hi
    assert sigma_hits >= minimum


def test_diagnostics_and_progress_are_reported(fits):
    result, events = fits
    for f in result:
        assert {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "bfmi", "at_bound"} <= (
            set(f.diagnostics)
        )
        assert f.posterior.sizes == {"chain": 2, "draw": 300}
        assert f.log_likelihood["z"].shape == (2, 300, FREQ_HZ.size)
        # Short runs without reruns: a spectrum whose chains found different solutions is
        # honestly excluded (r̂ > 1.1), never ok.
        assert f.verdict in ("ok", "warning", "excluded") and (f.verdict == "ok") == (not f.reasons)
        if f.verdict == "excluded":
            assert f.diagnostics["max_rhat"] > 1.1 and "r̂" in f.reasons[0]
        assert f.posterior_predictive["z_real"].sizes["frequency"] == FREQ_HZ.size
    assert sum(f.verdict == "excluded" for f in result) <= 2
    assert np.median([f.diagnostics["max_rhat"] for f in result]) < 1.05
    phases = {e["phase"] for e in events}
    assert {"sampling", "writing"} <= phases <= {"compiling", "tuning", "sampling", "writing"}
    assert {e["spectrum"] for e in events} == set(range(N_SPECTRA))
    assert events[-1]["done"] == events[-1]["total"] == SETTINGS["draws"]


def test_a_batch_compiles_once(fits):
    from inference import samplers

    keys = [k for k in samplers._CACHE if k[0][:2] == ("eis", CIRCUIT)]
    assert len(keys) == 1  # forty spectra, one compiled sampler
    assert sum(e["phase"] == "compiling" for e in fits[1]) <= 1


def test_natural_parameters_follow_the_internal_ones(fits):
    f = fits[0][0]
    np.testing.assert_allclose(f.posterior["R1"], np.exp(f.posterior["log_R1"]))
    alpha = f.posterior["CPE2_1"]
    tau = f.posterior["tau_CPE2"]
    np.testing.assert_allclose(f.posterior["CPE2_0"], tau**alpha / f.posterior["R2"], rtol=1e-9)
    assert float(alpha.min()) > 0.2 and float(alpha.max()) < 1.0


def test_netcdf_round_trip_opens_with_arviz(fits, tmp_path):
    import arviz as az

    f = fits[0][0]
    path = f.to_netcdf(tmp_path / "fit.nc")
    assert not list(tmp_path.glob("*.tmp"))
    tree = az.from_netcdf(path)
    # everything ArviZ needs to recompute what the fit reports: every draw, energy, log-lik
    assert tree.posterior.sizes["draw"] == 300
    assert {"diverging", "energy"} <= set(tree.sample_stats.data_vars)
    ess = az.ess(tree, var_names=["R1"])["R1"]
    assert float(np.asarray(ess)) == pytest.approx(float(f.summary().loc["R1", "ess_bulk"]))
    loo = az.loo(tree)
    assert np.isfinite(float(loo["elpd"])) and loo["n_data_points"] == FREQ_HZ.size
    small = f.to_netcdf(tmp_path / "small.nc", keep_draws=100)
    assert az.from_netcdf(small).posterior.sizes["draw"] == 50
    r1 = tree.posterior["R1"].values
    np.testing.assert_allclose(r1, np.exp(tree.posterior["log_R1"].values))
    assert tree.posterior["R1"].attrs["units"] == "Ohm"
    assert tree.attrs["circuit"] == CIRCUIT and tree.attrs["method"] == "nuts"
    assert set(priors_from_json(tree.attrs["priors"])) >= {"log_R1", "log_tau_CPE3"}
    assert xr.open_datatree(path, engine="h5netcdf")["observed_data"].sizes["frequency"] == 69


def test_summary_and_plot(fits, tmp_path):
    f = fits[0][0]
    table = f.summary()
    assert list(table.index) == [*parse_circuit(CIRCUIT).param_names, "sigma_rel"]
    assert (table["q5"] <= table["median"]).all() and (table["median"] <= table["q95"]).all()
    fig = f.plot(tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 10_000
    assert len(fig.axes) >= 5


def test_cancellation_raises_and_returns_nothing(cases):
    calls = []

    def stop_after_first_chunk():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(FitCancelled):
        fit_spectrum(cases[0][1], CIRCUIT, seed=1, should_stop=stop_after_first_chunk, **SETTINGS)
    assert len(calls) == 3


def test_lsq_method_gives_the_same_kind_of_result(cases):
    f = fit_spectrum(cases[0][1], CIRCUIT, method="lsq", draws=200, chains=2)
    assert f.attrs["method"] == "lsq" and f.posterior.sizes == {"chain": 2, "draw": 200}
    assert any("Laplace" in w for w in f.warnings)
    lo, hi = np.quantile(f.posterior["R2"].values, [0.001, 0.999])
    assert lo < f.lsq.params["R2"] < hi


def test_priors_are_data_scaled_per_arc_and_overridable(cases):
    c = parse_circuit(CIRCUIT)
    ds = cases[0][1]
    priors = default_priors(c, FREQ_HZ, ds["z_real"].values, ds["z_imag"].values)
    taus = [priors[f"log_tau_CPE{k}"].mu for k in (1, 2, 3)]
    assert taus == sorted(taus)  # arc 1 at the highest frequency: smallest τ
    window = (-np.log(2 * np.pi * FREQ_HZ.max()), -np.log(2 * np.pi * FREQ_HZ.min()))
    assert window[0] < taus[0] and taus[-1] < window[1]
    with pytest.raises(InputError, match="unknown variable"):
        fit_spectrum(ds, CIRCUIT, priors={"log_R7": {"mu": 1.0}}, **SETTINGS)


def test_closed_form_arcs_match_the_circuit(cases):
    c = parse_circuit("R0-p(R1,CPE1)-p(R2,C2)-W1")
    params = {
        "R0": 10.0,
        "R1": 100.0,
        "CPE1_0": 2e-6,
        "CPE1_1": 0.85,
        "R2": 50.0,
        "C2": 1e-5,
        "W1": 30.0,
    }
    internal = eis_model.internal_from_natural(c, params)
    natural = eis_model.natural_params(c, internal)
    re, im = eis_model.evaluate(c, natural, internal, FREQ_HZ)
    expected = c.impedance(params, FREQ_HZ)
    np.testing.assert_allclose(re + 1j * im, expected, rtol=1e-10)


def test_garbage_in_gives_clear_errors():
    with pytest.raises(CircuitError):
        fit_spectrum(None, "R0-p(R1,CPE1", **SETTINGS)
    f = np.logspace(5, 0, 3)
    ds3 = xr.Dataset(
        {"z_real": ("frequency", [1.0, 2, 3]), "z_imag": ("frequency", [-1.0, -2, -1])},
        coords={"frequency": f},
    )
    with pytest.raises(InputError, match="at least 5"):
        fit_spectrum(ds3, "R0-p(R1,CPE1)", **SETTINGS)
    nan = ds3.reindex(frequency=np.logspace(5, 0, 8))
    with pytest.raises(InputError, match="not a finite number"):
        fit_spectrum(nan, "R0-p(R1,CPE1)", **SETTINGS)
    inductive = make_spectrum(FREQ_HZ, np.full(69, 5.0), 2 * np.pi * FREQ_HZ * 1e-7)
    with pytest.raises(ModelError, match="capacitive"):
        fit_spectrum(inductive, "R0-p(R1,CPE1)", **SETTINGS)


def test_wrong_circuit_is_flagged_not_hidden(cases):
    f = fit_spectrum(cases[0][1], "R0-p(R1,CPE1)", method="lsq", draws=100)
    assert any("poor" in w for w in f.warnings)


@pytest.mark.slow
def test_pymc_fallback_sampler_recovers_the_truth():
    """sampler="pymc" needs nothing beyond PyMC and gives the same kind of result."""
    circuit = parse_circuit("R0-p(R1,CPE1)")
    truth = {"R0": 10.0, "R1": 100.0, "CPE1_0": 1e-6, "CPE1_1": 0.9}
    spectrum = simulate_spectrum(circuit, truth, np.geomspace(1e6, 1, 40), seed=4)
    fit = fit_spectrum(
        spectrum, circuit, sampler="pymc", draws=300, tune=300, chains=2, seed=0, retry=False
    )
    assert fit.attrs["sampler"] == "pymc"
    assert fit.posterior.sizes == {"chain": 2, "draw": 300}
    for name in ("R0", "R1"):
        lo, hi = np.quantile(fit.posterior[name].values, [0.05, 0.95])
        assert lo <= truth[name] <= hi, name


def test_padding_leaves_the_likelihood_unchanged(cases, fits):
    """Padded points are masked out of the model's log-density and the pointwise likelihood."""
    import pymc as pm
    from scipy.stats import norm

    c = parse_circuit(CIRCUIT)
    ds, fit = cases[0][1], fits[0][0]
    priors = fit.priors
    model = eis_model.build_model(c, priors)
    logp = model.compile_logp(mode="FAST_COMPILE")  # no C compilation: fast enough here
    point = {**model.initial_point()}
    draw = fit.posterior.isel(chain=0, draw=0)
    for value in model.value_vars:
        name = value.name.removesuffix("_log__")
        point[value.name] = float(
            np.log(draw[name]) if value.name.endswith("_log__") else draw[name]
        )
    values = []
    for length in (FREQ_HZ.size, eis_model.padded_length(FREQ_HZ.size), 200):
        with model:
            pm.set_data(eis_model.model_data(ds, priors, length=length))
        values.append(float(logp(point)))
    assert eis_model.padded_length(FREQ_HZ.size) > FREQ_HZ.size
    np.testing.assert_allclose(values, values[0], rtol=1e-12)

    pointwise = eis_model.point_log_likelihood(c, fit.posterior, ds)
    assert pointwise.shape == (2, SETTINGS["draws"], FREQ_HZ.size)
    re, im = c.evaluate({n: float(draw[n]) for n in c.param_names}, FREQ_HZ)
    z_re, z_im = ds["z_real"].values, ds["z_imag"].values
    sd = float(draw["sigma_rel"]) * np.hypot(z_re, z_im)
    expected = norm.logpdf(z_re, re, sd) + norm.logpdf(z_im, im, sd)
    np.testing.assert_allclose(pointwise[0, 0], expected, rtol=1e-10)


def test_a_new_length_in_the_same_bucket_compiles_nothing(cases, fits):
    t = cases[1][0]
    freq = np.logspace(np.log10(7e6), 0, 80)
    assert eis_model.padded_length(80) == eis_model.padded_length(FREQ_HZ.size)
    ds = simulate_spectrum(CIRCUIT, t, freq, noise_rel=0.01, seed=5)
    events = []
    fit = fit_spectrum(ds, CIRCUIT, seed=3, progress=events.append, **SETTINGS)
    assert "compiling" not in {e["phase"] for e in events}
    assert fit.observed.sizes["frequency"] == 80
    for name in ("R1", "R2", "R3"):
        assert covered(fit, name, t[name], prob=0.99), name


def test_a_new_process_reuses_the_stored_sampler(fits):
    """The traced sampler is on disk: a fresh interpreter fits without PyMC, same draws."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    code = (
        "import sys, json\n"
        "from tests.test_bayes_fit import *\n"
        "ds = simulate_spectrum(CIRCUIT, truth(np.random.default_rng(7)), FREQ_HZ,"
        " noise_rel=0.01, seed=100, thickness_cm=THICKNESS_CM, area_cm2=AREA_CM2)\n"
        "events = []\n"
        "f = fit_spectrum(ds, CIRCUIT, seed=11, progress=events.append, **SETTINGS)\n"
        "print(json.dumps({'r1': f.posterior['R1'].values.tolist(), 'pymc': 'pymc' in sys.modules,"
        " 'phases': sorted({e['phase'] for e in events})}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert not out["pymc"] and "compiling" not in out["phases"]
    np.testing.assert_allclose(out["r1"], fits[0][0].posterior["R1"].values, rtol=1e-12)
