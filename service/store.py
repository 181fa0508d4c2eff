"""The job store: tokens, jobs and job logs in SQLAlchemy Core (SQLite WAL or PostgreSQL).

The database holds the truth; Ray only executes. Every state change is a conditional UPDATE
(compare-and-set on ``status`` and ``attempt``), so two dispatchers, a restarted server or a
zombie worker of an earlier attempt can never move a job twice: the loser's UPDATE matches no
row and it backs off.

Lifecycle (:class:`~service.status.JobStatus`)::

    QUEUED → STARTING → RUNNING(phase) → SUCCEEDED | FAILED | CANCELLED
       ↑________________________|  (infrastructure failure, attempts left: re-queued,
                                    claimable again after an exponential backoff)

``attempt`` counts claims: it is incremented when the dispatcher claims a queued job, so the
first run is attempt 1 and a retry after a lost worker is attempt 2. Times are Unix seconds.
The schema is created and upgraded by Alembic migrations (:mod:`service.migrate`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from service.errors import IdempotencyConflict, LimitExceeded
from service.status import JobStatus

QUEUED, STARTING, RUNNING = JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING
SUCCEEDED, FAILED, CANCELLED = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED
ACTIVE, IN_FLIGHT, FINAL = JobStatus.active(), JobStatus.in_flight(), JobStatus.terminal()

metadata = sa.MetaData()

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("max_active_jobs", sa.Integer, nullable=False),
    sa.Column("max_active_campaigns", sa.Integer, nullable=False, server_default="10"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
)

jobs = sa.Table(
    "jobs",
    metadata,
    # seq orders jobs for keyset pagination; id is the public name.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("owner", sa.String(16), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("phase", sa.String(32)),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("error_type", sa.String(32)),
    sa.Column("error_message", sa.Text),
    sa.Column("progress", sa.JSON),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("cancel_requested", sa.String(16)),  # None, "user" or "timeout"
    sa.Column("cancel_requested_at", sa.Float),
    sa.Column("timeout_s", sa.Float),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("worker", sa.JSON),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("artifact_path", sa.String(500)),
    sa.Column("artifact_sha256", sa.String(64)),
    sa.Column("not_before", sa.Float),  # a re-queued job waits for its backoff
    sa.Column("purged_at", sa.Float),  # its files were removed (artifact time to live)
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency_key"),
    sa.Index("ix_jobs_status_seq", "status", "seq"),
    sa.Index("ix_jobs_owner_status", "owner", "status"),
)

job_logs = sa.Table(
    "job_logs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(32), nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # "dispatcher", "worker", "api"
    sa.Column("message", sa.Text, nullable=False),
)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and write-locking transactions.

    SQLite transactions start with ``BEGIN IMMEDIATE``: a read-then-write transaction (the
    per-token limit, idempotency) then holds the write lock from its first read, so two
    concurrent submissions cannot both pass the check. Both databases check a pooled
    connection before use (``pool_pre_ping``), so a dropped connection is replaced.
    """
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = sa.create_engine(
        url, pool_pre_ping=True, connect_args={"timeout": 30, "check_same_thread": False}
    )

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: str) -> Engine:
    """One engine per URL per process (workers reuse theirs across tasks)."""
    with _engines_lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def row_dict(row) -> dict[str, Any] | None:
    return dict(row._mapping) if row is not None else None


