"""Bearer tokens: created by ``sigmalab token create``, stored as SHA-256 hashes.

A token reads ``slb_<id>_<secret>``: the id names the token in listings and logs, the secret
is 32 random bytes. Only ``sha256(token)`` is stored; a random 256-bit secret needs no salt
or slow hash (nothing to brute-force), and the lookup is a single indexed query.

Scopes
    ``read``    see one's own jobs, their results and logs
    ``submit``  ``read`` + submit and cancel jobs
    ``admin``   ``submit`` for every token's jobs
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from service.errors import AuthFailed, ScopeMissing
from service.store import JobStore

SCOPES = ("read", "submit", "admin")
_IMPLIED = {"read": {"read"}, "submit": {"read", "submit"}, "admin": {"read", "submit", "admin"}}
DEFAULT_MAX_ACTIVE_JOBS = 50
DEFAULT_MAX_ACTIVE_CAMPAIGNS = 10


@dataclass(frozen=True)
class Principal:
    """The token a request was made with."""

    token_id: str
    name: str
    scopes: frozenset[str]
    max_active_jobs: int

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ScopeMissing(f"token {self.name!r} lacks the {scope!r} scope")

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(scope: str) -> frozenset[str]:
    """``"submit"`` or ``"read,submit"`` → the granted scopes, implied ones included."""
    names = [s.strip() for s in scope.replace(" ", ",").split(",") if s.strip()]
    unknown = [s for s in names if s not in SCOPES]
    if not names or unknown:
        raise ValueError(f"scope must be one or more of {', '.join(SCOPES)}; got {scope!r}")
    return frozenset().union(*(_IMPLIED[s] for s in names))


def create_token(
    store: JobStore,
    name: str,
    scope: str,
    max_active_jobs: int = DEFAULT_MAX_ACTIVE_JOBS,
    max_active_campaigns: int = DEFAULT_MAX_ACTIVE_CAMPAIGNS,
) -> tuple[str, str]:
    """Create a token and store its hash; it may have ``max_active_jobs`` unfinished jobs
    and ``max_active_campaigns`` active campaigns at once.

    Returns
    -------
    (token id, token) — the token itself is shown once and never stored.
    """
    parse_scopes(scope)
    if max_active_jobs < 1:
        raise ValueError(f"max_active_jobs must be ≥ 1, got {max_active_jobs}")
    if max_active_campaigns < 0:
        raise ValueError(f"max_active_campaigns must be ≥ 0, got {max_active_campaigns}")
    token_id = secrets.token_hex(4)
    token = f"slb_{token_id}_{secrets.token_urlsafe(32)}"
    store.insert_token(
        id=token_id,
        name=name,
        scope=scope,
        token_sha256=hash_token(token),
        max_active_jobs=max_active_jobs,
        max_active_campaigns=max_active_campaigns,
        created_at=time.time(),
    )
    return token_id, token


def authenticate(store: JobStore, authorization: str | None) -> Principal:
    """The principal of an ``Authorization: Bearer …`` header value.

    Raises
    ------
    AuthFailed
        Missing or malformed header, unknown or revoked token.
    """
    if not authorization:
        raise AuthFailed("missing Authorization header; send 'Authorization: Bearer <token>'")
    kind, _, token = authorization.partition(" ")
    token = token.strip()
    if kind.lower() != "bearer" or not token.startswith("slb_") or len(token) > 200:
        raise AuthFailed("malformed Authorization header; expected 'Bearer slb_…'")
    digest = hash_token(token)
    row = store.token_by_hash(digest)
    # compare_digest keeps the check constant-time even though the lookup already matched.
    if row is None or not hmac.compare_digest(row["token_sha256"], digest):
        raise AuthFailed("unknown token")
    if row["revoked_at"] is not None:
        raise AuthFailed("token revoked")
    return Principal(
        token_id=row["id"],
        name=row["name"],
        scopes=parse_scopes(row["scope"]),
        max_active_jobs=row["max_active_jobs"],
    )
