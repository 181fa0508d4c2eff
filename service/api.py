"""The HTTP API (FastAPI), mounted under ``/v1``; routes parse, call :mod:`service.manager`, format.

``create_app()`` needs no arguments: it builds the app (and its OpenAPI document) without
touching disk; the stores are opened on startup from :class:`~service.config.Settings`
(``SIGMALAB_DATA_DIR`` …) unless a :class:`~service.manager.JobManager` is passed in.

Submitting (``POST /v1/jobs``) takes either

* ``application/json``: the job request itself (``propose``; ``analyze_study`` by dataset name), or
* ``multipart/form-data``: a part ``request`` holding the job request as JSON, plus one part
  ``files`` per uploaded file whose filename is the file's relative path in the job
  (``fit_spectrum``: the instrument file; ``analyze_study``: the study's files + manifest).
"""

from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from service import jobs, problems
from service.artifacts import ArtifactStore
from service.auth import AuthFailed, Principal, ScopeMissing, authenticate
from service.campaigns import (
    ACTIVE,
    PAUSED,
    CampaignConflict,
    CampaignInvalid,
    CampaignManager,
    CampaignNotFound,
    CampaignSpec,
)
from service.config import Settings
from service.manager import JobManager, JobNotFound, NotReady
from service.models import (
    CampaignInfo,
    FieldError,
    Health,
    JobInfo,
    JobPage,
    MeasurementInfo,
    Problem,
    ProposalInfo,
    RunInfo,
)
from service.problems import ProblemError
from service.store import IdempotencyConflict, JobStore, LimitExceeded

VERSION = "0.1.0"
RETRY_AFTER_S = 5
_request_adapter = TypeAdapter(jobs.JobRequest)
_bearer = HTTPBearer(auto_error=False, description="a token from `sigmalab token create`")
_PROBLEM = {"model": Problem, "content": {problems.MEDIA_TYPE: {}}}


def open_manager(settings: Settings) -> JobManager:
    """Open (and create if needed) the stores of a data directory."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(settings.database_url)
    store.create_tables()
    return JobManager(settings, store, ArtifactStore(settings.artifacts_dir))


def _manager(request: Request) -> JobManager:
    return request.app.state.manager


def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    # HTTPBearer only documents the scheme in the OpenAPI; the header is checked here, so a
    # missing and a malformed header both get our 401 problem.
    del credentials
    return authenticate(_manager(request).store, request.headers.get("authorization"))


def _campaigns(request: Request) -> CampaignManager:
    return request.app.state.campaigns


Who = Annotated[Principal, Depends(_principal)]
Manager = Annotated[JobManager, Depends(_manager)]
Campaigns = Annotated[CampaignManager, Depends(_campaigns)]
router = APIRouter(prefix="/v1")


@router.get("/health", response_model=Health, tags=["service"])
def health(manager: Manager) -> Health:
    """Liveness: the database answers and the Ray connection is up (no token needed)."""
    import ray
    import sqlalchemy as sa

    try:
        with manager.store.engine.connect() as c:
            c.execute(sa.text("SELECT 1"))
        database = "ok"
    except Exception:  # any database error means unhealthy; details stay in the server log
        database = "unavailable"
    ray_state = "connected" if ray.is_initialized() else "not connected"
    status = "ok" if database == "ok" else "degraded"
    return Health(status=status, database=database, ray=ray_state, version=VERSION)


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


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobInfo,
    tags=["jobs"],
    openapi_extra=_SUBMIT_BODY,
    responses={
        400: _PROBLEM,
        401: _PROBLEM,
        403: _PROBLEM,
        413: _PROBLEM,
        415: _PROBLEM,
        422: _PROBLEM,
        429: _PROBLEM,
    },
)
async def submit_job(
    request: Request,
    response: Response,
    who: Who,
    manager: Manager,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="the same key and body return the same job; another body is refused",
        ),
    ] = None,
) -> JobInfo:
    """Validate and queue a job → 202 with ``Location: /v1/jobs/{id}``."""
    limit = manager.settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise ProblemError(413, "too-large", f"request bodies are limited to {limit} bytes")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        payload = _json(await _read_limited(request, limit), "body")
        files: list[tuple[str, bytes]] = []
    elif content_type == "multipart/form-data":
        form = await request.form(max_files=jobs.MAX_FILES, max_fields=10, max_part_size=limit)
        spec = form.get("request")
        if not isinstance(spec, str):
            raise _invalid("request", "a multipart submission needs a 'request' field (JSON)")
        payload = _json(spec.encode(), "request")
        files = []
        for i, part in enumerate(form.getlist("files")):
            if not isinstance(part, UploadFile) or not part.filename:
                raise _invalid(f"files[{i}]", "each 'files' part must be a file with a filename")
            files.append((part.filename, await part.read()))
    else:
        raise ProblemError(
            415, "media-type", "send application/json or multipart/form-data (see the OpenAPI)"
        )
    try:
        job_request = _request_adapter.validate_python(payload)
    except ValidationError as exc:
        errors = problems.validation_errors(exc.errors(), skip=jobs.KINDS)
        raise ProblemError(
            422, "validation", "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors
        ) from None
    try:
        job, created = await run_in_threadpool(
            manager.submit, who, job_request, files, idempotency_key
        )
    except IdempotencyConflict:
        raise ProblemError(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used with a different request; use a new key",
        ) from None
    except LimitExceeded as exc:
        raise ProblemError(
            429, "too-many-jobs", str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}
        ) from None
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return job


async def _read_limited(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ProblemError(413, "too-large", f"request bodies are limited to {limit} bytes")
    return bytes(body)


def _json(raw: bytes, field: str):
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(400, "malformed-body", f"{field} is not valid JSON: {exc}") from None


def _invalid(field: str, message: str) -> ProblemError:
    return ProblemError(
        422, "validation", f"{field}: {message}", errors=[FieldError(field=field, message=message)]
    )


JobId = Annotated[str, "job id"]


@router.get("/jobs", response_model=JobPage, tags=["jobs"], responses={422: _PROBLEM})
def list_jobs(
    who: Who,
    manager: Manager,
    status: Annotated[list[str] | None, Query(description="repeat to select several")] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    """The caller's jobs, newest first, one page at a time (keyset pagination)."""
    return manager.list(who, status=status, kind=kind, cursor=cursor, limit=limit)


