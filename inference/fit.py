"""Bayesian fit of impedance spectra to an equivalent circuit: ``fit_spectrum``, ``fit_spectra``.

Each spectrum is first fitted by least squares (:func:`inference.lsq.fit_lsq`); NUTS then starts
from that solution, the same point for every chain and without jitter (DESIGN.md § Inference).
The sampler is compiled once per (circuit, length bucket of the spectrum, chains, draws, tune,
prior structure, likelihood) and kept in :mod:`inference.samplers`' cache and on disk
(:mod:`inference.sampler_store`), so a batch, and any later process, pays the compile once.
Results are :class:`SpectrumFit` objects; ``method="lsq"`` gives the same object from the
least-squares fit with Laplace draws (Gaussian on the fit's log/logit scale), labelled
``method="lsq"`` in its attrs; a parameter at a bound gets one-sided Laplace draws.

A NUTS run that breaks a threshold of :mod:`inference.diagnostics` is run again where that can
help (``retry``, :func:`inference.diagnostics.next_run`); the result's ``verdict`` and ``reasons``
come from :mod:`inference.diagnostics`. Every fit keeps its pointwise log-likelihood, sample
statistics (energy included, for E-BFMI) and all its draws, in memory and in its NetCDF, so
ArviZ recomputes what the fit reports and ``az.loo`` / ``az.compare`` work on it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from inference import diagnostics as dg
from inference import eis_model
from inference.circuits import parse_circuit
from inference.conductivity import composite_resistance_name, conductivity_dataarray
from inference.errors import InputError, ModelError
from inference.priors import (
    ALPHA_SUPPORT,
    alpha_from_logit,
    apply_overrides,
    default_priors,
    priors_to_json,
)
from inference.samplers import FitCancelled, ProgressFn, StopFn, get_sampler, run_with_reruns
from inference.spectrum import as_spectrum
from inference.summary import with_user_umask

__all__ = [
    "FitCancelled",
    "SpectrumFit",
    "fit_spectra",
    "fit_spectrum",
    "model_curves",
    "thin_draws",
]

METHODS = ("nuts", "lsq")
#: Posterior-predictive draws kept for fit bands (thinned evenly over chains and draws).
N_PREDICTIVE = 200


@dataclass
class SpectrumFit:
    """A fitted spectrum.

    Attributes
    ----------
    circuit : normalised circuit string.
    method : ``"nuts"`` or ``"lsq"`` (Laplace draws around the least-squares fit).
    posterior : Dataset over (chain, draw): one variable per circuit parameter in natural
        units under its impedance.py name (``R1`` Ω, ``CPE1_0`` Ω⁻¹ s^α, ``CPE1_1``), the arc
        time constants ``tau_<CPE>`` (s), ``sigma_rel`` and the internal variables
        (``log_R1``, ``log_tau_CPE1``, ``logit_CPE1_1``).
    sample_stats : ``diverging``, ``n_steps``, ``acceptance_rate``, ``step_size``, ``energy``.
    log_likelihood : ``z`` over (chain, draw, frequency): log p(Re Z_i, Im Z_i | θ) of each
        measured point (nats), for ArviZ's ``loo`` / ``compare``.
    posterior_predictive : ``z_real``, ``z_imag`` (Ω) over (chain, draw, frequency), thinned.
    observed : the spectrum.
    lsq : the least-squares fit the sampler started from (:class:`~inference.lsq.LsqResult`).
    kk : Kramers–Kronig check (:class:`~inference.kramers_kronig.KKResult`); flagged, not dropped.
    priors : internal variable → :class:`~inference.priors.Prior`.
    diagnostics : ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``bfmi``,
        ``at_bound`` (phrases, :func:`inference.diagnostics.at_bound`).
    verdict : ``ok``, ``warning`` or ``excluded`` (:func:`inference.diagnostics.record_verdict`);
        ``reasons`` says why.
    warnings : one line per problem (the reasons, plus notes such as the Laplace method's).
    attrs : provenance (input hash, circuit, priors, sampler, seed, versions, timings).
    """

    circuit: str
    method: str
    posterior: xr.Dataset
    sample_stats: xr.Dataset
    posterior_predictive: xr.Dataset
    observed: xr.Dataset
    lsq: object
    kk: object
    priors: dict
    diagnostics: dict
    log_likelihood: xr.Dataset | None = None
    verdict: str = "ok"
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)

    @property
    def param_names(self) -> list[str]:
        return parse_circuit(self.circuit).param_names

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Per parameter: median, equal-tailed ``prob`` interval, mean, sd, r̂, ESS bulk/tail,
        ``bound`` (``lower``/``upper`` when at a support bound, else "").

        Parameters in natural units plus ``sigma_rel``; r̂ and ESS from ArviZ. An interval at a
        bound is one-sided: its end on that side is the support's bound itself (least squares:
        the profile limit of :class:`~inference.lsq.LsqResult` on the other side).
        """
        import arviz as az

        names = [*self.param_names, "sigma_rel"]
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        rows = {}
        post = self.posterior
        stats = (
            az.summary(self.to_datatree(), var_names=names, kind="diagnostics", round_to="none")
            if self.method == "nuts"
            else None
        )
        bounds = _bound_sides(self)
        for n in names:
            x = post[n].values.ravel()
            row = {
                "median": np.median(x),
                f"q{lo * 100:g}": np.quantile(x, lo),
                f"q{hi * 100:g}": np.quantile(x, hi),
                "mean": x.mean(),
                "sd": x.std(ddof=1),
                "unit": post[n].attrs.get("units", ""),
                "bound": bounds.get(n, ""),
            }
            if n in bounds:
                low, high = _support(self, n)
                if self.method == "lsq" and n in self.lsq.intervals:
                    row[f"q{lo * 100:g}"], row[f"q{hi * 100:g}"] = self.lsq.intervals[n]
                if bounds[n] in ("lower", "both"):
                    row[f"q{lo * 100:g}"] = low
                if bounds[n] in ("upper", "both"):
                    row[f"q{hi * 100:g}"] = high
            if stats is not None:
                row.update({k: float(stats.loc[n, k]) for k in ("r_hat", "ess_bulk", "ess_tail")})
            rows[n] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_datatree(self, keep_draws: int | None = None) -> xr.DataTree:
        """ArviZ-style DataTree: posterior, sample_stats, log_likelihood, posterior_predictive,
        observed_data, kramers_kronig.

        ``keep_draws``: keep about this many posterior draws in all (evenly thinned per chain,
        :func:`thin_draws`) for a small file; default all of them.
        """
        obs = self.observed[["z_real", "z_imag"]].reset_coords(drop=True)
        groups = {
            "posterior": thin_draws(self.posterior, keep_draws),
            "sample_stats": thin_draws(self.sample_stats, keep_draws),
            "posterior_predictive": self.posterior_predictive,
            "observed_data": obs,
        }
        if self.log_likelihood is not None:
            groups["log_likelihood"] = thin_draws(self.log_likelihood, keep_draws)
        if self.kk is not None:
            groups["kramers_kronig"] = self.kk.to_dataset()
        tree = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
        tree.attrs = _netcdf_safe(self.attrs)
        return tree

    def to_netcdf(self, path, keep_draws: int | None = None) -> Path:
        """Write :meth:`to_datatree` to ``path`` atomically (temp file + rename); returns path."""
        return _write_atomic(self.to_datatree(keep_draws), path)

    def predict(self, frequency_Hz, *, draws: bool = False) -> np.ndarray:
        """The fitted model's complex impedance (Ω) at ``frequency_Hz`` (Hz).

        Returns the pointwise posterior median of Re Z and Im Z (the "median fit" of the
        plots), like impedance.py's ``circuit.predict(f)``; ``draws=True`` returns the curves of
        up to 200 evenly thinned posterior draws instead, shape (draws, len(frequency_Hz)).
        """
        curves = model_curves(self.circuit, self.posterior, frequency_Hz)
        if draws:
            return curves
        return np.median(curves.real, axis=0) + 1j * np.median(curves.imag, axis=0)

    def plot(self, path=None, n_pairs: int = 2):
        """Nyquist, Bode |Z| and phase with data, median and 90 % band; KK residuals; pairs.

        Returns the matplotlib figure; saves it when ``path`` is given.
        """
        from inference.plots import plot_spectrum_fit

        return plot_spectrum_fit(self, path=path, n_pairs=n_pairs)

    def conductivity(
        self,
        thickness_cm: float | None = None,
        area_cm2: float | None = None,
        *,
        thickness_sd_cm: float | None = None,
        area_sd_cm2: float | None = None,
        cell_type: str = "ion",
        resistance: str | None = None,
        seed: int = 0,
    ) -> xr.DataArray:
        """σ = L/(R·A) draws (S/cm) over (chain, draw) from the composite resistance.

        Geometry defaults to the spectrum's attrs ``thickness_cm``, ``area_cm2``,
        ``thickness_sd_cm``, ``area_sd_cm2``. ``resistance`` overrides which parameter is used
        (default: the last arc's R, see :mod:`inference.conductivity`).
        """
        name = composite_resistance_name(parse_circuit(self.circuit), cell_type, resistance)
        return conductivity_dataarray(
            self.posterior[name],
            self.observed.attrs,
            thickness_cm=thickness_cm,
            area_cm2=area_cm2,
            thickness_sd_cm=thickness_sd_cm,
            area_sd_cm2=area_sd_cm2,
            seed=seed,
        )


def thin_draws(ds: xr.Dataset | None, keep: int | None) -> xr.Dataset | None:
    """``ds`` with about ``keep`` draws in all, evenly spaced per chain (all when ``keep`` is
    None or not smaller)."""
    if ds is None or keep is None or "draw" not in ds.dims:
        return ds
    chains = ds.sizes.get("chain", 1)
    per_chain = max(1, -(-int(keep) // chains))
    if per_chain >= ds.sizes["draw"]:
        return ds
    idx = np.unique(np.linspace(0, ds.sizes["draw"] - 1, per_chain).astype(int))
    return ds.isel(draw=idx)


def model_curves(circuit, posterior: xr.Dataset, frequency_Hz, max_draws: int = N_PREDICTIVE):
    """Complex model impedance (Ω) of up to ``max_draws`` evenly thinned posterior draws.

    ``posterior``: natural-unit circuit parameters over (chain, draw); returns an array of
    shape (draws, len(frequency_Hz)).
    """
    c = parse_circuit(circuit)
    f = np.atleast_1d(np.asarray(frequency_Hz, dtype=float))
    flat = posterior.stack(sample=("chain", "draw"))
    n = flat.sizes["sample"]
    idx = np.unique(np.linspace(0, n - 1, min(n, max_draws)).astype(int))
    params = {name: flat[name].values[idx][:, None] for name in c.param_names}
    with np.errstate(all="ignore"):
        re, im = c.evaluate(params, f)
    return np.asarray(re) + 1j * np.asarray(im)


def fit_spectrum(
    spectrum,
    circuit,
    method: str = "nuts",
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    sampler: str = "blackjax",
    priors: dict | None = None,
    likelihood: str = "normal",
    constants: dict[str, float] | None = None,
    initial_guess=None,
    lsq=None,
    retry: bool = True,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    f_min_Hz: float | None = None,
    f_max_Hz: float | None = None,
    drop_inductive: bool = False,
) -> SpectrumFit:
    """Fit one spectrum.

    Parameters
    ----------
    spectrum : spectrum Dataset (:func:`inference.spectrum.make_spectrum`) or an
        impedance.py-style ``(frequency_Hz, Z)`` pair of arrays (Z complex, Ω).
    circuit : impedance.py circuit string or parsed circuit.
    method : ``"nuts"`` (default) or ``"lsq"`` (least squares with Laplace draws).
    draws, tune, chains : NUTS settings per chain.
    seed : random seed (the same seed gives the same draws).
    sampler : ``"blackjax"`` (default), ``"pymc"`` or ``"nutpie"``.
    priors : overrides of the default priors, ``{"log_R1": {"mu": 4.6, "sigma": 1.0}}``;
        keys are the internal variables listed in :mod:`inference.priors`.
    likelihood : ``"normal"`` or ``"studentt"`` (ν = 4, for outliers).
    constants : parameters held fixed, natural units, e.g. ``{"R0": 10.0}`` (impedance.py's
        ``constants=``); they appear in the posterior as constant draws.
    initial_guess : starting values of the least-squares fit that NUTS starts from: ``None``
        (guessed from the data), a dict by parameter name (some or all), or a sequence in
        circuit order without the constants, as impedance.py takes it.
    lsq : a least-squares fit to start from (computed when omitted).
    retry : run NUTS again where a threshold was broken (divergences: smaller steps, target
        acceptance 0.99; ESS short or r̂ high: more draws, at most 4 × ``draws``), up to 3
        times (:func:`inference.diagnostics.next_run`); the last run is
        the result and every run is listed in ``attrs["runs"]``.
    progress : called with ``{"phase", "done", "total", "divergences"}`` events.
    should_stop : polled between sampling chunks; returning True raises :class:`FitCancelled`.
    f_min_Hz, f_max_Hz, drop_inductive : fit only the points in this window
        (:func:`inference.window.trim`); the fit's ``observed`` is the trimmed spectrum, its
        attrs record the window and ``n_points_dropped``, and the Kramers–Kronig check runs
        on the points fitted. A spectrum trimmed before (``trim`` or a manifest window) keeps
        its window.

    Raises
    ------
    InputError
        Bad circuit string (``CircuitError``), bad spectrum (NaN, < 5 points), bad options, a
        window that leaves fewer than 5 points.
    ModelError
        The spectrum cannot be fitted by this circuit at all (e.g. no capacitive part).
    FitCancelled
        ``should_stop`` returned True; nothing is returned.
    """
    return fit_spectra(
        [spectrum],
        circuit,
        method,
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,
        priors=priors,
        likelihood=likelihood,
        constants=constants,
        initial_guess=initial_guess,
        lsq=[lsq] if lsq is not None else None,
        retry=retry,
        progress=progress,
        should_stop=should_stop,
        f_min_Hz=f_min_Hz,
        f_max_Hz=f_max_Hz,
        drop_inductive=drop_inductive,
    )[0]


def fit_spectra(
    spectra,
    circuit,
    method: str = "nuts",
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    sampler: str = "blackjax",
    priors: dict | None = None,
    likelihood: str = "normal",
    constants: dict[str, float] | None = None,
    initial_guess=None,
    lsq: list | None = None,
    retry: bool = True,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    f_min_Hz: float | None = None,
    f_max_Hz: float | None = None,
    drop_inductive: bool = False,
) -> list[SpectrumFit]:
    """Fit several spectra with one circuit; one compiled sampler per length bucket serves all.

    Same parameters as :func:`fit_spectrum` (``lsq`` a list, one per spectrum; the window
    applies to every spectrum); spectrum ``i`` uses seed ``seed + i``. Progress events carry
    ``spectrum`` (0-based) and ``n_spectra``.
    """
    from inference.lsq import fit_lsq
    from inference.window import trim

    c = parse_circuit(circuit)
    spectra = [trim(as_spectrum(s), f_min_Hz, f_max_Hz, drop_inductive) for s in spectra]
    _check_options(method, likelihood, draws, tune, chains)
    if lsq is not None and len(lsq) != len(spectra):
        raise InputError(f"lsq: {len(lsq)} fits for {len(spectra)} spectra")
    constants = {str(k): float(v) for k, v in (constants or {}).items()}
    guess = _initial_guess(c, initial_guess, constants)
    results = []
    for i, spectrum in enumerate(spectra):

        def tagged(event, i=i):
            if progress is not None:
                progress({**event, "spectrum": i, "n_spectra": len(spectra)})

        start = (
            lsq[i] if lsq is not None else fit_lsq(spectrum, c, initial=guess, constants=constants)
        )
        if method == "lsq":
            results.append(_laplace_fit(spectrum, c, start, draws, chains, seed + i))
        else:
            results.append(
                _nuts_fit(
                    spectrum,
                    c,
                    start,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    seed=seed + i,
                    sampler=sampler,
                    overrides=priors,
                    likelihood=likelihood,
                    retry=retry,
                    progress=tagged,
                    should_stop=should_stop,
                )
            )
    return results


def _initial_guess(c, guess, constants: dict) -> dict[str, float]:
    """``initial_guess`` as a dict: a dict as is, a sequence in circuit order less constants."""
    if guess is None:
        return {}
    if isinstance(guess, dict):
        return dict(guess)
    free = [n for n in c.param_names if n not in constants]
    values = list(np.ravel(np.asarray(guess, dtype=float)))
    if len(values) != len(free):
        raise InputError(
            f"initial_guess: {len(values)} values for the {len(free)} free parameters of "
            f"{c.string} ({', '.join(free)}); or give a dict by name"
        )
    return dict(zip(free, values, strict=True))


def _check_options(method, likelihood, draws, tune, chains):
    if method not in METHODS:
        raise InputError(f"method {method!r}; expected one of {', '.join(METHODS)}")
    if likelihood not in eis_model.LIKELIHOODS:
        raise InputError(
            f"likelihood {likelihood!r}; expected one of {', '.join(eis_model.LIKELIHOODS)}"
        )
    for name, value, low in (("draws", draws, 10), ("tune", tune, 10), ("chains", chains, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise InputError(f"{name}={value!r}; expected an integer >= {low}")


def _nuts_fit(
    spectrum,
    c,
    start,
    *,
    draws,
    tune,
    chains,
    seed,
    sampler,
    overrides,
    likelihood,
    retry,
    progress,
    should_stop,
) -> SpectrumFit:
    f = spectrum["frequency"].values
    constants = dict(start.constants)
    priors = eis_model.without_constants(
        c,
        apply_overrides(
            default_priors(c, f, spectrum["z_real"].values, spectrum["z_imag"].values), overrides
        ),
        constants,
    )
    init = eis_model.initial_point(c, start.params, spectrum, priors)
    if not all(np.isfinite(v) for v in init.values()):
        raise ModelError(f"{_source(spectrum)}: the least-squares start is not finite ({init})")
    key = eis_model.model_key(c, priors, likelihood, tuple(constants))
    smp = get_sampler(
        key,
        lambda: eis_model.build_model(c, priors, likelihood, constants=tuple(constants)),
        sampler=sampler,
        chains=chains,
        tune=tune,
        draws=draws,
    )
    data = eis_model.model_data(spectrum, priors, constants)
    keep = [*priors, *eis_model.natural_params(c, dict.fromkeys(priors, 0.0), np, constants)]
    # constants have no spread: their r̂/ESS would be undefined
    reported = [*(n for n in c.param_names if n not in constants), "sigma_rel"]

    def judge(out, n_draws):
        posterior = _posterior_dataset(c, {k: out.posterior[k] for k in keep})
        stats = xr.Dataset({k: (("chain", "draw"), v) for k, v in out.sample_stats.items()})
        return (posterior, stats), dg.sampling(posterior, stats, reported)

    out, (posterior, stats), diag, runs = run_with_reruns(
        smp, data, init, judge, draws=draws, seed=seed, retry=retry,
        progress=progress, should_stop=should_stop,
    )  # fmt: skip
    n_draws = posterior.sizes["draw"]
    if progress is not None:
        progress(
            {
                "phase": "writing",
                "done": draws,
                "total": draws,
                "divergences": diag["divergences"],
            }
        )
    fit = SpectrumFit(
        circuit=c.string,
        method="nuts",
        posterior=posterior,
        sample_stats=stats,
        posterior_predictive=_predictive(c, posterior, spectrum, seed),
        observed=spectrum,
        lsq=start,
        kk=start.kk,
        priors=priors,
        diagnostics={**diag, "at_bound": dg.at_bound(posterior, _supports(c))},
        log_likelihood=_log_likelihood(c, posterior, spectrum, likelihood),
    )
    _judge(fit)
    fit.attrs = _provenance(
        fit,
        spectrum,
        sampler=out.sampler,
        seed=seed,
        draws=n_draws,
        tune=tune,
        chains=chains,
        likelihood=likelihood,
        timings=out.timings_s,
        runs=runs,
    )
    return fit


def _supports(c) -> dict[str, tuple[float, float]]:
    """Bounded supports of the model's parameters: the CPE exponents'."""
    bounds = zip(c.param_names, c.param_bounds, strict=True)
    return {n: ALPHA_SUPPORT for n, b in bounds if tuple(b) == (0.0, 1.0)}


def _support(fit, name) -> tuple[float, float]:
    return _supports(parse_circuit(fit.circuit)).get(name, (0.0, np.inf))


def _bound_sides(fit) -> dict[str, str]:
    """Parameter → ``lower``/``upper`` for those at a bound (lsq optimum or NUTS posterior)."""
    if fit.method == "lsq":
        return dict(fit.lsq.at_bound)
    out = {}
    for phrase in fit.diagnostics.get("at_bound", []):
        name, _, rest = phrase.partition(" at ")
        out[name] = rest.split()[0]
    return out


def _judge(fit: SpectrumFit) -> None:
    """Set the fit's verdict, reasons and warnings from :mod:`inference.diagnostics`."""
    lsq = fit.lsq
    at_bound = fit.diagnostics.get("at_bound", [])
    if fit.method == "lsq":
        at_bound = [
            f"{n} not bounded by the data on either side"
            if side == "both"
            else f"{n} at {side} bound (one-sided interval)"
            for n, side in lsq.at_bound.items()
        ]
        fit.diagnostics["at_bound"] = at_bound
    fit.verdict, fit.reasons = dg.record_verdict(
        fit.diagnostics,
        at_bound=at_bound,
        kk_passed=None if fit.kk is None else bool(fit.kk.passed),
        kk_finding="" if fit.kk is None else fit.kk.finding(),
        lsq_flags=lsq.flags,
    )
    notes = []
    if fit.method == "lsq":
        notes.append("method=lsq: Laplace approximation around the least-squares fit, not NUTS")
    if fit.kk is not None and not fit.kk.passed:
        notes.append(
            f"Kramers-Kronig check failed (max residual {fit.kk.max_residual:.3g} > "
            f"{fit.kk.threshold:g}): the spectrum may be non-stationary"
        )
    if not lsq.success:
        notes.append(f"least-squares start: {lsq.message}")
    fit.warnings = [r for r in fit.reasons if not r.startswith(("Kramers", "least-squares"))]
    fit.warnings += notes


def _log_likelihood(c, posterior: xr.Dataset, spectrum, likelihood: str) -> xr.Dataset:
    """Pointwise log-likelihood of every draw (``z`` over chain, draw, frequency), float32."""
    internal = {k: posterior[k].values[..., None] for k in posterior.data_vars}
    natural = {n: internal[n] for n in c.param_names}
    f = spectrum["frequency"].values
    with np.errstate(all="ignore"):
        re, im = eis_model.evaluate(c, natural, internal, f)
        ll = eis_model.pointwise_log_likelihood(
            re,
            im,
            spectrum["z_real"].values,
            spectrum["z_imag"].values,
            internal["sigma_rel"],
            likelihood,
        )
    dims = ("chain", "draw", "frequency")
    return xr.Dataset(
        {"z": (dims, np.asarray(ll, dtype=np.float32), {"units": "nats"})},
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values,
            "frequency": f,
        },
    )


def _laplace_fit(spectrum, c, start, draws, chains, seed) -> SpectrumFit:
    """Draws from N(lsq log/logit parameters, lsq covariance), mapped to natural units.

    A parameter without a Jacobian standard error (:attr:`LsqResult.profiles`) gets draws from
    its profile limits instead: at a bound, half-normal from its support's bound (from 0 in its
    reciprocal for an upper bound at infinity) with its 95th percentile at the profile limit.
    """
    rng = np.random.default_rng(seed)
    cov = np.asarray(start.cov_log, dtype=float)
    if not np.all(np.isfinite(cov)):
        raise ModelError(f"{_source(spectrum)}: the least-squares covariance is not finite")
    x = rng.multivariate_normal(
        np.asarray(start.log_params), cov, size=(chains, draws), method="eigh"
    )
    free = start.free_names or c.param_names
    bounds = [tuple(c.param_bounds[c.param_names.index(n)]) for n in free]
    exponent = dict(zip(free, (b == (0.0, 1.0) for b in bounds), strict=True))
    is_exp = np.array([exponent[n] for n in free])
    with np.errstate(over="ignore"):
        natural = np.where(is_exp, alpha_from_logit(x), np.exp(x))
    values = {n: natural[..., i] for i, n in enumerate(free)}
    for name, (lo_ci, hi_ci) in start.profiles.items():
        side = start.at_bound.get(name)
        low, high = ALPHA_SUPPORT if exponent[name] else (0.0, np.inf)
        half = np.abs(rng.standard_normal((chains, draws))) / 1.96
        if side == "lower":
            values[name] = low + (hi_ci - low) * half
        elif side == "upper" and np.isinf(high):
            values[name] = 1.0 / np.maximum(half / lo_ci, 1e-300)
        elif side == "upper":
            values[name] = high - (high - lo_ci) * half
        else:
            # Bounded on neither side ("both"): uniform on the fit's scale between its limits;
            # on both sides by the profile: Normal on that scale, 1.96 sd to each limit.
            positive = not exponent[name]
            a, b = (np.log(lo_ci), np.log(hi_ci)) if positive else (lo_ci, hi_ci)
            shape = (chains, draws)
            if side == "both":
                t = rng.uniform(a, b, shape)
            else:
                t = (a + b) / 2 + (b - a) / (2 * 1.96) * rng.standard_normal(shape)
            values[name] = np.exp(t) if positive else t
        values[name] = np.clip(values[name], low, high)
    values |= {n: np.full((chains, draws), v) for n, v in start.constants.items()}
    values = {n: values[n] for n in c.param_names}
    values["sigma_rel"] = np.full((chains, draws), start.rms_rel)
    for arc in c.arcs:
        alpha = values[arc.alpha] if arc.alpha else 1.0
        r = values[arc.r]
        if arc.kind == "TLM":
            r = r + values[c.param_names[c.param_names.index(arc.r) + 1]]
        # τ = (R·Q)^(1/α): where a poorly identified exponent draws α near 0, τ leaves float
        # range and is +inf (an arc without a time constant in the data), said without a warning.
        with np.errstate(over="ignore"):
            tau = (r * values[arc.q]) ** (1 / alpha)
        values[f"tau_{arc.q.rsplit('_', 1)[0]}"] = tau
        values[f"log_tau_{arc.q.rsplit('_', 1)[0]}"] = np.log(tau)
    posterior = _posterior_dataset(c, values)
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))})
    fit = SpectrumFit(
        circuit=c.string,
        method="lsq",
        posterior=posterior,
        sample_stats=stats,
        posterior_predictive=_predictive(c, posterior, spectrum, seed),
        observed=spectrum,
        lsq=start,
        kk=start.kk,
        priors={},
        diagnostics={
            "max_rhat": float("nan"),
            "min_ess_bulk": float("nan"),
            "min_ess_tail": float("nan"),
            "divergences": 0,
            "bfmi": float("nan"),
        },
        log_likelihood=_log_likelihood(c, posterior, spectrum, "normal"),
    )
    _judge(fit)
    fit.attrs = _provenance(
        fit,
        spectrum,
        sampler="laplace",
        seed=seed,
        draws=draws,
        tune=0,
        chains=chains,
        likelihood="normal",
        timings={},
        runs=[],
    )
    return fit


