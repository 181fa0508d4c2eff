"""Campaign operations on behalf of an authenticated principal: what the routes call.

Visibility as for jobs: a token sees its own campaigns (``admin``: all); any other id is "not
found". Creating a campaign is idempotent by ``Idempotency-Key`` (the same key with another
body is refused) and bounded per token (``max_active_campaigns``).
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inference.errors import InputError
from service.auth import Principal, parse_scopes
from service.campaigns import schedules
from service.campaigns.ingest import check_batch_name, ingest_batch, new_arrivals
from service.campaigns.store import ACTIVE, UNFINISHED, CampaignStore
from service.errors import CampaignInvalid, CampaignNotFound, NotReady
from service.models import CampaignInfo, MeasurementInfo, ProposalInfo, RunInfo
from service.status import RunStatus
from service.store import JobStore, dumps

#: Objectives a campaign can optimise, and the summary.json conductivity kind each one reads
#: (values are told as log10 of σ in S/cm).
OBJECTIVE_KINDS = {"sigma_ion": "ionic", "sigma_el": "electronic"}


class AnalysisSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["lsq", "nuts"] = Field("lsq", description="stage-1 fits of each round")


class CampaignSpec(BaseModel):
    """``POST /v1/campaigns``: what to optimise, when rounds fire, who makes the cells."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    space: dict[str, Any] = Field(description="search-space spec (optimizer.space)")
    objectives: dict[str, str] = Field(
        description="{'sigma_ion' | 'sigma_el': 'maximize' | 'minimize'} (log10 S/cm at 30 °C)"
    )
    q: int = Field(4, ge=1, le=64, description="proposals per round")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    n_initial: int | None = Field(None, ge=1, le=1000, description="initial-design size")
    p_success_min: float | None = Field(
        None, gt=0, lt=1, description="least predicted P(success) of a proposal (default 0.7)"
    )
    failure_cost: float | None = Field(
        None, ge=0, description="price of a failed experiment, in sd of the objective (0.1)"
    )
    multi_objective: Literal["ehvi", "parego"] | None = Field(
        None, description="two objectives: 'ehvi' (default) or 'parego'"
    )
    reference: dict[str, float] | None = Field(
        None,
        description="two objectives: hypervolume reference point {objective: log10 S/cm}, the "
        "worst value still worth having (default: from the observed front)",
    )
    schedule: dict[str, Any] = Field(
        description="{'cron': '*/30 * * * *', 'timezone': 'UTC'} or {'measurements': N}; "
        "fires at least the server's minimum cron interval apart (default 60 s)"
    )
    overlap: str = Field("forbid", description="allow, forbid or replace")
    catch_up: str = Field("once", description="skip, once or all")
    grace_s: float = Field(schedules.DEFAULT_GRACE_S, ge=0, le=86400)
    max_catch_up: int = Field(schedules.DEFAULT_MAX_CATCH_UP, ge=0, le=1000)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    connector: dict[str, Any] | None = Field(None, description="virtual_lab or folder_watch")


def check_spec(spec: CampaignSpec, data_dir: Path, min_cron_interval_s: float = 60.0) -> dict:
    """Check a campaign spec beyond its types; returns the spec as stored, with the initial
    optimizer state under ``"state"``.

    Raises
    ------
    CampaignInvalid
        Naming the field: ``space.<param>.<key>``, ``objectives.<name>``, ``schedule.cron``,
        ``overlap``, ``connector.<key>``…
    """
    from optimizer.campaign import Campaign
    from service.campaigns.connectors import parse_connector

    for name in spec.objectives:
        if name not in OBJECTIVE_KINDS:
            raise CampaignInvalid(
                f"objectives.{name}",
                f"unknown objective; the analysis measures {', '.join(OBJECTIVE_KINDS)}",
            )
    try:
        optimizer = Campaign(
            spec.space,
            spec.objectives,
            seed=spec.seed,
            n_initial=spec.n_initial,
            **spec.model_dump(
                include={"p_success_min", "failure_cost", "multi_objective", "reference"},
                exclude_none=True,
            ),
        )
    except InputError as exc:
        field = getattr(exc, "field", None)
        problem = getattr(exc, "problem", str(exc))
        if field is None or field.startswith(("objectives", "reference", "multi_objective")):
            raise CampaignInvalid(field or "space", problem) from None
        raise CampaignInvalid(f"space.{field}" if field != "spec" else "space", problem) from None
    schedule = schedules.parse_schedule(spec.schedule, min_interval_s=min_cron_interval_s)
    schedules.check_policy("overlap", spec.overlap, schedules.OVERLAP_POLICIES)
    schedules.check_policy("catch_up", spec.catch_up, schedules.CATCH_UP_POLICIES)
    connector = parse_connector(spec.connector, data_dir) if spec.connector else None
    stored = spec.model_dump(mode="json")
    stored["schedule"] = schedule.to_dict()
    stored["connector"] = connector
    stored["name"] = spec.name or "campaign"
    stored["state"] = optimizer.to_dict()
    return stored


