"""The body of the Ray task that runs one attempt of one job.

The worker talks to the job store directly (the database URL travels with the task): it marks
its attempt RUNNING, sends a heartbeat with the latest progress every second from a side
thread, reads the cancel flag on the same round trip (``should_stop`` only reads an Event, so
the sampler's callback stays cheap), captures log records of its process, writes its files
into ``artifacts/<job>/<attempt>/`` and publishes them with an atomic manifest. It never sets
a final status: the dispatcher checks the published files first.

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
import traceback
from pathlib import Path

from inference.errors import InputError, ModelError
from service import jobs
from service.artifacts import ArtifactStore
from service.store import MODEL_ERROR, OUT_OF_MEMORY, VALIDATION, JobStore

HEARTBEAT_S = 1.0
MAX_LOG_LINES = 2000


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
        self.store.add_logs(self.job_id, self.attempt, "worker", lines)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._beat()
            except Exception as exc:  # a busy database must not kill the computation
                self.log(f"heartbeat failed: {exc}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._progress is not None:
            self.store.heartbeat(self.job_id, self.attempt, self._progress)
        self._flush()


class _MonitorHandler(logging.Handler):
    """Our packages' INFO records and everyone's warnings go to the job's log."""

    OURS = ("inference", "optimizer", "service", "py.warnings")

    def __init__(self, monitor: AttemptMonitor):
        super().__init__(level=logging.INFO)
        self.monitor = monitor
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or record.name.startswith(self.OURS):
            self.monitor.log(self.format(record))


def run_attempt(
    job_id: str,
    attempt: int,
    kind: str,
    request: dict,
    db_url: str,
    artifacts_root: str,
    inputs_dir: str,
    datasets_dir: str,
) -> dict:
    """Run one attempt of a job (the Ray task body); returns what happened.

    Returns
    -------
    ``{"outcome": "published" | "failed" | "stopped" | "superseded", "error_type", "message"}``
    — "published" means the files and manifest are in place for the dispatcher to check.
    """
    store = JobStore(db_url)
    worker = {"host": socket.gethostname(), "pid": os.getpid(), "node_id": _node_id()}
    if not store.mark_running(job_id, attempt, worker):
        return {"outcome": "superseded"}
    artifacts = ArtifactStore(artifacts_root)
    out_dir = artifacts.attempt_dir(job_id, attempt)
    out_dir.mkdir(parents=True, exist_ok=True)
    monitor = AttemptMonitor(store, job_id, attempt).start()
    handler = _MonitorHandler(monitor)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(min(old_level, logging.INFO))
    logging.captureWarnings(True)
    monitor.log(f"attempt {attempt} started on {worker['host']} (pid {worker['pid']})")
    try:
        if monitor.should_stop():
            raise jobs.JobStopped("cancelled before start")
        primary = jobs.execute(
            kind,
            request,
            Path(inputs_dir),
            Path(datasets_dir),
            out_dir,
            progress=monitor.progress,
            should_stop=monitor.should_stop,
        )
        if monitor.should_stop():
            # The job finished but was cancelled meanwhile: the user asked for no result.
            raise jobs.JobStopped("cancelled while the result was being written")
        artifacts.publish(job_id, attempt, primary=primary)
        monitor.log("result published")
        return {"outcome": "published"}
    except jobs.JobStopped as exc:
        monitor.log(f"stopped: {exc}")
        artifacts.publish(job_id, attempt, primary=None, partial=True, reason=str(exc))
        return {"outcome": "stopped", "message": monitor.cancel_reason or str(exc)}
    except InputError as exc:
        return _failure(monitor, VALIDATION, exc)
    except ModelError as exc:
        return _failure(monitor, MODEL_ERROR, exc)
    except MemoryError as exc:
        return _failure(monitor, OUT_OF_MEMORY, exc)
    except Exception as exc:  # an unexpected error in the model code: a model error, no retry
        monitor.log(traceback.format_exc())
        return _failure(monitor, MODEL_ERROR, exc, f"{type(exc).__name__}: {exc}")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logging.captureWarnings(False)
        monitor.close()


def _failure(monitor: AttemptMonitor, error_type: str, exc: Exception, message: str | None = None):
    message = message or str(exc).splitlines()[0]
    monitor.log(f"failed ({error_type}): {message}")
    return {"outcome": "failed", "error_type": error_type, "message": message}


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # not inside Ray (tests calling run_attempt directly)
        return None
