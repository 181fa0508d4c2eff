"""``sigmalab fit FILE --circuit "…"``: Bayesian fit of the spectra (or DC record) in a file.

Prints the parameter table (median and 90 % interval, r̂, ESS; one-sided intervals for a
parameter at a bound of its support), the diagnostics, the verdict and the Kramers–Kronig
check, and writes ``NAME.nc`` and ``NAME.png`` into ``--out``. With ``--circuit`` given twice or
more, every circuit is fitted and ranked by PSIS-LOO (:func:`inference.compare_circuits`); the
comparison table and the preferred circuit's fit are printed and written (``NAME_compare.csv``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from inference.errors import InputError, SigmalabError

console = Console()
DEFAULT_CIRCUIT = "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)"


def _interval(row) -> str:
    """``[lo, hi]``, or a one-sided ``≤ hi`` / ``≥ lo`` for a parameter at a bound."""
    if row.get("bound") == "lower":
        return f"≤ {row['q95']:.4g} (at lower bound {row['q5']:.4g})"
    if row.get("bound") == "upper":
        return f"≥ {row['q5']:.4g} (at upper bound {row['q95']:.4g})"
    if row.get("bound") == "both":
        return f"[{row['q5']:.4g}, {row['q95']:.4g}] (not bounded by the data)"
    return f"[{row['q5']:.4g}, {row['q95']:.4g}]"


def _table(summary, title: str) -> Table:
    table = Table(title=title)
    for column in ("parameter", "median", "90 % interval", "unit", "r̂", "ESS bulk", "ESS tail"):
        table.add_column(column, justify="left" if column in ("parameter", "unit") else "right")
    for name, row in summary.iterrows():
        diag = (
            [
                f"{row[k]:.3f}" if k == "r_hat" else f"{row[k]:.0f}"
                for k in ("r_hat", "ess_bulk", "ess_tail")
            ]
            if "r_hat" in row
            else ["–"] * 3
        )
        table.add_row(str(name), f"{row['median']:.4g}", _interval(row), str(row["unit"]), *diag)
    return table


def _comparison_table(comparison, title: str) -> Table:
    table = Table(title=title)
    columns = ("circuit", "rank", "elpd_loo", "elpd_diff", "dse", "p_loo", "weight", "verdict")
    for column in columns:
        table.add_column(column, justify="left" if column in ("circuit", "verdict") else "right")
    for name, row in comparison.table.sort_values("rank").iterrows():
        mark = " *" if name == comparison.preferred else ""
        table.add_row(
            f"{name}{mark}",
            str(int(row["rank"])),
            f"{row['elpd']:.1f}",
            f"{row['elpd_diff']:.1f}",
            f"{row['dse']:.1f}",
            f"{row['p']:.1f}",
            f"{row['weight']:.2f}",
            row["verdict"],
        )
    return table


def _progress_bar():
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} draws"),
        TextColumn("{task.fields[div]} divergences"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
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


def fit(
    file: Annotated[Path, typer.Argument(help="Instrument file (EIS spectra or a DC record).")],
    circuit: Annotated[
        list[str] | None,
        typer.Option(
            help="Circuit, impedance.py syntax; repeat to compare circuits by PSIS-LOO "
            "[default: R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)]."
        ),
    ] = None,
    method: Annotated[str, typer.Option(help="nuts or lsq.")] = "nuts",
    draws: Annotated[int, typer.Option(help="Draws per chain.")] = 1000,
    tune: Annotated[int, typer.Option(help="Tuning steps per chain.")] = 1000,
    chains: Annotated[int, typer.Option(help="Chains.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sampler: Annotated[str, typer.Option(help="blackjax, pymc or nutpie.")] = "blackjax",
    likelihood: Annotated[str, typer.Option(help="normal or studentt.")] = "normal",
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("."),
) -> None:
    """Fit every spectrum in FILE (or its DC record) and write NAME.nc and NAME.png."""
    from inference.compare import compare_circuits
    from inference.dc import fit_dc
    from inference.fit import fit_spectra
    from inference.readers import read_records

    circuits = circuit or [DEFAULT_CIRCUIT]
    try:
        if len(circuits) > 1 and method != "nuts":
            raise InputError("comparing circuits needs method nuts (PSIS-LOO of the posterior)")
        records = read_records(file)
        progress, update = _progress_bar()
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
            elif len(circuits) > 1:
                comparisons = [
                    compare_circuits(
                        ds,
                        circuits,
                        draws=draws,
                        tune=tune,
                        chains=chains,
                        seed=seed + i,
                        sampler=sampler,
                        likelihood=likelihood,
                        progress=update,
                    )
                    for i, ds in enumerate(records)
                ]
                results = [c.fits[c.preferred] for c in comparisons]
            else:
                results = fit_spectra(
                    records,
                    circuits[0],
                    method,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    seed=seed,
                    sampler=sampler,
                    likelihood=likelihood,
                    progress=update,
                )
        for i, result in enumerate(results):
            name = file.stem if len(results) == 1 else f"{file.stem}_{i}"
            if len(circuits) > 1 and "time" not in records[0].dims:
                comparison = comparisons[i]
                console.print(_comparison_table(comparison, f"{name}: circuits by PSIS-LOO"))
                console.print(comparison.message)
                csv = out / f"{name}_compare.csv"
                out.mkdir(parents=True, exist_ok=True)
                comparison.table.to_csv(csv, index_label="circuit")
                console.print(f"wrote {csv}")
            _report(result, name)
            nc = result.to_netcdf(out / f"{name}.nc")
            png = out / f"{name}.png"
            result.plot(png)
            console.print(f"wrote {nc} and {png}")
    except InputError as exc:
        console.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(code=2) from None
    except SigmalabError as exc:
        console.print(Text(f"error: {exc}", style="red"))
        raise typer.Exit(code=1) from None


def _report(result, name: str) -> None:
    title = f"{name}: " + (result.circuit if hasattr(result, "circuit") else "I = (V − V0)/R")
    console.print(_table(result.summary(), title))
    d = result.diagnostics
    console.print(
        f"max r̂ {d['max_rhat']:.3f}, min ESS bulk {d['min_ess_bulk']:.0f}, "
        f"tail {d['min_ess_tail']:.0f}, {d['divergences']} divergences"
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
    verdict = getattr(result, "verdict", "ok")
    console.print(Text(f"verdict: {verdict}", style="green" if verdict == "ok" else "yellow"))
    for warning in result.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
