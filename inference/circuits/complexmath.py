"""Complex arithmetic on (real, imaginary) pairs, generic over the array module.

PyTensor cannot differentiate through complex numbers, so every impedance in sigmalab is
carried as a pair ``(re, im)`` of real arrays. Each helper takes the array module ``xp``
(``numpy``, ``pytensor.tensor`` or ``jax.numpy``) and uses only functions all three share.
Scalars such as ``0`` are valid components (a resistor has ``im = 0``).
"""

from __future__ import annotations

import math

Pair = tuple  # (re, im)


def cadd(a: Pair, b: Pair) -> Pair:
    """a + b."""
    return a[0] + b[0], a[1] + b[1]


def cmul(a: Pair, b: Pair) -> Pair:
    """a · b."""
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def cscale(k, a: Pair) -> Pair:
    """k · a for a real k."""
    return k * a[0], k * a[1]


def crecip(a: Pair) -> Pair:
    """1 / a."""
    d = a[0] * a[0] + a[1] * a[1]
    return a[0] / d, -a[1] / d


def combine(parts: list[Pair], series: bool) -> Pair:
    """Impedance of branches in series (Σ Z) or in parallel (1 / Σ 1/Z)."""
    if series:
        total = parts[0]
        for part in parts[1:]:
            total = cadd(total, part)
        return total
    admittance = crecip(parts[0])
    for part in parts[1:]:
        admittance = cadd(admittance, crecip(part))
    return crecip(admittance)


def cdiv(a: Pair, b: Pair) -> Pair:
    """a / b."""
    return cmul(a, crecip(b))


def polar(xp, magnitude, phase) -> Pair:
    """magnitude · exp(j·phase)."""
    return magnitude * xp.cos(phase), magnitude * xp.sin(phase)


def jw_power(xp, omega, alpha) -> Pair:
    """(jω)^α = ω^α·(cos(απ/2) + j·sin(απ/2)) for ω > 0 (rad/s) and real α."""
    return polar(xp, xp.exp(alpha * xp.log(omega)), alpha * (math.pi / 2))


def csqrt(xp, a: Pair) -> Pair:
    """Principal square root, through the polar form (continuous away from the negative axis)."""
    modulus = xp.sqrt(a[0] * a[0] + a[1] * a[1])
    return polar(xp, xp.sqrt(modulus), 0.5 * xp.arctan2(a[1], a[0]))


def ctanh(xp, a: Pair) -> Pair:
    """tanh(x + jy) without overflow for large |x|.

    tanh(x + jy) = (sinh 2x + j sin 2y) / (cosh 2x + cos 2y); dividing through by cosh 2x
    leaves tanh 2x and sech 2x = 2e^{-2|x|} / (1 + e^{-4|x|}), which never overflow (a direct
    cosh/sinh overflows beyond |x| ≈ 355 and warns, as impedance.py's Wo does).
    """
    x2, y2 = 2 * a[0], 2 * a[1]
    e = xp.exp(-xp.abs(x2))
    sech = 2 * e / (1 + e * e)
    denominator = 1 + xp.cos(y2) * sech
    return xp.tanh(x2) / denominator, xp.sin(y2) * sech / denominator
