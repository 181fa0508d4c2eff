"""Prior specifications for the EIS model, as plain data stored with every result.

A prior is a :class:`Prior` (distribution name, location, scale) on one *internal* variable of
the model; the set of priors for a circuit is a ``dict[str, Prior]`` in model order that
serialises to JSON (:func:`priors_to_json`) and goes into the result's attrs.

Internal variables (natural-unit parameters are derived from them):

``log_<R>``          log of a resistance (Ω) and of any other positive parameter, e.g. ``log_R1``;
``log_tau_<CPE>``    log of an arc's time constant τ (s), τ^α = R·Q, e.g. ``log_tau_CPE1``;
``logit_<α>``        α = ALPHA_LOW + (1 − ALPHA_LOW)·sigmoid(z) for a CPE exponent, e.g.
                     ``logit_CPE1_1``;
``sigma_rel``        relative noise: sd of Re and Im is ``sigma_rel·|Z|``.

Defaults are weakly informative and come from the *scale of the data*, never from a fit to it:
resistances centred on the span of Re(Z) (sd 3 in natural log, ±1.3 decades), each arc's log τ
in its own part of the measured time window (arcs in circuit order, first arc = highest
frequency), α with median 0.85 (90 % of the prior in 0.41–0.98), ``sigma_rel ~ HalfNormal(0.05)``.

Users override any of them with ``priors={"log_R1": {"mu": 4.6, "sigma": 1.0}, …}`` (keys of
the internal variables, fields of :class:`Prior`); unknown keys are an :class:`InputError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from inference.errors import InputError

DISTRIBUTIONS = ("normal", "halfnormal")
#: Support (ALPHA_LOW, 1) of CPE exponents, the same in least squares and in the Bayesian model.
#: Real spectra need exponents below 0.5: a blocking-electrode CPE of a pellet at 120 °C fits
#: at α = 0.43 (s04147, EISFitpython), anomalous-diffusion and porous-electrode CPEs reach
#: 0.3–0.5, so a support starting at 0.5 piled posteriors against it and moved the other
#: parameters to compensate. Below 0.2 a CPE is within 18° of a resistor and its τ = (RQ)^(1/α)
#: is no longer a time constant of anything measured.
ALPHA_LOW = 0.2
ALPHA_SUPPORT = (ALPHA_LOW, 1.0)
#: Prior on the logit of α: median 0.85, 90 % in 0.41–0.98.
ALPHA_PRIOR_MU, ALPHA_PRIOR_SD = 1.466, 1.5
#: Width (natural log) of the resistance priors: ±1.3 decades at one sd.
LOG_R_SD = 3.0
#: Width (natural log) of priors on other positive parameters whose scale is only guessed.
LOG_OTHER_SD = 5.0
#: Decades added on each side of the measured time window when placing arcs' log τ priors.
TAU_MARGIN_DECADES = 0.5


@dataclass(frozen=True)
class Prior:
    """One prior: ``dist`` in :data:`DISTRIBUTIONS` with location ``mu`` and scale ``sigma``.

    ``halfnormal`` ignores ``mu``. ``note`` says where the default came from.
    """

    dist: str
    mu: float
    sigma: float
    note: str = ""

    def __post_init__(self):
        if self.dist not in DISTRIBUTIONS:
            raise InputError(f"prior dist {self.dist!r}; expected one of {DISTRIBUTIONS}")
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma) and self.sigma > 0):
            raise InputError(f"prior needs finite mu and sigma > 0, got {self.mu}, {self.sigma}")


def alpha_from_logit(z, xp=np):
    """α = ALPHA_LOW + (1 − ALPHA_LOW)·sigmoid(z)."""
    return ALPHA_LOW + (1 - ALPHA_LOW) / (1 + xp.exp(-z))


def logit_from_alpha(alpha):
    """Inverse of :func:`alpha_from_logit` (float or array), clipped inside the open interval."""
    u = (np.clip(alpha, ALPHA_LOW + 1e-4, 1 - 1e-4) - ALPHA_LOW) / (1 - ALPHA_LOW)
    z = np.log(u / (1 - u))
    return float(z) if np.ndim(z) == 0 else z


def _unit_scale_log(unit: str, z_scale_ohm: float, omega_mid: float, omega_max: float) -> float:
    """Rough natural-log location of a positive parameter of the given unit."""
    log_z, log_w = math.log(z_scale_ohm), math.log(omega_mid)
    return {
        "Ohm": log_z,
        "F": -log_w - log_z,
        "Ohm^-1 s^a": -log_w - log_z,
        "H": log_z - math.log(omega_max),
        "Ohm s^-1/2": log_z + 0.5 * log_w,
        "s": -log_w,
    }.get(unit, 0.0)


def default_priors(circuit, frequency_Hz, z_real, z_imag) -> dict[str, Prior]:
    """Default priors for ``circuit`` given the data's scales (not a fit to them).

    Parameters
    ----------
    circuit : parsed :class:`~inference.circuits.Circuit`; each arc's capacitance/CPE
        coefficient is replaced by the arc's log τ.
    frequency_Hz, z_real, z_imag : the spectrum (Hz, Ω).
    """
    f = np.asarray(frequency_Hz, dtype=float)
    zr = np.asarray(z_real, dtype=float)
    zi = np.asarray(z_imag, dtype=float)
    z_scale = float(max(np.ptp(zr), np.max(np.hypot(zr, zi)) * 1e-3, 1e-12))
    omega = 2 * np.pi * f
    omega_mid = float(np.exp(np.mean(np.log([omega.min(), omega.max()]))))
    priors: dict[str, Prior] = {}
    arc_of = {}
    for k, arc in enumerate(circuit.arcs):
        arc_of[arc.q] = ("Q", k)
    n_arcs = len(circuit.arcs)
    margin = TAU_MARGIN_DECADES * math.log(10)
    lo = -math.log(omega.max()) - margin
    hi = -math.log(omega.min()) + margin
    width = (hi - lo) / max(n_arcs, 1)
    for name, unit, bounds in zip(
        circuit.param_names, circuit.param_units, circuit.param_bounds, strict=True
    ):
        role = arc_of.get(name)
        if role is not None and role[0] == "Q":
            k = role[1]
            priors[f"log_tau_{q_element(name)}"] = Prior(
                "normal",
                lo + (k + 0.5) * width,
                width / 2,
                f"arc {k + 1} of {n_arcs}: its share of the time window 1/(2π f)",
            )
        elif _is_exponent(bounds):
            priors[f"logit_{name}"] = Prior(
                "normal",
                ALPHA_PRIOR_MU,
                ALPHA_PRIOR_SD,
                f"alpha median 0.85 on ({ALPHA_LOW:g}, 1)",
            )
        elif unit == "Ohm":
            priors[f"log_{name}"] = Prior("normal", math.log(z_scale), LOG_R_SD, "span of Re(Z)")
        else:
            priors[f"log_{name}"] = Prior(
                "normal",
                _unit_scale_log(unit, z_scale, omega_mid, float(omega.max())),
                LOG_OTHER_SD,
                f"order of magnitude from |Z| and ω for unit {unit}",
            )
    priors["sigma_rel"] = Prior("halfnormal", 0.0, 0.05, "relative noise on Re and Im")
    return priors


def q_element(param_name: str) -> str:
    """Element name of a parameter: ``CPE1_0`` → ``CPE1``."""
    return param_name.rsplit("_", 1)[0] if "_" in param_name else param_name


def _is_exponent(bounds) -> bool:
    return tuple(bounds) == (0.0, 1.0)


def apply_overrides(priors: dict[str, Prior], overrides: dict | None) -> dict[str, Prior]:
    """Replace fields of the default priors with a user's ``{name: {field: value}}``."""
    if not overrides:
        return priors
    out = dict(priors)
    for name, fields in overrides.items():
        if name not in out:
            raise InputError(f"priors: unknown variable {name!r}; this model has {', '.join(out)}")
        if isinstance(fields, Prior):
            out[name] = fields
            continue
        if not isinstance(fields, dict):
            raise InputError(f"priors[{name!r}] must be a dict of mu/sigma/dist, got {fields!r}")
        unknown = set(fields) - {"dist", "mu", "sigma", "note"}
        if unknown:
            raise InputError(
                f"priors[{name!r}]: unknown field(s) {sorted(unknown)}; expected dist, mu, sigma"
            )
        out[name] = replace(
            out[name],
            **{k: (float(v) if k in ("mu", "sigma") else v) for k, v in fields.items()},
            note="user",
        )
    return out


def priors_to_json(priors: dict[str, Prior]) -> str:
    """Serialise priors for a result's attrs."""
    return json.dumps({k: asdict(v) for k, v in priors.items()})


def priors_from_json(text: str) -> dict[str, Prior]:
    """Inverse of :func:`priors_to_json`."""
    return {k: Prior(**v) for k, v in json.loads(text).items()}


def structure(priors: dict[str, Prior]) -> tuple:
    """What the compiled model depends on (names and distribution kinds, not the numbers)."""
    return tuple((k, p.dist) for k, p in priors.items())
