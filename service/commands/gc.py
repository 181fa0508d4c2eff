"""``sigmalab gc``: remove old results and what ended or abandoned jobs left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from service.commands.output import require_service


def gc(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="the server's data directory")],
    ttl_days: Annotated[
        float, typer.Option(help="remove results of jobs finished longer ago than this")
    ] = 30.0,
    dry_run: Annotated[bool, typer.Option(help="only say what would be removed")] = False,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: SQLite)")] = None,
) -> None:
    """Remove results past their time to live, inputs of ended jobs and stale uploads."""
    require_service("sigmalab gc")
    from service.api import open_manager
    from service.config import Settings
    from service.gc import collect_garbage

    settings = Settings(data_dir=data_dir, db_url=db, artifact_ttl_s=ttl_days * 86400)
    manager = open_manager(settings)
    report = collect_garbage(settings, manager.store, manager.artifacts, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    Console().print(
        f"{verb} the results of {report.purged_jobs} job(s), {report.removed_inputs} input "
        f"folder(s) and {report.removed_staging} stale upload(s): "
        f"{report.freed_bytes / 2**20:.1f} MiB",
        highlight=False,
    )
