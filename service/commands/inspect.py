"""``sigmalab inspect FILE...``: what each instrument file holds, or why it cannot be read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from inference.errors import InputError
from inference.inspect import describe_file
from service.commands import reading


def _number(value: float) -> str:
    return f"{value:.4g}"


def _spectrum_cells(info: dict) -> tuple[str, str, str]:
    points = str(info["n_points"])
    if info["n_spectra"] > 1:
        points += f" in {info['n_spectra']} spectra"
    freq = f"{_number(info['frequency_min_Hz'])} – {_number(info['frequency_max_Hz'])} Hz"
    return points, freq, ""


def _dc_cells(info: dict) -> tuple[str, str, str]:
    bias = ", ".join(_number(v) for v in info["step_bias_V"][:6])
    if len(info["step_bias_V"]) > 6:
        bias += ", …"
    return f"{info['samples']} samples", "", f"{info['n_steps']} steps: {bias} V"


def _temperature(info: dict) -> str:
    temps = info["temperature_K"]
    if not temps:
        return "–"
    low, high = min(temps), max(temps)
    return f"{low:.1f} K" if high - low < 0.05 else f"{low:.1f} – {high:.1f} K"


def inspect(
    files: Annotated[list[Path], typer.Argument(help="Instrument files to check.")],
    format: reading.Format = None,
    columns: reading.Columns = None,
    imag_sign: reading.ImagSign = None,
    decimal: reading.Decimal = None,
    delimiter: reading.Delimiter = None,
) -> None:
    """Show, per file, the format detected, points, frequency range, temperature, DC steps
    and a verdict; exits with status 1 if any file cannot be read (2 for a bad option)."""
    try:
        options = reading.reader_options(format, columns, imag_sign, decimal, delimiter)
    except InputError as exc:
        Console(stderr=True).print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(code=2) from None
    table = Table(show_lines=False)
    for title in ("file", "format", "points", "frequency", "temperature", "DC steps", "verdict"):
        table.add_column(title, overflow="fold")
    failed = 0
    for path in files:
        info = describe_file(path, **options)
        if not info["ok"]:
            failed += 1
            cells = ("", "", "")
        elif info["kind"] == "spectrum":
            cells = _spectrum_cells(info)
        else:
            cells = _dc_cells(info)
        points, freq, steps = cells
        style = "green" if info["ok"] else "red"
        table.add_row(
            Text(str(path)),
            info["format"] or "?",
            points,
            freq,
            _temperature(info) if info["ok"] else "",
            steps,
            Text(info["verdict"], style=style),  # Text: no markup parsing of "[...]" in errors
        )
    Console().print(table)
    if failed:
        raise typer.Exit(code=1)
