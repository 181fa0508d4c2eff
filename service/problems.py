"""Errors as RFC 9457 problem details: one exception type and the app's handlers.

Routes raise :class:`ProblemError`; the handlers below also turn FastAPI's own validation
errors, Starlette's HTTP errors and anything unexpected into ``application/problem+json``,
so no client ever sees an HTML page or a traceback (a 500 says only that it happened).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.models import FieldError, Problem

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:sigmalab:problem:"
log = logging.getLogger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many unfinished jobs",
    500: "Internal server error",
    503: "Service unavailable",
}


class ProblemError(Exception):
    """Answer the request with a problem+json body.

    Parameters
    ----------
    status : HTTP status.
    slug : short name of the problem type (``validation``, ``job-not-found``…).
    detail : one line for the user.
    errors : fields at fault (for 422).
    headers : e.g. ``Retry-After`` or ``WWW-Authenticate``.
    """

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.errors, self.headers = errors, headers or {}


def problem_response(
    request: Request,
    status: int,
    slug: str | None,
    detail: str | None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"{TYPE_BASE}{slug}" if slug else "about:blank",
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status, headers=headers, media_type=MEDIA_TYPE
    )


def field_path(loc: tuple) -> str:
    """pydantic's ``("body", "circuit")`` / ``("draws",)`` → ``"circuit"`` / ``"draws"``."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def validation_errors(errors: list[dict], skip: tuple = ()) -> list[FieldError]:
    """pydantic error dicts → field errors (``skip`` drops union-tag parts of locations)."""
    out = []
    for e in errors:
        loc = tuple(p for p in e["loc"] if p not in skip)
        discriminator = (e.get("ctx") or {}).get("discriminator")
        if discriminator and e["type"].startswith("union_tag"):
            loc = (*loc, discriminator.strip("'"))  # a bad or missing 'kind' names 'kind'
        out.append(FieldError(field=field_path(loc), message=e["msg"]))
    return out


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError):
        return problem_response(request, exc.status, exc.slug, exc.detail, exc.errors, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = validation_errors(list(exc.errors()))
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(request, 422, "validation", detail, errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return problem_response(request, exc.status_code, None, str(exc.detail), None, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal", "unexpected server error")
