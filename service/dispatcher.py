"""The dispatcher: claims queued jobs, runs each attempt as one Ray task, records the outcome.

One dispatcher runs in each server process (a thread next to uvicorn). Each tick it

1. renews the leases of the attempts it runs (its "server heartbeat");
2. recovers jobs whose lease expired — their server died: a complete published attempt is
   checked and finished, anything else is re-queued for a next attempt (or failed when no
   attempts are left), so nothing stays RUNNING forever;
3. settles the attempts of a Ray cluster that died (the supervisor, :mod:`service.ray_cluster`,
   connected a new one): finished from their published files, or lost;
4. collects finished Ray tasks and turns their outcome into a final status, a retry or a
   failure; Ray's own retries are off (``max_retries=0``), ours are explicit, bounded and
   backed off (a re-queued job waits ``retry_backoff_s`` × 2^(attempt−1));
5. enforces cancellation (the worker stops cooperatively on the DB flag; after
   ``cancel_grace_s`` the task is killed with ``ray.cancel(force=True)``), timeouts and
   stale worker heartbeats;
6. claims as many queued jobs as the cluster has free CPUs for, fairly across owners, and
   submits them — only while Ray is healthy.

Every transition is a compare-and-set in the store, so a second dispatcher or a restarted one
can never run an attempt twice. When a job ends, its uploaded inputs are removed, and so are
the folders of its earlier attempts.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field, replace

import ray
import sqlalchemy as sa

from service import jobs
from service.artifacts import ArtifactStore
from service.config import Settings
from service.errors import ArtifactError, ResultMismatch
from service.gc import collect_garbage
from service.ray_cluster import RayRuntime
from service.status import ErrorType
from service.store import CANCELLED, FAILED, RUNNING, SUCCEEDED, JobStore
from service.uploads import free_bytes
from service.worker import AttemptEnv, run_attempt

log = logging.getLogger(__name__)

_remote_attempt = ray.remote(num_cpus=1, max_retries=0)(run_attempt)
#: How often the dispatcher removes old results and leftovers (s).
GC_EVERY_S = 3600.0


@dataclass
class _InFlight:
    job_id: str
    attempt: int
    kind: str
    request: dict
    ref: ray.ObjectRef | None
    generation: int = 0
    submitted_at: float = field(default_factory=time.time)
    killed_at: float | None = None


class Dispatcher:
    """Moves jobs from the queue through Ray to a final status.

    Parameters
    ----------
    settings : lease, grace, retry and backoff settings.
    store, artifacts : the job and artifact stores.
    runtime : the watched Ray connection (default: one that only watches the Ray this
        process already runs).
    max_in_flight : cap on concurrently submitted attempts (default: the cluster's CPUs).
    """

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        artifacts: ArtifactStore,
        max_in_flight: int | None = None,
        runtime: RayRuntime | None = None,
    ):
        self.settings, self.store, self.artifacts = settings, store, artifacts
        self.runtime = runtime
        self.max_in_flight = max_in_flight
        self.lease_owner = f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.in_flight: dict[str, _InFlight] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_renewal = 0.0
        self._gc_at = 0.0
        self._own_runtime = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Dispatcher:
        if self.runtime is None:
            self.runtime = RayRuntime(self.settings, owned=False).start()
            self._own_runtime = True
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop ticking (and the Ray watcher it started); running attempts keep their lease
        until it expires."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._own_runtime:
            self.runtime.stop()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.poll_s):
            try:
                self.tick()
            except Exception:  # one bad tick (a lost DB, a Ray hiccup) must not stop the loop
                log.exception("dispatcher tick failed")

    def tick(self) -> None:
        now = time.time()
        if now - self._last_renewal > self.settings.lease_s / 3:
            self.store.renew_leases(self.lease_owner, self.in_flight, self.settings.lease_s)
            self._last_renewal = now
            self.recover()
        if now - self._gc_at > GC_EVERY_S:
            self._gc_at = now
            collect_garbage(self.settings, self.store, self.artifacts, now=now)
        if self.runtime is None or not self.runtime.healthy:
            return  # Ray is down: only the database work above; the supervisor heals Ray
        with self.runtime.lock:
            self._settle_lost_cluster()
            self._collect()
            self._enforce(now)
            if self.runtime.healthy:
                self._claim()

    # -- recovery -------------------------------------------------------------------------------

    def recover(self) -> None:
        """Finish or re-queue jobs whose server stopped renewing their lease."""
        for job in self.store.expired_leases(time.time()):
            if job["id"] in self.in_flight:
                continue
            if not self.store.take_over(
                job["id"], job["attempt"], self.lease_owner, self.settings.lease_s
            ):
                continue
            self._event(job, f"lease of {job['lease_owner']} expired; recovering")
            self._settle_without_task(
                job["id"], job["attempt"], job["kind"], job["request"], "the server running it died"
            )

    def _settle_lost_cluster(self) -> None:
        """Attempts submitted to a Ray cluster that has since been replaced."""
        generation = self.runtime.generation
        for flight in [f for f in self.in_flight.values() if f.generation != generation]:
            del self.in_flight[flight.job_id]
            self._settle_without_task(
                flight.job_id, flight.attempt, flight.kind, flight.request, "the Ray cluster died"
            )

    def _settle_without_task(
        self, job_id: str, attempt: int, kind: str, request: dict, why: str
    ) -> None:
        """An attempt whose task is gone: its published files decide, else it was lost."""
        job = self.store.get_job(job_id)
        if job is None or job["attempt"] != attempt:
            return
        if self.artifacts.manifest(job_id, attempt) is not None:
            self._finish_published(job_id, attempt, kind, request)
        elif job["cancel_requested"]:
            self._cancelled(job_id, attempt, job["cancel_requested"])
        else:
            self._retry_or_fail(job_id, attempt, ErrorType.INFRASTRUCTURE_LOST, why)

    # -- outcomes -------------------------------------------------------------------------------

    def _collect(self) -> None:
        if not self.in_flight:
            return
        refs = {f.ref: f for f in self.in_flight.values()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
        for ref in ready:
            flight = refs[ref]
            del self.in_flight[flight.job_id]
            try:
                outcome = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                outcome = {"outcome": "killed"}
            except ray.exceptions.OutOfMemoryError:
                outcome = {"outcome": "lost", "error_type": ErrorType.OUT_OF_MEMORY,
                           "message": "the worker ran out of memory"}  # fmt: skip
            except ray.exceptions.RayTaskError as exc:
                if isinstance(exc.cause, sa.exc.OperationalError):
                    # The worker lost its database connection (a restart, a dropped link):
                    # infrastructure, so the attempt is retried.
                    log.warning("job %s attempt %d: database connection lost in the worker",
                                flight.job_id, flight.attempt)  # fmt: skip
                    outcome = {"outcome": "lost", "error_type": ErrorType.INFRASTRUCTURE_LOST,
                               "message": "the worker lost its database connection"}  # fmt: skip
                else:
                    # An exception escaped run_attempt itself: our bug or a broken environment.
                    log.error("job %s attempt %d raised: %s", flight.job_id, flight.attempt, exc)
                    message = "the worker failed unexpectedly (see the server log)"
                    outcome = {"outcome": "failed", "error_type": ErrorType.MODEL_ERROR,
                               "message": message}  # fmt: skip
            except ray.exceptions.RayError as exc:  # worker/node died, object lost, …
                self.runtime.suspect()
                message = f"{type(exc).__name__}: the worker or its node was lost"
                outcome = {"outcome": "lost", "error_type": ErrorType.INFRASTRUCTURE_LOST,
                           "message": message}  # fmt: skip
            self._settle(flight, outcome)

    def _settle(self, flight: _InFlight, outcome: dict) -> None:
        job_id, attempt = flight.job_id, flight.attempt
        kind = outcome["outcome"]
        job = self.store.get_job(job_id)
        if job is None or job["attempt"] != attempt:
            return
        if kind == "published":
            self._finish_published(job_id, attempt, flight.kind, flight.request)
        elif kind in ("stopped", "killed"):
            if job["cancel_requested"]:
                self._cancelled(job_id, attempt, job["cancel_requested"])
            else:
                self._lost(job_id, attempt, "the worker stopped")
        elif kind == "failed":
            self._event(job, f"attempt {attempt} failed: {outcome['message']}")
            self._finish(
                job_id,
                attempt,
                FAILED,
                error_type=outcome["error_type"],
                error_message=outcome["message"],
            )
        elif kind == "lost":
            if job["cancel_requested"]:
                self._cancelled(job_id, attempt, job["cancel_requested"])
            else:
                self._lost(job_id, attempt, outcome["message"], outcome["error_type"])

    def _lost(self, job_id, attempt, message, error_type=ErrorType.INFRASTRUCTURE_LOST) -> None:
        """A worker that vanished on a full disk is no infrastructure loss: it is not retried."""
        if free_bytes(self.artifacts.root) < self.settings.min_free_bytes:
            error_type = ErrorType.STORAGE_FULL
            message = "the disk of the results is full"
        self._retry_or_fail(job_id, attempt, error_type, message)

    def _finish_published(self, job_id: str, attempt: int, kind: str, request: dict) -> None:
        job = self.store.get_job(job_id)
        manifest = self.artifacts.manifest(job_id, attempt)
        if manifest is not None and manifest["partial"]:
            if job["cancel_requested"]:
                self._cancelled(job_id, attempt, job["cancel_requested"])
            else:
                self._retry_or_fail(
                    job_id, attempt, ErrorType.INFRASTRUCTURE_LOST, "the worker stopped"
                )
            return
        try:
            manifest = self.artifacts.verify(job_id, attempt)
            primary = self.artifacts.attempt_dir(job_id, attempt) / manifest["primary"]
            jobs.check_result(kind, request, primary)
        except (ArtifactError, ResultMismatch) as exc:
            self._event(job, f"attempt {attempt} result rejected: {exc}")
            self._finish(
                job_id, attempt, FAILED, error_type=ErrorType.MODEL_ERROR, error_message=str(exc)
            )
            return
        self._finish(
            job_id,
            attempt,
            SUCCEEDED,
            artifact_path=self.artifacts.relative(primary),
            artifact_sha256=manifest["files"][manifest["primary"]]["sha256"],
        )
        self._event(job, f"attempt {attempt} succeeded")

    def _cancelled(self, job_id: str, attempt: int, reason: str) -> None:
        job = self.store.get_job(job_id)
        folder = self.artifacts.attempt_dir(job_id, attempt)
        if folder.is_dir() and self.artifacts.manifest(job_id, attempt) is None:
            # The task was killed before it could publish: mark what it left as partial.
            self.artifacts.publish(job_id, attempt, primary=None, partial=True, reason=reason)
        if reason == "timeout":
            message = f"ran longer than its timeout of {job['timeout_s']:g} s"
            self._finish(
                job_id, attempt, FAILED, error_type=ErrorType.TIMEOUT, error_message=message
            )
        else:
            self._finish(job_id, attempt, CANCELLED, error_message="cancelled on request")
        self._event(job, f"attempt {attempt} ended: {reason}")

    def _retry_or_fail(self, job_id: str, attempt: int, error_type: str, message: str) -> None:
        job = self.store.get_job(job_id)
        if ErrorType(error_type).retryable and attempt < job["max_attempts"]:
            delay = self.settings.retry_delay_s(attempt)
            if self.store.requeue(job_id, attempt, error_type, message, time.time() + delay):
                self._event(job, f"attempt {attempt} lost ({message}); re-queued in {delay:g} s")
            return
        self._finish(job_id, attempt, FAILED, error_type=error_type, error_message=message)
        self._event(job, f"attempt {attempt} lost ({message}); not retried")

    def _finish(self, job_id: str, attempt: int, status: str, **values) -> None:
        """A final status; the job's inputs and its earlier attempts' folders go."""
        if self.store.finish(job_id, attempt, status, **values):
            self.artifacts.remove(job_id, keep_attempt=attempt)
            shutil.rmtree(self.settings.uploads_dir / job_id, ignore_errors=True)

    # -- enforcement ----------------------------------------------------------------------------

    def _enforce(self, now: float) -> None:
        for flight in list(self.in_flight.values()):
            job = self.store.get_job(flight.job_id)
            if job is None:
                continue
            if (
                job["timeout_s"]
                and job["started_at"]
                and not job["cancel_requested"]
                and now - job["started_at"] > job["timeout_s"]
            ):
                job = self.store.request_cancel(flight.job_id, reason="timeout")
            stale = (
                job["status"] == RUNNING
                and job["heartbeat_at"] is not None
                and now - job["heartbeat_at"] > self.settings.worker_stale_s
            )
            overdue = (
                job["cancel_requested"]
                and now - job["cancel_requested_at"] > self.settings.cancel_grace_s
            )
            if (stale or overdue) and flight.killed_at is None:
                why = "its worker stopped sending heartbeats" if stale else "grace period over"
                self._event(job, f"killing attempt {flight.attempt}: {why}")
                ray.cancel(flight.ref, force=True)
                flight.killed_at = now

    # -- claiming -------------------------------------------------------------------------------

    def capacity(self) -> int:
        """How many attempts may run at once: the cluster's CPUs, as the Ray supervisor saw them."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        return self.runtime.cpus

    def _claim(self) -> None:
        free = self.capacity() - len(self.in_flight)
        if free <= 0:
            return
        env = AttemptEnv(
            db_url=self.store.url,
            artifacts_root=str(self.artifacts.root),
            inputs_dir="",
            datasets_dir=str(self.settings.datasets_dir),
            min_free_bytes=self.settings.min_free_bytes,
        )
        for job in self.store.claimable(free):
            if not self.store.claim(
                job["id"], job["attempt"], self.lease_owner, self.settings.lease_s
            ):
                continue  # another dispatcher got it
            attempt = job["attempt"] + 1
            inputs = str(self.settings.uploads_dir / job["id"])
            ref = _remote_attempt.remote(
                job["id"], attempt, job["kind"], job["request"], replace(env, inputs_dir=inputs)
            )
            self.in_flight[job["id"]] = _InFlight(
                job["id"], attempt, job["kind"], job["request"], ref, self.runtime.generation
            )
            self._event(job, f"attempt {attempt} submitted to Ray", attempt)

    def _event(self, job: dict, message: str, attempt: int | None = None) -> None:
        self.store.add_logs(job["id"], attempt or job["attempt"], "dispatcher", [message])
