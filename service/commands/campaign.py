"""``sigmalab campaign create|list|show|runs|proposals|pause|resume|add-measurements|report``:
campaigns on a sigmalab server (the client CLI); ``sigmalab campaign run``: a local closed loop
with the virtual lab (:mod:`optimizer.closed_loop`), no server needed.

Server and token come from ``--url``/``--token`` or ``SIGMALAB_URL``/``SIGMALAB_TOKEN``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inference.errors import InputError, SigmalabError
from service.commands.output import connect, fail, output_dir, output_file, table
from service.errors import ServiceError

app = typer.Typer(no_args_is_help=True, help="Optimisation campaigns on a sigmalab server.")
Url = Annotated[
    str | None,
    typer.Option(envvar="SIGMALAB_URL", help="server URL [default: http://127.0.0.1:8000]"),
]
Token = Annotated[str | None, typer.Option(envvar="SIGMALAB_TOKEN", help="API token")]
CampaignId = Annotated[str, typer.Argument(help="campaign id, or a unique prefix of it")]
DEFAULT_URL = None  # $SIGMALAB_URL, else http://127.0.0.1:8000 (service.client.Client)
console = Console()
_client = connect


def _show(info) -> None:
    """Two lines: id, name and status; then rounds, observations, best and the next fire."""
    best = _values(info.best["values"]) if info.best else "none yet"
    nxt = info.next_fire_at.isoformat(timespec="minutes") if info.next_fire_at else "–"
    console.print(f"{info.id}  {info.name}  {info.status}", highlight=False)
    console.print(
        f"  rounds {len(info.history)}, observations {info.n_observations} "
        f"(+{info.n_failed} failed, {info.n_pending} pending), best {best}, next fire {nxt}",
        highlight=False,
    )


@app.command()
def create(
    spec: Annotated[Path, typer.Argument(help="campaign spec, JSON or TOML (docs/campaigns.md)")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Create a campaign from a spec file; prints its id."""
    body = _read_mapping(spec, "campaign spec")
    with _client(url, token) as client:
        for key in ("space", "objectives", "schedule"):
            if key not in body:
                raise ServiceError(f"{spec}: missing '{key}'")
        campaign = client.create_campaign(
            body.pop("space"), body.pop("objectives"), body.pop("schedule"), **body
        )
        _show(campaign.info)


@app.command("list")
def list_(url: Url = DEFAULT_URL, token: Token = None) -> None:
    """The campaigns this token sees."""
    with _client(url, token) as client:
        for campaign in client.campaigns():
            _show(campaign.info)