def principal_of(store: JobStore, token_id: str) -> Principal | None:
    """The principal a campaign's jobs run as (its creator's token); None once revoked."""
    row = store.token(token_id)
    if row is None or row["revoked_at"] is not None:
        return None
    return Principal(row["id"], row["name"], parse_scopes(row["scope"]), row["max_active_jobs"])


# -- what the API returns -------------------------------------------------------------------


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None


def run_info(row: dict) -> RunInfo:
    return RunInfo(
        **{k: row[k] for k in RunInfo.model_fields if k in row and not k.endswith(("_at", "time"))},
        fire_time=_ts(row["fire_time"]),
        created_at=_ts(row["created_at"]),
        started_at=_ts(row["started_at"]),
        finished_at=_ts(row["finished_at"]),
    )


def proposal_info(row: dict) -> ProposalInfo:
    fields = {k: row[k] for k in ProposalInfo.model_fields if not k.endswith("_at")}
    return ProposalInfo(
        **fields, created_at=_ts(row["created_at"]), measured_at=_ts(row["measured_at"])
    )


def measurement_info(row: dict) -> MeasurementInfo:
    fields = {k: row[k] for k in MeasurementInfo.model_fields if k != "received_at"}
    return MeasurementInfo(**fields, received_at=_ts(row["received_at"]))


