"""The server process: watched Ray driver + dispatcher and scheduler threads + uvicorn.

Run as ``sigmalab serve …`` or ``python -m service.server --data-dir DIR [--port 8000]``.
uvicorn runs outside Ray; the dispatcher in this process submits one Ray task per job. The
Ray connection is supervised (:class:`service.ray_cluster.RayRuntime`): a dead embedded
cluster is restarted, a lost external one reconnected, and the API stays up meanwhile
(``/v1/health`` answers 503 ``degraded``).
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from service.api import create_app, open_manager
from service.campaigns.manager import CampaignManager
from service.config import Settings
from service.dispatcher import Dispatcher
from service.limits import header_timeout_protocol
from service.ray_cluster import RayRuntime
from service.scheduler import Scheduler

#: Connections served at once; more wait in the kernel's backlog (503 from uvicorn beyond).
MAX_CONNECTIONS = 256


def uvicorn_config(app, settings: Settings, host: str, port: int, log_level: str):
    """uvicorn with deadlines: idle keep-alive 5 s, request headers ``header_timeout_s``."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=header_timeout_protocol(settings.header_timeout_s),
        timeout_keep_alive=5,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=64 * 1024,
    )


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, log_level="info"):
    """Start Ray (or join it), the dispatcher, the campaign scheduler and the HTTP server;
    returns on shutdown."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    manager = open_manager(settings)  # first: the umask applies to Ray's files too
    runtime = RayRuntime(settings).start()
    dispatcher = Dispatcher(settings, manager.store, manager.artifacts, runtime=runtime).start()
    campaigns = CampaignManager(manager)
    scheduler = Scheduler(settings, manager, campaigns.store).start()
    app = create_app(settings, manager=manager, campaigns=campaigns, ray_runtime=runtime)
    server = uvicorn.Server(uvicorn_config(app, settings, host, port, log_level))
    try:
        server.run()
    finally:
        scheduler.stop()
        dispatcher.stop()
        runtime.stop()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m service.server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite in the data dir)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster")
    p.add_argument("--ray-auth-mode", default="token", choices=("token", "disabled"))
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded Ray")
    p.add_argument("--lease-seconds", type=float, default=30.0)
    p.add_argument("--cancel-grace-seconds", type=float, default=10.0)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--retry-backoff-seconds", type=float, default=2.0)
    p.add_argument("--scheduler-tick-seconds", type=float, default=1.0)
    p.add_argument("--min-cron-interval-seconds", type=float, default=60.0)
    p.add_argument("--min-free-mb", type=float, default=256.0, help="disk space kept free")
    p.add_argument("--artifact-ttl-days", type=float, default=30.0)
    p.add_argument("--default-timeout-hours", type=float, default=24.0)
    p.add_argument("--log-level", default="info")
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(
        data_dir=args.data_dir,
        db_url=args.db,
        ray_address=args.ray_address,
        ray_auth_mode=args.ray_auth_mode,
        ray_num_cpus=args.num_cpus,
        lease_s=args.lease_seconds,
        cancel_grace_s=args.cancel_grace_seconds,
        max_attempts=args.max_attempts,
        retry_backoff_s=args.retry_backoff_seconds,
        scheduler_tick_s=args.scheduler_tick_seconds,
        min_cron_interval_s=args.min_cron_interval_seconds,
        min_free_bytes=int(args.min_free_mb * 2**20),
        artifact_ttl_s=args.artifact_ttl_days * 86400,
        default_timeout_s=args.default_timeout_hours * 3600,
    )


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    serve(settings_from_args(args), args.host, args.port, args.log_level)


if __name__ == "__main__":
    main(sys.argv[1:])
