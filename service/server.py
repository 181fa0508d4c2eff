"""The server process: Ray driver + dispatcher and scheduler threads + uvicorn serving the API.

Run as ``sigmalab serve …`` or ``python -m service.server --data-dir DIR [--port 8000]``.
uvicorn runs outside Ray; the dispatcher in this process submits one Ray task per job.
"""

from __future__ import annotations

import argparse
import logging
import sys

import ray
import uvicorn

from service import ray_cluster
from service.api import create_app, open_manager
from service.campaigns import CampaignManager
from service.config import Settings
from service.dispatcher import Dispatcher
from service.scheduler import Scheduler


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, log_level="info"):
    """Start Ray (or join it), the dispatcher, the campaign scheduler and the HTTP server;
    returns on shutdown."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    ray_cluster.connect(settings)
    manager = open_manager(settings)
    dispatcher = Dispatcher(settings, manager.store, manager.artifacts).start()
    campaigns = CampaignManager(manager)
    scheduler = Scheduler(settings, manager, campaigns.store).start()
    app = create_app(settings, manager=manager, campaigns=campaigns)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level))
    try:
        server.run()
    finally:
        scheduler.stop()
        dispatcher.stop()
        ray.shutdown()


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
    p.add_argument("--scheduler-tick-seconds", type=float, default=1.0)
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
        scheduler_tick_s=args.scheduler_tick_seconds,
    )


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    serve(settings_from_args(args), args.host, args.port, args.log_level)


if __name__ == "__main__":
    main(sys.argv[1:])
