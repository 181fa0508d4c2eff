"""PyMC model of one impedance spectrum for an equivalent circuit.

The model, top to bottom (internal variables as in :mod:`inference.priors`)::

    log R_k ~ Normal            resistances and other positive parameters, log scale
    log τ_k ~ Normal            one per arc, in its own part of the time window
    z_α     ~ Normal            α = 0.5 + 0.5·sigmoid(z_α)
    Q_k     = τ_k^α / R_k       (C_k = τ_k / R_k for R‖C; R = R₁ + R₂ for a TLM)
    σ_rel   ~ HalfNormal(0.05)
    Re Z_i  ~ Normal(Re Z(θ; f_i), σ_rel·|Z_i|)     (Student-t with ν = 4 on request)
    Im Z_i  ~ Normal(Im Z(θ; f_i), σ_rel·|Z_i|)

The noise scale uses the *measured* |Z_i|, so the weights do not move with the parameters.

Constants (``fit_spectrum(..., constants={"R0": 10.0})``) replace their internal variable by a
``pm.Data`` value: a fixed R or α is used as given; a fixed CPE coefficient Q makes the arc's
τ = (R·Q)^(1/α) a function of its R and α instead of a free variable.

R‖CPE and R‖C arcs are evaluated in their closed form in (R, τ, α),
``Z = R / (1 + (jωτ)^α)`` with ``(jωτ)^α = e^{α(ln ω + ln τ)}·(cos απ/2 + j sin απ/2)``, and
every other element through the circuit's own element functions. Same impedance as
``Circuit.evaluate`` (tested), but the PyTensor → JAX gradient costs 1.1 µs instead of 8.4 µs on
a 2-arc circuit with 69 points, which halves the time per spectrum.
Everything that changes from spectrum to spectrum — frequencies, data, prior locations and
scales — is a ``pm.Data`` container, so one compiled sampler serves every spectrum of the same
circuit and prior structure (:func:`model_key`), whatever its length: the data are padded to a
length bucket (:func:`padded_length`) and a ``mask`` container (1 on a measured point, 0 on
padding) multiplies each point's log-likelihood, so padding adds nothing to the posterior, to
its gradient or to the pointwise log-likelihood (:func:`point_log_likelihood`).
"""

from __future__ import annotations

import math

import numpy as np

from inference.priors import Prior, alpha_from_logit, logit_from_alpha, q_element

LIKELIHOODS = ("normal", "studentt")
#: Degrees of freedom of the Student-t likelihood (heavy enough tails for a few outliers).
STUDENT_T_NU = 4.0
#: Floor for the relative noise of the starting point (a perfect lsq fit would give 0).
MIN_SIGMA_REL = 1e-4
#: Shortest length bucket (points); see :func:`padded_length`.
MIN_BUCKET = 16


def internal_name(circuit, param: str) -> str:
    """Name of the internal variable that carries a circuit parameter."""
    for arc in circuit.arcs:
        if arc.q == param:
            return f"log_tau_{q_element(param)}"
    bounds = circuit.param_bounds[circuit.param_names.index(param)]
    return f"logit_{param}" if tuple(bounds) == (0.0, 1.0) else f"log_{param}"


def natural_params(circuit, internal: dict, xp=np, constants: dict | None = None) -> dict:
    """Natural-unit circuit parameters (Ω, F, …) and arc time constants ``tau_<CPE>`` (s).

    Parameters
    ----------
    circuit : parsed circuit.
    internal : internal variable name → value (numpy arrays or PyTensor variables).
    xp : array module of the values.
    constants : fixed parameters, natural name → value; their internal variables are unused.
    """
    constants = constants or {}
    out = {}
    for name in circuit.param_names:
        key = internal_name(circuit, name)
        if name in constants:
            out[name] = constants[name]
        elif key.startswith("logit_"):
            out[name] = alpha_from_logit(internal[key], xp)
        elif not key.startswith("log_tau_"):
            out[name] = xp.exp(internal[key])
    for arc in circuit.arcs:
        r = out[arc.r]
        if arc.kind == "TLM":
            r = r + out[circuit.param_names[circuit.param_names.index(arc.r) + 1]]
        alpha = out[arc.alpha] if arc.alpha else 1.0
        if arc.q in constants:  # τ^α = R·Q
            tau = xp.exp((xp.log(r) + xp.log(constants[arc.q])) / alpha)
        else:
            tau = xp.exp(internal[f"log_tau_{q_element(arc.q)}"])
            out[arc.q] = tau / r if arc.alpha is None else tau ** out[arc.alpha] / r
        out[f"tau_{q_element(arc.q)}"] = tau
    return out


