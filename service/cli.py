"""sigmalab: Bayesian EIS/DC analysis and GP optimization for solid-state cathodes.

Each command group lives in ``service/commands/``; this module only assembles them and turns
our user-error types into one-line messages (exit code 2) instead of tracebacks.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from inference.errors import SigmalabError
from service.commands import analyze, campaign, fit, gc, inspect, jobs, lab, serve, token

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
app.command("inspect")(inspect.inspect)
app.command("fit")(fit.fit)
app.command("analyze")(analyze.analyze)
app.add_typer(lab.app, name="lab")
app.command("serve")(serve.serve)
app.add_typer(token.app, name="token")
app.command("submit")(jobs.submit)
app.add_typer(jobs.app, name="jobs")
app.add_typer(campaign.app, name="campaign")
app.command("gc")(gc.gc)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SigmalabError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(2)
