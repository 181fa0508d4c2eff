"""Errors raised by the Python client (:mod:`service.client`).

The hierarchy, so a user knows what to catch::

    inference.errors.SigmalabError
    └── ServiceError              something went wrong talking to the service or with a job
        ├── TransportError        the server could not be reached, even after retries
        ├── APIError              the server answered with a problem (.status, .problem)
        │   ├── AuthError         401/403: no token, a wrong one, or a missing scope
        │   ├── NotFound          404: no such job (or not yours)
        │   ├── Conflict          409: e.g. the result of a job that did not succeed
        │   ├── InvalidRequest    400/413/415/422: .errors lists the fields at fault
        │   └── RateLimited       429 after the retries ran out
        ├── JobError              a job ended without success (.job: its last JobInfo)
        │   ├── JobFailed         FAILED; .error_type and .message say why
        │   └── JobCancelled      CANCELLED
        ├── AmbiguousId           an id prefix that several jobs (or campaigns) share
        ├── WaitTimeout           job.wait(timeout=…) ran out (also a TimeoutError)
        └── IntegrityError        a download's SHA-256 differs from the server's ETag
"""

from __future__ import annotations

from inference.errors import SigmalabError
from service.models import FieldError, JobInfo, Problem


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
    """409: the request does not fit the job's state."""


class InvalidRequest(APIError):
    """The request was refused as malformed or invalid; ``errors`` names the fields."""

    @property
    def errors(self) -> list[FieldError]:
        return self.problem.errors or []


class RateLimited(APIError):
    """429: the token has too many unfinished jobs, and retrying did not help."""


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
    cls = {401: AuthError, 403: AuthError, 404: NotFound, 409: Conflict, 429: RateLimited}.get(
        status, InvalidRequest if 400 <= status < 500 else APIError
    )
    return cls(status, problem)
