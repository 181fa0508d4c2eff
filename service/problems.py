"""Errors as RFC 9457 problem details: the app's exception handlers.

Routes raise :class:`~service.errors.ProblemError` subclasses, whose class names the status
and problem type; the handlers below also turn FastAPI's validation errors, Starlette's HTTP
errors, a database that cannot be reached (503) and anything unexpected (500) into
``application/problem+json``, so no client ever sees an HTML page, a traceback or a server
path: those go to the server log.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from service.errors import ProblemError, ServiceUnavailable
from service.models import FieldError, Problem

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "urn:sigmalab:problem:"
log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    410: "Gone",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
    507: "Insufficient storage",
}


def problem_body(
    status: int,
    slug: str | None,
    detail: str | None,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
) -> dict:
    body = Problem(
        type=f"{TYPE_BASE}{slug}" if slug else "about:blank",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return body.model_dump(exclude_none=True)


def problem_response(
    request: Request,
    status: int,
    slug: str | None,
    detail: str | None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = problem_body(status, slug, detail, request.url.path, errors)
    return JSONResponse(body, status, headers=headers, media_type=MEDIA_TYPE)


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


def invalid(errors: list[FieldError]) -> ProblemError:
    """A 422 for pydantic's field errors."""
    from service.errors import RequestInvalid

    exc = RequestInvalid(errors[0].field, errors[0].message)
    exc.detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    exc.errors = errors
    return exc


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError):
        return problem_response(
            request, exc.status, exc.slug, exc.detail, exc.errors, exc.headers or None
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = validation_errors(list(exc.errors()))
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem_response(request, 422, "validation", detail, errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return problem_response(request, exc.status_code, None, str(exc.detail), None, exc.headers)

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    async def _database(request: Request, exc: Exception):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        down = ServiceUnavailable("the database is unavailable; retry shortly")
        return problem_response(request, 503, down.slug, down.detail, None, down.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem_response(request, 500, "internal", "unexpected server error")