class CampaignManager:
    """Campaign operations on behalf of an authenticated principal (the routes' logic).

    Parameters
    ----------
    jobs : the server's job manager (settings, job store, artifacts).
    """

    def __init__(self, jobs):
        self.jobs = jobs
        self.settings = jobs.settings
        self.store = CampaignStore(jobs.store, jobs.settings.data_dir)

    def create(
        self, who: Principal, spec: CampaignSpec, idempotency_key: str | None
    ) -> tuple[CampaignInfo, bool]:
        """Check and store a campaign; its initial round is queued at once.

        Raises
        ------
        CampaignInvalid, IdempotencyConflict, CampaignQuotaExceeded
        """
        who.require("submit")
        body = spec.model_dump(mode="json")
        stored = check_spec(spec, self.settings.data_dir, self.settings.min_cron_interval_s)
        now = time.time()
        row = {
            "id": uuid.uuid4().hex,
            "owner": who.token_id,
            "name": stored["name"],
            "state": stored.pop("state"),
            "spec": stored,
            "version": 0,
            "status": ACTIVE,
            "fire_cursor": now,
            "idempotency_key": idempotency_key,
            "body_sha256": hashlib.sha256(dumps(body).encode()).hexdigest(),
            "created_at": now,
            "updated_at": now,
        }
        row, created = self.store.insert(row)
        return self.info(row), created

    def visible(self, who: Principal, campaign_id: str) -> dict:
        who.require("read")
        row = self.store.get(campaign_id) if len(campaign_id) <= 64 else None
        if row is None or (row["owner"] != who.token_id and not who.is_admin):
            raise CampaignNotFound(campaign_id)
        return row

    def get(self, who: Principal, campaign_id: str) -> CampaignInfo:
        return self.info(self.visible(who, campaign_id))

    def list(self, who: Principal) -> list[CampaignInfo]:
        who.require("read")
        rows = self.store.list(owner=None if who.is_admin else who.token_id)
        return [self.info(r) for r in rows]

    def runs(self, who: Principal, campaign_id: str) -> list[RunInfo]:
        self.visible(who, campaign_id)
        return [run_info(r) for r in self.store.runs(campaign_id)]

    def proposals(self, who: Principal, campaign_id: str, status: str | None) -> list[ProposalInfo]:
        self.visible(who, campaign_id)
        return [proposal_info(r) for r in self.store.proposals(campaign_id, status)]

    def set_status(self, who: Principal, campaign_id: str, status: str) -> CampaignInfo:
        """Pause (no new fires; a running round finishes) or resume (fires from now on)."""
        who.require("submit")
        self.visible(who, campaign_id)
        return self.info(self.store.set_status(campaign_id, status, time.time()))

    def staging(self, campaign_id: str) -> Path:
        """A new folder for an upload to this campaign (the API streams files into it)."""
        return self.store.dir(campaign_id) / "staging" / uuid.uuid4().hex

    def add_measurements(
        self, who: Principal, campaign_id: str, staging: Path, names: list[str], batch: str | None
    ) -> MeasurementInfo:
        """Store uploaded study files (+ manifest.toml), already in ``staging``, as a batch.

        Raises
        ------
        CampaignInvalid, CampaignConflict
        """
        from service.jobs import MAX_FILES

        who.require("submit")
        campaign = self.visible(who, campaign_id)
        try:
            if not names or len(names) > MAX_FILES:
                raise CampaignInvalid("files", f"upload 1 to {MAX_FILES} files with a manifest")
            batch = check_batch_name(
                batch or f"upload-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
            )
            row = ingest_batch(self.store, campaign, staging, batch, "upload")
            return measurement_info(row)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def report(self, who: Principal, campaign_id: str, link_base: str = "") -> str:
        """The campaign's HTML report (:mod:`service.campaigns.report`)."""
        from service.campaigns.report import render_report

        row = self.visible(who, campaign_id)
        return render_report(
            self.info(row),
            row["state"],
            [run_info(r) for r in self.store.runs(campaign_id)],
            [proposal_info(r) for r in self.store.proposals(campaign_id)],
            link_base=link_base,
        )

    def study_report(self, who: Principal, campaign_id: str, run_id: str) -> Path:
        """The analysis report (``report.html``) of one round's ``analyze_study`` job."""
        self.visible(who, campaign_id)
        run = self.store.run(run_id) if len(run_id) <= 64 else None
        if run is None or run["campaign_id"] != campaign_id:
            raise CampaignNotFound(run_id)
        job = self.jobs.store.get_job(run["analyze_job"]) if run["analyze_job"] else None
        if job is None or job["artifact_path"] is None:
            raise NotReady(f"round {run_id} has no finished analysis")
        path = self.jobs.artifact_file(job)
        return path.parent / "report.html"

    def info(self, row: dict) -> CampaignInfo:
        from optimizer.campaign import Campaign

        optimizer = Campaign.from_dict(row["state"])
        runs = self.store.runs(row["id"])
        schedule = schedules.parse_schedule(row["spec"]["schedule"])
        next_fire = None
        if row["status"] == ACTIVE and schedule.cron is not None:
            next_fire = schedules.next_cron_fire(schedule, max(time.time(), row["fire_cursor"]))
        history = [
            {
                "round": r["round"],
                "run_id": r["id"],
                "fire_time": _ts(r["fire_time"]),
                "n_told": r["n_told"],
                "best": r["best"],
                "proposals": r["proposal_ids"],
            }
            for r in runs
            if r["status"] == RunStatus.SUCCEEDED
        ]
        single = len(optimizer.objectives) == 1
        return CampaignInfo(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            spec=row["spec"],
            created_at=_ts(row["created_at"]),
            next_fire_at=_ts(next_fire),
            new_measurements=len(new_arrivals(self.store, row["id"])),
            history=history,
            best=optimizer.best() if single else None,
            pareto=optimizer.pareto(),
            n_observations=sum(1 for h in optimizer.history if not h["failed"]),
            n_failed=sum(1 for h in optimizer.history if h["failed"]),
            n_pending=len(optimizer.pending),
            active_runs=[r["id"] for r in runs if r["status"] in UNFINISHED],
            compacted_runs=row.get("compacted") or {},
        )
