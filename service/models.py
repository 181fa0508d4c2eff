"""Response bodies of the HTTP API (pydantic), shared by the server and the Python client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Progress(BaseModel):
    """What a running job reported last."""

    model_config = ConfigDict(extra="allow")
    phase: str | None = Field(None, description="compiling, tuning, sampling, writing, …")
    done: int | None = Field(None, description="draws (or steps) done in this phase")
    total: int | None = Field(None, description="draws (or steps) in this phase")
    divergences: int | None = None
    eta_s: float | None = Field(None, description="estimated time left in this phase (s)")


class WorkerInfo(BaseModel):
    """Where the current attempt runs (shown to admin tokens only)."""

    host: str | None = None
    pid: int | None = None
    node_id: str | None = None


class Artifacts(BaseModel):
    """The files the job's latest attempt published."""

    partial: bool = Field(description="true: the attempt did not finish; the files are no result")
    files: list[str]


class JobInfo(BaseModel):
    """A job's state."""

    id: str
    kind: str
    status: str = Field(description="QUEUED, STARTING, RUNNING, SUCCEEDED, FAILED or CANCELLED")
    phase: str | None = None
    attempt: int = Field(description="the latest attempt (1 = first run); 0 while never claimed")
    max_attempts: int
    error_type: str | None = Field(
        None,
        description="validation, model_error, infrastructure_lost, out_of_memory, timeout or "
        "storage_full (on a queued job: why the previous attempt was lost)",
    )
    error_message: str | None = None
    cancel_requested: bool = False
    progress: Progress | None = None
    worker: WorkerInfo | None = None
    request: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result_sha256: str | None = None
    artifacts: Artifacts | None = None

    @property
    def done(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED", "CANCELLED")


class JobPage(BaseModel):
    """One page of a job listing; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[JobInfo]
    next_cursor: str | None = None


class FieldError(BaseModel):
    field: str = Field(description="location of the value at fault, e.g. 'circuit' or 'files[0]'")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem detail (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class Health(BaseModel):
    """``GET /v1/health``: 200 when everything is ok, 503 (same body) when degraded."""

    status: str = Field(description="ok or degraded")
    database: str = Field(description="ok or unavailable")
    ray: str = Field(description="connected, or 'degraded: <why>' while it is being healed")
    ray_restarts: int = Field(0, description="times the Ray connection was healed")
    disk: str = Field("ok", description="ok, or low: less free space than the server keeps")
    disk_free_bytes: int | None = None
    version: str


class RunInfo(BaseModel):
    """One fire of a campaign and, if it ran, its round."""

    id: str
    fire_time: datetime
    trigger: str = Field(description="initial, cron or measurements")
    status: str = Field(
        description="queued, running, succeeded, idle, failed, cancelled, skipped or missed"
    )
    step: str | None = Field(None, description="while running: collect, analyze, tell, propose")
    round: int | None = Field(None, description="campaign round of the proposals it stored")
    analyze_job: str | None = None
    propose_job: str | None = None
    n_measured: int | None = Field(None, description="measured recipes it took")
    n_told: int | None = None
    proposal_ids: list[str] | None = None
    best: dict | None = Field(None, description="best observation after its tell")
    pareto: list[dict] | None = None
    message: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ProposalInfo(BaseModel):
    """A proposed recipe, with the GP's prediction when it was proposed."""

    id: str
    round: int
    run_id: str
    params: dict
    predicted: dict | None = Field(None, description="{objective: {'mean', 'sd'}} (log10 S/cm)")
    status: str = Field(description="pending, measured, told or failed")
    batch: str | None = None
    created_at: datetime
    measured_at: datetime | None = None


class MeasurementInfo(BaseModel):
    """A stored measurement batch."""

    batch: str
    source: str
    recipes: dict[str, str | None] = Field(description="recipe → proposal id (null: outside)")
    n_files: int
    received_at: datetime
    run_id: str | None = None


class CampaignInfo(BaseModel):
    """A campaign: its set-up, state, history, best and Pareto front, next fire time."""

    id: str
    name: str
    status: str = Field(description="active or paused")
    spec: dict
    created_at: datetime
    next_fire_at: datetime | None = Field(None, description="cron schedules while active")
    new_measurements: int = Field(description="measured recipes no round has taken yet")
    history: list[dict] = Field(description="per finished round: round, run id, told, best")
    best: dict | None = None
    pareto: list[dict] = []
    n_observations: int
    n_failed: int
    n_pending: int
    active_runs: list[str]
    compacted_runs: dict[str, int] = Field(
        {}, description="old skipped, missed and idle fires folded into counts, by status"
    )


def timestamp(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None
