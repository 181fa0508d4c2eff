"""Reader and frequency-window options shared by the commands that read instrument files.

``sigmalab inspect`` and ``sigmalab fit`` take the same flags, spelt as the manifest's
``[study.reader]`` keys (see :mod:`inference.readers.options`)::

    --format novocontrol  --columns "Freq.[Hz],Zs'[ohm],Zs''[ohm]"  --imag-sign -1
    --decimal ,  --delimiter tab          (fit also: --f-min 5 --f-max 2.5e5 --drop-inductive)
"""

from __future__ import annotations

from typing import Annotated

import typer

from inference.readers.options import check_options

Format = Annotated[
    str | None,
    typer.Option("--format", help="Skip detection: biologic-mpt, gamry-dta, novocontrol, csv…"),
]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="Frequency, Re(Z), Im(Z) columns: header names or 0-based indices, e.g. 0,1,2 "
        "or 'freq,Zre,Zim'; or role=column pairs (frequency=0,z_mod=3,phase=4).",
    ),
]
ImagSign = Annotated[
    int | None,
    typer.Option("--imag-sign", help="+1 or -1: sign applied to the imaginary/phase column."),
]
Decimal = Annotated[str | None, typer.Option("--decimal", help="Decimal mark: . or ,")]
Delimiter = Annotated[
    str | None,
    typer.Option("--delimiter", help="Column separator: a character, tab, whitespace."),
]
FMin = Annotated[
    float | None, typer.Option("--f-min", help="Fit only points at or above this frequency, Hz.")
]
FMax = Annotated[
    float | None, typer.Option("--f-max", help="Fit only points at or below this frequency, Hz.")
]
DropInductive = Annotated[
    bool, typer.Option("--drop-inductive", help="Drop points with Im(Z) > 0 before fitting.")
]


def reader_options(
    format: str | None,
    columns: str | None,
    imag_sign: int | None,
    decimal: str | None,
    delimiter: str | None,
) -> dict:
    """The flags as reader keyword arguments; InputError (one line) for a bad value."""
    return check_options(
        {
            "format": format,
            "columns": columns,
            "imag_sign": imag_sign,
            "decimal": decimal,
            "delimiter": delimiter,
        }
    )


def window_options(f_min: float | None, f_max: float | None, drop_inductive: bool) -> dict:
    """The window flags as :func:`inference.trim` keyword arguments (empty when none given)."""
    window = {"f_min_Hz": f_min, "f_max_Hz": f_max, "drop_inductive": drop_inductive or None}
    return {k: v for k, v in window.items() if v is not None}
