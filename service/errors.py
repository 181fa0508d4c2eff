"""The service's exception types: what the Python client raises, and what the server raises.

Light on purpose (no FastAPI, SQLAlchemy or Ray here): the client imports this module.

Client side (:mod:`service.client`), so a user knows what to catch::

    inference.errors.SigmalabError
    └── ServiceError              something went wrong talking to the service or with a job
        ├── TransportError        the server could not be reached, even after retries
        ├── APIError              the server answered with a problem (.status, .problem)
        │   ├── AuthError         401/403: no token, a wrong one, or a missing scope
        │   ├── NotFound          404: no such job (or not yours)
        │   ├── Conflict          409/410: e.g. the result of a job that did not succeed
        │   ├── InvalidRequest    400/413/415/422: .errors lists the fields at fault
        │   ├── RateLimited       429 after the retries ran out
        │   └── ServerUnavailable 503/507 after the retries: database, Ray or disk unavailable
        ├── JobError              a job ended without success (.job: its last JobInfo)
        │   ├── JobFailed         FAILED; .error_type and .message say why
        │   └── JobCancelled      CANCELLED
        ├── AmbiguousId           an id prefix that several jobs (or campaigns) share
        ├── WaitTimeout           job.wait(timeout=…) ran out (also a TimeoutError)
        └── IntegrityError        a download's SHA-256 differs from the server's ETag

Server side: every error a route can answer is a :class:`ProblemError` whose class carries its
HTTP status and problem type (``urn:sigmalab:problem:<slug>``); :mod:`service.problems` turns
it into ``application/problem+json``. The job machinery's own errors never reach a client::

    inference.errors.SigmalabError                  status  slug
    ├── ProblemError
    │   ├── MalformedBody                           400     malformed-body
    │   ├── AuthFailed                              401     unauthorized
    │   ├── ScopeMissing                            403     forbidden
    │   ├── JobNotFound                             404     job-not-found
    │   ├── CampaignNotFound                        404     campaign-not-found
    │   ├── NotReady                                409     not-ready
    │   ├── CampaignConflict                        409     conflict
    │   ├── RequestTimeout                          408     timeout
    │   ├── ResultExpired                           410     result-expired
    │   ├── BodyTooLarge                            413     too-large
    │   ├── UnsupportedMediaType                    415     media-type
    │   ├── RequestInvalid (also an InputError)     422     validation     .field
    │   │   ├── CampaignInvalid                     422     validation
    │   │   └── IdempotencyConflict                 422     idempotency-key-reused
    │   ├── LimitExceeded                           429     too-many-jobs
    │   │   └── CampaignQuotaExceeded               429     too-many-campaigns
    │   ├── ServiceUnavailable                      503     unavailable
    │   └── StorageFull                             507     storage-full
    └── JobFault                                    (inside the job machinery)
        ├── ArtifactError                           a published attempt is incomplete or altered
        ├── ResultMismatch                          a result does not match its request
        └── JobStopped                              a job saw should_stop() and stopped early
"""

from __future__ import annotations

from inference.errors import InputError, SigmalabError
from service.models import FieldError, JobInfo, Problem

# -- client side ------------------------------------------------------------------------------


class ServiceError(SigmalabError):
    """Base of the client's errors."""


class TransportError(ServiceError):
    """The server could not be reached (connection refused, reset, timed out)."""


class APIError(ServiceError):
    """The server answered with an RFC 9457 problem."""

    def __init__(self, status: int, problem: Problem):
        self.status = status
        self.problem = problem
        super().__init__(f"HTTP {status} {problem.title}: {problem.detail or ''}".rstrip(": "))


class AuthError(APIError):
    """401 (no or wrong token) or 403 (the token lacks a scope)."""


class NotFound(APIError):
    """404: no such job, or a job of another token."""


class Conflict(APIError):
    """409: the request does not fit the job's state (410: its result expired)."""


class InvalidRequest(APIError):
    """The request was refused as malformed or invalid; ``errors`` names the fields."""

    @property
    def errors(self) -> list[FieldError]:
        return self.problem.errors or []


class RateLimited(APIError):
    """429: the token has too many unfinished jobs, and retrying did not help."""


class ServerUnavailable(APIError):
    """503 or 507 after the retries: the server's database, Ray cluster or disk is down/full."""


class JobError(ServiceError):
    """A job ended without success."""

    def __init__(self, job: JobInfo, message: str):
        self.job = job
        super().__init__(message)


class JobFailed(JobError):
    """The job FAILED."""

    def __init__(self, job: JobInfo):
        self.error_type = job.error_type
        self.message = job.error_message
        super().__init__(job, f"job {job.id} failed ({job.error_type}): {job.error_message}")


class JobCancelled(JobError):
    """The job was CANCELLED (or stopped) before it finished."""

    def __init__(self, job: JobInfo):
        super().__init__(job, f"job {job.id} was cancelled")


class AmbiguousId(ServiceError):
    """An id prefix that matches several jobs or campaigns; ``.matches`` lists their ids."""

    def __init__(self, prefix: str, what: str, matches: list[str]):
        self.prefix, self.matches = prefix, matches
        shown = ", ".join(m[: len(prefix) + 4] + "…" for m in matches[:3])
        more = f" and {len(matches) - 3} more" if len(matches) > 3 else ""
        super().__init__(
            f"{what} id {prefix!r} matches {len(matches)}: {shown}{more}; give more characters"
        )


