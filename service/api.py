"""The HTTP API (FastAPI), mounted under ``/v1``; routes parse, call :mod:`service.manager`, format.

``create_app()`` needs no arguments: it builds the app (and its OpenAPI document) without
touching disk; the stores are opened on startup from :class:`~service.config.Settings`
(``SIGMALAB_DATA_DIR`` …) unless a :class:`~service.manager.JobManager` is passed in.

Submitting (``POST /v1/jobs``) takes either

* ``application/json``: the job request itself (``propose``; ``analyze_study`` by dataset name), or
* ``multipart/form-data``: a part ``request`` holding the job request as JSON, plus one part
  ``files`` per uploaded file whose filename is the file's relative path in the job
  (``fit_spectrum``: the instrument file; ``analyze_study``: the study's files + manifest).

Bodies are bounded as they arrive (:mod:`service.limits`), uploads stream to a staging
folder (:mod:`service.uploads`); every error is ``application/problem+json``
(:mod:`service.problems`), documented in the OpenAPI for every route.
"""

from __future__ import annotations

import base64
import os
import shutil
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError

from service import jobs, problems
from service.artifacts import ArtifactStore
from service.auth import Principal, authenticate
from service.campaigns.manager import CampaignManager, CampaignSpec
from service.campaigns.store import ACTIVE, PAUSED
from service.config import Settings
from service.errors import RequestInvalid, UnsupportedMediaType
from service.limits import RequestLimits, parse_json, read_body
from service.manager import JobManager
from service.models import (
    CampaignInfo,
    Health,
    JobInfo,
    JobPage,
    MeasurementInfo,
    Problem,
    ProposalInfo,
    RunInfo,
)
from service.store import JobStore
from service.uploads import free_bytes, receive_multipart

VERSION = "0.1.0"
_request_adapter = TypeAdapter(jobs.JobRequest)
_bearer = HTTPBearer(auto_error=False, description="a token from `sigmalab token create`")


def _problem(description: str) -> dict:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {problems.MEDIA_TYPE: {"schema": schema}}}


#: Problems every authenticated route can answer.
COMMON = {
    401: _problem("no token, a malformed, unknown or revoked one"),
    403: _problem("the token lacks the scope this needs"),
    413: _problem("the request body is larger than this route accepts"),
    422: _problem("invalid parameters or body; errors[].field names each value at fault"),
    429: _problem("too many unfinished jobs or active campaigns (see Retry-After)"),
    503: _problem("the database or the Ray cluster is unavailable (see Retry-After)"),
}
NOT_FOUND = {404: _problem("no such job or campaign, or not yours")}
CONFLICT = {409: _problem("the job or campaign is not in a state for this")}
UPLOAD = {
    400: _problem("the body is not valid JSON or multipart"),
    408: _problem("the request body stalled"),
    415: _problem("send application/json or multipart/form-data"),
    507: _problem("the server's disk is too full to store the upload"),
}


def open_manager(settings: Settings) -> JobManager:
    """Open (and create or upgrade if needed) the stores of a data directory.

    The data directory is made private (0700) and this process creates files private
    (umask 077): it holds every user's requests, results and the token hashes.
    """
    os.umask(0o077)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    store = JobStore(settings.database_url)
    store.upgrade()
    return JobManager(settings, store, ArtifactStore(settings.artifacts_dir))


def _manager(request: Request) -> JobManager:
    return request.app.state.manager


def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    # HTTPBearer only documents the scheme in the OpenAPI; the header is checked here, so a
    # missing and a malformed header both get our 401 problem. The body-limit middleware
    # may have authenticated the request already.
    del credentials
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    return authenticate(_manager(request).store, request.headers.get("authorization"))


def _campaigns(request: Request) -> CampaignManager:
    return request.app.state.campaigns


Who = Annotated[Principal, Depends(_principal)]
Manager = Annotated[JobManager, Depends(_manager)]
Campaigns = Annotated[CampaignManager, Depends(_campaigns)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="the same key and body return the same resource; another body is refused",
    ),
]
router = APIRouter(prefix="/v1", responses=COMMON)
public = APIRouter(prefix="/v1")