class JobStore:
    """Typed access to the tables; every method is one short transaction.

    Parameters
    ----------
    url : SQLAlchemy database URL.
    """

    def __init__(self, url: str):
        self.url = url
        self.engine = engine_for(url)

    def upgrade(self) -> None:
        """Create or upgrade the schema (Alembic migrations) to this version's."""
        from service.migrate import upgrade

        upgrade(self.engine)

    def ping(self) -> None:
        """One round trip; raises the database's error when it is unreachable."""
        with self.engine.connect() as c:
            c.execute(sa.text("SELECT 1"))

    # -- tokens ---------------------------------------------------------------------------------

    def insert_token(self, **values) -> None:
        with self.engine.begin() as c:
            c.execute(tokens.insert().values(**values))

    def token_by_hash(self, token_sha256: str) -> dict | None:
        with self.engine.begin() as c:
            q = tokens.select().where(tokens.c.token_sha256 == token_sha256)
            return row_dict(c.execute(q).first())

    def token(self, token_id: str) -> dict | None:
        with self.engine.begin() as c:
            return row_dict(c.execute(tokens.select().where(tokens.c.id == token_id)).first())

    def list_tokens(self) -> list[dict]:
        with self.engine.begin() as c:
            return [row_dict(r) for r in c.execute(tokens.select().order_by(tokens.c.created_at))]

    def revoke_token(self, token_id: str) -> bool:
        with self.engine.begin() as c:
            q = (
                tokens.update()
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            return c.execute(q).rowcount == 1

    # -- submission -----------------------------------------------------------------------------

    def insert_job(self, job: dict, *, max_active: int) -> tuple[dict, bool]:
        """Insert a queued job, or return the job an earlier request with the same key made.

        Returns
        -------
        (job row, created) — ``created`` is False for an idempotent replay.

        Raises
        ------
        IdempotencyConflict
            The owner used the same idempotency key with another body.
        LimitExceeded
            The owner already has ``max_active`` unfinished jobs.
        """
        owner, key = job["owner"], job.get("idempotency_key")
        with self.engine.begin() as c:
            # PostgreSQL: serialise one owner's submissions on its token row (SQLite: BEGIN
            # IMMEDIATE already did).
            c.execute(sa.select(tokens.c.id).where(tokens.c.id == owner).with_for_update())
            if key is not None:
                q = jobs.select().where(jobs.c.owner == owner, jobs.c.idempotency_key == key)
                existing = row_dict(c.execute(q).first())
                if existing is not None:
                    if existing["body_sha256"] != job["body_sha256"]:
                        raise IdempotencyConflict(key)
                    return existing, False
            active = c.execute(
                sa.select(sa.func.count())
                .select_from(jobs)
                .where(jobs.c.owner == owner, jobs.c.status.in_(ACTIVE))
            ).scalar_one()
            if active >= max_active:
                raise LimitExceeded(max_active)
            c.execute(jobs.insert().values(**job))
            return row_dict(c.execute(jobs.select().where(jobs.c.id == job["id"])).first()), True

    # -- queries --------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> dict | None:
        with self.engine.begin() as c:
            return row_dict(c.execute(jobs.select().where(jobs.c.id == job_id)).first())

    def job_by_key(self, owner: str, idempotency_key: str) -> dict | None:
        q = jobs.select().where(jobs.c.owner == owner, jobs.c.idempotency_key == idempotency_key)
        with self.engine.begin() as c:
            return row_dict(c.execute(q).first())

    def list_jobs(
        self,
        *,
        owner: str | None = None,
        status: Iterable[str] | None = None,
        kind: str | None = None,
        before_seq: int | None = None,
        limit: int = 50,
    ) -> list[dict]:
        """Jobs newest first; ``before_seq`` continues a listing (keyset pagination)."""
        q = jobs.select().order_by(jobs.c.seq.desc()).limit(limit)
        if owner is not None:
            q = q.where(jobs.c.owner == owner)
        if status:
            q = q.where(jobs.c.status.in_(list(status)))
        if kind:
            q = q.where(jobs.c.kind == kind)
        if before_seq is not None:
            q = q.where(jobs.c.seq < before_seq)
        with self.engine.begin() as c:
            return [row_dict(r) for r in c.execute(q)]

    def claimable(self, limit: int, now: float | None = None) -> list[dict]:
        """The queued jobs to claim next, fair across owners.

        Owners take turns: the owner with the fewest jobs in flight goes first (ties: the one
        whose oldest queued job is oldest), each owner's jobs oldest first. A job still in
        its retry backoff (``not_before``) waits.
        """
        now = time.time() if now is None else now
        rank = sa.func.row_number().over(partition_by=jobs.c.owner, order_by=jobs.c.seq)
        ready = (
            sa.select(jobs, rank.label("rank"))
            .where(
                jobs.c.status == QUEUED,
                sa.or_(jobs.c.not_before.is_(None), jobs.c.not_before <= now),
            )
            .subquery()
        )
        running = (
            sa.select(jobs.c.owner, sa.func.count())
            .where(jobs.c.status.in_(IN_FLIGHT))
            .group_by(jobs.c.owner)
        )
        with self.engine.begin() as c:
            queued = [
                row_dict(r)
                for r in c.execute(
                    sa.select(ready).where(ready.c.rank <= limit).order_by(ready.c.seq)
                )
            ]
            load = dict(c.execute(running).all())
        by_owner: dict[str, list[dict]] = {}
        for job in queued:
            job.pop("rank")
            by_owner.setdefault(job["owner"], []).append(job)
        picked: list[dict] = []
        while by_owner and len(picked) < limit:
            owner = min(by_owner, key=lambda o: (load.get(o, 0), by_owner[o][0]["seq"]))
            picked.append(by_owner[owner].pop(0))
            load[owner] = load.get(owner, 0) + 1
            if not by_owner[owner]:
                del by_owner[owner]
        return picked

    def expired_leases(self, now: float) -> list[dict]:
        """Claimed jobs whose dispatcher stopped renewing its lease."""
        q = jobs.select().where(jobs.c.status.in_(IN_FLIGHT), jobs.c.lease_expires_at < now)
        with self.engine.begin() as c:
            return [row_dict(r) for r in c.execute(q)]

    def finished_before(self, before: float, limit: int = 500) -> list[dict]:
        """Finished jobs whose files have not been purged, finished before ``before``."""
        q = (
            jobs.select()
            .where(
                jobs.c.status.in_(FINAL),
                jobs.c.finished_at < before,
                jobs.c.purged_at.is_(None),
            )
            .order_by(jobs.c.finished_at)
            .limit(limit)
        )
        with self.engine.begin() as c:
            return [row_dict(r) for r in c.execute(q)]

    def statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        ids = list(job_ids)
        if not ids:
            return {}
        q = sa.select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(ids))
        with self.engine.begin() as c:
            return dict(c.execute(q).all())

    # -- transitions (compare-and-set on status + attempt) ----------------------------------------

    def _cas(self, job_id: str, expected: int, statuses: Iterable[str], values: dict) -> bool:
        """Apply ``values`` if the job is still at attempt ``expected`` in one of ``statuses``."""
        q = (
            jobs.update()
            .where(jobs.c.id == job_id, jobs.c.attempt == expected, jobs.c.status.in_(statuses))
            .values(**values)
        )
        with self.engine.begin() as c:
            return c.execute(q).rowcount == 1

    def claim(self, job_id: str, attempt: int, lease_owner: str, lease_s: float) -> bool:
        """QUEUED (at ``attempt``) → STARTING at ``attempt + 1``, leased to ``lease_owner``."""
        now = time.time()
        values = {
            "status": STARTING,
            "attempt": attempt + 1,
            "phase": None,
            "progress": None,
            "lease_owner": lease_owner,
            "lease_expires_at": now + lease_s,
            "heartbeat_at": None,
            "worker": None,
            "not_before": None,
        }
        return self._cas(job_id, attempt, [QUEUED], values)

    def renew_leases(self, lease_owner: str, job_ids: Iterable[str], lease_s: float) -> int:
        ids = list(job_ids)
        if not ids:
            return 0
        q = (
            jobs.update()
            .where(
                jobs.c.id.in_(ids), jobs.c.lease_owner == lease_owner, jobs.c.status.in_(IN_FLIGHT)
            )
            .values(lease_expires_at=time.time() + lease_s)
        )
        with self.engine.begin() as c:
            return c.execute(q).rowcount

    def take_over(self, job_id: str, attempt: int, lease_owner: str, lease_s: float) -> bool:
        """Lease an expired in-flight job to ``lease_owner`` so that only one recovers it."""
        now = time.time()
        q = (
            jobs.update()
            .where(
                jobs.c.id == job_id,
                jobs.c.attempt == attempt,
                jobs.c.status.in_(IN_FLIGHT),
                jobs.c.lease_expires_at < now,
            )
            .values(lease_owner=lease_owner, lease_expires_at=now + lease_s)
        )
        with self.engine.begin() as c:
            return c.execute(q).rowcount == 1

    def mark_running(self, job_id: str, attempt: int, worker: dict) -> bool:
        """STARTING → RUNNING, by the worker of ``attempt``; False if it was superseded."""
        now = time.time()
        with self.engine.begin() as c:
            q = (
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.attempt == attempt, jobs.c.status == STARTING)
                .values(status=RUNNING, phase="starting", worker=worker, heartbeat_at=now)
            )
            if c.execute(q).rowcount != 1:
                return False
            c.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.started_at.is_(None))
                .values(started_at=now)
            )
            return True

    def heartbeat(
        self, job_id: str, attempt: int, progress: dict | None = None
    ) -> tuple[bool, str | None]:
        """Record a worker heartbeat (and its progress).

        Returns
        -------
        (current, cancel_requested) — ``current`` is False once this attempt no longer owns
        the job (superseded, finished or cancelled), and the worker should stop.
        """
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if progress is not None:
            values["progress"] = progress
            values["phase"] = progress.get("phase")
        with self.engine.begin() as c:
            q = (
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.attempt == attempt, jobs.c.status == RUNNING)
                .values(**values)
            )
            current = c.execute(q).rowcount == 1
            cancel = c.execute(
                sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id)
            ).scalar_one_or_none()
        return current, cancel

    def finish(
        self,
        job_id: str,
        attempt: int,
        status: str,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        artifact_path: str | None = None,
        artifact_sha256: str | None = None,
    ) -> bool:
        """STARTING/RUNNING at ``attempt`` → a final status (queued jobs are cancelled by
        :meth:`request_cancel`; a re-queued job cannot be finished by its old attempt)."""
        assert status in FINAL
        values = {
            "status": status,
            "phase": None,
            "error_type": error_type,
            "error_message": error_message,
            "artifact_path": artifact_path,
            "artifact_sha256": artifact_sha256,
            "finished_at": time.time(),
            "lease_owner": None,
            "lease_expires_at": None,
        }
        return self._cas(job_id, attempt, IN_FLIGHT, values)

    def requeue(
        self, job_id: str, attempt: int, error_type: str, error_message: str, not_before: float
    ) -> bool:
        """An in-flight attempt was lost: back to QUEUED, claimable from ``not_before`` on;
        the next claim makes attempt + 1."""
        values = {
            "status": QUEUED,
            "phase": None,
            "error_type": error_type,
            "error_message": error_message,
            "lease_owner": None,
            "lease_expires_at": None,
            "not_before": not_before,
        }
        return self._cas(job_id, attempt, IN_FLIGHT, values)

    def request_cancel(self, job_id: str, reason: str = "user") -> dict | None:
        """Flag an active job for cancellation (a queued one is cancelled at once)."""
        now = time.time()
        with self.engine.begin() as c:
            c.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.status == QUEUED)
                .values(
                    status=CANCELLED,
                    cancel_requested=reason,
                    cancel_requested_at=now,
                    finished_at=now,
                )
            )
            c.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id,
                    jobs.c.status.in_(IN_FLIGHT),
                    jobs.c.cancel_requested.is_(None),
                )
                .values(cancel_requested=reason, cancel_requested_at=now)
            )
            return row_dict(c.execute(jobs.select().where(jobs.c.id == job_id)).first())

    def mark_purged(self, job_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(jobs.update().where(jobs.c.id == job_id).values(purged_at=time.time()))

    # -- logs -----------------------------------------------------------------------------------

    def add_logs(self, job_id: str, attempt: int, source: str, messages: Iterable[str]) -> None:
        now = time.time()
        rows = [
            {"job_id": job_id, "attempt": attempt, "at": now, "source": source, "message": m}
            for m in messages
        ]
        if rows:
            with self.engine.begin() as c:
                c.execute(job_logs.insert(), rows)

    def logs(self, job_id: str, after_seq: int = 0) -> list[dict]:
        q = (
            job_logs.select()
            .where(job_logs.c.job_id == job_id, job_logs.c.seq > after_seq)
            .order_by(job_logs.c.seq)
        )
        with self.engine.begin() as c:
            return [row_dict(r) for r in c.execute(q)]


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): what request hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
