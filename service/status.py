"""Status enums of jobs and campaign runs, and the error types of failed jobs.

Light on purpose (the client may import it). Members are ``str`` values, so they compare
equal to the strings stored in the database and sent over HTTP (``JobStatus.QUEUED ==
"QUEUED"``).

Job lifecycle::

    QUEUED → STARTING → RUNNING(phase) → SUCCEEDED | FAILED | CANCELLED
       ↑________________________|  (infrastructure failure, attempts left: re-queued)

Campaign run lifecycle::

    queued → running(step) → succeeded | idle | failed | cancelled
    skipped | missed                    (fires that did not run)
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

    @classmethod
    def active(cls) -> tuple[JobStatus, ...]:
        """Unfinished: queued or in flight."""
        return (cls.QUEUED, cls.STARTING, cls.RUNNING)

    @classmethod
    def in_flight(cls) -> tuple[JobStatus, ...]:
        """Claimed by a dispatcher: an attempt exists."""
        return (cls.STARTING, cls.RUNNING)

    @classmethod
    def terminal(cls) -> tuple[JobStatus, ...]:
        return (cls.SUCCEEDED, cls.FAILED, cls.CANCELLED)


class ErrorType(StrEnum):
    """Why a job failed (``error_type``); only the retryable ones are re-queued."""

    VALIDATION = "validation"  # the inputs are wrong (a user's mistake)
    MODEL_ERROR = "model_error"  # the model could not be fitted, or a bug
    INFRASTRUCTURE_LOST = "infrastructure_lost"  # worker, node or Ray cluster lost
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"  # ran longer than its timeout_s
    STORAGE_FULL = "storage_full"  # the disk of the artifacts or uploads filled up

    @property
    def retryable(self) -> bool:
        return self in (ErrorType.INFRASTRUCTURE_LOST, ErrorType.OUT_OF_MEMORY)


class RunStatus(StrEnum):
    """Status of one fire of a campaign (a row of ``campaign_runs``)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    IDLE = "idle"  # nothing new to tell while proposals were still pending
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # overlap forbid: another round was still running
    MISSED = "missed"  # due while no scheduler ran (catch-up policy)

    def is_terminal(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)

    @classmethod
    def unfinished(cls) -> tuple[RunStatus, ...]:
        return (cls.QUEUED, cls.RUNNING)


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