def evaluate(circuit, natural: dict, internal: dict, frequency_Hz, xp=np):
    """(Re Z, Im Z) in Ω with arcs in closed form (see module docstring).

    Parameters
    ----------
    circuit : parsed circuit.
    natural : natural-unit parameters (:func:`natural_params`).
    internal : internal variables (for the arcs' ``log_tau_<CPE>``).
    frequency_Hz : frequencies (Hz).
    xp : array module.
    """
    from inference.circuits.complexmath import combine
    from inference.circuits.parser import ElementNode, Series

    arcs = {arc.label: arc for arc in circuit.arcs if arc.kind in ("CPE", "C")}
    omega = 2 * np.pi * frequency_Hz
    log_omega = xp.log(omega)

    def walk(node):
        if isinstance(node, ElementNode):
            values = [natural[n] for n in node.param_names]
            return node.element.impedance(xp, values, omega)
        arc = arcs.get(node.to_string())
        if arc is not None:
            alpha = natural[arc.alpha] if arc.alpha else 1.0
            q = q_element(arc.q)
            key = f"log_tau_{q}"  # absent when Q is a constant: τ is then derived
            log_tau = internal[key] if key in internal else xp.log(natural[f"tau_{q}"])
            x = xp.exp(alpha * (log_omega + log_tau))
            xc, xs = x * xp.cos(alpha * np.pi / 2), x * xp.sin(alpha * np.pi / 2)
            r_over = natural[arc.r] / ((1 + xc) ** 2 + xs**2)
            return r_over * (1 + xc), -r_over * xs
        parts = [walk(child) for child in node.children]
        return combine(parts, series=isinstance(node, Series))

    re, im = walk(circuit.tree)
    zero = 0 * omega
    return re + zero, im + zero


def internal_from_natural(circuit, params: dict) -> dict[str, float]:
    """Inverse of :func:`natural_params` for one point (e.g. a least-squares solution)."""
    out = {}
    for name in circuit.param_names:
        key = internal_name(circuit, name)
        if key.startswith("logit_"):
            out[key] = logit_from_alpha(params[name])
        elif not key.startswith("log_tau_"):
            out[key] = float(np.log(params[name]))
    for arc in circuit.arcs:
        out[f"log_tau_{q_element(arc.q)}"] = float(np.log(arc.tau_s(params)))
    return out


def model_key(circuit, priors: dict[str, Prior], likelihood: str, constants=()) -> tuple:
    """What a compiled sampler depends on: structure only, never the numbers or the length."""
    return (
        "eis",
        circuit.string,
        likelihood,
        tuple((k, p.dist) for k, p in priors.items()),
        tuple(constants),
    )


def padded_length(n_points: int) -> int:
    """Length the data of an ``n_points`` spectrum are padded to: the smallest of 16, 24, 32,
    48, 64, 96, 128, 192, … (2^k and 1.5·2^k) that holds them.

    Each bucket is one compiled sampler. A padded point costs as much as a measured one (the
    likelihood is evaluated there, then masked): 69 points padded to 128 took 24 % more CPU
    time per fit, to 256 twice as much. Buckets at most 1.5× apart keep that cost below ~15 %
    on average, and a handful of them covers the lengths of real spectra.
    """
    length = MIN_BUCKET
    while length < n_points:
        length = length * 3 // 2 if length & (length - 1) == 0 else length * 4 // 3
    return length


def observation_logp(observed, mu, sd, likelihood: str = "normal", xp=np):
    """Log-density of each observed value (Re or Im of Z, Ω) given the model's ``mu`` and ``sd``.

    Normal, or Student-t with ν = :data:`STUDENT_T_NU`; ``xp`` is numpy or ``pytensor.tensor``.
    """
    r = (observed - mu) / sd
    if likelihood == "studentt":
        nu = STUDENT_T_NU
        const = math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) - 0.5 * math.log(nu * math.pi)
        return const - xp.log(sd) - (nu + 1) / 2 * xp.log1p(r**2 / nu)
    return -0.5 * r**2 - xp.log(sd) - 0.5 * math.log(2 * math.pi)


def _point_logp(circuit, internal: dict, data: dict, likelihood: str, xp, constants=None):
    """Natural parameters and the masked log-likelihood of each frequency (Re + Im).

    ``constants``: fixed parameters, natural name → value (see :func:`natural_params`).
    """
    natural = natural_params(circuit, internal, xp, constants)
    re, im = evaluate(circuit, natural, internal, data["frequency_Hz"], xp=xp)
    z_real, z_imag = data["z_real"], data["z_imag"]
    sd = internal["sigma_rel"] * xp.sqrt(z_real**2 + z_imag**2)
    both = observation_logp(z_real, re, sd, likelihood, xp) + observation_logp(
        z_imag, im, sd, likelihood, xp
    )
    return natural, data["mask"] * both


