"""sigmalab: Bayesian EIS/DC analysis and GP optimization for solid-state cathodes.

Each command group lives in ``service/commands/``; this module only assembles them and turns
user mistakes — our error types and typer/click usage errors alike — into one-line messages
with exit code 2 instead of tracebacks or multi-line boxes (:mod:`service.commands.output`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_errors

from inference.errors import SigmalabError
from service.commands import analyze, campaign, fit, gc, inspect, jobs, lab, serve, token
from service.commands.output import USAGE_EXIT, error_line, width

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


def version() -> str:
    """The installed distribution's version (``source`` when run from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("sigmalab")
    except PackageNotFoundError:
        return "source"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sigmalab {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """sigmalab: Bayesian EIS/DC analysis and GP optimization for solid-state cathodes."""


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs a command and exits with its status."""
    try:
        code = app(args=argv, prog_name="sigmalab", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        code = 0
    except click_errors.UsageError as exc:
        message = " ".join(exc.format_message().split())
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        fits = len("error: ") + len(message) + len(hint) <= width()
        error_line(message + hint if fits else message)
        code = USAGE_EXIT
    except SigmalabError as exc:
        error_line(str(exc))
        code = USAGE_EXIT
    except (typer.Abort, KeyboardInterrupt):
        error_line("interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
