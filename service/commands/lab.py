"""``sigmalab lab simulate``: write a simulated study folder from a preset or a recipes file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from inference.errors import SigmalabError
from optimizer.virtual_lab import simulate_preset, simulate_recipes_file
from optimizer.virtual_lab.presets import PRESETS
from service.commands.output import fail, output_dir

app = typer.Typer(no_args_is_help=True, help="Virtual lab: simulated studies for demos and tests.")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Study folder to write (replaced).")],
    preset: Annotated[
        str | None, typer.Option(help=f"Named study: {', '.join(sorted(PRESETS))}.")
    ] = None,
    recipes: Annotated[
        Path | None, typer.Option(help="Recipes TOML: recipes.<name> tables, optional lab table.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default: the preset's or the file's).")
    ] = None,
) -> None:
    """Make and measure cells of each recipe; write EIS/DC files, manifest.toml and truth.json.

    Examples: ``sigmalab lab simulate --preset emley2023 --out datasets/emley2023`` or
    ``sigmalab lab simulate --recipes recipes.toml --out runs/scan1 --seed 3``.
    """
    console = Console()
    if (preset is None) == (recipes is None):
        fail("give exactly one of --preset or --recipes")
    try:
        output_dir(out)
        if preset is not None:
            result = simulate_preset(preset, out, seed=seed)
        else:
            result = simulate_recipes_file(recipes, out, seed=seed)
    except SigmalabError as err:
        fail(str(err))
    table = Table(title=f"simulated study → {result.out_dir}")
    for column in ("recipe", "cells made", "cells failed", "reason"):
        table.add_column(column)
    for name in result.recipes:
        made = sum(c.recipe == name for c in result.cells)
        failed = [f for f in result.failures if f.recipe == name]
        reason = failed[0].reason if failed else ""
        table.add_row(name, str(made), str(len(failed)), Text(reason))
    console.print(table)
    console.print(f"{len(result.files)} data files, manifest: {result.manifest_path}")
