"""Reader options as a user writes them (keyword arguments, ``sigmalab`` flags, manifest keys).

=============  ====================================================================================
option         value
=============  ====================================================================================
``format``     one of :data:`inference.readers.FORMATS`: skip detection
``columns``    ``{"frequency": "Freq.[Hz]", "z_real": 1, "z_imag": 2}``; or frequency, Re, Im in
               that order as a list ``["f", "re", "im"]`` or a string ``"f,re,im"`` (header text
               or 0-based index); ``"frequency=0,z_mod=3,phase=4"`` names the roles
``imag_sign``  +1 or -1: sign applied to the imaginary (or phase) column as stored
``decimal``    ``"."`` or ``","``
``delimiter``  a character, or ``"tab"``, ``"comma"``, ``"semicolon"``, ``"whitespace"``
``max_bytes``  largest file accepted (bytes)
=============  ====================================================================================

:func:`check_options` turns any of these spellings into the reader's keyword arguments and
raises :class:`~inference.errors.InputError` (one line, naming the option) for anything else.
"""

from __future__ import annotations

from inference.errors import InputError
from inference.readers.columns import ROLES

OPTIONS = ("format", "columns", "imag_sign", "decimal", "delimiter", "max_bytes")
_POSITIONAL = ("frequency", "z_real", "z_imag")
#: ``delimiter`` names → the separator; ``"whitespace"`` splits at runs of blanks.
DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}
DELIMITERS |= dict.fromkeys(("whitespace", "space", "blank", " "), "whitespace")


def parse_columns(value) -> dict[str, str | int]:
    """``columns`` in any accepted spelling → ``{role: header text or 0-based index}``."""
    if isinstance(value, dict):
        items = list(value.items())
    else:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not value:
            raise InputError(
                f"columns = {value!r}: expected 'f,re,im' (header names or 0-based indices), "
                "a list of three, or a table of role = column"
            )
        named = [v for v in value if isinstance(v, str) and "=" in v]
        if named and len(named) != len(value):
            raise InputError(f"columns = {value!r}: give either all roles (role=column) or none")
        if named:
            items = [tuple(part.strip() for part in v.split("=", 1)) for v in named]
        elif len(value) != 3:
            raise InputError(
                f"columns = {value!r}: {len(value)} columns given; expected frequency, Re(Z), "
                "Im(Z) in that order, or role=column pairs"
            )
        else:
            items = list(zip(_POSITIONAL, value, strict=True))
    out: dict[str, str | int] = {}
    for role, where in items:
        if role not in ROLES:
            raise InputError(f"columns: unknown role {role!r}; roles are {', '.join(ROLES)}")
        if isinstance(where, bool) or not isinstance(where, str | int):
            raise InputError(f"columns: {role} = {where!r}; expected a header or a 0-based index")
        if isinstance(where, str) and where.strip().isdigit():
            where = int(where.strip())
        if isinstance(where, int) and where < 0:
            raise InputError(f"columns: {role} = {where}; indices are 0-based and >= 0")
        out[role] = where.strip() if isinstance(where, str) else where
    return out


def check_options(options: dict) -> dict:
    """Reader options checked and in the readers' form; InputError names the first bad one."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError(
            f"unknown reader option(s) {', '.join(map(repr, unknown))}; options are "
            f"{', '.join(OPTIONS)}"
        )
    out = {k: v for k, v in options.items() if v is not None}
    if "columns" in out:
        out["columns"] = parse_columns(out["columns"])
    sign = out.get("imag_sign")
    if sign is not None:
        if isinstance(sign, str) and sign.strip() in ("+1", "1", "-1"):
            sign = int(sign)
        if isinstance(sign, bool) or sign not in (1, -1):
            raise InputError(f"imag_sign = {options['imag_sign']!r}; expected +1 or -1")
        out["imag_sign"] = int(sign)
    if out.get("decimal") not in (None, ".", ","):
        raise InputError(f"decimal = {out['decimal']!r}; expected '.' or ','")
    delimiter = out.get("delimiter")
    if delimiter is not None:
        if not isinstance(delimiter, str) or not delimiter:
            raise InputError(
                f"delimiter = {delimiter!r}; expected a character or a name like 'tab'"
            )
        out["delimiter"] = DELIMITERS.get(delimiter.lower(), delimiter)
    if "format" in out and not isinstance(out["format"], str):
        raise InputError(f"format = {out['format']!r}; expected a format name")
    max_bytes = out.get("max_bytes")
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int)):
        raise InputError(f"max_bytes = {max_bytes!r}; expected a number of bytes")
    return out
