"""What a client may send: bodies counted as they arrive, JSON depth, slow requests.

:class:`RequestLimits` is an ASGI middleware in front of the app. For every request with a
body it picks a limit — uploads (multipart on the upload routes) ``max_upload_bytes``, job
JSON ``max_json_bytes``, anything else ``max_small_body_bytes`` — and, until the bearer
token is known to be valid, a tiny one (``max_unauthenticated_bytes``): an anonymous client
cannot make the server read, spool or parse a large body. A declared ``Content-Length`` over
the limit is refused before a byte is read; a chunked body is counted as it streams and cut
off at the limit. Either way the answer is 413 (401 for an invalid token) as problem+json,
whatever the route had started. A body that pauses longer than ``body_timeout_s`` between
two chunks gets 408.

:class:`HeaderTimeoutProtocol` is uvicorn's HTTP protocol with a deadline for the request
line and headers (``header_timeout_s``), which uvicorn itself does not have.
"""

from __future__ import annotations

import json
import re

import anyio
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.auth import authenticate
from service.config import Settings
from service.errors import AuthFailed, BodyTooLarge, MalformedBody, ProblemError, RequestTimeout
from service.problems import MEDIA_TYPE, problem_body

UPLOAD_ROUTES = (re.compile(r"^/v1/jobs$"), re.compile(r"^/v1/campaigns/[^/]+/measurements$"))
JOB_ROUTE = re.compile(r"^/v1/jobs$")


class _Cut(Exception):
    """The body went over its limit, stalled, or the client left; the app must stop."""


class RequestLimits:
    """ASGI middleware enforcing body limits and body timeouts (see the module docstring).

    Parameters
    ----------
    app : the ASGI app.
    settings : the limits.
    store : the job store, to tell valid tokens from invalid ones.
    """

    def __init__(self, app, settings: Settings, store_of):
        self.app, self.settings, self.store_of = app, settings, store_of

    def route_limit(self, path: str, content_type: str) -> int:
        s = self.settings
        if content_type.startswith("multipart/form-data") and any(
            r.match(path) for r in UPLOAD_ROUTES
        ):
            return s.max_upload_bytes
        if JOB_ROUTE.match(path):
            return s.max_json_bytes
        return s.max_small_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.route_limit(scope["path"], headers.get("content-type", "").lower())
        authorized = await self._authenticate(scope, headers.get("authorization"))
        refusal: ProblemError = BodyTooLarge(f"request bodies here are limited to {limit} bytes")
        if not authorized:
            limit = self.settings.max_unauthenticated_bytes
            refusal = AuthFailed(
                "a valid bearer token is needed before a request body is read; "
                "send 'Authorization: Bearer <token>'"
            )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _send_problem(send, scope, refusal)

        state = {"received": 0, "cut": None, "started": False, "more": True}
        timeout = self.settings.body_timeout_s

        async def limited_receive():
            if state["cut"] is not None:
                raise _Cut()
            if not state["more"]:
                return await receive()  # after the body: wait for a disconnect
            try:
                with anyio.fail_after(timeout):
                    message = await receive()
            except TimeoutError:
                state["cut"] = RequestTimeout(f"the request body stalled for {timeout:g} s")
                raise _Cut() from None
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                state["more"] = message.get("more_body", False)
                if state["received"] > limit:
                    state["cut"] = refusal
                    raise _Cut()
            return message

        async def guarded_send(message):
            if state["cut"] is not None:
                return  # the app's answer to a cut body is replaced by ours
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if state["cut"] is None:
                raise
        if state["cut"] is not None and not state["started"]:
            await _send_problem(send, scope, state["cut"])

    async def _authenticate(self, scope, header: str | None) -> bool:
        """Whether the token is valid; the principal is kept for the route (one lookup)."""
        try:
            principal = await anyio.to_thread.run_sync(authenticate, self.store_of(), header)
        except AuthFailed:
            return False
        except Exception:  # the database is down: the route will answer 503 itself
            return True
        scope.setdefault("state", {})["principal"] = principal
        return True


async def _send_problem(send, scope, exc: ProblemError) -> None:
    body = json.dumps(problem_body(exc.status, exc.slug, exc.detail, scope["path"])).encode()
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
               (b"connection", b"close")]  # fmt: skip
    headers += [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()
                if k.lower() != "connection"]  # fmt: skip
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def parse_json(raw: bytes, field: str, max_depth: int):
    """JSON from ``raw``, refusing nesting deeper than ``max_depth`` (objects and arrays).

    Raises
    ------
    MalformedBody
        Not JSON, not UTF-8, or nested too deeply to parse.
    RequestInvalid
        Parsed, but deeper than ``max_depth``.
    """
    from service.errors import RequestInvalid

    try:
        value = json.loads(raw)
    except RecursionError:
        raise MalformedBody(f"{field} is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"{field} is not valid JSON: {exc}") from None
    if depth(value) > max_depth:
        raise RequestInvalid(field, f"nested deeper than {max_depth} levels")
    return value


def depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


async def read_body(request) -> bytes:
    """The whole body (the middleware has bounded it)."""
    chunks = [chunk async for chunk in request.stream()]
    return b"".join(chunks)


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for a request's line and headers.

    uvicorn times out idle keep-alive connections but waits forever for a request whose
    headers trickle in (or never come): a few such connections would hold the server.
    """

    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        started = self.cycle is not None and not self.cycle.response_complete
        if started and self._header_deadline is not None:
            self._header_deadline.cancel()  # the headers are in; the body has its own limit
            self._header_deadline = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._header_deadline is None and not self.transport.is_closing():
            # The next request on this connection gets its own deadline (keep-alive).
            self._header_deadline = self.loop.call_later(
                self.timeout_keep_alive + self.header_timeout_s, self._too_slow
            )

    def _too_slow(self) -> None:
        self._header_deadline = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().connection_lost(exc)


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class with ``seconds`` as its header deadline (uvicorn's ``http=``)."""
    return type("HeaderTimeout", (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})
