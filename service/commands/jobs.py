"""``sigmalab submit …`` and ``sigmalab jobs list|show|wait|cancel|logs|result``: the client CLI.

Server and token come from ``--url``/``--token`` or ``SIGMALAB_URL``/``SIGMALAB_TOKEN``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="List, inspect, wait for and cancel jobs.")
Url = Annotated[str, typer.Option(envvar="SIGMALAB_URL", help="server URL")]
Token = Annotated[str | None, typer.Option(envvar="SIGMALAB_TOKEN", help="API token")]
JobId = Annotated[str, typer.Argument(help="job id")]
DEFAULT_URL = "http://127.0.0.1:8000"
console = Console()


def _client(url: str, token: str | None):
    from service.client import Client

    return Client(url, token)


def _show(info) -> None:
    p = info.progress
    progress = f"{p.phase} {p.done}/{p.total}" if p and p.total else (info.phase or "")
    console.print(
        f"{info.id}  {info.kind}  {info.status}  attempt {info.attempt}/{info.max_attempts}  "
        f"{progress}",
        highlight=False,
    )
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
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Submit a job: a fit (FILE --circuit), a study (FOLDER or --dataset) or a proposal (--q)."""
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
        console.print(f"submitted {job.info.kind} job {job.id}", highlight=False)
        if wait:
            _show(job.wait())


@app.command("list")
def list_jobs(
    status: Annotated[list[str] | None, typer.Option(help="filter by status")] = None,
    kind: Annotated[str | None, typer.Option(help="filter by kind")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """All your jobs, newest first."""
    table = Table("id", "kind", "status", "attempt", "phase", "created")
    with _client(url, token) as client:
        for job in client.jobs(status=status, kind=kind):
            i = job.info
            table.add_row(i.id, i.kind, i.status, str(i.attempt), i.phase or "",
                          i.created_at.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    console.print(table)


@app.command()
def show(job_id: JobId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """A job's state as JSON."""
    with _client(url, token) as client:
        console.print_json(client.job(job_id).info.model_dump_json())


@app.command("wait")
def wait_job(
    job_id: JobId,
    timeout: Annotated[float | None, typer.Option(help="give up after this many s")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Wait for a job with a progress bar; exit code 2 if it fails or is cancelled."""
    with _client(url, token) as client:
        _show(client.job(job_id).wait(timeout=timeout))


@app.command()
def cancel(job_id: JobId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Ask a job to stop."""
    with _client(url, token) as client:
        _show(client.job(job_id).cancel())


@app.command()
def logs(job_id: JobId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """A job's log."""
    with _client(url, token) as client:
        console.print(client.job(job_id).logs(), end="", highlight=False, markup=False)


@app.command()
def result(
    job_id: JobId,
    out: Annotated[Path, typer.Option(help="where to write the result file")],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Download a job's result (SHA-256 checked) and print its summary."""
    with _client(url, token) as client:
        job = client.job(job_id)
        job.result(path=out)
        console.print(f"wrote {out}", highlight=False)
        if job.info.kind != "propose":
            console.print_json(json.dumps(job.summary()))