class WaitTimeout(ServiceError, TimeoutError):
    """``Job.wait`` gave up before the job finished (the job keeps running)."""


class IntegrityError(ServiceError):
    """A downloaded file's SHA-256 differs from the ETag the server sent."""


def error_for(status: int, problem: Problem) -> APIError:
    """The APIError subclass for an HTTP status."""
    by_status = {401: AuthError, 403: AuthError, 404: NotFound, 409: Conflict, 410: Conflict,
                 429: RateLimited, 503: ServerUnavailable, 507: ServerUnavailable}  # fmt: skip
    cls = by_status.get(status, InvalidRequest if 400 <= status < 500 else APIError)
    return cls(status, problem)


# -- server side ------------------------------------------------------------------------------


class ProblemError(SigmalabError):
    """An error the server answers as ``application/problem+json``.

    Parameters
    ----------
    detail : one line for the user; never a server path or a traceback.
    errors : the fields at fault (422).
    headers : e.g. ``Retry-After`` or ``WWW-Authenticate``.
    """

    status = 500
    slug = "internal"
    headers: dict[str, str] = {}

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail, self.errors = detail, errors
        self.headers = {**type(self).headers, **(headers or {})}


class MalformedBody(ProblemError):
    """The body is not what its Content-Type says (bad JSON, broken multipart)."""

    status, slug = 400, "malformed-body"


class AuthFailed(ProblemError):
    """No, malformed, unknown or revoked token."""

    status, slug = 401, "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="sigmalab"'}


class ScopeMissing(ProblemError):
    """The token is valid but lacks the scope an operation needs."""

    status, slug = 403, "forbidden"


class JobNotFound(ProblemError):
    """No job with this id is visible to the caller (the same answer for others' jobs)."""

    status, slug = 404, "job-not-found"

    def __init__(self, job_id: str = ""):
        super().__init__("no such job")


class CampaignNotFound(ProblemError):
    """No campaign (or run) with this id is visible to the caller."""

    status, slug = 404, "campaign-not-found"

    def __init__(self, campaign_id: str = ""):
        super().__init__("no such campaign")


class NotReady(ProblemError):
    """The job has no such result (yet): still running, failed or cancelled."""

    status, slug = 409, "not-ready"


class CampaignConflict(ProblemError):
    """The request does not fit the campaign's state (e.g. a proposal measured twice)."""

    status, slug = 409, "conflict"


class RequestTimeout(ProblemError):
    """The request body stopped arriving (a slow or stalled client)."""

    status, slug = 408, "timeout"
    headers = {"Connection": "close"}


class ResultExpired(ProblemError):
    """The job succeeded, but its files were removed after their time to live."""

    status, slug = 410, "result-expired"


class BodyTooLarge(ProblemError):
    """The request body is larger than the route accepts (counted as it arrives)."""

    status, slug = 413, "too-large"
    headers = {"Connection": "close"}


class UnsupportedMediaType(ProblemError):
    status, slug = 415, "media-type"


class RequestInvalid(ProblemError, InputError):
    """A request is invalid; ``field`` is its location (``"circuit"``, ``"files[0]"``)."""

    status, slug = 422, "validation"

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}", errors=[FieldError(field=field, message=problem)])


class CampaignInvalid(RequestInvalid):
    """A campaign spec or measurement upload is invalid (``schedule.cron``, ``files``…)."""


class IdempotencyConflict(RequestInvalid):
    """The idempotency key was used before with a different request body."""

    slug = "idempotency-key-reused"

    def __init__(self, key: str = ""):
        super().__init__(
            "Idempotency-Key", "this key was used with a different request; use a new key"
        )


class LimitExceeded(ProblemError):
    """The token already has as many unfinished jobs as it may."""

    status, slug = 429, "too-many-jobs"
    headers = {"Retry-After": "5"}

    def __init__(self, limit: int, what: str = "unfinished jobs"):
        self.limit = limit
        super().__init__(f"this token may have at most {limit} {what}")


class CampaignQuotaExceeded(LimitExceeded):
    """The token already has as many active campaigns as it may (pause or finish one)."""

    slug = "too-many-campaigns"
    headers = {"Retry-After": "60"}

    def __init__(self, limit: int):
        super().__init__(limit, "active campaigns")


class ServiceUnavailable(ProblemError):
    """The database or the Ray cluster is unreachable; retry later."""

    status, slug = 503, "unavailable"
    headers = {"Retry-After": "5"}


class StorageFull(ProblemError):
    """Too little free disk space to store the upload (or a result)."""

    status, slug = 507, "storage-full"
    headers = {"Retry-After": "60"}


class JobFault(SigmalabError):
    """Base of errors inside the job machinery (worker, dispatcher, artifact store)."""


class ArtifactError(JobFault):
    """A published attempt is missing files or a file's hash differs from its manifest."""


class ResultMismatch(JobFault):
    """A written result does not match its request (chain or draw count, missing group)."""


class JobStopped(JobFault):
    """A job noticed ``should_stop()`` and stopped early (cooperative cancel)."""
