"""Deterministic fit of an equivalent circuit: weighted complex nonlinear least squares.

Parameters are fitted in a transformed space: log for positive parameters, a logit for CPE
exponents on the support (ALPHA_LOW, 1) that the Bayesian model uses too
(:data:`inference.priors.ALPHA_SUPPORT`). Initial guesses come from the spectrum itself
(high-frequency intercept, apexes of −Im vs log f, real-axis span between them), so users
need not supply any; those
they do supply (``initial=``) are used instead, and ``constants=`` fixes parameters, as in
impedance.py. When the first fit is not at the noise level that a Kramers–Kronig (Lin-KK)
fit of the same spectrum reaches, more starts are drawn from a scrambled Sobol sequence
around the guess and the best fit is kept. The final fit is called poor by the one rule of
:mod:`inference.fit_quality`. This is also sigmalab's cheap ``method="lsq"``.

Every result carries the spectrum's Kramers–Kronig verdict; a failing spectrum is fitted and
flagged (``"kk_failed"`` in ``flags``), never dropped.

A parameter whose optimum lies on a limit of the fit (a CPE exponent at its support's end) or
that has no effect on Z (a resistance driven to nothing, where the optimiser stops as soon as
its gradient vanishes) has no Jacobian standard error worth the name: its interval comes from
the profile χ² (every other parameter re-optimised), each end where χ² has risen by 1.96²·s²
above the optimum (a one-sided 95 % limit, so that the interval holds 90 % like the two-sided
ones). On a side where χ² never rises that far the interval is open to the support's bound —
``[0, limit]`` for an unneeded resistance — and the parameter is listed in
:attr:`LsqResult.at_bound`; never a zero-width interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.signal import find_peaks
from scipy.special import expit
from scipy.stats import qmc

from inference.circuits import Circuit, parse_circuit, simulate_spectrum
from inference.circuits.parser import ElementNode, Series
from inference.errors import InputError, ModelError
from inference.fit_quality import fit_quality
from inference.kramers_kronig import KKResult, has_capacitive_part, kk_check, spectrum_arrays
from inference.priors import ALPHA_SUPPORT, alpha_from_logit, logit_from_alpha

__all__ = ["LsqResult", "fit_lsq", "initial_guess", "simulate_spectrum"]

WEIGHTINGS = ("modulus", "proportional", "unit")
#: Relative rms residuals are compared with the Lin-KK fit's, which sits at the noise level (a
#: right circuit gets within about 1.07 ± 0.09 of it). More starts are tried above
#: RESTART_FACTOR × KK rms + RESTART_FLOOR (whether the final fit is poor is
#: :func:`inference.fit_quality.fit_quality`'s call).
RESTART_FACTOR, RESTART_FLOOR = 1.15, 0.0005
#: Half-width of the Sobol box around the guess: ± 2 decades for log parameters, ± 2 in logit.
START_SPREAD_LOG = math.log(100.0)
START_SPREAD_LOGIT = 2.0
#: Transformed-space limits: log parameters within ± 8 decades of the guess, logit within ± 7.
LOG_RANGE = math.log(1e8)
LOGIT_LIMIT = 7.0
#: Default CPE exponent when the data say little.
ALPHA_GUESS = 0.9
#: z of the two-sided 90 % intervals and of the one-sided 95 % limit of a parameter at a bound.
Z90 = 1.6449
Z_ONE_SIDED = 1.96
#: Profile search for a one-sided limit: first step and bisection steps (transformed scale).
PROFILE_STEP = 1.0
PROFILE_BISECTIONS = 7
#: A Jacobian column this small against the largest: the parameter has no effect on Z.
FLAT_COLUMN = 1e-6
#: Apex of a transmission line with R₂ ≪ R₁ and α = 1, Z = R₁·tanh(ν/2)/(ν/2), ν² = jωR₁Q:
#: −Im peaks at ωR₁Q ≈ 10.2 with height ≈ 0.417·R₁.
TLM_APEX_PRODUCT = 10.2
TLM_APEX_HEIGHT = 0.417
#: Relative step of the finite-difference Jacobian (scipy's default for "2-point").
FD_STEP = np.finfo(float).eps ** 0.5


@dataclass
class LsqResult:
    """Outcome of :func:`fit_lsq`.

    Attributes
    ----------
    circuit : normalised circuit string.
    param_names : in the circuit's order.
    params : best-fit values in natural units (Ω, F, Ω⁻¹ s^α, s, H; exponents unitless),
        constants included.
    constants : the parameters held fixed (natural units); empty when none.
    free_names : the fitted parameters, ``param_names`` without the constants.
    log_params : the fitted transformed values (log for positive parameters, logit for
        exponents), in ``free_names`` order.
    cov_log : covariance of ``log_params`` from the Jacobian, scaled by the reduced χ².
    stderr : standard errors in natural units (delta method from ``cov_log``; 0 for
        constants).
    residuals : (Z − Z_fit)/weight per point, complex (relative to |Z| for modulus weighting).
    z_fit : fitted impedance per point (Ω, complex); ``frequency_Hz`` its frequencies.
    cost : ½ Σ weighted residuals² (scipy's cost); ``chi2`` = 2·cost.
    rms_rel : rms of (Z − Z_fit)/|Z| over Re and Im, whatever the weighting.
    success : the optimiser converged and the fit is not poor (see ``flags``).
    quality : the poor-fit verdict (:class:`~inference.fit_quality.FitQuality`).
    n_starts_used : number of optimiser starts run (1 when the first fit was good).
    message : one line on how the fit went.
    initial : the starting values used for the first start (natural units).
    kk : Kramers–Kronig check of the spectrum.
    flags : warnings: ``kk_failed``, ``poor_fit``, ``not_converged``, ``at_bound:<name>``.
    at_bound : parameter → ``"lower"``, ``"upper"`` or ``"both"``: the data do not bound it on
        that side (its optimum is on that limit of the fit, or it has no effect on Z at all).
    intervals : parameter → 90 % interval (natural units): ``optimum ∓ 1.645 sd`` on the fit's
        log/logit scale, or, for a parameter with no Jacobian standard error (on a limit, or
        without effect), the profile limits, one-sided ``(support low, limit)`` /
        ``(limit, support high)`` at a bound (module docstring).
    profiles : parameter → (lower, upper) profile limits (natural units) where they were
        computed; the fit's own limits on a side the data do not bound.
    """

    circuit: str
    param_names: list[str]
    params: dict[str, float]
    log_params: np.ndarray
    cov_log: np.ndarray
    stderr: dict[str, float]
    residuals: np.ndarray
    z_fit: np.ndarray
    frequency_Hz: np.ndarray
    cost: float
    rms_rel: float
    success: bool
    n_starts_used: int
    message: str
    initial: dict[str, float]
    kk: KKResult
    weighting: str
    quality: object = None
    flags: list[str] = field(default_factory=list)
    constants: dict[str, float] = field(default_factory=dict)
    free_names: list[str] = field(default_factory=list)
    at_bound: dict[str, str] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    profiles: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def chi2(self) -> float:
        return 2.0 * self.cost

    def vector(self) -> np.ndarray:
        """Best-fit values in ``param_names`` order (natural units)."""
        return np.array([self.params[n] for n in self.param_names])

    def predict(self, frequency_Hz) -> np.ndarray:
        """The fitted circuit's complex impedance (Ω) at ``frequency_Hz`` (Hz)."""
        return parse_circuit(self.circuit).impedance(self.params, frequency_Hz)

    def summary(self) -> dict:
        """NetCDF-safe attrs: fit quality, flags, values and standard errors."""
        out = {
            "lsq_circuit": self.circuit,
            "lsq_success": int(self.success),
            "lsq_rms_rel": float(self.rms_rel),
            "lsq_cost": float(self.cost),
            "lsq_weighting": self.weighting,
            "lsq_n_starts": int(self.n_starts_used),
            "lsq_flags": ",".join(self.flags),
            "lsq_message": self.message,
            "lsq_constants": ",".join(self.constants),
        }
        for name in self.param_names:
            out[f"lsq_{name}"] = float(self.params[name])
            out[f"lsq_{name}_stderr"] = float(self.stderr[name])
            if name in self.intervals:
                out[f"lsq_{name}_ci90"] = [float(v) for v in self.intervals[name]]
        out["lsq_at_bound"] = ",".join(f"{k}:{v}" for k, v in self.at_bound.items())
        return {**out, **self.kk.summary()}


class _Transform:
    """Natural ↔ unconstrained parameters: log for (0, inf), the model's logit for exponents."""

    def __init__(self, bounds):
        self.is_exponent = np.array([high == 1.0 for _, high in bounds], dtype=bool)
        low, high = ALPHA_SUPPORT
        self.support = [ALPHA_SUPPORT if e else (0.0, math.inf) for e in self.is_exponent]
        self._span = high - low

    def forward(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        with np.errstate(divide="ignore"):
            return np.where(self.is_exponent, logit_from_alpha(values), np.log(values))

    def inverse(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.where(self.is_exponent, alpha_from_logit(x), np.exp(x))

    def derivative(self, x: np.ndarray) -> np.ndarray:
        """d(natural)/d(transformed) per parameter."""
        with np.errstate(over="ignore"):
            s = expit(x)
            return np.where(self.is_exponent, self._span * s * (1 - s), np.exp(x))


def fit_lsq(
    spectrum,
    circuit: str | Circuit,
    *,
    weighting: str = "modulus",
    n_starts: int = 16,
    seed: int = 0,
    initial: Mapping[str, float] | None = None,
    constants: Mapping[str, float] | None = None,
    arcs_high_to_low: bool = True,
) -> LsqResult:
    """Fit ``circuit`` to ``spectrum`` by weighted complex nonlinear least squares.

    Parameters
    ----------
    spectrum : spectrum Dataset (``make_spectrum``; Z = z_real + j·z_imag in Ω) or an
        impedance.py-style ``(f, Z)`` pair.
    circuit : impedance.py circuit string or :class:`~inference.circuits.Circuit`.
    weighting : ``"modulus"`` (residuals / |Z|, the default), ``"proportional"`` (Re by |Re|,
        Im by |Im|) or ``"unit"`` (no weighting).
    n_starts : most extra Sobol starts tried when the first fit is poor.
    seed : seed of the Sobol scrambling (the fit is deterministic for a given seed).
    initial : optional starting values (natural units) for some or all parameters; the rest
        are guessed from the data.
    constants : parameters held fixed at these values (natural units), e.g. ``{"R0": 10.0}``.
    arcs_high_to_low : the circuit's arcs, in string order, go from high to low frequency
        (the usual way of writing them); ``False`` for the reverse.

    Returns
    -------
    LsqResult

    Raises
    ------
    InputError
        Not a valid spectrum (NaN, fewer than 5 points…), unknown weighting, unknown names or
        out-of-bounds values in ``initial``/``constants``, every parameter constant;
        ``CircuitError`` for a malformed circuit string.
    ModelError
        A hopeless fit: more parameters than data, or a capacitive circuit for a spectrum
        with no capacitive part.
    """
    c = parse_circuit(circuit)
    f, z, source = spectrum_arrays(spectrum)
    if weighting not in WEIGHTINGS:
        raise InputError(f"weighting {weighting!r} is unknown; expected one of {WEIGHTINGS}")
    initial = _checked_values(c, initial, "initial")
    constants = _checked_values(c, constants, "constants")
    both = sorted(set(initial) & set(constants))
    if both:
        raise InputError(f"{', '.join(both)}: given in both initial and constants; pick one")
    free = [n for n in c.param_names if n not in constants]
    if not free:
        raise InputError(f"constants fix every parameter of {c.string}: nothing to fit")
    if 2 * f.size <= len(free):
        raise ModelError(
            f"{source}: {f.size} points give {2 * f.size} values, too few for the "
            f"{len(free)} free parameters of {c.string}"
        )
    capacitive = {"C", "CPE", "W", "Wo", "Ws", "TLM", "TLMs"}
    if not has_capacitive_part(z) and any(n.element.symbol in capacitive for n in c.elements):
        raise ModelError(
            f"{source}: -Im(Z) <= 1 % of |Z| at every frequency (no capacitive part), "
            f"which circuit {c.string} cannot describe; check the sign of Im(Z) "
            "or use an inductive circuit"
        )
    kk = kk_check(spectrum)
    guess = initial_guess(spectrum, c, arcs_high_to_low=arcs_high_to_low)
    guess.update(initial)
    guess.update(constants)

    index = [c.param_names.index(n) for n in free]
    transform = _Transform([c.param_bounds[i] for i in index])
    base = np.array([guess[n] for n in c.param_names], dtype=float)

    def natural(x):
        """Natural values of every parameter for ``x`` (free transformed values; rows for 2-D)."""
        x = np.asarray(x, dtype=float)
        values = np.broadcast_to(base, (*x.shape[:-1], base.size)).copy()
        values[..., index] = transform.inverse(x)
        return values

    x0 = transform.forward(base[index])
    lower = np.where(transform.is_exponent, -LOGIT_LIMIT, np.maximum(x0 - LOG_RANGE, -230))
    upper = np.where(transform.is_exponent, LOGIT_LIMIT, np.minimum(x0 + LOG_RANGE, 230))
    x0 = np.clip(x0, lower + 1e-9, upper - 1e-9)
    weight_re, weight_im = _weights(z, weighting)
    modulus = np.abs(z)

    def residuals(xs):
        """Weighted residuals of each row of ``xs`` (points × parameters) in one evaluation."""
        values = natural(xs)
        with np.errstate(all="ignore"):
            re, im = c.evaluate([values[:, i, None] for i in range(c.n_params)], f)
        r = np.concatenate([(re - z.real) / weight_re, (im - z.imag) / weight_im], axis=-1)
        # Overflowing trial steps become large finite residuals so the optimiser backs off.
        return np.nan_to_num(r, nan=1e12, posinf=1e12, neginf=-1e12)

    def residual(x):
        return residuals(x[None, :])[0]

    def jacobian(x):
        """scipy's 2-point forward differences, all columns in one evaluation (6× faster)."""
        h = FD_STEP * np.where(x >= 0, 1.0, -1.0) * np.maximum(1.0, np.abs(x))
        h = np.where((x + h < lower) | (x + h > upper), -h, h)
        h = (x + h) - x
        r = residuals(np.vstack([x, x + np.diag(h)]))
        return ((r[1:] - r[0]) / h[:, None]).T

    def run(start):
        return least_squares(
            residual, start, jac=jacobian, bounds=(lower, upper), method="trf", x_scale="jac"
        )

    def rms_rel(x):
        z_model = c.impedance(natural(x), f)
        d = (z - z_model) / modulus
        return float(np.sqrt(np.mean(d.real**2 + d.imag**2) / 2))

    restart_limit = RESTART_FACTOR * kk.rms_residual + RESTART_FLOOR
    best = run(x0)
    best_rms = rms_rel(best.x)
    n_used = 1
    if best_rms > restart_limit and n_starts > 0:
        spread = np.where(transform.is_exponent, START_SPREAD_LOGIT, START_SPREAD_LOG)
        sobol = qmc.Sobol(d=len(free), scramble=True, seed=seed)
        box = sobol.random_base2(max(0, math.ceil(math.log2(n_starts))))[:n_starts]
        for unit in box:
            start = np.clip(x0 + (2 * unit - 1) * spread, lower + 1e-9, upper - 1e-9)
            trial = run(start)
            n_used += 1
            trial_rms = rms_rel(trial.x)
            if trial.cost < best.cost:
                best, best_rms = trial, trial_rms
            if best_rms <= restart_limit:
                break
        # Arcs that are not interchangeable (an R‖CPE with a Warburg in series beside a plain
        # one) can still trade their R and CPE: a local optimum the Sobol box rarely leaves.
        # One more start per such pair, from the best fit with the two arcs' values swapped.
        for a, b in _swapped_starts(c, free):
            if best_rms <= restart_limit:
                break
            start = best.x.copy()
            start[a], start[b] = best.x[b], best.x[a]
            trial = run(np.clip(start, lower + 1e-9, upper - 1e-9))
            n_used += 1
            if trial.cost < best.cost:
                best, best_rms = trial, rms_rel(trial.x)

    # Arcs in series commute: put interchangeable ones back in the string's frequency order.
    perm = _arc_order_permutation(c, natural(best.x), arcs_high_to_low, set(constants))
    position = {full: i for i, full in enumerate(index)}
    perm = np.array([position[perm[full]] for full in index])
    x, jac = best.x[perm], best.jac[:, perm]
    lower, upper = lower[perm], upper[perm]
    values = natural(x)
    dof = max(2 * f.size - len(free), 1)
    s2 = 2 * best.cost / dof
    hit_low = np.isclose(x, lower, atol=1e-6)
    hit_high = np.isclose(x, upper, atol=1e-6) & ~hit_low
    # A parameter with (numerically) no effect on Z stops the optimiser wherever its gradient
    # vanished, off any limit (a series R0 the data do not need, left at 8e-4 Ω): it is as
    # unbounded as one on a limit, and the pseudo-inverse would give it zero variance.
    column = np.linalg.norm(jac, axis=0)
    flat = column <= FLAT_COLUMN * max(float(column.max()), 1e-300)
    regular = ~(hit_low | hit_high | flat)
    # Such parameters have no meaningful Jacobian column: the covariance is that of the others
    # with them held where they are, and their own intervals come from the profile.
    cov = np.zeros((len(free), len(free)))
    cov[np.ix_(regular, regular)] = np.linalg.pinv(jac[:, regular].T @ jac[:, regular]) * s2
    sd_log = np.sqrt(np.clip(np.diag(cov), 0, None))
    sd_free = sd_log * transform.derivative(x)
    stderr = dict.fromkeys(c.param_names, 0.0) | dict(zip(free, map(float, sd_free), strict=True))
    z_fit = c.impedance(values, f)
    ends = transform.inverse(x - Z90 * sd_log), transform.inverse(x + Z90 * sd_log)
    intervals, at_bound, profiles = {}, {}, {}
    for i, name in enumerate(free):
        if regular[i]:
            intervals[name] = (float(ends[0][i]), float(ends[1][i]))
            continue
        reached, limits = [], []
        for direction, on_limit in ((-1.0, hit_low[i]), (1.0, hit_high[i])):
            if on_limit:
                limit, end = x[i], True
            else:
                limit, end = _profile_limit(residual, x, i, direction, lower, upper, best, s2)
            x_limit = np.array(x, dtype=float)
            x_limit[i] = limit
            limits.append(float(transform.inverse(x_limit)[i]))
            reached.append(end)
        low, high = transform.support[i]
        intervals[name] = (low if reached[0] else limits[0], high if reached[1] else limits[1])
        side = {(True, False): "lower", (False, True): "upper", (True, True): "both"}.get(
            tuple(reached)
        )
        if side:
            at_bound[name] = side
        profiles[name] = (limits[0], limits[1])

    quality = fit_quality(best_rms, kk)
    flags = []
    if not kk.passed:
        flags.append("kk_failed")
    if quality.poor:
        flags.append("poor_fit")
    if best.status <= 0:
        flags.append("not_converged")
    flags += [f"at_bound:{n}" for n in at_bound]
    success = bool(best.status > 0 and not quality.poor)
    verdict = (
        "" if success else "; fit is poor" if quality.poor else "; the optimiser did not converge"
    )
    message = f"{quality.describe()} after {n_used} start(s){verdict}"
    return LsqResult(
        circuit=c.string,
        param_names=list(c.param_names),
        params={n: float(v) for n, v in zip(c.param_names, values, strict=True)},
        log_params=x,
        cov_log=cov,
        stderr=stderr,
        residuals=(z - z_fit).real / weight_re + 1j * (z - z_fit).imag / weight_im,
        z_fit=z_fit,
        frequency_Hz=f,
        cost=float(best.cost),
        rms_rel=best_rms,
        success=success,
        n_starts_used=n_used,
        message=message,
        initial=dict(guess),
        kk=kk,
        weighting=weighting,
        quality=quality,
        flags=flags,
        constants=dict(constants),
        free_names=free,
        at_bound=at_bound,
        intervals=intervals,
        profiles=profiles,
    )


def _profile_limit(residual, x, k, direction, lower, upper, best, s2) -> tuple[float, bool]:
    """Where, walking from the optimum in ``direction`` (±1), the profile χ² of parameter ``k``
    (every other parameter re-optimised) has risen by ``Z_ONE_SIDED²·s2``: the one-sided 95 %
    limit on the transformed scale. Returns (limit, False), or (the fit's limit, True) when χ²
    never rises that far before it (the data do not bound the parameter on that side).
    """
    free = np.arange(x.size) != k
    target = 2 * best.cost + Z_ONE_SIDED**2 * s2
    end = lower[k] if direction < 0 else upper[k]
    start = x[free].copy()

    def chi2_at(value):
        nonlocal start

        def r(xf):
            full = x.copy()
            full[free], full[k] = xf, value
            return residual(full)

        bounds = (lower[free], upper[free])
        # χ² is compared with a threshold of ~4 s² on a total of ~n s²: 1e-6 is precise enough.
        sol = least_squares(
            r, start, bounds=bounds, method="trf", x_scale="jac", ftol=1e-6, xtol=1e-6
        )
        start = sol.x
        return 2 * sol.cost

    inside, step = x[k], PROFILE_STEP
    while True:
        trial = x[k] + direction * step
        if direction * (trial - end) >= 0:
            trial = end
        if chi2_at(trial) >= target:
            outside = trial
            break
        if trial == end:
            return float(end), True
        inside, step = trial, 2 * step
    for _ in range(PROFILE_BISECTIONS):
        mid = 0.5 * (inside + outside)
        if chi2_at(mid) >= target:
            outside = mid
        else:
            inside = mid
    return float(outside), False


def _swapped_starts(c: Circuit, free: list[str]) -> list[tuple[list[int], list[int]]]:
    """Index lists (into ``free``) of the parameters of R_k, CPE_k and of R_m, CPE_m for every
    pair of numbers k < m whose R and CPE are all fitted and whose arcs do not simply commute
    (those :func:`_arc_order_permutation` settles): swapping them gives another start."""
    slot = {n: i for i, n in enumerate(free)}
    nodes = {node.name: node for node in c.elements}
    outer = c.tree.children if isinstance(c.tree, Series) else (c.tree,)
    commuting = {a.r for a in c.arcs if a.label in {child.to_string() for child in outer}}
    numbers = []
    for name, node in nodes.items():
        k = name[len(node.element.symbol) :]
        if node.element.symbol == "CPE" and f"R{k}" in nodes:
            names = [f"R{k}", *node.param_names]
            if all(n in slot for n in names):
                numbers.append((f"R{k}", [slot[n] for n in names]))
    return [
        (ia, ib)
        for i, (ra, ia) in enumerate(numbers)
        for rb, ib in numbers[i + 1 :]
        if not (ra in commuting and rb in commuting)
    ]


def _checked_values(c: Circuit, values: Mapping[str, float] | None, what: str) -> dict:
    """``values`` (parameter → natural-unit value) checked against the circuit's names and
    bounds; an empty dict for None."""
    values = dict(values or {})
    unknown = [k for k in values if k not in c.param_names]
    if unknown:
        raise InputError(
            f"{what}: unknown parameter(s) {', '.join(map(str, unknown))} for circuit "
            f"{c.string}; expected names among {', '.join(c.param_names)}"
        )
    bad = [k for k, v in values.items() if not _inside(c, k, v)]
    if bad:
        raise InputError(
            f"{what}: {bad[0]}={values[bad[0]]} is outside its bounds "
            f"(exponents on ({ALPHA_SUPPORT[0]:g}, 1], other parameters > 0)"
        )
    return {k: float(v) for k, v in values.items()}


def _arc_order_permutation(
    c: Circuit, values: np.ndarray, high_to_low: bool, fixed: set[str] = frozenset()
) -> np.ndarray:
    """Index permutation that sorts same-kind arcs of the outer series chain by time constant.

    Arcs with a parameter in ``fixed`` (constants) keep their place."""
    perm = np.arange(c.n_params)
    outer = c.tree.children if isinstance(c.tree, Series) else (c.tree,)
    labels = {child.to_string() for child in outer}
    params = dict(zip(c.param_names, values, strict=True))
    index = {n: i for i, n in enumerate(c.param_names)}
    for kind in ("CPE", "C"):
        group = [
            a
            for a in c.arcs
            if a.kind == kind and a.label in labels and not {a.r, a.q, a.alpha} & fixed
        ]
        by_tau = sorted(group, key=lambda a: a.tau_s(params), reverse=not high_to_low)
        for slot, source in zip(group, by_tau, strict=True):
            for attr in ("r", "q", "alpha"):
                if getattr(slot, attr):
                    perm[index[getattr(slot, attr)]] = index[getattr(source, attr)]
    return perm


def _inside(c: Circuit, name: str, value) -> bool:
    low, high = c.param_bounds[c.param_names.index(name)]
    if high == 1.0:  # an exponent: the fit's support, 1 (ideal capacitor) included
        low = ALPHA_SUPPORT[0]
    return bool(
        np.isfinite(value) and low < value and (value < high or high == 1.0 and value == 1.0)
    )


def _weights(z, weighting):
    if weighting == "modulus":
        return np.abs(z), np.abs(z)
    if weighting == "proportional":
        # A component crossing zero would get an infinite weight: floor at 1 % of |Z|.
        floor = 0.01 * np.abs(z)
        return np.maximum(np.abs(z.real), floor), np.maximum(np.abs(z.imag), floor)
    scale = np.full(z.size, float(np.median(np.abs(z))))
    return scale, scale


def initial_guess(
    spectrum, circuit: str | Circuit, *, arcs_high_to_low: bool = True
) -> dict[str, float]:
    """Starting values for every parameter of ``circuit``, read off the spectrum.

    Arcs (R‖CPE, R‖C, TLM, TLMs) are matched, in string order, to the apexes of −Im(Z) vs log f
    taken from high to low frequency (the most prominent peaks; when the data show fewer
    peaks than the circuit has arcs, the missing ones are spread over the broad peak). Each arc's R
    is the real-axis span between the midpoints (in log f) to its neighbours; its CPE exponent
    follows from the apex height, α = (4/π)·atan(2·(−Im_apex)/R), and Q = 1/(R·ω_apex^α).
    Series resistors share the high-frequency intercept; a series inductor takes the inductive
    part at the highest frequency; capacitive series elements (C, CPE, W, Wo, Ws) take the
    low-frequency end.

    Returns
    -------
    dict
        Natural-unit values by parameter name.
    """
    c = parse_circuit(circuit)
    f, z, _ = spectrum_arrays(spectrum)
    order = np.argsort(f)  # ascending frequency for the signal processing below
    f, z = f[order], z[order]
    x = np.log10(f)
    height = -z.imag
    span_total = float(max(np.ptp(z.real), 1e-3 * np.max(np.abs(z))))

    apexes = _apex_frequencies(x, height, np.abs(z), len(c.arcs))
    apexes = sorted(apexes, reverse=arcs_high_to_low)
    apex_of = {arc.r: a for arc, a in zip(c.arcs, apexes, strict=True)}

    # Real-axis boundaries between consecutive arcs (high → low frequency).
    desc = sorted(apexes, reverse=True)
    re_at = lambda log_f: float(np.interp(log_f, x, z.real))  # noqa: E731
    # Above the highest apex; the highest point itself when the apex sits at the top of the data.
    hf_region = f >= 10 ** desc[0] if desc else np.ones_like(f, dtype=bool)
    r_hf = float(np.min(z.real[hf_region], initial=z.real[-1]))
    r_hf = max(r_hf, 1e-3 * span_total)
    edges = (
        [r_hf]
        + [re_at(0.5 * (a + b)) for a, b in zip(desc[:-1], desc[1:], strict=True)]
        + [float(z.real[0])]
    )
    resistance = {}
    for i, a in enumerate(desc):
        span = edges[i + 1] - edges[i]
        apex_height = float(np.interp(a, x, height))
        from_height = 2 * max(apex_height, 0) / math.tan(ALPHA_GUESS * math.pi / 4)
        last = i == len(desc) - 1
        r = max(span, from_height) if last else span
        resistance[a] = max(r, from_height, 1e-3 * span_total)

    guess: dict[str, float] = {}
    for arc in c.arcs:
        a = apex_of[arc.r]
        r = resistance[a]
        omega_apex = 2 * math.pi * 10**a
        apex_height = max(float(np.interp(a, x, height)), 1e-6 * r)
        # A transmission line's arc is lower than a semicircle (−Im ≤ 0.42 R, not 0.5 R) and
        # peaks where (R₁+R₂)·Q·ω^α ≈ 10 (not 1): scale both so its guess starts near it.
        tlm = arc.kind in ("TLM", "TLMs")
        shape, apex_product = (0.5 / TLM_APEX_HEIGHT, TLM_APEX_PRODUCT) if tlm else (1.0, 1.0)
        alpha = float(np.clip(4 / math.pi * math.atan(2 * shape * apex_height / r), 0.6, 0.98))
        guess[arc.r] = r
        if arc.kind == "C":
            guess[arc.q] = 1 / (r * omega_apex)
        else:
            guess[arc.alpha] = alpha
            guess[arc.q] = apex_product / (r * omega_apex**alpha)
        if arc.kind == "TLM":
            guess[arc.r.replace("_0", "_1")] = 0.01 * r

    omega_min, omega_max = 2 * math.pi * f[0], 2 * math.pi * f[-1]
    lf_height = max(float(height[0]), 1e-3 * span_total)
    lf_tail = max(float(z.real[0]) - edges[-1 if c.arcs else 0], 0.1 * span_total)
    top_series_r = [n for n in _top_series(c.tree) if n.element.symbol == "R"]
    for node in c.elements:
        names = node.param_names
        if all(n in guess for n in names):
            continue
        symbol = node.element.symbol
        if symbol == "R":
            share = r_hf / len(top_series_r) if node in top_series_r else span_total / 2
            guess[names[0]] = share
        elif symbol == "L":
            inductive = max(float(z.imag[-1]), 1e-3 * float(np.abs(z[-1])))
            guess[names[0]] = inductive / omega_max
        elif symbol == "C":
            guess[names[0]] = 1 / (omega_min * lf_height)
        elif symbol == "CPE":
            guess[names[1]] = ALPHA_GUESS
            guess[names[0]] = math.sin(ALPHA_GUESS * math.pi / 2) / (
                omega_min**ALPHA_GUESS * lf_height
            )
        elif symbol == "W":
            guess[names[0]] = lf_height * math.sqrt(omega_min)
        elif symbol in ("Wo", "Ws"):
            guess[names[0]] = lf_tail
            guess[names[1]] = 1 / omega_min
        else:  # an element without a rule of its own (none today): a scale-free start
            for n, (_, high) in zip(names, node.element.bounds, strict=True):
                guess.setdefault(n, ALPHA_GUESS if high == 1.0 else 1.0)
    return {n: float(guess[n]) for n in c.param_names}


def _top_series(tree) -> list[ElementNode]:
    """Elements directly in the outermost series chain."""
    children = tree.children if isinstance(tree, Series) else (tree,)
    return [child for child in children if isinstance(child, ElementNode)]


def _apex_frequencies(
    x: np.ndarray, height: np.ndarray, modulus: np.ndarray, n: int
) -> list[float]:
    """``n`` log10-frequencies of arc apexes in −Im(Z) = ``height`` vs log10 f (x ascending)."""
    if n == 0:
        return []
    smooth = np.convolve(np.pad(height, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    # Arcs are the capacitive (−Im > 0) part: a lead inductance's −Im < 0 at the top of the
    # sweep (tens of Ω at MHz) must not set the scale.
    scale = max(float(np.max(smooth)), 1e-300)
    # Noise bumps must not pass for arcs: a peak's prominence must exceed 3 local noise sd
    # (noise relative to |Z|, from the scatter about the 3-point mean, which keeps √(2/3) of it).
    noise_rel = 1.4826 * float(np.median(np.abs(height - smooth) / modulus)) / math.sqrt(2 / 3)
    peaks, props = find_peaks(smooth, prominence=0.02 * scale)
    keep = props["prominences"] >= 3 * noise_rel * modulus[peaks]
    peaks, prominences = peaks[keep], props["prominences"][keep]
    chosen = [x[i] for i in peaks[np.argsort(prominences)[::-1]]][:n]
    if len(chosen) < n:
        # Overlapping arcs merge into one broad peak: spread the missing apexes over the band
        # where −Im is at least a quarter of its maximum, as far from the others as possible.
        band = x[smooth >= 0.25 * scale]
        candidates = np.linspace(band.max(), band.min(), 2 * n + 1)
        while len(chosen) < n:
            distance = [min((abs(v - p) for p in chosen), default=np.inf) for v in candidates]
            chosen.append(float(candidates[int(np.argmax(distance))]))
    return [float(v) for v in chosen]
