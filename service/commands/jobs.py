"""``sigmalab submit …`` and ``sigmalab jobs list|show|wait|cancel|logs|result``: the client CLI.

Server and token come from ``--url``/``--token`` or ``SIGMALAB_URL``/``SIGMALAB_TOKEN``. A job
is named by its full id or any unique prefix of it (e.g. the 8 characters of a progress bar).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from service.commands.output import connect, output_file, print_json, table

app = typer.Typer(no_args_is_help=True, help="List, inspect, wait for and cancel jobs.")
Url = Annotated[
    str | None,
    typer.Option(envvar="SIGMALAB_URL", help="server URL [default: http://127.0.0.1:8000]"),
]
Token = Annotated[str | None, typer.Option(envvar="SIGMALAB_TOKEN", help="API token")]
JobId = Annotated[str, typer.Argument(help="job id, or a unique prefix of it")]
Json = Annotated[bool, typer.Option("--json", help="print the job(s) as JSON")]
console = Console()
_client = connect  # url None: $SIGMALAB_URL or http://127.0.0.1:8000


def _state(info) -> str:
    p = info.progress
    if info.done or not (p and p.total):
        state = info.status if info.done or not info.phase else f"{info.status} {info.phase}"
    else:
        state = f"{info.status} {p.phase or ''} {p.done}/{p.total}".replace("  ", " ")
    return state + (f" (attempt {info.attempt}/{info.max_attempts})" if info.attempt > 1 else "")


def _show(info, as_json: bool = False) -> None:
    if as_json:
        print_json(info.model_dump(mode="json"))
        return
    console.print(f"{info.id}  {info.kind}  {_state(info)}", highlight=False)
    if info.error_type:
        console.print(f"  {info.error_type}: {info.error_message}", highlight=False)


def submit(
    target: Annotated[
        Path | None,
        typer.Argument(help="instrument file (fit), study folder, or campaign JSON (propose)"),
    ] = None,
    circuit: Annotated[str | None, typer.Option(help="circuit string, for a fit")] = None,
    dataset: Annotated[str | None, typer.Option(help="analyse a dataset the server holds")] = None,
    q: Annotated[int | None, typer.Option(help="propose this many experiments")] = None,
    method: Annotated[str, typer.Option(help="nuts or lsq")] = "nuts",
    draws: Annotated[int, typer.Option(help="draws per chain (fit)")] = 1000,
    chains: Annotated[int, typer.Option(help="chains (fit)")] = 2,
    tune: Annotated[int, typer.Option(help="tuning steps (fit)")] = 1000,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    wait: Annotated[bool, typer.Option(help="wait and show progress")] = False,
    url: Url = None,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """Submit a job: a fit (FILE --circuit), a study (FOLDER or --dataset) or a proposal (--q)."""
    if target is not None and not target.exists():
        raise typer.BadParameter(f"{target}: no such file or folder", param_hint="TARGET")
    with _client(url, token) as client:
        if q is not None:
            if target is None:
                raise typer.BadParameter("give the campaign JSON file to propose from")
            job = client.submit_propose(target, q)
        elif dataset is not None or (target is not None and target.is_dir()):
            job = client.submit_study(target, dataset=dataset, method=method, seed=seed)
        elif target is not None:
            if circuit is None:
                raise typer.BadParameter("a fit needs --circuit, e.g. 'R0-p(R1,CPE1)'")
            job = client.submit_fit(
                target, circuit, method=method, draws=draws, chains=chains, tune=tune, seed=seed
            )
        else:
            raise typer.BadParameter("give a file, a folder, --dataset or a campaign with --q")
        if not as_json:
            console.print(f"submitted {job.info.kind} job {job.id}", highlight=False)
        if wait:
            job.wait(progress=not as_json)
        if wait or as_json:
            _show(job.info, as_json)


@app.command("list")
def list_jobs(
    status: Annotated[list[str] | None, typer.Option(help="filter by status")] = None,
    kind: Annotated[str | None, typer.Option(help="filter by kind")] = None,
    url: Url = None,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """All your jobs, newest first (full ids; any unique prefix names a job)."""
    with _client(url, token) as client:
        infos = [job.info for job in client.jobs(status=status, kind=kind)]
    if as_json:
        print_json([i.model_dump(mode="json") for i in infos])
        return
    listing = table("id", "kind", "status", "created (UTC)", left=3)
    listing.columns[0].no_wrap = True
    for i in infos:
        listing.add_row(i.id, i.kind, _state(i), i.created_at.strftime("%m-%d %H:%M"))
    console.print(listing)


@app.command()
def show(job_id: JobId, url: Url = None, token: Token = None) -> None:
    """A job's state as JSON."""
    with _client(url, token) as client:
        print_json(client.job(job_id).info.model_dump(mode="json"))


@app.command("wait")
def wait_job(
    job_id: JobId,
    timeout: Annotated[float | None, typer.Option(help="give up after this many s")] = None,
    url: Url = None,
    token: Token = None,
    as_json: Json = False,
) -> None:
    """Wait for a job with a progress bar; exit code 2 if it fails or is cancelled."""
    with _client(url, token) as client:
        _show(client.job(job_id).wait(timeout=timeout, progress=not as_json).info, as_json)


@app.command()
def cancel(job_id: JobId, url: Url = None, token: Token = None, as_json: Json = False) -> None:
    """Ask a job to stop."""
    with _client(url, token) as client:
        _show(client.job(job_id).cancel(), as_json)


@app.command()
def logs(
    job_id: JobId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new lines until the job ends")
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """A job's log."""
    with _client(url, token) as client:
        job = client.job(job_id)
        for text in job.follow_logs() if follow else [job.logs()]:
            console.print(text, end="", highlight=False, markup=False, soft_wrap=True)


@app.command()
def result(
    job_id: JobId,
    out: Annotated[Path, typer.Option(help="where to write the result file")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Download a job's result (SHA-256 checked) and print its summary."""
    output_file(out)
    with _client(url, token) as client:
        job = client.job(job_id)
        out.parent.mkdir(parents=True, exist_ok=True)
        job.result(path=out)
        console.print(f"wrote {out}", highlight=False)
        if job.info.kind != "propose":
            print_json(job.summary())
