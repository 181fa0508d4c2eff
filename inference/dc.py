"""DC polarization: steady-state current per bias step, then Bayesian Ohm's-law regression.

Plateau detection, per bias step: ``I_end`` is the median of the step's last 20 % of samples;
the plateau is the longest final stretch where every sample stays within
``max(rel_tol·|I_end|, 4·noise)`` of ``I_end`` (noise from the scatter of successive samples).
A step is *settled* when that stretch covers at least ``min_plateau_fraction`` of the step and
the current's drift across it — the fitted slope times the plateau length — is below
``rel_tol·|I_end|``. Unsettled steps are still used (their last stretch) and named in
``DCFit.warnings``.

Model, on the steady-state currents ``I_k`` at biases ``V_k``::

    log R  ~ Normal(log(ΔV/ΔI of the data), 3)        R > 0, Ω (includes contacts)
    I_mid  ~ Normal(0, max|I|)                         current at the mean bias V̄ (A)
    I_k    ~ Normal(I_mid + (V_k − V̄)/R, √(se_k² + (0.001·I_k)² + τ²))
    V0     = V̄ − I_mid·R                               offset (V): contact/thermal EMF,
                                                       so that I = (V − V0)/R

Centring on V̄ makes (log R, I_mid) nearly uncorrelated; written with V0 directly the pair was
so correlated that 300 tuning steps left r̂ ≈ 1.08.
``se_k`` is the standard error of step k's plateau mean, the 0.1 % floor the instrument's
accuracy, and τ² the scatter of the steady states about a straight line beyond those errors,
estimated once from the least-squares residuals (``max(0, RSS/(n−2) − mean se²)``). A sampled
noise scale (additive σ_I, or a factor s on the errors) was tried first: with a handful of steps
the width of (R, V0) then depends on the scale — a funnel that gave divergences and r̂ ≈ 1.1.

sampled with the same compiled-once blackjax machinery as the EIS fits
(:mod:`inference.samplers`; cache key: number of steps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from inference.conductivity import conductivity_dataarray
from inference.errors import InputError, ModelError
from inference.samplers import ProgressFn, StopFn, get_sampler, run_with_reruns

__all__ = ["DCFit", "detect_plateaus", "fit_dc"]

#: Relative tolerance on the current for a settled plateau.
REL_TOL = 0.02
MIN_PLATEAU_FRACTION = 0.2
TAIL_FRACTION = 0.2
#: Relative accuracy floor of a steady-state current (instrument).
ACCURACY_REL = 0.001


def detect_plateaus(
    record: xr.Dataset, rel_tol: float = REL_TOL, min_plateau_fraction: float = MIN_PLATEAU_FRACTION
) -> pd.DataFrame:
    """Steady-state current per bias step.

    Parameters
    ----------
    record : DC record (:func:`inference.spectrum.make_dc`).
    rel_tol : relative tolerance on the current that defines "flat".
    min_plateau_fraction : shortest plateau, as a fraction of the step duration.

    Returns
    -------
    DataFrame with one row per step: ``step``, ``voltage_V``, ``current_A`` (plateau mean),
    ``current_sd_A`` (standard error of that mean), ``plateau_start_s``, ``plateau_end_s``,
    ``n_points``, ``settled`` (bool), ``drift_rel`` (drift across the plateau / |I|),
    ``flat_fraction`` (plateau duration / step duration).
    """
    if not isinstance(record, xr.Dataset) or not {"voltage_V", "current_A"} <= set(record):
        raise InputError(
            "expected a DC record: a Dataset with voltage_V and current_A "
            "(see inference.spectrum.make_dc)"
        )
    t_all = record["time_s"].values
    steps = record["step"].values
    rows = []
    for k in np.unique(steps):
        sel = steps == k
        t, v, i = t_all[sel], record["voltage_V"].values[sel], record["current_A"].values[sel]
        n = t.size
        tail = max(2, int(np.ceil(TAIL_FRACTION * n)))
        i_end = float(np.median(i[-tail:]))
        noise = float(np.median(np.abs(np.diff(i[-tail:])))) * 1.4826 / np.sqrt(2) if n > 2 else 0
        band = max(rel_tol * abs(i_end), 4 * noise, 1e-30)
        outside = np.flatnonzero(np.abs(i - i_end) > band)
        start = int(outside[-1] + 1) if outside.size else 0
        start = min(start, n - 2) if n >= 2 else 0
        tp, ip = t[start:], i[start:]
        # The plateau's early part may still carry a transient within the tolerance: the
        # estimate uses its later half only.
        late = ip[ip.size // 2 :] if ip.size >= 6 else ip
        duration = float(t[-1] - t[0]) if n > 1 else 0.0
        span = float(tp[-1] - tp[0]) if tp.size > 1 else 0.0
        slope = float(np.polyfit(tp - tp[0], ip, 1)[0]) if tp.size > 2 and span > 0 else 0.0
        drift_rel = abs(slope) * span / max(abs(i_end), 1e-30)
        flat_fraction = span / duration if duration > 0 else 1.0
        long_enough = flat_fraction >= min_plateau_fraction
        settled = bool(long_enough and drift_rel < rel_tol and tp.size >= 3)
        se = (
            float(np.std(late, ddof=1) / np.sqrt(late.size))
            if late.size > 1
            else (abs(i_end) * rel_tol)
        )
        rows.append(
            {
                "step": int(k),
                "voltage_V": float(np.median(v[start:])),
                "current_A": float(np.mean(late)),
                "current_sd_A": se,
                "plateau_start_s": float(tp[0]),
                "plateau_end_s": float(tp[-1]),
                "n_points": int(ip.size),
                "settled": settled,
                "drift_rel": drift_rel,
                "flat_fraction": flat_fraction,
            }
        )
    return pd.DataFrame(rows)


@dataclass
class DCFit:
    """Result of :func:`fit_dc`.

    Attributes
    ----------
    posterior : Dataset over (chain, draw): ``R_ohm`` (Ω), ``V0_V`` (V), ``log_R`` and
        ``I_mid_scaled`` (current at the mean bias / max|I|).
    steps : steady-state table from :func:`detect_plateaus`.
    record : the input record.
    diagnostics : ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``bfmi``.
    log_likelihood : ``I_obs`` over (chain, draw, step): log p(I_k | θ) per bias step (nats).
    verdict, reasons : :func:`inference.diagnostics.record_verdict` (unsettled steps count).
    warnings : unsettled steps, convergence problems.
    attrs : provenance.
    """

    posterior: xr.Dataset
    sample_stats: xr.Dataset
    steps: pd.DataFrame
    record: xr.Dataset
    diagnostics: dict
    log_likelihood: xr.Dataset | None = None
    verdict: str = "ok"
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Median, equal-tailed interval, mean, sd, r̂ and ESS of R_ohm and V0_V."""
        import arviz as az

        names = ["R_ohm", "V0_V"]
        stats = az.summary(self.to_datatree(), var_names=names, kind="diagnostics", round_to="none")
        lo, hi = (1 - prob) / 2, 1 - (1 - prob) / 2
        rows = {}
        for n in names:
            x = self.posterior[n].values.ravel()
            rows[n] = {
                "median": np.median(x),
                f"q{lo * 100:g}": np.quantile(x, lo),
                f"q{hi * 100:g}": np.quantile(x, hi),
                "mean": x.mean(),
                "sd": x.std(ddof=1),
                "unit": self.posterior[n].attrs.get("units", ""),
                **{k: float(stats.loc[n, k]) for k in ("r_hat", "ess_bulk", "ess_tail")},
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def to_datatree(self) -> xr.DataTree:
        """ArviZ-style DataTree (posterior, sample_stats, observed_data = steady states)."""
        from inference.fit import _netcdf_safe

        obs = xr.Dataset.from_dataframe(self.steps.set_index("step"))
        obs["settled"] = obs["settled"].astype("int8")
        groups = {
            "/posterior": self.posterior,
            "/sample_stats": self.sample_stats,
            "/observed_data": obs,
        }
        if self.log_likelihood is not None:
            groups["/log_likelihood"] = self.log_likelihood
        tree = xr.DataTree.from_dict(groups)
        tree.attrs = _netcdf_safe(self.attrs)
        return tree

    def to_netcdf(self, path):
        """Write :meth:`to_datatree` atomically; returns the path."""
        from inference.fit import _write_atomic

        return _write_atomic(self.to_datatree(), path)

    def plot(self, path=None):
        """Current vs time with plateaus, and I_ss vs V with the median line and 90 % band."""
        from inference.plots import plot_dc_fit

        return plot_dc_fit(self, path=path)

    def conductivity(
        self,
        thickness_cm=None,
        area_cm2=None,
        *,
        thickness_sd_cm=None,
        area_sd_cm2=None,
        contact_ohm: float = 0.0,
        contact_sd_ohm: float = 0.0,
        seed: int = 0,
    ) -> xr.DataArray:
        """Electronic σ = L/((R − R_contact)·A) draws (S/cm); geometry defaults to the record's
        attrs.

        ``contact_ohm`` ± ``contact_sd_ohm`` is the series resistance of a two-probe set-up
        (rods and their contacts, e.g. measured on a blank die), drawn per draw as a Normal
        truncated at 0 and subtracted; 0 (the default) keeps the measured R.

        Raises
        ------
        InputError
            A negative or non-finite contact resistance or sd.
        ModelError
            The contact resistance reaches the measured resistance in some draw.
        """
        r = self.posterior["R_ohm"]
        if contact_ohm or contact_sd_ohm:
            r = _minus_contact(r, contact_ohm, contact_sd_ohm, seed)
        return conductivity_dataarray(
            r,
            self.record.attrs,
            thickness_cm=thickness_cm,
            area_cm2=area_cm2,
            thickness_sd_cm=thickness_sd_cm,
            area_sd_cm2=area_sd_cm2,
            seed=seed,
        )


def _minus_contact(r: xr.DataArray, contact_ohm, contact_sd_ohm, seed: int) -> xr.DataArray:
    """R − R_contact per draw (Ω), R_contact ~ Normal(contact_ohm, contact_sd_ohm) ≥ 0."""
    for name, value in (("contact_ohm", contact_ohm), ("contact_sd_ohm", contact_sd_ohm)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name}={value}: expected a finite resistance >= 0 Ω")
    rng = np.random.default_rng([seed, 1])
    contact = np.maximum(contact_ohm + contact_sd_ohm * rng.standard_normal(r.shape), 0.0)
    sample = r - contact
    if np.any(sample.values <= 0):
        raise ModelError(
            f"the contact resistance {contact_ohm:g} ± {contact_sd_ohm:g} Ω reaches the "
            f"measured resistance ({float(r.min()):.4g} Ω in some draws); check dc_contact_ohm"
        )
    return sample.rename(r.name)


def _unsettled_warning(step, rel_tol: float) -> str:
    where = f"step {step.step} ({step.voltage_V:.4g} V) never settles: "
    if step.drift_rel >= rel_tol:
        return where + f"the current still drifts {100 * step.drift_rel:.1f} % over its flat end"
    return where + (
        f"the current is within {100 * rel_tol:g} % of its final value only over the last "
        f"{100 * step.flat_fraction:.0f} % of the step"
    )


def _log_likelihood(posterior, v, i, se, scales, v_mid, i_max) -> xr.Dataset:
    """log p(I_k | R, V0) per step for every draw, the model's Normal likelihood (float32)."""
    from scipy.stats import norm

    r = posterior["R_ohm"].values[..., None]
    current_mid = posterior["I_mid_scaled"].values[..., None] * i_max
    sd = np.sqrt(se**2 + (ACCURACY_REL * i) ** 2 + scales[4] ** 2)
    ll = norm.logpdf(i, loc=current_mid + (v - v_mid) / r, scale=sd)
    return xr.Dataset(
        {"I_obs": (("chain", "draw", "step"), ll.astype(np.float32), {"units": "nats"})},
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values},
    )