@app.command()
def show(campaign_id: CampaignId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """A campaign's state and best-so-far per round."""
    with _client(url, token) as client:
        info = client.campaign(campaign_id).info
        _show(info)
        for h in info.history:
            best = _values(h["best"]["values"]) if h["best"] else "–"
            console.print(f"  round {h['round']}: told {h['n_told']}, best {best}", highlight=False)


@app.command()
def runs(campaign_id: CampaignId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Every fire: rounds, skipped and missed fires."""
    with _client(url, token) as client:
        table = Table("run", "fired", "trigger", "status", "step", "round", "told", "note")
        for r in client.campaign(campaign_id).runs():
            table.add_row(
                r.id[:8], r.fire_time.isoformat(timespec="seconds"), r.trigger, r.status,
                r.step or "", str(r.round or ""), str(r.n_told or ""), r.message or "",
            )  # fmt: skip
        console.print(table)


@app.command()
def proposals(
    campaign_id: CampaignId,
    status: Annotated[str | None, typer.Option(help="pending, measured, told or failed")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Proposed recipes with the GP's prediction (mean ± sd)."""
    with _client(url, token) as client:
        table = Table("id", "round", "status", "parameters", "predicted")
        for p in client.campaign(campaign_id).proposals(status):
            pred = ", ".join(
                f"{m} {v['mean']:.3g} ± {v['sd']:.2g}" for m, v in (p.predicted or {}).items()
            )
            table.add_row(p.id, str(p.round), p.status, json.dumps(p.params), pred or "initial")
        console.print(table)


@app.command()
def pause(campaign_id: CampaignId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Stop firing rounds (a running round finishes)."""
    with _client(url, token) as client:
        _show(client.campaign(campaign_id).pause())


@app.command()
def resume(campaign_id: CampaignId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Fire rounds again from now on."""
    with _client(url, token) as client:
        _show(client.campaign(campaign_id).resume())


@app.command("add-measurements")
def add_measurements(
    campaign_id: CampaignId,
    directory: Annotated[Path, typer.Argument(help="study folder: manifest.toml + files")],
    batch: Annotated[str | None, typer.Option(help="batch name (unique per campaign)")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Upload measured cells; recipes named like proposal ids measure those proposals."""
    with _client(url, token) as client:
        info = client.campaign(campaign_id).add_measurements(directory, batch)
        console.print(f"batch {info.batch}: {info.recipes}", highlight=False)


@app.command()
def report(
    campaign_id: CampaignId,
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path(
        "campaign-report.html"
    ),
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Write the campaign's HTML report."""
    output_file(out, "--out")
    with _client(url, token) as client:
        campaign = client.campaign(campaign_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        campaign.report(out)
        console.print(f"wrote {out}", highlight=False)


def _read_mapping(path: Path, what: str) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise InputError(f"{path}: the {what} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the {what} must be a table/object")
    return data


def _objectives(specs: list[str] | None) -> dict:
    out = {}
    for text in specs or ["sigma_ion:maximize"]:
        name, _, direction = text.partition(":")
        if not name or direction not in ("maximize", "minimize"):
            raise InputError(
                f"--objective {text!r}: expected NAME:maximize or NAME:minimize "
                "(NAME sigma_ion or sigma_el)"
            )
        out[name] = direction
    return out


@app.command()
def run(
    lab: Annotated[str, typer.Option(help="where recipes are made: 'virtual' (the virtual lab)")],
    rounds: Annotated[int, typer.Option(help="total rounds (asks) of the campaign", min=1)] = 5,
    batch: Annotated[int, typer.Option(help="proposals per round", min=1)] = 2,
    space: Annotated[
        Path | None,
        typer.Option(
            help="search-space spec, JSON or TOML (default: binder wt%, process, pressure)"
        ),
    ] = None,
    objective: Annotated[
        list[str] | None, typer.Option(help="NAME:maximize|minimize, repeatable")
    ] = None,
    method: Annotated[str, typer.Option(help="stage-1 fits: lsq (fast) or nuts")] = "lsq",
    seed: Annotated[int, typer.Option(help="seed of the campaign, the lab and the analysis")] = 0,
    p_success_min: Annotated[
        float | None,
        typer.Option(help="least predicted P(success) of a proposal [default: 0.7]"),
    ] = None,
    failure_cost: Annotated[
        float | None,
        typer.Option(help="price of a failed experiment, in sd of the objective [default: 0.1]"),
    ] = None,
    lab_settings: Annotated[
        Path | None, typer.Option(help="virtual-lab settings, JSON or TOML (LabSettings fields)")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("closed-loop"),
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the loop saved in --out")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress display")] = False,
) -> None:
    """Closed loop, locally: ask → the virtual lab makes and measures → analyse → tell."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from optimizer.campaign import Campaign
    from optimizer.closed_loop import DEFAULT_SPACE, resume_closed_loop, run_closed_loop
    from optimizer.virtual_lab import LabSettings

    rounds_seen: list[dict] = []
    try:
        if lab != "virtual":
            raise InputError(f"--lab {lab!r}: only 'virtual' (the virtual lab) runs locally")
        output_dir(out)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=quiet,
            transient=True,
        ) as bar:
            task = bar.add_task("rounds", total=rounds)
            stage_names = {"ask": "asking", "make": "making cells", "analyze": "analysing",
                           "tell": "telling"}  # fmt: skip

            def progress(event: dict) -> None:
                r = event["round"]
                if event["stage"] in stage_names:
                    bar.update(task, description=f"round {r}: {stage_names[event['stage']]}")
                    return
                bar.update(task, completed=r)
                rounds_seen.append(event)
                best = event["best"]
                bar.console.print(
                    f"round {r}/{event['rounds']}: told {event['n_told']} "
                    f"({event['n_failed']} failed); best "
                    + (_values(best["values"], best.get("sd")) if best else "none yet"),
                    highlight=False,
                )

            if resume:
                result = resume_closed_loop(out, rounds, progress=progress)
            else:
                campaign = Campaign(
                    _read_mapping(space, "search space") if space else DEFAULT_SPACE,
                    _objectives(objective),
                    seed=seed,
                    **{
                        k: v
                        for k, v in {
                            "p_success_min": p_success_min,
                            "failure_cost": failure_cost,
                        }.items()
                        if v is not None
                    },
                )
                settings = (
                    LabSettings.from_dict(_read_mapping(lab_settings, "lab settings"))
                    if lab_settings
                    else None
                )
                result = run_closed_loop(
                    campaign, rounds, batch, out_dir=out, method=method,
                    lab_settings=settings, seed=seed, progress=progress,
                )  # fmt: skip
        _print_loop(result, rounds_seen)
    except SigmalabError as err:
        fail(str(err))


def _number(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _values(values: dict, sd: dict | None = None) -> str:
    """``sigma_ion -3.41 ± 0.05`` for each metric (log10 S/cm), 3 significant digits."""
    sd = sd or {}
    return ", ".join(
        f"{k} {v:.3g}" + (f" ± {sd[k]:.2g}" if k in sd else "") for k, v in values.items()
    )


def _print_loop(result, rounds_seen: list[dict]) -> None:
    """The closed loop's outcome as tables: rounds run, then the best recipe(s)."""
    campaign = result.campaign
    rounds = table("round", "told", "failed", "best so far (log10 S/cm)", "true", left=0)
    for event in rounds_seen:
        best = event["best"]
        rounds.add_row(
            str(event["round"]), str(event["n_told"]), str(event["n_failed"]),
            _values(best["values"], best.get("sd")) if best else "–",
            _values(best["true"]) if best else "–",
        )  # fmt: skip
    if rounds_seen:
        console.print(rounds)
    if len(campaign.objectives) == 1:
        best = result.best()
        if best is None:
            console.print("no successful experiment", highlight=False)
        else:
            recipe = table("parameter", "value", title=f"best recipe {best['id']}")
            for name, value in best["params"].items():
                recipe.add_row(name, _number(value))
            console.print(recipe)
            console.print(
                f"measured {_values(best['values'], best['sd'])}, true {_values(best['true'])} "
                "(log10 S/cm)",
                highlight=False,
            )
    else:
        front = table("id", *campaign.objectives, "parameters", title="Pareto front")
        for h in campaign.pareto():
            params = ", ".join(f"{k} {_number(v)}" for k, v in h["params"].items())
            front.add_row(h["id"], *(f"{h['values'][m]:.3g}" for m in campaign.objectives), params)
        front.columns[-1].justify = "left"
        console.print(front)
    console.print(f"wrote {result.campaign_path} and {result.report_path}", highlight=False)
