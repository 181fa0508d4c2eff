"""Column headers → what they hold, in which unit, with which sign.

Instrument software names the same quantity many ways (``freq/Hz``, ``Freq.[Hz]``, ``Frequency``;
``-Im(Z)/Ohm``, ``Z''``, ``Zs''[ohm]``, ``Zimag``, ``imaginary``; ``<I>/mA``, ``I/A``). A header is
read as *name* and *unit*: the unit after a slash (``freq / Hz``), in brackets (``Z' [Ohms]``,
``Freq.[Hz]``) or parentheses (``Frequency (Hz)``), or after an underscore; the name is compared
without case, blanks, underscores, dots or brackets (``Re(Z)`` = ``ReZ`` = ``re_z``), after a
label prefix such as RelaxIS' ``Data:``. A leading ``-`` (or ``−``) negates the column. When a
name could mean two roles the unit decides (``Im/A`` is a current, ``Im/Ohm`` an impedance).
:func:`find_columns` maps a header row to *roles* and converts units to SI:

=============  ==========  ==========================================================
role           unit        note
=============  ==========  ==========================================================
frequency      Hz
z_real         Ω
z_imag         Ω           signed Im(Z); headers starting with ``-`` are negated
z_mod          Ω           modulus: ``|Z|``, ``Zmod``, ``Mod(Z)``, ``Z``, ``Impedance``
phase          °           phase of Z (``Phase``, ``-Phase(Z)/deg``, ``Zphz``, ``Theta``); rad
                           converted; used with z_mod only where Re/Im columns are absent
time           s
voltage        V           measured (``Ewe`` preferred over ``<Ewe>``)
control        V or A      applied set-point (EC-Lab ``control/V``, Gamry ``Sig``)
current        A           (``I`` preferred over ``<I>``)
step           index       EC-Lab ``Ns`` (sequence / bias step)
cycle          index       EC-Lab ``cycle number`` (one value per sweep)
temperature    K           from °C or K
=============  ==========  ==========================================================

A header without a unit is taken to be in SI units (Hz, Ω, s, V, A; °C for temperature).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from inference.errors import FileFormatError

ROLES = (
    "frequency",
    "z_real",
    "z_imag",
    "z_mod",
    "phase",
    "time",
    "voltage",
    "control",
    "current",
    "step",
    "cycle",
    "temperature",
)

# Quantity names (as normalised by _normalise) in order of preference within a role. A name in
# two roles (``im``, ``t``) goes to the one whose dimension matches the header's unit.
_NAMES: dict[str, tuple[str, ...]] = {
    "frequency": ("freq", "frequency", "f", "fhz", "frequencyhz"),
    "z_real": (
        "rez",
        "z'",
        "zreal",
        "zre",
        "realz",
        "zs'",
        "z'a",
        "zr",
        "real",
        "re",
        "zrealpart",
        "realpart",
        "realimpedance",
        "impedancereal",
        "zprime",
        "zreal'",
    ),
    "z_imag": (
        "imz",
        "z''",
        "zimag",
        "zim",
        "zimg",
        "imagz",
        "imaginaryz",
        "zs''",
        "z''b",
        "zi",
        "imag",
        "imaginary",
        "im",
        "img",
        "zimaginary",
        "imagpart",
        "imaginarypart",
        "imaginaryimpedance",
        "impedanceimaginary",
        "zdoubleprime",
    ),
    "z_mod": (
        "|z|",
        "zmod",
        "modz",
        "zmag",
        "zabs",
        "absz",
        "zmodulus",
        "zmagnitude",
        "|impedance|",
        "impedancemodulus",
        "impedancemagnitude",
        "magnitude",
        "modulus",
        "z",
        "impedance",
    ),
    "phase": (
        "phasez",
        "phase",
        "zphz",
        "phz",
        "zphase",
        "phaseangle",
        "phasezdeg",
        "thetaz",
        "theta",
        "phiz",
        "phi",
        "angle",
    ),
    "time": ("time", "t", "elapsedtime", "timeelapsed"),
    "voltage": ("ewe", "<ewe>", "voltage", "potential", "e", "v", "vf", "u", "emeas"),
    "control": ("control", "sig", "setpoint", "eapplied", "applied"),
    "current": ("i", "<i>", "current", "im", "imeas"),
    "step": ("ns", "step", "sequence"),
    "cycle": ("cyclenumber", "cycle"),
    "temperature": ("temperature", "temp", "t"),
}

# unit → (dimension, scale to SI, offset to SI); case matters (mHz ≠ MHz).
_UNITS: dict[str, tuple[str, float, float]] = {
    "Hz": ("frequency", 1.0, 0.0),
    "kHz": ("frequency", 1e3, 0.0),
    "mHz": ("frequency", 1e-3, 0.0),
    "MHz": ("frequency", 1e6, 0.0),
    "Ohm": ("impedance", 1.0, 0.0),
    "OHM": ("impedance", 1.0, 0.0),
    "MOhm": ("impedance", 1e6, 0.0),
    "MΩ": ("impedance", 1e6, 0.0),
    "GOhm": ("impedance", 1e9, 0.0),
    "ohm": ("impedance", 1.0, 0.0),
    "Ohms": ("impedance", 1.0, 0.0),
    "ohms": ("impedance", 1.0, 0.0),
    "Ω": ("impedance", 1.0, 0.0),
    "kOhm": ("impedance", 1e3, 0.0),
    "kohm": ("impedance", 1e3, 0.0),
    "kΩ": ("impedance", 1e3, 0.0),
    "mOhm": ("impedance", 1e-3, 0.0),
    "mohm": ("impedance", 1e-3, 0.0),
    "mΩ": ("impedance", 1e-3, 0.0),
    "s": ("time", 1.0, 0.0),
    "sec": ("time", 1.0, 0.0),
    "Sec": ("time", 1.0, 0.0),
    "ms": ("time", 1e-3, 0.0),
    "min": ("time", 60.0, 0.0),
    "h": ("time", 3600.0, 0.0),
    "V": ("voltage", 1.0, 0.0),
    "mV": ("voltage", 1e-3, 0.0),
    "A": ("current", 1.0, 0.0),
    "mA": ("current", 1e-3, 0.0),
    "µA": ("current", 1e-6, 0.0),
    "μA": ("current", 1e-6, 0.0),
    "uA": ("current", 1e-6, 0.0),
    "nA": ("current", 1e-9, 0.0),
    "°C": ("temperature", 1.0, 273.15),
    "degC": ("temperature", 1.0, 273.15),
    "deg C": ("temperature", 1.0, 273.15),
    "C": ("temperature", 1.0, 273.15),
    "K": ("temperature", 1.0, 0.0),
    "deg": ("angle", 1.0, 0.0),
    "degree": ("angle", 1.0, 0.0),
    "degrees": ("angle", 1.0, 0.0),
    "°": ("angle", 1.0, 0.0),
    "rad": ("angle", 180.0 / 3.141592653589793, 0.0),
}

# Units of two or more letters compared without case where that is unambiguous (HZ, OHM, Deg,
# SEC…); mHz/MHz and mOhm/MOhm differ only in case and keep their exact spelling, and one
# letter is too little to guess from (ZPlot's ``Z'(a)`` is no ampere).
_FOLDED: dict[str, tuple[str, float, float]] = {}
for _unit, _info in ((u, i) for u, i in _UNITS.items() if len(u) > 1):
    _FOLDED.setdefault(_unit.lower(), _info)
    if _FOLDED[_unit.lower()] != _info:
        _FOLDED[_unit.lower()] = None  # type: ignore[assignment]
_FOLDED = {k: v for k, v in _FOLDED.items() if v is not None}

# Dimension each role's unit must have (None: dimensionless index).
_DIMENSION = {
    "frequency": ("frequency",),
    "z_real": ("impedance",),
    "z_imag": ("impedance",),
    "z_mod": ("impedance",),
    "phase": ("angle",),
    "time": ("time",),
    "voltage": ("voltage",),
    "control": ("voltage", "current"),
    "current": ("current",),
    "step": (),
    "cycle": (),
    "temperature": ("temperature",),
}

_DEFAULT_UNIT = {
    "frequency": "Hz",
    "z_real": "Ohm",
    "z_imag": "Ohm",
    "z_mod": "Ohm",
    "phase": "deg",
    "time": "s",
    "voltage": "V",
    "control": "V",
    "current": "A",
    "temperature": "°C",
}

# "name/unit", "name (unit)", "name [unit]", "name_unit"
_UNIT_PATTERNS = (
    re.compile(r"^(?P<name>.+?)\s*/\s*(?P<unit>[^/]+)$"),
    re.compile(r"^(?P<name>.+?)\s*\((?P<unit>[^()]+)\)$"),
    re.compile(r"^(?P<name>.+?)\s*\[(?P<unit>[^\[\]]+)\]$"),
    re.compile(r"^(?P<name>.+?)_(?P<unit>[^_]+)$"),
)


@dataclass(frozen=True)
class Column:
    """Where a role's values are and how to turn them into SI units.

    ``value_SI = sign * (scale * value_in_file + offset)``; ``unit`` is the SI unit after that.
    """

    role: str
    index: int
    header: str
    scale: float = 1.0
    offset: float = 0.0
    sign: float = 1.0
    unit: str = ""

    def convert(self, values):
        """File values → SI values (numpy array in, numpy array out)."""
        return self.sign * (self.scale * values + self.offset)


def unquote(text: str) -> str:
    """``text`` without surrounding blanks and one pair of surrounding quotes."""
    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


_PRIMES = str.maketrans({"’": "'", "′": "'", "‘": "'", "`": "'", "″": "''", '"': "''", "−": "-"})


def _normalise(text: str) -> str:
    """A header name for comparison: ``"Data: Re (Z)"`` → ``"rez"``, ``'Z"'`` → ``"z''"``."""
    text = unquote(text).translate(_PRIMES).lower()
    if ":" in text:
        text = text.rsplit(":", 1)[1]  # RelaxIS "Data: Z'", Zahner "Channel 1: ..."
    text = text.strip()
    sign = "-" if text.startswith("-") else ""
    return sign + re.sub(r"[\s_.()\[\]{}-]+", "", text[len(sign) :])


def _unit_info(unit: str) -> tuple[str, float, float] | None:
    unit = unit.strip()
    compact = unit.replace(" ", "")
    return (
        _UNITS.get(unit)
        or _UNITS.get(compact)
        or _FOLDED.get(unit.lower())
        or _FOLDED.get(compact.lower())
    )


def split_unit(header: str) -> list[tuple[str, str | None]]:
    """Readings of a header as (name, unit), most likely first.

    ``"Re(Z)/Ohm"`` → ``[("Re(Z)", "Ohm"), ("Re(Z)/Ohm", None)]``; ``"Z'(a)"`` (no known unit)
    → ``[("Z'(a)", None)]``; ``"I/furlong"`` keeps the unknown unit so that an error can name it.
    """
    text = unquote(header)
    readings: list[tuple[str, str | None]] = [(text, None)]
    for pattern in _UNIT_PATTERNS:
        m = pattern.match(text)
        if m and _unit_info(m["unit"]) is not None:
            return [(m["name"], m["unit"].strip()), *readings]
        if m and pattern is _UNIT_PATTERNS[0]:
            readings.append((m["name"], m["unit"].strip()))
    return readings


def interpret(header: str) -> tuple[str, float, str, str | None] | None:
    """(role, sign, name, unit) for a header, or None when it names no known role.

    A name listed under several roles takes the first role whose dimension the unit has.
    """
    for name, unit in split_unit(header):
        key = _normalise(name)
        sign = 1.0
        if key.startswith("-"):
            key, sign = key[1:], -1.0
        roles = [role for role, names in _NAMES.items() if key in names]
        if not roles:
            continue
        info = _unit_info(unit) if unit else None
        if info is not None:
            roles = [r for r in roles if info[0] in _DIMENSION[r]] or roles
        return roles[0], sign, name, unit
    return None


def make_column(path, role: str, index: int, header: str, unit: str | None, sign: float) -> Column:
    """A :class:`Column` for ``role``; FileFormatError for a unit that cannot be converted."""
    if role in ("step", "cycle"):
        return Column(role, index, header)
    if role == "phase":
        unit = unit or "deg"
    unit = unit or _DEFAULT_UNIT[role]
    info = _unit_info(unit)
    if info is None or info[0] not in _DIMENSION[role]:
        raise FileFormatError(
            path, f"column {header!r}: unit {unit!r} is not a {role.replace('_', ' ')} unit I know"
        )
    dimension, scale, offset = info
    si = {"current": "A", "voltage": "V"}.get(dimension, _DEFAULT_UNIT[role])
    if role == "temperature":
        si = "K"
    if role == "phase":
        si = "deg"
    return Column(role, index, header, scale=scale, offset=offset, sign=sign, unit=si)


def find_columns(path, headers: list[str]) -> dict[str, Column]:
    """Map a header row to roles; the first, most-preferred header wins each role."""
    found: dict[str, tuple[int, Column]] = {}
    for index, header in enumerate(headers):
        hit = interpret(header)
        if hit is None:
            continue
        role, sign, name, unit = hit
        rank = _NAMES[role].index(_normalise(name).lstrip("-"))
        if role in found and found[role][0] <= rank:
            continue
        found[role] = (rank, make_column(path, role, index, header, unit, sign))
    return {role: column for role, (_, column) in found.items()}


def explicit_columns(path, headers: list[str], spec: dict[str, str | int]) -> dict[str, Column]:
    """Columns named by the user: ``{"frequency": "f", "z_real": 1}`` (header or 0-based index).

    A header's unit (``/mA``, ``(kHz)``…) and a leading ``-`` are honoured; a header without
    a unit (or a headerless file) is read in SI units.
    """
    columns: dict[str, Column] = {}
    for role, where in spec.items():
        if role not in ROLES:
            raise FileFormatError(path, f"unknown column role {role!r}; roles are {list(ROLES)}")
        if isinstance(where, int):
            if not 0 <= where < len(headers):
                raise FileFormatError(
                    path, f"column index {where} for {role!r} is outside 0..{len(headers) - 1}"
                )
            index = where
        else:
            wanted = [i for i, h in enumerate(headers) if unquote(h) == where.strip()]
            wanted = wanted or [i for i, h in enumerate(headers) if _loose(h) == _loose(where)]
            if not wanted:
                raise FileFormatError(
                    path, f"column {where!r} not found; columns are {_shown(headers)}"
                )
            index = wanted[0]
        header = headers[index]
        unit = split_unit(header)[0][1]
        sign = -1.0 if unquote(header).translate(_PRIMES).startswith("-") else 1.0
        columns[role] = make_column(path, role, index, header, unit, sign)
    return columns


def _loose(text: str) -> str:
    """Header text compared without case or blanks (``--columns "freq.[hz]"``)."""
    return re.sub(r"\s+", "", unquote(text)).lower()


def resolve(
    path, headers: list[str], spec: dict | None = None, imag_sign: float | None = None
) -> dict[str, Column]:
    """Column roles of a header row: the user's ``spec`` if given, else found from the headers.

    ``imag_sign`` (+1 or -1) overrides the sign of the imaginary column (and of a phase
    column): -1 when a file stores -Im(Z) or -phase under a header that does not say so.
    """
    columns = explicit_columns(path, headers, spec) if spec else find_columns(path, headers)
    if imag_sign is not None:
        for role in ("z_imag", "phase"):
            if role in columns:
                columns[role] = replace(columns[role], sign=float(imag_sign))
    return columns


def _shown(headers: list[str]) -> list[str]:
    return [h.strip() for h in headers if h.strip()]


def shown_headers(headers: list[str]) -> list[str]:
    """Headers as listed in error messages (blank ones dropped)."""
    return _shown(headers)