def _build_model(n_steps: int):
    import pymc as pm

    with pm.Model() as model:
        v = pm.Data("voltage_V", np.zeros(n_steps))
        i = pm.Data("current_A", np.zeros(n_steps))
        se = pm.Data("current_sd_A", np.ones(n_steps))
        # log R loc, log R sd, V̄, max|I|, τ (extra scatter, A), then the weighted
        # least-squares estimates and standard errors of log R and I_mid/max|I|.
        scales = pm.Data("prior_scales", np.ones(9))
        # Sampled in units of the least-squares standard errors (a linear map, so the priors
        # below are exactly those stated): the posterior is ~1e4 times narrower than the
        # priors, and unscaled coordinates left 300 tuning steps with r̂ ≈ 1.02.
        z_r = pm.Flat("z_log_R")
        z_i = pm.Flat("z_I_mid")
        log_r = pm.Deterministic("log_R", scales[5] + scales[6] * z_r)
        i_mid = pm.Deterministic("I_mid_scaled", scales[7] + scales[8] * z_i)
        pm.Potential("log_R_prior", pm.logp(pm.Normal.dist(scales[0], scales[1]), log_r))
        pm.Potential("I_mid_prior", pm.logp(pm.Normal.dist(0.0, 1.0), i_mid))
        r = pm.Deterministic("R_ohm", pm.math.exp(log_r))
        current_mid = i_mid * scales[3]
        pm.Deterministic("V0_V", scales[2] - current_mid * r)
        sd = pm.math.sqrt(se**2 + (ACCURACY_REL * i) ** 2 + scales[4] ** 2)
        pm.Normal("I_obs", mu=current_mid + (v - scales[2]) / r, sigma=sd, observed=i)
    return model


