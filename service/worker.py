"""The body of the Ray task that runs one attempt of one job.

The worker talks to the job store directly (the database URL travels with the task): it marks
its attempt RUNNING, sends a heartbeat with the latest progress every second from a side
thread, reads the cancel flag on the same round trip (``should_stop`` only reads an Event, so
the sampler's callback stays cheap), captures log records of its process, writes its files
into ``artifacts/<job>/<attempt>/`` and publishes them with an atomic manifest. It never sets
a final status: the dispatcher checks the published files first.

What reaches the job's log (and so the user) is one line per event with no server path; a
traceback goes to the worker process's own log (Ray's log folder on the server), never to
the job. Files are created private (umask 077).

If the attempt was superseded (the job was re-queued or finished by someone else while this
worker lagged), the heartbeat sees it and the worker stops: a zombie cannot overwrite a newer
attempt, and its folder is its own.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from inference.errors import InputError, ModelError
from service import jobs
from service.artifacts import ArtifactStore
from service.confine import scrub
from service.errors import JobStopped, RequestInvalid, StorageFull
from service.status import ErrorType
from service.store import JobStore
from service.uploads import is_disk_full, require_space

HEARTBEAT_S = 1.0
MAX_LOG_LINES = 2000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptEnv:
    """What a worker needs besides the job: where things are, and the disk reserve."""

    db_url: str
    artifacts_root: str
    inputs_dir: str
    datasets_dir: str
    min_free_bytes: int = 0


class AttemptMonitor:
    """Heartbeat, progress, cancel flag and log capture of one running attempt.

    Parameters
    ----------
    store : the job store.
    job_id, attempt : which attempt this worker runs.
    interval_s : heartbeat period (s).
    """

    def __init__(self, store: JobStore, job_id: str, attempt: int, interval_s: float = HEARTBEAT_S):
        self.store, self.job_id, self.attempt = store, job_id, attempt
        self.interval_s = interval_s
        self._progress: dict | None = None
        self._phase_start: tuple[str | None, float, int] = (None, time.time(), 0)
        self._lines: list[str] = []
        self._lines_kept = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self.cancel_reason: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def start(self) -> AttemptMonitor:
        self._beat()
        self._thread.start()
        return self

    def progress(self, info: dict) -> None:
        """Sampling callback: ``{"phase", "done", "total", "divergences"}``; adds an ETA (s)."""
        now = time.time()
        phase, done = info.get("phase"), info.get("done")
        start_phase, t0, done0 = self._phase_start
        if phase != start_phase:
            self._phase_start = (phase, now, done or 0)
            start_phase, t0, done0 = self._phase_start
        record = {k: v for k, v in info.items() if v is not None}
        total = info.get("total")
        if done is not None and total and done > done0 and now > t0:
            rate = (done - done0) / (now - t0)
            record["eta_s"] = round((total - done) / rate, 1)
        record["updated_at"] = now
        self._progress = record

    def should_stop(self) -> bool:
        return self._cancel.is_set()

    def log(self, message: str) -> None:
        with self._lock:
            self._lines_kept += 1
            if self._lines_kept <= MAX_LOG_LINES:
                self._lines.append(message)
            elif self._lines_kept == MAX_LOG_LINES + 1:
                self._lines.append(f"… log truncated after {MAX_LOG_LINES} lines")

    def _beat(self) -> None:
        current, cancel = self.store.heartbeat(self.job_id, self.attempt, self._progress)
        if not current or cancel:
            self.cancel_reason = cancel or "superseded"
            self._cancel.set()
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        try:
            self.store.add_logs(self.job_id, self.attempt, "worker", lines)
        except Exception:
            with self._lock:  # keep them for the next beat (database busy or dropped)
                self._lines[:0] = lines
            raise

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._beat()
            except Exception as exc:  # a busy or lost database must not kill the computation
                log.warning("heartbeat of %s failed: %s", self.job_id, exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            if self._progress is not None:
                self.store.heartbeat(self.job_id, self.attempt, self._progress)
            self._flush()
        except Exception as exc:  # the dispatcher settles the attempt from its files
            log.warning("last heartbeat of %s failed: %s", self.job_id, exc)


class _MonitorHandler(logging.Handler):
    """Our packages' INFO records and everyone's warnings go to the job's log, one line each
    without server paths."""

    OURS = ("inference", "optimizer", "service", "py.warnings")

    def __init__(self, monitor: AttemptMonitor, roots: tuple[Path, ...]):
        super().__init__(level=logging.INFO)
        self.monitor, self.roots = monitor, roots

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == __name__:
            return  # the worker's own records are about the worker, for the server log
        if record.levelno >= logging.WARNING or record.name.startswith(self.OURS):
            text = scrub(record.getMessage(), *self.roots)
            self.monitor.log(f"{record.levelname} {record.name}: {text}")


def _retry_dropped_connection(fn, *args, tries: int = 3, wait_s: float = 0.5):
    """``fn(*args)``, again after a pause when the database dropped the connection (the pool
    opens a new one); the last failure propagates (the dispatcher then retries the attempt)."""
    for i in range(tries):
        try:
            return fn(*args)
        except sa.exc.OperationalError:
            if i == tries - 1:
                raise
            log.warning("database connection lost; trying again in %.1f s", wait_s * (i + 1))
            time.sleep(wait_s * (i + 1))


def run_attempt(job_id: str, attempt: int, kind: str, request: dict, env: AttemptEnv) -> dict:
    """Run one attempt of a job (the Ray task body); returns what happened.

    Returns
    -------
    ``{"outcome": "published" | "failed" | "stopped" | "superseded", "error_type", "message"}``
    — "published" means the files and manifest are in place for the dispatcher to check.
    """
    os.umask(0o077)
    store = JobStore(env.db_url)
    worker = {"host": socket.gethostname(), "pid": os.getpid(), "node_id": _node_id()}
    if not _retry_dropped_connection(store.mark_running, job_id, attempt, worker):
        return {"outcome": "superseded"}
    artifacts = ArtifactStore(env.artifacts_root)
    out_dir = artifacts.attempt_dir(job_id, attempt)
    roots = (Path(env.inputs_dir), out_dir, Path(env.datasets_dir), Path(env.artifacts_root))
    monitor = AttemptMonitor(store, job_id, attempt).start()
    handler = _MonitorHandler(monitor, roots)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(min(old_level, logging.INFO))
    logging.captureWarnings(True)
    monitor.log(f"attempt {attempt} started")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if monitor.should_stop():
            raise JobStopped("cancelled before start")
        primary = jobs.execute(
            kind,
            request,
            Path(env.inputs_dir),
            Path(env.datasets_dir),
            out_dir,
            progress=monitor.progress,
            should_stop=monitor.should_stop,
        )
        if monitor.should_stop():
            # The job finished but was cancelled meanwhile: the user asked for no result.
            raise JobStopped("cancelled while the result was being written")
        require_space(out_dir, env.min_free_bytes)
        artifacts.publish(job_id, attempt, primary=primary)
        monitor.log("result published")
        return {"outcome": "published"}
    except JobStopped as exc:
        monitor.log(f"stopped: {exc}")
        artifacts.publish(job_id, attempt, primary=None, partial=True, reason=str(exc))
        return {"outcome": "stopped", "message": monitor.cancel_reason or str(exc)}
    except StorageFull as exc:
        return _failure(monitor, ErrorType.STORAGE_FULL, exc, roots)
    except (InputError, RequestInvalid) as exc:
        return _failure(monitor, ErrorType.VALIDATION, exc, roots)
    except ModelError as exc:
        return _failure(monitor, ErrorType.MODEL_ERROR, exc, roots)
    except MemoryError as exc:
        return _failure(monitor, ErrorType.OUT_OF_MEMORY, exc, roots)
    except Exception as exc:  # an unexpected error in the model code: a model error, no retry
        if is_disk_full(exc):
            message = "the disk of the results filled up while they were written"
            return _failure(monitor, ErrorType.STORAGE_FULL, exc, roots, message)
        log.exception("job %s attempt %d failed", job_id, attempt)  # the server's log only
        message = f"{type(exc).__name__}: {exc}"
        return _failure(monitor, ErrorType.MODEL_ERROR, exc, roots, message)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logging.captureWarnings(False)
        monitor.close()


def _failure(monitor, error_type: str, exc, roots, message: str | None = None) -> dict:
    message = scrub(message or exc, *roots)
    monitor.log(f"failed ({error_type}): {message}")
    return {"outcome": "failed", "error_type": str(error_type), "message": message}


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # not inside Ray (tests calling run_attempt directly)
        return None
