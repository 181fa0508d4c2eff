"""``sigmalab fit FILE --circuit "…"``: Bayesian fit of the spectra (or DC record) in a file.

Prints the parameter table (median and 90 % interval, r̂, ESS), the diagnostics and the
Kramers–Kronig verdict, and writes ``NAME.nc`` and ``NAME.png`` into ``--out`` (checked
before the fit starts). ``--json`` prints the same as one JSON document instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from inference.errors import InputError, SigmalabError
from service.commands import reading
from service.commands.output import fail, output_dir, print_json, table

console = Console()


def _table(summary, title: str):
    out = table("parameter", "median", "90 % interval", "unit", "r̂", "ESS bulk", "ESS tail",
                title=title)  # fmt: skip
    for name, row in summary.iterrows():
        diag = (
            [
                f"{row[k]:.3f}" if k == "r_hat" else f"{row[k]:.0f}"
                for k in ("r_hat", "ess_bulk", "ess_tail")
            ]
            if "r_hat" in row
            else ["–"] * 3
        )
        out.add_row(
            str(name),
            f"{row['median']:.4g}",
            f"{row['q5']:.4g}–{row['q95']:.4g}",
            str(row["unit"]),
            *diag,
        )
    return out


def _progress_bar(disable: bool):
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} draws"),
        TextColumn("{task.fields[div]} divergences"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=disable,
    )
    task = progress.add_task("starting", total=1, div=0)

    def update(event: dict) -> None:
        label = event["phase"]
        if "n_spectra" in event:
            label = f"spectrum {event['spectrum'] + 1}/{event['n_spectra']}: {label}"
        progress.update(
            task,
            description=label,
            completed=event["done"],
            total=event["total"],
            div=event.get("divergences", 0),
        )

    return progress, update


def _constants(specs: list[str] | None) -> dict[str, float]:
    out = {}
    for text in specs or []:
        name, _, value = text.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--constant {text!r}: expected NAME=VALUE, e.g. R0=10") from None
    return out


def fit(
    file: Annotated[Path, typer.Argument(help="Instrument file (EIS spectra or a DC record).")],
    circuit: Annotated[str, typer.Option(help="Circuit, impedance.py syntax.")] = (
        "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"
    ),
    method: Annotated[str, typer.Option(help="nuts or lsq.")] = "nuts",
    constant: Annotated[
        list[str] | None,
        typer.Option(help="Fix a parameter, NAME=VALUE in natural units (repeatable)."),
    ] = None,
    draws: Annotated[int, typer.Option(help="Draws per chain.")] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Chains.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sampler: Annotated[str, typer.Option(help="blackjax, pymc or nutpie.")] = "blackjax",
    likelihood: Annotated[str, typer.Option(help="normal or studentt.")] = "normal",
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("."),
    f_min: reading.FMin = None,
    f_max: reading.FMax = None,
    drop_inductive: reading.DropInductive = False,
    format: reading.Format = None,
    columns: reading.Columns = None,
    imag_sign: reading.ImagSign = None,
    decimal: reading.Decimal = None,
    delimiter: reading.Delimiter = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Fit every spectrum in FILE (or its DC record) and write NAME.nc and NAME.png.

    Example: ``sigmalab fit cell.txt --f-min 5 --columns 0,1,2 --method lsq``.
    """
    from inference.dc import fit_dc
    from inference.fit import fit_spectra
    from inference.readers import read_records
    from inference.window import trim

    try:
        constants = _constants(constant)
        options = reading.reader_options(format, columns, imag_sign, decimal, delimiter)
        window = reading.window_options(f_min, f_max, drop_inductive)
        output_dir(out)
        records = read_records(file, **options)
        if window and "time" in records[0].dims:
            raise InputError(
                f"{file}: --f-min, --f-max and --drop-inductive apply to spectra; "
                "this file holds a DC record"
            )
        records = [trim(r, **window) for r in records] if window else records
        progress, update = _progress_bar(disable=as_json)
        with progress:
            if "time" in records[0].dims:
                results = [
                    fit_dc(
                        records[0],
                        draws=draws,
                        tune=tune,
                        chains=chains,
                        seed=seed,
                        sampler=sampler,
                        progress=update,
                    )
                ]
            else:
                results = fit_spectra(
                    records,
                    circuit,
                    method,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    seed=seed,
                    sampler=sampler,
                    likelihood=likelihood,
                    constants=constants,
                    progress=update,
                )
        documents = []
        for i, result in enumerate(results):
            name = file.stem if len(results) == 1 else f"{file.stem}_{i}"
            nc = result.to_netcdf(out / f"{name}.nc")
            png = out / f"{name}.png"
            result.plot(png)
            if as_json:
                documents.append(_document(result, name, file, nc, png))
            else:
                _report(result, name)
                console.print(f"wrote {nc} and {png}", highlight=False)
        if as_json:
            print_json(documents)
    except InputError as exc:
        fail(str(exc))
    except SigmalabError as exc:
        fail(str(exc), code=1)


def _document(result, name: str, file: Path, nc: Path, png: Path) -> dict:
    """One fit as a JSON-ready dict: parameters, diagnostics, KK verdict, warnings, outputs."""
    summary = result.summary()
    kk = getattr(result, "kk", None)
    return {
        "name": name,
        "file": str(file),
        "circuit": getattr(result, "circuit", "I = (V - V0)/R"),
        "method": getattr(result, "method", "nuts"),
        "parameters": {
            str(p): {k: (v if isinstance(v, str) else float(v)) for k, v in row.items()}
            for p, row in summary.iterrows()
        },
        "diagnostics": dict(result.diagnostics),
        "kramers_kronig": kk.summary() if kk is not None else None,
        "warnings": list(result.warnings),
        "outputs": {"netcdf": str(nc), "plot": str(png)},
    }


def _report(result, name: str) -> None:
    title = f"{name}: " + (result.circuit if hasattr(result, "circuit") else "I = (V − V0)/R")
    console.print(_table(result.summary(), title))
    d = result.diagnostics
    console.print(
        f"max r̂ {d['max_rhat']:.3f}, min ESS bulk {d['min_ess_bulk']:.0f}, "
        f"tail {d['min_ess_tail']:.0f}, {d['divergences']} divergences"
    )
    a = result.attrs
    if "n_points_dropped" in a:
        bounds = [
            f"{label} {a[key]:g} Hz"
            for label, key in (("f ≥", "f_min_Hz"), ("f ≤", "f_max_Hz"))
            if key in a
        ] + (["no inductive points"] if a.get("drop_inductive") else [])
        fitted = a["n_points_measured"] - a["n_points_dropped"]
        console.print(
            f"window: {', '.join(bounds)}; {a['n_points_dropped']} of {a['n_points_measured']} "
            f"points dropped, {fitted} fitted (Kramers–Kronig on these)"
        )
    kk = getattr(result, "kk", None)
    if kk is not None:
        style = "green" if kk.passed else "red"
        console.print(
            Text(
                f"Kramers–Kronig: {'pass' if kk.passed else 'FAIL'} "
                f"(max residual {kk.max_residual:.3g}, {kk.rule})",
                style=style,
            )
        )
    for warning in result.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