def fit_dc(
    record: xr.Dataset,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    sampler: str = "blackjax",
    rel_tol: float = REL_TOL,
    retry: bool = True,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> DCFit:
    """Electronic resistance from a DC polarization record.

    Parameters
    ----------
    record : DC record (``make_dc``) with at least two bias steps at different voltages.
    draws, tune, chains, seed, sampler : NUTS settings (see :func:`inference.fit.fit_spectrum`).
    rel_tol : plateau tolerance (see :func:`detect_plateaus`).
    retry : run NUTS again where a threshold was broken, as for the spectra
        (:func:`inference.diagnostics.next_run`); every run is listed in ``attrs["runs"]``.
    progress, should_stop : as for :func:`inference.fit.fit_spectrum`.

    Raises
    ------
    InputError
        Not a DC record, or fewer than two distinct bias voltages.
    ModelError
        The currents do not change with the voltage (no resistance can be inferred).
    """
    from inference import diagnostics as dg
    from inference.fit import _versions, input_hash

    steps = detect_plateaus(record, rel_tol=rel_tol)
    v, i, se = (steps[c].to_numpy(float) for c in ("voltage_V", "current_A", "current_sd_A"))
    source = record.attrs.get("source_file", "<record>")
    if np.unique(np.round(v, 9)).size < 2:
        raise InputError(
            f"{source}: a DC fit needs at least two bias steps at different "
            f"voltages; found {np.unique(v).size}"
        )
    slope, intercept = np.polyfit(v, i, 1)
    # "Rises": by more than rounding across the biases (a constant current fits a slope of
    # ±1e-20 A/V, whose sign is chance).
    if not np.isfinite(slope) or slope * np.ptp(v) <= 1e-9 * float(np.max(np.abs(i))):
        raise ModelError(
            f"{source}: the steady-state current does not rise with the voltage "
            f"(slope {slope:.3g} A/V); no resistance can be inferred"
        )
    i_max = float(np.max(np.abs(i)))
    v_mid = float(np.mean(v))
    residual = i - (slope * v + intercept)
    dof = max(v.size - 2, 1)
    errors2 = se**2 + (ACCURACY_REL * i) ** 2
    extra = float(np.sqrt(max(0.0, residual @ residual / dof - float(np.mean(errors2)))))
    # Weighted least squares in the model's own coordinates (I_mid, 1/R) for the scaling.
    weights = 1 / (errors2 + extra**2)
    design = np.column_stack([np.ones_like(v), v - v_mid])
    cov = np.linalg.pinv(design.T @ (design * weights[:, None]))
    i_mid_hat, g_hat = cov @ design.T @ (weights * i)
    if not g_hat > 0:
        g_hat = slope
    se_log_r = float(np.sqrt(max(cov[1, 1], 0.0))) / g_hat
    se_i_mid = float(np.sqrt(max(cov[0, 0], 0.0))) / i_max
    scales = np.array(
        [
            np.log(1 / slope),
            3.0,
            v_mid,
            i_max,
            extra,
            -np.log(g_hat),
            se_log_r if se_log_r > 0 else 1.0,
            i_mid_hat / i_max,
            se_i_mid if se_i_mid > 0 else 1.0,
        ]
    )
    init = {"z_log_R": 0.0, "z_I_mid": 0.0}
    smp = get_sampler(
        ("dc", v.size),
        lambda: _build_model(v.size),
        sampler=sampler,
        chains=chains,
        tune=tune,
        draws=draws,
    )
    data = {
        "voltage_V": v,
        "current_A": i,
        "current_sd_A": np.maximum(se, 1e-30),
        "prior_scales": scales,
    }
    units = {
        "R_ohm": "Ohm",
        "V0_V": "V",
        "log_R": "1",
        "I_mid_scaled": "1",
        "z_log_R": "1",
        "z_I_mid": "1",
    }

    def judge(out, n_draws):
        posterior = xr.Dataset(
            {k: (("chain", "draw"), out.posterior[k], {"units": units[k]}) for k in units},
            coords={"chain": np.arange(chains), "draw": np.arange(n_draws)},
        )
        stats = xr.Dataset({k: (("chain", "draw"), x) for k, x in out.sample_stats.items()})
        return (posterior, stats), dg.sampling(posterior, stats, ["R_ohm", "V0_V"])

    out, (posterior, stats), diagnostics, runs = run_with_reruns(
        smp, data, init, judge, draws=draws, seed=seed, retry=retry,
        progress=progress, should_stop=should_stop,
    )  # fmt: skip
    n_draws = posterior.sizes["draw"]
    fit = DCFit(posterior=posterior, sample_stats=stats, steps=steps, record=record, diagnostics={})
    fit.diagnostics = {**diagnostics, "at_bound": []}
    fit.log_likelihood = _log_likelihood(
        posterior, v, i, np.maximum(se, 1e-30), scales, v_mid, i_max
    )
    unsettled = [_unsettled_warning(r, rel_tol) for r in steps.itertuples() if not r.settled]
    fit.verdict, fit.reasons = dg.record_verdict(fit.diagnostics, other=unsettled)
    fit.warnings = list(fit.reasons)
    d = fit.diagnostics
    fit.attrs = {
        "method": "nuts",
        "model": "I = (V - V0)/R",
        "source_file": source,
        "input_hash": input_hash(record),
        "sampler": out.sampler,
        "seed": seed,
        "draws": n_draws,
        "tune": tune,
        "chains": chains,
        "runs": json.dumps(runs),
        "prior_scales": json.dumps(scales.tolist()),
        "versions": json.dumps(_versions()),
        "diagnostics": json.dumps(d),
        "verdict": fit.verdict,
        "reasons": json.dumps(fit.reasons),
        "warnings": json.dumps(fit.warnings),
        "timings_s": json.dumps(out.timings_s),
    }
    return fit