@router.get("/jobs/{job_id}", response_model=JobInfo, tags=["jobs"], responses={404: _PROBLEM})
def get_job(job_id: JobId, who: Who, manager: Manager) -> JobInfo:
    return manager.get(who, job_id)


@router.post(
    "/jobs/{job_id}/cancel", status_code=202, response_model=JobInfo, tags=["jobs"],
    responses={404: _PROBLEM},
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
        404: _PROBLEM,
        409: _PROBLEM,
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


@router.get("/jobs/{job_id}/summary", tags=["jobs"], responses={404: _PROBLEM, 409: _PROBLEM})
def get_summary(job_id: JobId, who: Who, manager: Manager) -> dict:
    """The job's ``summary.json`` (studies: the summary contract; fits: diagnostics)."""
    return manager.summary(who, job_id)


@router.get(
    "/jobs/{job_id}/logs",
    tags=["jobs"],
    response_class=PlainTextResponse,
    responses={404: _PROBLEM},
)
def get_logs(job_id: JobId, who: Who, manager: Manager) -> str:
    """The job's log: dispatcher events and the worker's captured log records, per attempt."""
    return manager.logs(who, job_id)


# -- campaigns ------------------------------------------------------------------------------

CampaignId = Annotated[str, "campaign id"]


@router.post(
    "/campaigns", status_code=201, response_model=CampaignInfo, tags=["campaigns"],
    responses={401: _PROBLEM, 403: _PROBLEM, 422: _PROBLEM},
)  # fmt: skip
def create_campaign(
    spec: CampaignSpec,
    response: Response,
    who: Who,
    campaigns: Campaigns,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> CampaignInfo:
    """Create a campaign; its initial round (the initial design) is queued at once."""
    info, created = campaigns.create(who, spec, idempotency_key)
    response.headers["Location"] = f"/v1/campaigns/{info.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return info


@router.get("/campaigns", response_model=list[CampaignInfo], tags=["campaigns"])
def list_campaigns(who: Who, campaigns: Campaigns) -> list[CampaignInfo]:
    return campaigns.list(who)


@router.get(
    "/campaigns/{campaign_id}", response_model=CampaignInfo, tags=["campaigns"],
    responses={404: _PROBLEM},
)  # fmt: skip
def get_campaign(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> CampaignInfo:
    """State, history per round, best, Pareto front and next fire time."""
    return campaigns.get(who, campaign_id)


@router.get(
    "/campaigns/{campaign_id}/runs", response_model=list[RunInfo], tags=["campaigns"],
    responses={404: _PROBLEM},
)  # fmt: skip
def campaign_runs(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> list[RunInfo]:
    """Every fire, oldest first: rounds with their step and jobs, skipped and missed fires."""
    return campaigns.runs(who, campaign_id)


@router.get(
    "/campaigns/{campaign_id}/proposals", response_model=list[ProposalInfo], tags=["campaigns"],
    responses={404: _PROBLEM},
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
    responses={404: _PROBLEM},
)  # fmt: skip
def pause_campaign(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> CampaignInfo:
    """No new fires until resumed; a running round finishes."""
    return campaigns.set_status(who, campaign_id, PAUSED)


@router.post(
    "/campaigns/{campaign_id}:resume", response_model=CampaignInfo, tags=["campaigns"],
    responses={404: _PROBLEM},
)  # fmt: skip
def resume_campaign(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> CampaignInfo:
    """Fire again from now on (fires due while paused are not caught up)."""
    return campaigns.set_status(who, campaign_id, ACTIVE)


@router.post(
    "/campaigns/{campaign_id}/measurements", status_code=201, response_model=MeasurementInfo,
    tags=["campaigns"], responses={404: _PROBLEM, 409: _PROBLEM, 413: _PROBLEM, 422: _PROBLEM},
)  # fmt: skip
async def add_measurements(
    campaign_id: CampaignId, request: Request, who: Who, campaigns: Campaigns
) -> MeasurementInfo:
    """Upload a batch (multipart: ``files`` parts named by relative path, incl. manifest.toml;
    optional ``batch`` field, unique per campaign: sending a stored batch name again returns it)."""
    limit = campaigns.jobs.settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise ProblemError(413, "too-large", f"request bodies are limited to {limit} bytes")
    form = await request.form(max_files=jobs.MAX_FILES, max_fields=10, max_part_size=limit)
    batch = form.get("batch")
    files = []
    for i, part in enumerate(form.getlist("files")):
        if not isinstance(part, UploadFile) or not part.filename:
            raise _invalid(f"files[{i}]", "each 'files' part must be a file with a filename")
        files.append((part.filename, await part.read()))
    return await run_in_threadpool(
        campaigns.add_measurements,
        who,
        campaign_id,
        files,
        batch if isinstance(batch, str) else None,
    )


@router.get(
    "/campaigns/{campaign_id}/report", response_class=HTMLResponse, tags=["campaigns"],
    responses={404: _PROBLEM},
)  # fmt: skip
def campaign_report(campaign_id: CampaignId, who: Who, campaigns: Campaigns) -> str:
    """HTML: best so far and Pareto front per round, proposals with their predictions, the
    GP's partial dependence, links to each round's study report."""
    return campaigns.report(who, campaign_id, link_base=f"/v1/campaigns/{campaign_id}")


@router.get(
    "/campaigns/{campaign_id}/runs/{run_id}/study-report", response_class=FileResponse,
    tags=["campaigns"], responses={404: _PROBLEM, 409: _PROBLEM},
)  # fmt: skip
def round_study_report(campaign_id: CampaignId, run_id: str, who: Who, campaigns: Campaigns):
    """The analysis report of one round's ``analyze_study`` job."""
    return FileResponse(campaigns.study_report(who, campaign_id, run_id), media_type="text/html")


def _install_domain_errors(app: FastAPI) -> None:
    def to(status: int, slug: str, headers: dict | None = None):
        async def handler(request: Request, exc: Exception):
            return problems.problem_response(request, status, slug, str(exc), None, headers)

        return handler

    app.add_exception_handler(
        AuthFailed, to(401, "unauthorized", {"WWW-Authenticate": 'Bearer realm="sigmalab"'})
    )
    app.add_exception_handler(ScopeMissing, to(403, "forbidden"))
    app.add_exception_handler(NotReady, to(409, "not-ready"))

    async def not_found(request: Request, exc: JobNotFound):
        return problems.problem_response(request, 404, "job-not-found", "no such job")

    async def invalid(request: Request, exc: jobs.RequestInvalid):
        errors = [FieldError(field=exc.field, message=exc.problem)]
        return problems.problem_response(request, 422, "validation", str(exc), errors)

    app.add_exception_handler(JobNotFound, not_found)
    app.add_exception_handler(jobs.RequestInvalid, invalid)

    async def campaign_not_found(request: Request, exc: CampaignNotFound):
        return problems.problem_response(request, 404, "campaign-not-found", "no such campaign")

    app.add_exception_handler(CampaignNotFound, campaign_not_found)
    app.add_exception_handler(CampaignInvalid, invalid)
    app.add_exception_handler(CampaignConflict, to(409, "conflict"))


def create_app(
    settings: Settings | None = None,
    *,
    manager: JobManager | None = None,
    campaigns: CampaignManager | None = None,
) -> FastAPI:
    """The sigmalab HTTP app.

    Parameters
    ----------
    settings : where the data lives (default: :meth:`Settings.from_env`); opened on startup.
    manager : an already opened job manager (the server passes the one its dispatcher uses).
    campaigns : an already opened campaign manager (the server passes its scheduler's).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs.preload()
        if getattr(app.state, "manager", None) is None:
            app.state.manager = open_manager(settings or Settings.from_env())
        if getattr(app.state, "campaigns", None) is None:
            app.state.campaigns = CampaignManager(app.state.manager)
        yield

    app = FastAPI(
        title="sigmalab",
        version=VERSION,
        description="Bayesian EIS fits, study analyses and experiment proposals as jobs on Ray.",
        lifespan=lifespan,
    )
    app.state.manager = manager
    app.state.campaigns = campaigns
    problems.install(app)
    _install_domain_errors(app)
    app.include_router(router)

    def openapi():
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            request_schema = _request_adapter.json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request_schema.pop("$defs", {}))
            components["JobRequest"] = request_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
    return app
