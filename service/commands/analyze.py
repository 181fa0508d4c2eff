"""``sigmalab analyze STUDY_DIR --out OUT_DIR``: fit a study; write result, summary, report."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from inference.errors import SigmalabError
from service.commands.output import fail, output_dir, print_json, table


def _sci(x: float) -> str:
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def _print_tables(console: Console, result) -> None:
    paper = result.paper.get("sigma", {})
    for t in result.settings["temperatures_C"]:
        columns = ["recipe", "kind", "σ (S/cm)", "90 % interval"]
        columns += ["paper", "÷ paper"] if paper else []
        conductivity = table(*columns, title=f"Conductivity at {t:g} °C (median)", left=2)
        for r in result.conductivity_table(t).itertuples():
            cells = [
                r.recipe,
                r.kind,
                _sci(r.median_S_per_cm),
                f"{_sci(r.ci90_lo_S_per_cm)}–{_sci(r.ci90_hi_S_per_cm)}",
            ]
            if paper:
                p = paper.get((r.recipe, r.kind, float(t)))
                inside = p is not None and r.ci90_lo_S_per_cm <= p <= r.ci90_hi_S_per_cm
                style = "green" if inside else "yellow"
                cells += [
                    Text(_sci(p), style=style) if p else "–",
                    f"{r.median_S_per_cm / p:.2f}" if p else "–",
                ]
            conductivity.add_row(*cells)
        console.print(conductivity)
    ea = table("recipe", "kind", "median", "90 % interval", title="Activation energy (eV)", left=2)
    for r in result.activation_energy_table().itertuples():
        ea.add_row(r.recipe, r.kind, f"{r.median_eV:.4f}", f"{r.ci90_lo_eV:.4f}–{r.ci90_hi_eV:.4f}")
    console.print(ea)
    comp = table(
        "ratio", "kind", "T", "median", "90 % interval", "P(>1)",
        title="Recipe comparisons: σ ratio", left=2,
    )  # fmt: skip
    for t in result.settings["temperatures_C"]:
        for c in result.comparisons(t):
            comp.add_row(
                f"{c['numerator']} / {c['denominator']}",
                c["kind"],
                f"{t:g} °C",
                f"{c['ratio_median']:.3g}×",
                f"{c['ratio_ci90'][0]:.3g}–{c['ratio_ci90'][1]:.3g}",
                f"{c['p_greater']:.3f}",
            )
    console.print(comp)
    ratios = result.paper.get("ratios", {})
    if ratios:
        quoted = table("ratio quoted by the paper (30 °C)", "value")
        for name, value in ratios.items():
            quoted.add_row(name, f"{value:g}×")
        console.print(quoted)


def _print_diagnostics(console: Console, result) -> None:
    d = result.diagnostics()
    ok = d["max_rhat"] <= 1.01 and d["min_ess_bulk"] >= 400 and not d["divergences"]
    style = "green" if ok else "red"
    console.print(
        Text(
            f"Arrhenius layer: max r̂ {d['max_rhat']:.3f}, min ESS bulk "
            f"{d['min_ess_bulk']:.0f}, divergences {d['divergences']}",
            style=style,
        )
    )
    if d["kk_failed"]:
        console.print(
            Text(
                f"{len(d['kk_failed'])} spectra failed the Kramers–Kronig check "
                "(kept, flagged in the report)",
                style="yellow",
            )
        )
    for f in d["failed"]:
        console.print(Text(f"failed: {f['file']}: {f['reason']}", style="red"))


def analyze(
    study_dir: Annotated[Path, typer.Argument(help="Study folder with manifest.toml.")],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for result.nc, summary.json, report.html.")
    ],
    method: Annotated[str, typer.Option(help="Stage-1 EIS fits: nuts or lsq.")] = "nuts",
    joint: Annotated[
        bool,
        typer.Option(
            "--joint", help="Fit ion spectra and the ionic Arrhenius layer in one model (slow)."
        ),
    ] = False,
    temperature_c: Annotated[
        list[float] | None,
        typer.Option(
            "--temperature-C", help="Temperature (°C) to report σ at; repeat for several."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    draws: Annotated[int, typer.Option(help="Arrhenius draws per chain.")] = 2000,
    chains: Annotated[int, typer.Option(help="Arrhenius chains.")] = 4,
    tune: Annotated[int, typer.Option(help="Arrhenius tuning steps per chain.")] = 1500,
    circuit: Annotated[
        str | None,
        typer.Option(
            help="Ion-cell circuit (impedance.py syntax); default: manifest [study] circuit."
        ),
    ] = None,
    resistance: Annotated[
        str | None,
        typer.Option(help="Composite resistance parameter of the circuit (default: last arc's R)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print summary.json and the paths, no tables.")
    ] = False,
) -> None:
    """Fit every spectrum and DC record of a study, the hierarchical Arrhenius layer per kind;
    print σ, Ea and recipe comparisons; write result.nc, summary.json and report.html.

    Example: ``sigmalab analyze datasets/emley2023 --out out/emley2023``.
    """
    from inference.analysis import analyze_study

    console = Console()
    args = [
        "sigmalab",
        "analyze",
        str(study_dir),
        "--out",
        str(out),
        "--method",
        method,
        *(["--joint"] if joint else []),
        *[a for t in temperature_c or [30.0] for a in ("--temperature-C", f"{t:g}")],
        "--seed",
        str(seed),
        "--draws",
        str(draws),
        "--chains",
        str(chains),
        "--tune",
        str(tune),
        *(["--circuit", circuit] if circuit else []),
        *(["--resistance", resistance] if resistance else []),
    ]
    command = shlex.join(args)
    try:
        if not study_dir.exists():
            raise SigmalabError(f"{study_dir}: no such study folder")
        output_dir(out)
        with Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[item]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True) if as_json else console,
            disable=quiet or as_json,
            transient=False,
        ) as bars:
            tasks: dict[str, int] = {}

            def progress(event: dict) -> None:
                stage = event.get("stage", "")
                if stage not in tasks:
                    tasks[stage] = bars.add_task(stage, total=event.get("total") or 1, item="")
                bars.update(
                    tasks[stage],
                    completed=event.get("done", 0),
                    total=event.get("total") or 1,
                    item=event.get("id", ""),
                )

            result = analyze_study(
                study_dir,
                method=method,
                joint=joint,
                temperatures_C=temperature_c or [30.0],
                circuit=circuit,
                resistance=resistance,
                draws=draws,
                chains=chains,
                tune=tune,
                seed=seed,
                progress=progress,
                command=command,
            )
        paths = result.write(out)
    except SigmalabError as err:
        fail(str(err))
    if as_json:
        print_json({"outputs": {k: str(v) for k, v in paths.items()}, **result.summary_dict()})
        return
    _print_tables(console, result)
    _print_diagnostics(console, result)
    for line in result.temperature_warnings():
        console.print(Text(f"warning: {line}", style="yellow"))
    console.print(
        f"wrote {paths['result']}, {paths['summary']}, {paths['report']} "
        f"({result.timing_s['total']:.0f} s)"
    )