def point_log_likelihood(
    circuit, posterior, spectrum, likelihood: str = "normal", constants: dict | None = None
) -> np.ndarray:
    """Pointwise log-likelihood (Re + Im of each measured frequency) of every posterior draw.

    Parameters
    ----------
    circuit : parsed circuit.
    posterior : the internal variables (``log_R1``, ``log_tau_CPE1``, …, ``sigma_rel``) as
        arrays of one shape, e.g. (chain, draw); an ``xr.Dataset`` works.
    spectrum : the fitted spectrum.
    likelihood : as fitted.
    constants : the fixed parameters of the fit (natural name → value), if any.

    Returns
    -------
    Array of shape (*draw shape, frequency), measured points only (no padding).
    """
    data = model_data(spectrum, {}, length=spectrum.sizes["frequency"])
    constants = dict(constants or {})
    free = [p for p in circuit.param_names if p not in constants]
    names = {internal_name(circuit, p) for p in free} | {"sigma_rel"}
    internal = {k: np.asarray(posterior[k], dtype=float)[..., None] for k in names}
    return _point_logp(circuit, internal, data, likelihood, np, constants)[1]


def build_model(
    circuit,
    priors: dict[str, Prior],
    likelihood: str = "normal",
    n_points: int = 64,
    constants: tuple[str, ...] = (),
):
    """The PyMC model of one spectrum (data are placeholders; see :func:`model_data`).

    Parameters
    ----------
    circuit : parsed circuit.
    priors : internal variable name → :class:`Prior`, in model order (none for constants).
    likelihood : ``"normal"`` or ``"studentt"``.
    n_points : length of the placeholder data (the containers take any length later).
    constants : names of the fixed parameters; their values are the ``constants`` data.
    """
    import pymc as pm
    import pytensor.tensor as pt

    names = list(priors)
    with pm.Model() as model:
        data = {
            name: pm.Data(name, np.ones(n_points))
            for name in ("frequency_Hz", "z_real", "z_imag", "mask")
        }
        mu = pm.Data("prior_mu", np.zeros(len(names)))
        sigma = pm.Data("prior_sigma", np.ones(len(names)))
        internal = {}
        for i, name in enumerate(names):
            if priors[name].dist == "halfnormal":
                internal[name] = pm.HalfNormal(name, sigma=sigma[i])
            else:
                internal[name] = pm.Normal(name, mu=mu[i], sigma=sigma[i])
        fixed = {}
        if constants:
            values = pm.Data("constants", np.ones(len(constants)))
            fixed = {name: values[i] for i, name in enumerate(constants)}
        natural, logp = _point_logp(circuit, internal, data, likelihood, pt, fixed)
        for name, value in natural.items():
            pm.Deterministic(name, value)
        pm.Potential("log_likelihood", logp.sum())
    return model


def model_data(
    spectrum,
    priors: dict[str, Prior],
    constants: dict[str, float] | None = None,
    length: int | None = None,
) -> dict:
    """The values of the model's ``pm.Data`` containers for one spectrum.

    The per-point arrays are padded to ``length`` (default :func:`padded_length`) by repeating
    the last point, with ``mask`` 0 there and 1 on the measured points; ``constants`` (natural
    name → value) fill the ``constants`` container.
    """
    f = np.asarray(spectrum["frequency"].values, dtype=float)
    n = f.size
    length = padded_length(n) if length is None else length
    if length < n:
        raise ValueError(f"cannot pad {n} points to {length}")

    def pad(values):
        values = np.asarray(values, dtype=float)
        return np.concatenate([values, np.full(length - n, values[-1])])

    data = {
        "frequency_Hz": pad(f),
        "z_real": pad(spectrum["z_real"].values),
        "z_imag": pad(spectrum["z_imag"].values),
        "mask": np.concatenate([np.ones(n), np.zeros(length - n)]),
        "prior_mu": np.array([p.mu for p in priors.values()]),
        "prior_sigma": np.array([p.sigma for p in priors.values()]),
    }
    if constants:
        data["constants"] = np.array(list(constants.values()), dtype=float)
    return data


def without_constants(circuit, priors: dict[str, Prior], constants) -> dict[str, Prior]:
    """``priors`` less the internal variables that ``constants`` (names) replace."""
    replaced = {internal_name(circuit, name) for name in constants}
    return {k: p for k, p in priors.items() if k not in replaced}


def initial_point(circuit, params: dict, spectrum, priors: dict[str, Prior]) -> dict[str, float]:
    """Starting values of the free variables from natural-unit parameters (a lsq fit).

    ``sigma_rel`` starts at the rms relative residual of those parameters.
    """
    init = internal_from_natural(circuit, params)
    f = spectrum["frequency"].values
    z = spectrum["z_real"].values + 1j * spectrum["z_imag"].values
    resid = (circuit.impedance(params, f) - z) / np.abs(z)
    rms = float(np.sqrt(np.mean(resid.real**2 + resid.imag**2) / 2))
    init["sigma_rel"] = max(rms, MIN_SIGMA_REL) if np.isfinite(rms) else 0.01
    return {k: init[k] for k in priors}
