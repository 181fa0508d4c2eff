"""``sigmalab token create|list|revoke``: API tokens, stored hashed in the job store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.commands.output import require_service

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API tokens.")
DataDir = Annotated[Path, typer.Option("--data-dir", help="the server's data directory")]
Db = Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: SQLite in data dir)")]


def _store(data_dir: Path, db: str | None):
    require_service("sigmalab token")
    from service.api import open_manager
    from service.config import Settings

    return open_manager(Settings(data_dir=data_dir, db_url=db)).store


@app.command()
def create(
    name: Annotated[str, typer.Option(help="who or what uses the token")],
    data_dir: DataDir,
    scope: Annotated[str, typer.Option(help="read, submit or admin")] = "submit",
    max_active_jobs: Annotated[int, typer.Option(help="unfinished jobs allowed at once")] = 50,
    max_active_campaigns: Annotated[
        int, typer.Option(help="active campaigns allowed at once")
    ] = 10,
    db: Db = None,
) -> None:
    """Create a token; it is printed once, as the last word of the output."""
    from service.auth import create_token

    try:
        token_id, token = create_token(
            _store(data_dir, db), name, scope, max_active_jobs, max_active_campaigns
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    Console().print(f"token {token_id} for {name} (scope {scope}): {token}", highlight=False)


@app.command("list")
def list_tokens(data_dir: DataDir, db: Db = None) -> None:
    """List tokens (never their secrets)."""
    table = Table("id", "name", "scope", "max active jobs", "revoked")
    for row in _store(data_dir, db).list_tokens():
        revoked = "yes" if row["revoked_at"] else ""
        table.add_row(row["id"], row["name"], row["scope"], str(row["max_active_jobs"]), revoked)
    Console().print(table)


@app.command()
def revoke(
    token_id: Annotated[str, typer.Argument(help="the id shown by 'token list'")],
    data_dir: DataDir,
    db: Db = None,
) -> None:
    """Revoke a token: requests with it get 401 from now on."""
    if not _store(data_dir, db).revoke_token(token_id):
        raise typer.BadParameter(f"no active token {token_id!r}")
    Console().print(f"token {token_id} revoked")