@public.get(
    "/health",
    response_model=Health,
    tags=["service"],
    responses={503: {"model": Health, "description": "degraded: see the fields"}},
)
def health(request: Request, manager: Manager) -> JSONResponse:
    """Liveness (no token needed): the database answers, Ray runs tasks, the disk has room.

    503 with ``status: degraded`` when any of them does not."""
    try:
        manager.store.ping()
        database = "ok"
    except Exception:  # any database error means unhealthy; details stay in the server log
        database = "unavailable"
    runtime = getattr(request.app.state, "ray", None)
    if runtime is None:
        ray_state, restarts = "not connected", 0
    else:
        status = runtime.status()
        ray_state = "connected" if runtime.healthy else f"degraded: {status['reason']}"
        restarts = status["restarts"]
    free = free_bytes(manager.settings.data_dir)
    disk = "ok" if free >= manager.settings.min_free_bytes else "low"
    ok = database == "ok" and ray_state == "connected" and disk == "ok"
    body = Health(
        status="ok" if ok else "degraded",
        database=database,
        ray=ray_state,
        ray_restarts=restarts,
        disk=disk,
        disk_free_bytes=free,
        version=VERSION,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


_SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["request"],
                    "properties": {
                        "request": {
                            "type": "string",
                            "description": "the JobRequest as JSON",
                            "contentMediaType": "application/json",
                        },
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "filename = the file's relative path in the job",
                        },
                    },
                }
            },
        },
    }
}


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobInfo,
    tags=["jobs"],
    openapi_extra=_SUBMIT_BODY,
    responses=UPLOAD,
)
async def submit_job(
    request: Request,
    response: Response,
    who: Who,
    manager: Manager,
    idempotency_key: IdempotencyKey = None,
) -> JobInfo:
    """Validate and queue a job → 202 with ``Location: /v1/jobs/{id}``."""
    depth = manager.settings.max_json_depth
    media = _media(request)
    upload, staging = None, manager.staging()
    try:
        if media == "application/json":
            payload = parse_json(await read_body(request), "body", depth)
        elif media == "multipart/form-data":
            upload = await receive_multipart(
                request,
                staging,
                fields=("request",),
                max_field_bytes=manager.settings.max_json_bytes,
                min_free=manager.settings.min_free_bytes,
            )
            if "request" not in upload.fields:
                raise RequestInvalid(
                    "request", "a multipart submission needs a 'request' field (JSON)"
                )
            payload = parse_json(upload.fields["request"].encode(), "request", depth)
        else:
            raise UnsupportedMediaType("send application/json or multipart/form-data (see OpenAPI)")
        try:
            job_request = _request_adapter.validate_python(payload)
        except ValidationError as exc:
            errors = problems.validation_errors(exc.errors(), skip=tuple(jobs.KINDS))
            raise problems.invalid(errors) from None
        job, created = await run_in_threadpool(
            manager.submit, who, job_request, upload, idempotency_key
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # kept files were moved out of it
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job


JobId = Annotated[str, "job id"]


@router.get("/jobs", response_model=JobPage, tags=["jobs"])
def list_jobs(
    who: Who,
    manager: Manager,
    status: Annotated[
        list[str] | None, Query(max_length=6, description="repeat to select several")
    ] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    """The caller's jobs, newest first, one page at a time (keyset pagination)."""
    return manager.list(who, status=status, kind=kind, cursor=cursor, limit=limit)


@router.get("/jobs/{job_id}", response_model=JobInfo, tags=["jobs"], responses=NOT_FOUND)
def get_job(job_id: JobId, who: Who, manager: Manager) -> JobInfo:
    """A job's state (``worker``: where it runs, for admin tokens only)."""
    return manager.get(who, job_id)


@router.post(
    "/jobs/{job_id}/cancel", status_code=202, response_model=JobInfo, tags=["jobs"],
    responses=NOT_FOUND,
)  # fmt: skip
def cancel_job(job_id: JobId, who: Who, manager: Manager) -> JobInfo:
    """Stop a job: queued jobs end at once, running ones stop within the grace period."""
    return manager.cancel(who, job_id)


@router.get(
    "/jobs/{job_id}/result",
    tags=["jobs"],
    response_class=FileResponse,
    responses={
        200: {"content": {"application/x-netcdf": {}, "application/json": {}}},
        304: {"description": "If-None-Match matched the ETag"},
        410: _problem("the result's files were removed after their time to live"),
        **NOT_FOUND,
        **CONFLICT,
    },
)
def get_result(job_id: JobId, who: Who, manager: Manager, request: Request):
    """The result file (NetCDF for fits and studies, JSON for proposals); ETag = its SHA-256."""
    path, sha256, job = manager.result_file(who, job_id)
    etag = f'"{sha256}"'
    digest = base64.b64encode(bytes.fromhex(sha256)).decode()
    headers = {"ETag": etag, "Repr-Digest": f"sha-256=:{digest}:"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    media = "application/x-netcdf" if path.suffix == ".nc" else "application/json"
    return FileResponse(
        path, media_type=media, headers=headers, filename=f"{job.kind}-{job_id}{path.suffix}"
    )


@router.get("/jobs/{job_id}/summary", tags=["jobs"], responses={**NOT_FOUND, **CONFLICT})
def get_summary(job_id: JobId, who: Who, manager: Manager) -> dict:
    """The job's ``summary.json`` (studies: the summary contract; fits: diagnostics)."""
    return manager.summary(who, job_id)


@router.get(
    "/jobs/{job_id}/logs",
    tags=["jobs"],
    response_class=PlainTextResponse,
    responses=NOT_FOUND,
)
def get_logs(job_id: JobId, who: Who, manager: Manager) -> str:
    """The job's log: dispatcher events and the worker's log records, one line each."""
    return manager.logs(who, job_id)


# -- campaigns ------------------------------------------------------------------------------

CampaignId = Annotated[str, "campaign id"]
_CAMPAIGN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CampaignSpec"}}},
    }
}


@router.post(
    "/campaigns", status_code=201, response_model=CampaignInfo, tags=["campaigns"],
    openapi_extra=_CAMPAIGN_BODY, responses={400: UPLOAD[400], 415: UPLOAD[415]},
)  # fmt: skip
async def create_campaign(
    request: Request,
    response: Response,
    who: Who,
    campaigns: Campaigns,
    idempotency_key: IdempotencyKey = None,
) -> CampaignInfo:
    """Create a campaign; its initial round (the initial design) is queued at once."""
    if _media(request) != "application/json":
        raise UnsupportedMediaType("send the campaign spec as application/json")
    payload = parse_json(await read_body(request), "body", campaigns.settings.max_json_depth)
    try:
        spec = CampaignSpec.model_validate(payload)
    except ValidationError as exc:
        raise problems.invalid(problems.validation_errors(exc.errors())) from None
    info, created = await run_in_threadpool(campaigns.create, who, spec, idempotency_key)
    response.headers["Location"] = f"/v1/campaigns/{info.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return info


@router.get("/campaigns", response_model=list[CampaignInfo], tags=["campaigns"])
def list_campaigns(who: Who, campaigns: Campaigns) -> list[CampaignInfo]:
    return campaigns.list(who)


@router.get(
    "/campaigns/{campaign_id}", response_model=CampaignInfo, tags=["campaigns"],
    responses=NOT_FOUND,
)  # fmt: skip
def get_campaign(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> CampaignInfo:
    """State, history per round, best, Pareto front and next fire time."""
    return campaigns.get(who, campaign_id)


@router.get(
    "/campaigns/{campaign_id}/runs", response_model=list[RunInfo], tags=["campaigns"],
    responses=NOT_FOUND,
)  # fmt: skip
def campaign_runs(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> list[RunInfo]:
    """Every fire, oldest first: rounds with their step and jobs, skipped and missed fires
    (old skipped, missed and idle ones are counted in the campaign's ``compacted_runs``)."""
    return campaigns.runs(who, campaign_id)


@router.get(
    "/campaigns/{campaign_id}/proposals", response_model=list[ProposalInfo], tags=["campaigns"],
    responses=NOT_FOUND,
)  # fmt: skip
def campaign_proposals(
    campaign_id: CampaignId,
    who: Who,
    campaigns: Campaigns,
    status: Annotated[str | None, Query(pattern="^(pending|measured|told|failed)$")] = None,
) -> list[ProposalInfo]:
    return campaigns.proposals(who, campaign_id, status)


@router.post(
    "/campaigns/{campaign_id}:pause", response_model=CampaignInfo, tags=["campaigns"],
    responses=NOT_FOUND,
)  # fmt: skip
def pause_campaign(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> CampaignInfo:
    """No new fires until resumed; a running round finishes."""
    return campaigns.set_status(who, campaign_id, PAUSED)


@router.post(
    "/campaigns/{campaign_id}:resume", response_model=CampaignInfo, tags=["campaigns"],
    responses=NOT_FOUND,
)  # fmt: skip
def resume_campaign(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> CampaignInfo:
    """Fire again from now on (fires due while paused are not caught up)."""
    return campaigns.set_status(who, campaign_id, ACTIVE)


@router.post(
    "/campaigns/{campaign_id}/measurements", status_code=201, response_model=MeasurementInfo,
    tags=["campaigns"], responses={**NOT_FOUND, **CONFLICT, **UPLOAD},
)  # fmt: skip
async def add_measurements(
    campaign_id: CampaignId, request: Request, who: Who, campaigns: Campaigns
) -> MeasurementInfo:
    """Upload a batch (multipart: ``files`` parts named by relative path, incl. manifest.toml;
    optional ``batch`` field, unique per campaign: sending a stored batch name again returns it)."""
    if _media(request) != "multipart/form-data":
        raise UnsupportedMediaType("send the batch as multipart/form-data")
    await run_in_threadpool(campaigns.visible, who, campaign_id)
    staging = campaigns.staging(campaign_id)
    try:
        upload = await receive_multipart(
            request,
            staging,
            fields=("batch",),
            max_field_bytes=1024,
            min_free=campaigns.settings.min_free_bytes,
        )
        return await run_in_threadpool(
            campaigns.add_measurements,
            who,
            campaign_id,
            staging,
            upload.names,
            upload.fields.get("batch"),
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@router.get(
    "/campaigns/{campaign_id}/report", response_class=HTMLResponse, tags=["campaigns"],
    responses=NOT_FOUND,
)  # fmt: skip
def campaign_report(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> str:
    """HTML: best so far and Pareto front per round, proposals with their predictions, the
    GP's partial dependence, links to each round's study report."""
    return campaigns.report(who, campaign_id, link_base=f"/v1/campaigns/{campaign_id}")


@router.get(
    "/campaigns/{campaign_id}/runs/{run_id}/study-report", response_class=FileResponse,
    tags=["campaigns"], responses={**NOT_FOUND, **CONFLICT},
)  # fmt: skip
def round_study_report(campaign_id: CampaignId, run_id: str, who: Who, campaigns: Campaigns):
    """The analysis report of one round's ``analyze_study`` job."""
    return FileResponse(campaigns.study_report(who, campaign_id, run_id), media_type="text/html")


def create_app(
    settings: Settings | None = None,
    *,
    manager: JobManager | None = None,
    campaigns: CampaignManager | None = None,
    ray_runtime=None,
) -> FastAPI:
    """The sigmalab HTTP app.

    Parameters
    ----------
    settings : where the data lives (default: :meth:`Settings.from_env`); opened on startup.
    manager : an already opened job manager (the server passes the one its dispatcher uses).
    campaigns : an already opened campaign manager (the server passes its scheduler's).
    ray_runtime : the server's watched Ray connection, reported by ``/v1/health``.
    """
    settings = settings or (manager.settings if manager else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs.preload()
        if getattr(app.state, "manager", None) is None:
            app.state.manager = open_manager(app.state.settings)
        if getattr(app.state, "campaigns", None) is None:
            app.state.campaigns = CampaignManager(app.state.manager)
        yield

    app = FastAPI(
        title="sigmalab",
        version=VERSION,
        description="Bayesian EIS fits, study analyses and experiment proposals as jobs on Ray.",
        lifespan=lifespan,
    )
    app.state.settings = settings or Settings.from_env()
    app.state.manager = manager
    app.state.campaigns = campaigns
    app.state.ray = ray_runtime
    problems.install(app)
    app.include_router(public)
    app.include_router(router)
    app.add_middleware(
        RequestLimits, settings=app.state.settings, store_of=lambda: app.state.manager.store
    )

    def openapi():
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, adapter in (("JobRequest", _request_adapter), ("CampaignSpec", CampaignSpec),
                                  ("Problem", Problem)):  # fmt: skip
                definition = (
                    adapter.json_schema(ref_template="#/components/schemas/{model}")
                    if isinstance(adapter, TypeAdapter)
                    else adapter.model_json_schema(ref_template="#/components/schemas/{model}")
                )
                components.update(definition.pop("$defs", {}))
                components[name] = definition
            # FastAPI's own validation schemas are never sent: every 422 is a Problem.
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app
