"""Server settings: where the data lives and how the dispatcher behaves.

One frozen object is built by ``sigmalab serve`` (or ``python -m service.server``) and handed
to the job store, the dispatcher and the HTTP app, so every part reads the same values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Ray authentication modes Ray 2.6x accepts in ``RAY_AUTH_MODE``.
RAY_AUTH_MODES = ("token", "disabled")


@dataclass(frozen=True)
class Settings:
    """Configuration of one sigmalab server.

    Parameters
    ----------
    data_dir : root of the server's files: the SQLite database (unless ``db_url`` is given),
        ``artifacts/`` (job results), ``uploads/`` (job inputs), ``datasets/`` (studies that
        jobs may name), ``campaigns/`` (campaign measurements), ``inboxes/`` (folder-watch
        connectors) and ``ray/`` (the embedded Ray cluster's auth token).
    db_url : SQLAlchemy URL of the job store; default ``sqlite:///<data_dir>/sigmalab.db``.
    ray_address : address of an existing Ray cluster to join; ``None`` starts an embedded one.
    ray_auth_mode : ``RAY_AUTH_MODE`` for the embedded cluster (``token`` or ``disabled``).
    ray_num_cpus : CPUs of the embedded cluster (``None``: all of the machine's).
    lease_s : how long a claimed job stays ours without a renewal (s); after a crash, jobs
        of the dead server are recovered once their lease has expired.
    cancel_grace_s : time a job has to stop cooperatively before its Ray task is killed (s).
    worker_stale_s : a running job whose worker sent no heartbeat for this long is
        presumed lost and retried (s).
    max_attempts : attempts per job, the first included (infrastructure failures retry).
    max_upload_bytes : largest accepted request body (bytes).
    poll_s : the dispatcher's tick (s).
    scheduler_tick_s : the campaign scheduler's tick (s).
    """

    data_dir: Path = field(default_factory=lambda: Path("var/service"))
    db_url: str | None = None
    ray_address: str | None = None
    ray_auth_mode: str = "token"
    ray_num_cpus: int | None = None
    lease_s: float = 30.0
    cancel_grace_s: float = 10.0
    worker_stale_s: float = 120.0
    max_attempts: int = 3
    max_upload_bytes: int = 64 * 1024 * 1024
    poll_s: float = 0.25
    scheduler_tick_s: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "data_dir", Path(self.data_dir).resolve())
        if self.ray_auth_mode not in RAY_AUTH_MODES:
            raise ValueError(
                f"ray_auth_mode must be one of {RAY_AUTH_MODES}, not {self.ray_auth_mode!r}"
            )

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Settings from ``SIGMALAB_DATA_DIR`` / ``SIGMALAB_DB`` / ``SIGMALAB_RAY_ADDRESS``."""
        env = {
            "data_dir": os.environ.get("SIGMALAB_DATA_DIR"),
            "db_url": os.environ.get("SIGMALAB_DB"),
            "ray_address": os.environ.get("SIGMALAB_RAY_ADDRESS"),
        }
        values = {k: v for k, v in env.items() if v}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'sigmalab.db'}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"
