"""Circuit elements: one function each, registered with its parameters' units and bounds.

Every element returns its impedance as a ``(re, im)`` pair (Ω), computed with real arithmetic
through :mod:`inference.circuits.complexmath` so the same code serves numpy (fits, simulation)
and PyTensor (sampling). ``omega`` is the angular frequency 2πf in rad/s. Parameter names
follow impedance.py: a one-parameter element ``R1`` has the parameter ``R1``; a
multi-parameter element ``CPE1`` has ``CPE1_0``, ``CPE1_1``.

The registry is read-only (:data:`ELEMENTS`); a new element is one decorated function here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from inference.circuits.complexmath import (
    cmul,
    crecip,
    cscale,
    ctanh,
    jw_power,
    polar,
)

POSITIVE = (0.0, math.inf)
#: CPE exponents: 1 is an ideal capacitor, 0 a resistor.
EXPONENT = (0.0, 1.0)


@dataclass(frozen=True)
class Element:
    """A registered element type.

    Attributes
    ----------
    symbol : name prefix in circuit strings (``R``, ``CPE``, ``TLM``…).
    units : unit of each parameter, in impedance.py's order.
    bounds : natural-unit (low, high) of each parameter; (0, inf) → log transform in fits,
        (0, 1) → logit.
    impedance : ``impedance(xp, params, omega) -> (re, im)`` in Ω.
    """

    symbol: str
    units: tuple[str, ...]
    bounds: tuple[tuple[float, float], ...]
    impedance: Callable
    doc: str

    @property
    def n_params(self) -> int:
        return len(self.units)


_registry: dict[str, Element] = {}
ELEMENTS = MappingProxyType(_registry)


def element(units: tuple[str, ...], bounds: tuple[tuple[float, float], ...] | None = None):
    """Register the decorated function as the element named by the function."""

    def decorate(func: Callable) -> Callable:
        symbol = func.__name__
        if symbol in _registry:
            raise ValueError(f"element {symbol!r} is registered twice")
        spec = bounds if bounds is not None else (POSITIVE,) * len(units)
        if len(spec) != len(units):
            raise ValueError(f"element {symbol!r}: {len(units)} units but {len(spec)} bounds")
        _registry[symbol] = Element(symbol, tuple(units), tuple(spec), func, func.__doc__ or "")
        return func

    return decorate


@element(units=("Ohm",))
def R(xp, p, omega):
    """Resistor: Z = R."""
    return p[0], 0.0


@element(units=("F",))
def C(xp, p, omega):
    """Capacitor: Z = 1 / (jωC) = −j / (ωC)."""
    return 0.0, -1.0 / (omega * p[0])


@element(units=("H",))
def L(xp, p, omega):
    """Inductor: Z = jωL."""
    return 0.0, omega * p[0]


@element(units=("Ohm^-1 s^a", ""), bounds=(POSITIVE, EXPONENT))
def CPE(xp, p, omega):
    """Constant phase element: Z = 1 / (Q·(jω)^α), Q = p[0], α = p[1]."""
    return crecip(cscale(p[0], jw_power(xp, omega, p[1])))


@element(units=("Ohm s^-1/2",))
def W(xp, p, omega):
    """Semi-infinite Warburg element: Z = A_W·(1 − j) / √ω, A_W = p[0]."""
    magnitude = p[0] / xp.sqrt(omega)
    return magnitude, -magnitude


def _sqrt_jw_tau(xp, omega, tau):
    """√(jωτ) = √(ωτ)·e^{jπ/4}."""
    return polar(xp, xp.sqrt(omega * tau), math.pi / 4)


@element(units=("Ohm", "s"))
def Wo(xp, p, omega):
    """Open (finite-space, reflective) Warburg: Z = Z0·coth(√(jωτ)) / √(jωτ).

    Z0 = p[0] (Ω), τ = p[1] = L²/D (s). Capacitive at low frequency (Z → Z0/(jωτ) + Z0/3).
    """
    s = _sqrt_jw_tau(xp, omega, p[1])
    return cscale(p[0], crecip(cmul(s, ctanh(xp, s))))


@element(units=("Ohm", "s"))
def Ws(xp, p, omega):
    """Short (finite-length, transmissive) Warburg: Z = Z0·tanh(√(jωτ)) / √(jωτ).

    Z0 = p[0] (Ω), τ = p[1] = L²/D (s). Resistive at low frequency (Z → Z0).
    """
    s = _sqrt_jw_tau(xp, omega, p[1])
    return cscale(p[0], cmul(ctanh(xp, s), crecip(s)))


@element(units=("Ohm", "Ohm", "Ohm^-1 s^a", ""), bounds=(POSITIVE, POSITIVE, POSITIVE, EXPONENT))
def TLM(xp, p, omega):
    """Two-rail transmission line of a composite between two blocking contacts (physics.md §2.5).

    Parameters: ``TLM_0`` = R₁, total resistance (Ω) of the rail contacted at *both* ends
    (the ionic rail in Li|SE|composite|SE|Li, where the separators block electrons);
    ``TLM_1`` = R₂, total resistance (Ω) of the other rail (electronic), blocked at both ends;
    ``TLM_2`` = Q, CPE coefficient of the whole rail-to-rail interface (Ω⁻¹ s^α);
    ``TLM_3`` = α, its exponent.

    With χᵢ = Rᵢ/L per length and ζ = L/(Q(jω)^α) the interfacial impedance times length,
    λ = √(ζ/(χ₁+χ₂)) and ν = L/λ = √((R₁+R₂)·Q·(jω)^α)::

        Z = χ₁χ₂L/(χ₁+χ₂) + 2χ₁²λ·tanh(L/2λ)/(χ₁+χ₂)
          = R₁R₂/(R₁+R₂) + 2R₁²/(R₁+R₂) · tanh(ν/2)/ν

    (physics.md writes the squared rail as χ₂: it is the contacted one.) Limits:
    ω → 0 gives R₁ (at DC only the contacted rail carries current); ω → ∞ gives R₁‖R₂;
    R₂ → 0 gives 2R₁·tanh(ν/2)/ν, a 45° line that bends into an arc ending at R₁ (not the
    R₁/3 + capacitive tail of a single-sided porous electrode: here DC passes through rail 1);
    R₂ → ∞ gives the plain resistor R₁. Characteristic time τ ≈ ((R₁+R₂)Q)^(1/α).
    """
    r1, r2, q, alpha = p[0], p[1], p[2], p[3]
    total = r1 + r2
    nu = polar(xp, xp.sqrt(total * q) * xp.exp(0.5 * alpha * xp.log(omega)), alpha * math.pi / 4)
    half_nu = cscale(0.5, nu)
    line = cscale(2 * r1 * r1 / total, cmul(ctanh(xp, half_nu), crecip(nu)))
    return r1 * r2 / total + line[0], line[1]


@element(units=("Ohm", "Ohm^-1 s^a", ""), bounds=(POSITIVE, POSITIVE, EXPONENT))
def TLMs(xp, p, omega):
    """Transmission line of a composite whose electronic rail is short (σ_el ≫ σ_ion).

    The :func:`TLM` with R₂ → 0. Parameters: ``TLMs_0`` = R₁, resistance of the ionic rail (Ω),
    contacted at both ends; ``TLMs_1`` = Q, CPE coefficient of the rail-to-rail interface
    (Ω⁻¹ s^α); ``TLMs_2`` = α. With ν = √(R₁·Q·(jω)^α)::

        Z = R₁ · tanh(ν/2) / (ν/2)

    a 45° line bending into an arc that ends at R₁ (ω → 0); −Im peaks near ω^α·R₁Q ≈ 10.2
    (the CPE generalisation of the short Warburg ``Ws``, Z0 = R₁, τ^α = R₁Q/4).

    Why it exists: the full line is *exactly* a resistor plus this one,
    ``TLM(R₁, R₂, Q, α) = R₁R₂/(R₁+R₂) + TLMs(R₁²/(R₁+R₂), Q·(R₁+R₂)²/R₁², α)``, so in series
    with a free resistance (the leads, the separators) a spectrum cannot tell R₂ at all: the
    4-parameter ``TLM`` leaves an exact ridge that samplers cannot cross. Fitted to a composite
    with σ_el/σ_ion = r, ``TLMs_0`` is R_ion·r/(1 + r): 0.1 % low at r = 1000, 2 % at r = 50;
    correct it with a measured σ_el where r is small (R_ion = TLMs_0 + R_ion‖R_el).
    """
    r1, q, alpha = p[0], p[1], p[2]
    nu = polar(xp, xp.sqrt(r1 * q) * xp.exp(0.5 * alpha * xp.log(omega)), alpha * math.pi / 4)
    half_nu = cscale(0.5, nu)
    return cscale(r1, cmul(ctanh(xp, half_nu), crecip(half_nu)))
