"""``sigmalab inspect FILE...``: what each instrument file holds, or why it cannot be read.

The table stays narrow (80 columns); remarks and errors follow it, one line per file, with
the full reason.
``--json`` prints :func:`inference.inspect.describe_file`'s dict per file instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from inference.errors import InputError
from inference.inspect import describe_file
from service.commands import reading
from service.commands.output import fail, print_json


def _si(value: float, unit: str) -> str:
    """3 significant digits with an SI prefix: ``3.16 mHz``, ``7 MHz``."""
    prefixes = {-4: "p", -3: "n", -2: "µ", -1: "m", 0: "", 1: "k", 2: "M", 3: "G"}
    power = min(max(math.floor(math.log10(abs(value)) / 3), -4), 3) if value else 0
    return f"{value / 1000**power:.3g} {prefixes[power]}{unit}"


def _content(info: dict) -> tuple[str, str]:
    """(what the file holds, its frequency range or bias steps)."""
    if info["kind"] == "spectrum":
        points = f"{info['n_points']} pts"
        if info["n_spectra"] > 1:
            points = f"{info['n_spectra']} spectra, {points}"
        low, high = info["frequency_min_Hz"], info["frequency_max_Hz"]
        return points, f"{_si(low, 'Hz')}–{_si(high, 'Hz')}"
    bias = info["step_bias_V"]
    span = (
        f"{bias[0]:.3g}…{bias[-1]:.3g} V" if len(bias) > 1 else f"{bias[0]:.3g} V" if bias else ""
    )
    return f"{info['n_steps']} steps", span


def _temperature(info: dict) -> str:
    temps = info["temperature_K"]
    if not temps:
        return "–"
    low, high = min(temps), max(temps)
    return f"{low:.1f} K" if high - low < 0.05 else f"{low:.0f}–{high:.0f} K"


def inspect(
    files: Annotated[list[Path], typer.Argument(help="Instrument files to check.")],
    format: reading.Format = None,
    columns: reading.Columns = None,
    imag_sign: reading.ImagSign = None,
    decimal: reading.Decimal = None,
    delimiter: reading.Delimiter = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per file.")
    ] = False,
) -> None:
    """Show, per file, the format detected, points, frequency range, temperature, DC steps
    and a verdict; exits with status 1 if any file cannot be read (2 for a bad option)."""
    try:
        options = reading.reader_options(format, columns, imag_sign, decimal, delimiter)
    except InputError as exc:
        fail(str(exc))
    infos = [describe_file(path, **options) for path in files]
    failed = sum(not info["ok"] for info in infos)
    if as_json:
        print_json(infos)
        raise typer.Exit(code=1 if failed else 0)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("file", overflow="fold")
    for title in ("format", "holds", "range"):
        table.add_column(title, no_wrap=True)
    with_t = any(info["temperature_K"] for info in infos)
    if with_t:
        table.add_column("T", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    notes = []
    for path, info in zip(files, infos, strict=True):
        ok, verdict = info["ok"], info["verdict"]
        content, span = _content(info) if ok else ("", "")
        if verdict != "ok":
            notes.append(Text(f"{'note' if ok else 'error'}: {path.name}: {verdict}",
                              style="yellow" if ok else "red"))  # fmt: skip
        mark = "ok" if verdict == "ok" else "note" if ok else "error"
        row = [Text(path.name), info["format"] or "?", content, span]  # Text: no markup
        row += [_temperature(info) if ok else ""] if with_t else []
        table.add_row(*row, Text(mark, style="green" if ok else "red"))
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note, soft_wrap=True)  # the full reason, on one logical line
    if failed:
        raise typer.Exit(code=1)