def _posterior_dataset(c, values: dict) -> xr.Dataset:
    units = dict(zip(c.param_names, c.param_units, strict=True))
    data = {}
    for name, v in values.items():
        unit = units.get(name, "s" if name.startswith("tau_") else "1")
        data[name] = (("chain", "draw"), np.asarray(v, dtype=float), {"units": unit or "1"})
    chains, draws = next(iter(data.values()))[1].shape
    return xr.Dataset(data, coords={"chain": np.arange(chains), "draw": np.arange(draws)})


def _predictive(c, posterior: xr.Dataset, spectrum, seed: int) -> xr.Dataset:
    """Thinned posterior-predictive draws of Re and Im Z at the measured frequencies."""
    sub = thin_draws(posterior, N_PREDICTIVE)
    f = spectrum["frequency"].values
    params = {n: sub[n].values[..., None] for n in c.param_names}
    with np.errstate(all="ignore"):
        re, im = c.evaluate(params, f)
    modulus = np.hypot(spectrum["z_real"].values, spectrum["z_imag"].values)
    rng = np.random.default_rng(seed + 1)
    sd = sub["sigma_rel"].values[..., None] * modulus
    dims = ("chain", "draw", "frequency")
    return xr.Dataset(
        {
            "z_real": (dims, re + sd * rng.standard_normal(re.shape), {"units": "Ohm"}),
            "z_imag": (dims, im + sd * rng.standard_normal(im.shape), {"units": "Ohm"}),
            "mu_real": (dims, np.asarray(re + 0 * sd), {"units": "Ohm"}),
            "mu_imag": (dims, np.asarray(im + 0 * sd), {"units": "Ohm"}),
        },
        coords={"chain": sub["chain"].values, "draw": sub["draw"].values, "frequency": f},
    )


