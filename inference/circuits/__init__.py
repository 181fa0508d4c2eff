"""Equivalent circuits in impedance.py's string syntax, evaluated with real arithmetic.

>>> from inference.circuits import parse_circuit
>>> c = parse_circuit("R0-p(R1,CPE1)-p(R2,CPE2)")
>>> c.param_names
['R0', 'R1', 'CPE1_0', 'CPE1_1', 'R2', 'CPE2_0', 'CPE2_1']

Modules: :mod:`~inference.circuits.complexmath` (real/imaginary helpers generic over the array
module), :mod:`~inference.circuits.elements` (the element registry),
:mod:`~inference.circuits.parser` (string → tree), :mod:`~inference.circuits.circuit`.
"""

from inference.circuits.circuit import Arc, Circuit, parse_circuit, simulate_spectrum
from inference.circuits.elements import ELEMENTS, Element

__all__ = ["ELEMENTS", "Arc", "Circuit", "Element", "parse_circuit", "simulate_spectrum"]
