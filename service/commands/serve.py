"""``sigmalab serve``: the HTTP API, the dispatcher and (by default) an embedded Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.commands.output import require_service
from service.config import Settings


def serve(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="database, artifacts, uploads")],
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: SQLite)")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="join this Ray cluster instead of starting one")
    ] = None,
    ray_auth_mode: Annotated[str, typer.Option(help="RAY_AUTH_MODE: token or disabled")] = "token",
    num_cpus: Annotated[int | None, typer.Option(help="CPUs of the embedded Ray")] = None,
    max_attempts: Annotated[int, typer.Option(help="attempts per job (retries + 1)")] = 3,
    min_free_mb: Annotated[
        float, typer.Option(help="refuse uploads and results below this much free disk (MiB)")
    ] = 256.0,
    artifact_ttl_days: Annotated[
        float, typer.Option(help="remove results this long after their job finished")
    ] = 30.0,
    default_timeout_hours: Annotated[
        float, typer.Option(help="timeout of jobs that name none")
    ] = 24.0,
    min_cron_interval: Annotated[
        float, typer.Option(help="campaign cron schedules fire at most this often (s)")
    ] = 60.0,
    log_level: Annotated[str, typer.Option(help="uvicorn/server log level")] = "info",
) -> None:
    """Run the job service until interrupted (Ctrl-C)."""
    require_service("sigmalab serve")
    from service.server import serve as run_server

    settings = Settings(
        data_dir=data_dir,
        db_url=db,
        ray_address=ray_address,
        ray_auth_mode=ray_auth_mode,
        ray_num_cpus=num_cpus,
        max_attempts=max_attempts,
        min_free_bytes=int(min_free_mb * 2**20),
        artifact_ttl_s=artifact_ttl_days * 86400,
        default_timeout_s=default_timeout_hours * 3600,
        min_cron_interval_s=min_cron_interval,
    )
    run_server(settings, host, port, log_level)
