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

FORM_LABEL = {"sigma": "σ = σ0·exp(−Ea/kT)", "sigmaT": "σ·T = A·exp(−Ea/kT)"}


def _sci(x: float) -> str:
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"


def _print_tables(console: Console, result) -> None:
    paper = result.paper.get("sigma", {})
    for t in result.settings["temperatures_C"]:
        columns = ["recipe", "kind", "σ (S/cm)", "90 % interval", "prior-dom."]
        columns += ["paper", "÷ paper"] if paper else []
        conductivity = table(*columns, title=f"Conductivity at {t:g} °C (median)", left=2)
        for r in result.conductivity_table(t).itertuples():
            cells = [
                r.recipe,
                r.kind,
                _sci(r.median_S_per_cm),
                f"{_sci(r.ci90_lo_S_per_cm)}–{_sci(r.ci90_hi_S_per_cm)}",
                _prior_flag(r.prior_dominated),
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
    form = FORM_LABEL[result.settings.get("arrhenius_form", "sigma")]
    ea = table(
        "recipe", "kind", "median", "90 % interval", "prior-dom.",
        title=f"Activation energy (eV), {form}", left=2,
    )  # fmt: skip
    for r in result.activation_energy_table().itertuples():
        ea.add_row(
            r.recipe,
            r.kind,
            f"{r.median_eV:.4f}",
            f"{r.ci90_lo_eV:.4f}–{r.ci90_hi_eV:.4f}",
            _prior_flag(r.prior_dominated),
        )
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


def _prior_flag(flag) -> Text:
    return Text("yes", style="yellow") if flag else Text("no")


def _print_verdicts(console: Console, result) -> None:
    """Records that are not ok, with their reasons (the verdict table of the diagnostics)."""
    verdicts = result.verdict_table()
    bad = verdicts[verdicts["verdict"] != "ok"]
    if bad.empty:
        return
    out = table("record", "T (°C)", "verdict", "reasons", title="Records that are not ok")
    out.columns[2].justify = out.columns[3].justify = "left"
    out.columns[3].no_wrap = False
    for r in bad.itertuples():
        style = "red" if r.verdict == "excluded" else "yellow"
        out.add_row(
            r.record,
            f"{r.temperature_C:.0f}",
            Text(r.verdict, style=style),
            Text("; ".join(r.reasons)),
        )
    console.print(out)


def _print_diagnostics(console: Console, result) -> None:
    d = result.diagnostics()
    for kind, layer in d["layers"].items():
        console.print(
            Text(
                f"{kind} Arrhenius layer: {layer['verdict']} (max r̂ {layer['max_rhat']:.3f}, "
                f"min ESS bulk {layer['min_ess_bulk']:.0f}, divergences {layer['divergences']})"
                + (f": {'; '.join(layer['reasons'])}" if layer["reasons"] else ""),
                style="green" if layer["verdict"] == "ok" else "red",
            )
        )
    fits = d["fits"]
    console.print(
        f"stage-1 records: {fits['n_ok']} ok, {fits['n_warning']} with warnings, "
        f"{fits['n_excluded']} excluded"
    )
    _print_verdicts(console, result)
    note = result.rate_capability_note()
    if note:
        console.print(f"rate capability: {note}")
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
    style = "green" if d["verdict"] == "ok" else "red"
    console.print(
        Text(
            f"verdict: {d['verdict']}" + (f" ({'; '.join(d['reasons'])})" if d["reasons"] else ""),
            style=style,
        )
    )


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
    arrhenius: Annotated[
        str | None,
        typer.Option(
            help="Arrhenius form: sigma or sigmaT (default: manifest [study] arrhenius, else "
            "sigma for composite cathodes, sigmaT for solid electrolytes)."
        ),
    ] = None,
    keep_draws: Annotated[
        int | None,
        typer.Option(help="Keep about this many draws per stage-1 fit in result.nc (default all)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print summary.json and the paths, no tables.")
    ] = False,
) -> None:
    """Fit every spectrum and DC record of a study, the hierarchical Arrhenius layer per kind;
    print σ, Ea and recipe comparisons; write result.nc, summary.json and report.html.

    Example: ``sigmalab analyze datasets/emley2023 --out out/emley2023``. Exit status: 0 when
    the verdict is ok, 1 when the results were written with the verdict warning (see the
    diagnostics printed), 2 for a user error (nothing written). With ``--json`` the exit
    status is 0 once the results are written; the verdict is in ``diagnostics.verdict``.
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
        *(["--arrhenius", arrhenius] if arrhenius else []),
        *(["--keep-draws", str(keep_draws)] if keep_draws else []),
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
                arrhenius=arrhenius,
                draws=draws,
                chains=chains,
                tune=tune,
                seed=seed,
                progress=progress,
                command=command,
            )
        paths = result.write(out, keep_draws=keep_draws)
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
    if result.verdict()[0] != "ok":
        raise typer.Exit(1)
