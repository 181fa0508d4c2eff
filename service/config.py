"""Server settings: where the data lives, the limits it enforces and how its loops behave.

One frozen object is built by ``sigmalab serve`` (or ``python -m service.server``) and handed
to the job store, the dispatcher and the HTTP app, so every part reads the same values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Ray authentication modes Ray 2.6x accepts in ``RAY_AUTH_MODE``.
RAY_AUTH_MODES = ("token", "disabled")
MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Configuration of one sigmalab server.

    Parameters
    ----------
    data_dir : root of the server's files (mode 0700): the SQLite database (unless
        ``db_url`` is given), ``artifacts/`` (job results), ``uploads/`` (job inputs, removed
        when the job ends), ``datasets/`` (studies that jobs may name), ``campaigns/``
        (campaign measurements), ``inboxes/`` (folder-watch connectors) and ``ray/`` (the
        embedded Ray cluster's auth token).
    db_url : SQLAlchemy URL of the job store; default ``sqlite:///<data_dir>/sigmalab.db``.
    ray_address : address of an existing Ray cluster to join; ``None`` starts an embedded one.
    ray_auth_mode : ``RAY_AUTH_MODE`` for the embedded cluster (``token`` or ``disabled``).
    ray_num_cpus : CPUs of the embedded cluster (``None``: all of the machine's).
    ray_probe_s : how often the Ray supervisor checks the cluster (s).
    ray_probe_timeout_s : a probe task that has not answered by then counts as a failure (s).
    ray_backoff_max_s : longest wait between reconnection attempts (s).
    lease_s : how long a claimed job stays ours without a renewal (s); after a crash, jobs
        of the dead server are recovered once their lease has expired.
    cancel_grace_s : time a job has to stop cooperatively before its Ray task is killed (s).
    worker_stale_s : a running job whose worker sent no heartbeat for this long is
        presumed lost and retried (s).
    max_attempts : attempts per job, the first included (infrastructure failures retry).
    retry_backoff_s, retry_backoff_max_s : a re-queued job waits ``retry_backoff_s`` ×
        2^(attempt − 1) before it may be claimed again, at most ``retry_backoff_max_s`` (s).
    default_timeout_s : a job that names no ``timeout_s`` fails after this long (s).
    max_upload_bytes : largest multipart body (uploads), counted as it arrives (bytes).
    max_json_bytes : largest JSON body of ``POST /v1/jobs`` (a propose job's campaign state).
    max_small_body_bytes : largest body of every other route (campaign specs, cancels…).
    max_unauthenticated_bytes : largest body read before the token is known to be valid.
    max_json_depth : deepest nesting of a JSON body (objects and arrays).
    min_free_bytes : uploads and results are refused (507, ``storage_full``) when the data
        directory's file system would have less free space than this left (bytes).
    artifact_ttl_s : finished jobs' files are removed this long after they finished (s);
        ``None`` keeps them (``sigmalab gc`` and the server's hourly sweep apply it).
    min_cron_interval_s : a campaign's cron schedule may fire at most this often (s).
    run_rows_kept, run_compaction_s : per campaign the newest ``run_rows_kept`` skipped,
        missed or idle fires keep their rows; older ones (by ``run_compaction_s``) become
        counts on the campaign.
    max_active_campaigns : active campaigns a new token may have (``sigmalab token create``).
    header_timeout_s : a connection must send its request line and headers within this (s).
    body_timeout_s : a request body may pause this long between two chunks (s).
    poll_s : the dispatcher's tick (s).
    scheduler_tick_s : the campaign scheduler's tick (s).
    """

    data_dir: Path = field(default_factory=lambda: Path("var/service"))
    db_url: str | None = None
    ray_address: str | None = None
    ray_auth_mode: str = "token"
    ray_num_cpus: int | None = None
    ray_probe_s: float = 1.0
    ray_probe_timeout_s: float = 10.0
    ray_backoff_max_s: float = 30.0
    lease_s: float = 30.0
    cancel_grace_s: float = 10.0
    worker_stale_s: float = 120.0
    max_attempts: int = 3
    retry_backoff_s: float = 2.0
    retry_backoff_max_s: float = 60.0
    default_timeout_s: float = 24 * 3600.0
    max_upload_bytes: int = 64 * MiB
    max_json_bytes: int = 16 * MiB
    max_small_body_bytes: int = 1 * MiB
    max_unauthenticated_bytes: int = 16 * 1024
    max_json_depth: int = 64
    min_free_bytes: int = 256 * MiB
    artifact_ttl_s: float | None = 30 * 86400.0
    min_cron_interval_s: float = 60.0
    run_rows_kept: int = 50
    run_compaction_s: float = 3600.0
    max_active_campaigns: int = 10
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
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

    def retry_delay_s(self, attempt: int) -> float:
        """Backoff before the job may run attempt ``attempt + 1`` (s)."""
        return min(self.retry_backoff_s * 2 ** max(attempt - 1, 0), self.retry_backoff_max_s)
