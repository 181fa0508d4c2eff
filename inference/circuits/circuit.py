"""A parsed equivalent circuit: named parameters, units, bounds, arcs and evaluation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from inference.circuits.complexmath import combine
from inference.circuits.parser import ElementNode, Parallel, Series, parse_tree
from inference.errors import InputError
from inference.spectrum import make_spectrum


@dataclass(frozen=True)
class Arc:
    """A relaxation (semicircle-like arc) of the circuit, for per-arc priors and guesses.

    Attributes
    ----------
    r : name of the arc's resistance parameter (Ω).
    q : name of its capacitance (``C``, F) or CPE coefficient (``Q``, Ω⁻¹ s^α).
    alpha : name of the CPE exponent, ``None`` for an ideal capacitor (α = 1).
    kind : ``"CPE"`` (R‖CPE), ``"C"`` (R‖C), ``"TLM"`` (transmission line; ``r`` is
        the contacted rail, τ ≈ ((R₁+R₂)Q)^(1/α) ≈ (R₁Q)^(1/α) when R₁ ≫ R₂) or ``"TLMs"``
        (transmission line with a short electronic rail, τ = (R₁Q)^(1/α)).
    label : the arc as written, e.g. ``p(R1,CPE1)``.

    The time constant is τ = (R·Q)^(1/α) s, the apex frequency 1/(2πτ) Hz.
    """

    r: str
    q: str
    alpha: str | None
    kind: str
    label: str

    def tau_s(self, params: Mapping[str, float]) -> float:
        """Time constant τ = (R·Q)^(1/α) in s from natural-unit parameter values."""
        alpha = params[self.alpha] if self.alpha else 1.0
        return float((params[self.r] * params[self.q]) ** (1.0 / alpha))


class Circuit:
    """An equivalent circuit parsed from an impedance.py string.

    Parameters
    ----------
    string : e.g. ``"R0-p(R1,CPE1)-p(R2,CPE2)"``; series ``-``, parallel ``p(a,b,…)``,
        elements R, C, L, CPE, W, Wo, Ws, TLM, TLMs each followed by a number.

    Attributes
    ----------
    string : normalised circuit string (no spaces, single-branch ``p()`` removed).
    tree : nested ``Series``/``Parallel``/``ElementNode``.
    elements : element nodes in string order.
    param_names : impedance.py names (``R0``, ``CPE1_0``, ``CPE1_1``…) in string order.
    param_units : unit of each parameter ("" for exponents).
    param_bounds : natural-unit (low, high) per parameter: (0, inf) or, for CPE exponents, (0, 1).
    arcs : :class:`Arc` per R‖CPE, R‖C, TLM or TLMs, in string order.

    Raises
    ------
    CircuitError
        The string is malformed; the message points at the offending character.

    Examples
    --------
    >>> c = Circuit("R0-p(R1,CPE1)")
    >>> c.param_names
    ['R0', 'R1', 'CPE1_0', 'CPE1_1']
    >>> re, im = c.evaluate([10.0, 100.0, 1e-6, 0.9], [1e3, 1.0])
    """

    def __init__(self, string: str):
        self.tree = parse_tree(string)
        self.string = self.tree.to_string()
        self.elements: list[ElementNode] = list(_walk(self.tree))
        self._offset: dict[str, int] = {}
        names, units, bounds = [], [], []
        for node in self.elements:
            self._offset[node.name] = len(names)
            names += node.param_names
            units += node.element.units
            bounds += node.element.bounds
        self.param_names: list[str] = names
        self.param_units: list[str] = units
        self.param_bounds: list[tuple[float, float]] = bounds
        self.arcs: list[Arc] = _find_arcs(self.tree)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def __repr__(self) -> str:
        return f"Circuit({self.string!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Circuit) and other.string == self.string

    def __hash__(self) -> int:
        return hash(self.string)

    def param_vector(self, params) -> list:
        """Parameters as a list in :attr:`param_names` order from a dict or a sequence."""
        if isinstance(params, Mapping):
            missing = [n for n in self.param_names if n not in params]
            if missing:
                raise InputError(
                    f"circuit {self.string}: missing parameter(s) {', '.join(missing)}"
                )
            return [params[n] for n in self.param_names]
        try:
            n = len(params)
        except TypeError:  # a symbolic vector: indexable, length known only at run time
            return [params[i] for i in range(self.n_params)]
        if n != self.n_params:
            raise InputError(
                f"circuit {self.string} has {self.n_params} parameters "
                f"({', '.join(self.param_names)}), got {n} values"
            )
        return [params[i] for i in range(n)]

    def evaluate(self, params, frequency_Hz, xp=np):
        """Real and imaginary parts of Z (Ω) at ``frequency_Hz``, in real arithmetic.

        Parameters
        ----------
        params : dict by name, or a sequence / vector in :attr:`param_names` order
            (natural units; numpy scalars/arrays or PyTensor variables).
        frequency_Hz : frequencies (Hz), array or symbolic vector.
        xp : array module, ``numpy`` (default), ``pytensor.tensor`` or ``jax.numpy``.

        Returns
        -------
        (re, im) : arrays shaped like ``frequency_Hz`` (Ω), with Z = re + j·im.
        """
        values = self.param_vector(params)
        omega = 2 * math.pi * (xp.asarray(frequency_Hz) if xp is np else frequency_Hz)
        re, im = self._eval(self.tree, values, omega, xp)
        zero = 0 * omega  # broadcast element results that do not depend on ω (e.g. a lone R)
        return re + zero, im + zero

    def impedance(self, params, frequency_Hz) -> np.ndarray:
        """Complex impedance (Ω) with numpy, for users and simulation."""
        with np.errstate(over="ignore", under="ignore"):
            re, im = self.evaluate(params, np.asarray(frequency_Hz, dtype=float))
        return np.asarray(re) + 1j * np.asarray(im)

    def _eval(self, node, values, omega, xp):
        if isinstance(node, ElementNode):
            start = self._offset[node.name]
            return node.element.impedance(xp, values[start : start + node.element.n_params], omega)
        parts = [self._eval(child, values, omega, xp) for child in node.children]
        return combine(parts, series=isinstance(node, Series))


def parse_circuit(string: str | Circuit) -> Circuit:
    """Parse an impedance.py circuit string (a :class:`Circuit` is returned unchanged)."""
    return string if isinstance(string, Circuit) else Circuit(string)


def simulate_spectrum(
    circuit: str | Circuit,
    params,
    frequency_Hz,
    noise_rel: float = 0.01,
    seed: int | None = 0,
    **attrs,
) -> xr.Dataset:
    """Simulate a measured spectrum: the circuit's Z plus relative Gaussian noise.

    Parameters
    ----------
    circuit : circuit string or :class:`Circuit`.
    params : natural-unit parameters (dict or sequence in ``param_names`` order).
    frequency_Hz : frequencies (Hz), in measurement order.
    noise_rel : noise sd on Re and on Im as a fraction of |Z| (0.01 = 1 %).
    seed : seed of the noise generator.
    **attrs : extra Dataset attrs (``temperature_K``, ``cell_id``…).

    Returns
    -------
    xr.Dataset
        A spectrum (see :func:`inference.spectrum.make_spectrum`) with attrs ``circuit``,
        ``noise_rel``, ``seed`` and the true values as ``true_<param name>``.
    """
    c = parse_circuit(circuit)
    f = np.asarray(frequency_Hz, dtype=float)
    z = c.impedance(params, f)
    sd = noise_rel * np.abs(z)
    rng = np.random.default_rng(seed)
    z_real = z.real + sd * rng.standard_normal(f.size)
    z_imag = z.imag + sd * rng.standard_normal(f.size)
    truth = {
        f"true_{n}": float(v) for n, v in zip(c.param_names, c.param_vector(params), strict=True)
    }
    return make_spectrum(
        f,
        z_real,
        z_imag,
        source="<simulated>",
        circuit=c.string,
        noise_rel=float(noise_rel),
        seed=-1 if seed is None else int(seed),
        **truth,
        **attrs,
    )


def _walk(node):
    if isinstance(node, ElementNode):
        yield node
    else:
        for child in node.children:
            yield from _walk(child)


def _find_arcs(node) -> list[Arc]:
    arcs: list[Arc] = []
    if isinstance(node, ElementNode):
        names = node.param_names
        if node.element.symbol == "TLM":
            arcs.append(Arc(names[0], names[2], names[3], "TLM", node.name))
        elif node.element.symbol == "TLMs":
            arcs.append(Arc(names[0], names[1], names[2], "TLMs", node.name))
        return arcs
    if isinstance(node, Parallel) and len(node.children) == 2:
        kids = node.children
        if all(isinstance(k, ElementNode) for k in kids):
            by_symbol = {k.element.symbol: k for k in kids}
            if "R" in by_symbol and ("CPE" in by_symbol or "C" in by_symbol):
                r = by_symbol["R"].name
                if "CPE" in by_symbol:
                    q_name, alpha_name = by_symbol["CPE"].param_names
                    arcs.append(Arc(r, q_name, alpha_name, "CPE", node.to_string()))
                else:
                    arcs.append(Arc(r, by_symbol["C"].name, None, "C", node.to_string()))
                return arcs
    for child in node.children:
        arcs += _find_arcs(child)
    return arcs