@functools.cache
def _package_versions() -> tuple:
    from importlib import metadata

    out = {}
    for pkg in ("sigmalab", "pymc", "pytensor", "arviz", "jax", "blackjax", "numpy", "xarray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return tuple(out.items())


def _versions() -> dict:
    """Versions of sigmalab and the libraries a fit depends on (looked up once)."""
    return dict(_package_versions())


def input_hash(dataset: xr.Dataset) -> str:
    """sha256 of the source file when it exists, else of the data arrays."""
    source = dataset.attrs.get("source_file", "")
    if source and Path(source).is_file():
        return "file:sha256:" + hashlib.sha256(Path(source).read_bytes()).hexdigest()
    h = hashlib.sha256()
    for name in sorted(dataset.variables):
        h.update(name.encode())
        h.update(np.ascontiguousarray(dataset[name].values).tobytes())
    return "data:sha256:" + h.hexdigest()


def _provenance(fit, spectrum, *, sampler, seed, draws, tune, chains, likelihood, timings, runs):
    attrs = {
        "method": fit.method,
        "circuit": fit.circuit,
        "source_file": spectrum.attrs.get("source_file", ""),
        "input_hash": input_hash(spectrum),
        "priors": priors_to_json(fit.priors),
        "sampler": sampler,
        "seed": int(seed),
        "draws": int(draws),
        "tune": int(tune),
        "chains": int(chains),
        "likelihood": likelihood,
        "constants": json.dumps(fit.lsq.constants),
        "versions": json.dumps(_versions()),
        "diagnostics": json.dumps(fit.diagnostics),
        "verdict": fit.verdict,
        "reasons": json.dumps(fit.reasons),
        "warnings": json.dumps(fit.warnings),
        "runs": json.dumps(runs, default=float),
        "timings_s": json.dumps(timings),
        **fit.lsq.summary(),
    }
    for key in (
        "cell_id",
        "temperature_K",
        "thickness_cm",
        "area_cm2",
        "thickness_sd_cm",
        "area_sd_cm2",
        "cell_type",
        "f_min_Hz",
        "f_max_Hz",
        "drop_inductive",
        "n_points_measured",
        "n_points_dropped",
    ):
        if key in spectrum.attrs:
            attrs[key] = spectrum.attrs[key]
    return attrs


def _netcdf_safe(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bool | np.bool_):
            out[k] = int(v)
        elif isinstance(v, str | int | float | np.integer | np.floating):
            out[k] = v
        else:
            out[k] = json.dumps(v, default=str)
    return out


def _write_atomic(tree: xr.DataTree, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".nc.tmp", dir=path.parent)
    os.close(fd)
    try:
        tree.to_netcdf(tmp, engine="h5netcdf")
        with_user_umask(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _source(spectrum) -> str:
    return str(spectrum.attrs.get("source_file", "<spectrum>"))
