"""What the HTTP routes do, as plain functions: submit, look up, list, cancel, read results.

Visibility: a token sees its own jobs (an ``admin`` token sees all); any other job is "not
found" — the same answer as for an id that never existed, so nothing about other users'
jobs leaks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import time
import uuid
from pathlib import Path

from pydantic import BaseModel

from service import jobs
from service.artifacts import ArtifactStore
from service.auth import Principal
from service.config import Settings
from service.models import Artifacts, JobInfo, JobPage, Progress, WorkerInfo, timestamp
from service.store import FINAL, QUEUED, STATUSES, IdempotencyConflict, JobStore, dumps


class JobNotFound(Exception):
    """No job with this id is visible to the caller."""


class NotReady(Exception):
    """The job has no such result (yet): still running, failed or cancelled."""


def body_digest(request: dict, files: list[tuple[str, bytes]]) -> str:
    """SHA-256 over the request JSON and the uploaded files: what idempotency compares."""
    h = hashlib.sha256(dumps(request).encode())
    for name, content in sorted(files):
        h.update(f"\0{name}\0{hashlib.sha256(content).hexdigest()}".encode())
    return h.hexdigest()


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, value = raw.partition(":")
        if tag != "seq":
            raise ValueError(cursor)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise jobs.RequestInvalid("cursor", "not a cursor returned by this server") from exc


class JobManager:
    """Job operations on behalf of an authenticated principal.

    Parameters
    ----------
    settings : where uploads, artifacts and datasets live.
    store, artifacts : the job and artifact stores.
    """

    def __init__(self, settings: Settings, store: JobStore, artifacts: ArtifactStore):
        self.settings, self.store, self.artifacts = settings, store, artifacts

    def submit(
        self,
        who: Principal,
        request: BaseModel,
        files: list[tuple[str, bytes]],
        idempotency_key: str | None,
    ) -> tuple[JobInfo, bool]:
        """Validate a job, store its inputs and queue it.

        Returns
        -------
        (job, created) — ``created`` is False when the idempotency key replayed an earlier job.

        Raises
        ------
        jobs.RequestInvalid, store.IdempotencyConflict, store.LimitExceeded
        """
        who.require("submit")
        digest = body_digest(request.model_dump(mode="json"), files)
        if idempotency_key is not None:
            # A replay needs no new validation or upload; insert_job re-checks under the lock.
            existing = self.store.job_by_key(who.token_id, idempotency_key)
            if existing is not None:
                if existing["body_sha256"] != digest:
                    raise IdempotencyConflict(idempotency_key)
                return self.info(existing), False
        job_id = uuid.uuid4().hex
        self.settings.uploads_dir.mkdir(parents=True, exist_ok=True)
        staging = self.settings.uploads_dir / f".staging-{job_id}"
        try:
            stored = jobs.stage_inputs(request, files, staging, self.settings.datasets_dir)
            inputs = self.settings.uploads_dir / job_id
            staging.rename(inputs)
            row, created = self.store.insert_job(
                {
                    "id": job_id,
                    "kind": stored["kind"],
                    "owner": who.token_id,
                    "status": QUEUED,
                    "attempt": 0,
                    "max_attempts": self.settings.max_attempts,
                    "request": stored,
                    "idempotency_key": idempotency_key,
                    "body_sha256": digest,
                    "timeout_s": stored.get("timeout_s"),
                    "created_at": time.time(),
                },
                max_active=who.max_active_jobs,
            )
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(self.settings.uploads_dir / job_id, ignore_errors=True)
            raise
        if not created:
            shutil.rmtree(self.settings.uploads_dir / job_id, ignore_errors=True)
        return self.info(row), created

    def _visible(self, who: Principal, job_id: str) -> dict:
        who.require("read")
        job = self.store.get_job(job_id) if len(job_id) <= 64 else None
        if job is None or (job["owner"] != who.token_id and not who.is_admin):
            raise JobNotFound(job_id)
        return job

    def get(self, who: Principal, job_id: str) -> JobInfo:
        return self.info(self._visible(who, job_id))

    def list(
        self,
        who: Principal,
        status: list[str] | None = None,
        kind: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> JobPage:
        who.require("read")
        for s in status or []:
            if s not in STATUSES:
                raise jobs.RequestInvalid("status", f"{s!r} is not one of {', '.join(STATUSES)}")
        rows = self.store.list_jobs(
            owner=None if who.is_admin else who.token_id,
            status=status,
            kind=kind,
            before_seq=decode_cursor(cursor) if cursor else None,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["seq"]) if more else None
        return JobPage(items=[self.info(r) for r in rows], next_cursor=next_cursor)

    def cancel(self, who: Principal, job_id: str) -> JobInfo:
        """Ask a job to stop; a finished job is returned unchanged."""
        who.require("submit")
        job = self._visible(who, job_id)
        if job["status"] in FINAL:
            return self.info(job)
        job = self.store.request_cancel(job_id)
        self.store.add_logs(job_id, job["attempt"], "api", ["cancel requested"])
        return self.info(job)

    def result_file(self, who: Principal, job_id: str) -> tuple[Path, str, JobInfo]:
        """(path, sha256, job) of a succeeded job's result file."""
        job = self._visible(who, job_id)
        if job["status"] != "SUCCEEDED":
            raise NotReady(f"job {job_id} is {job['status']}; a result exists once it SUCCEEDED")
        return self.artifacts.root / job["artifact_path"], job["artifact_sha256"], self.info(job)

    def summary(self, who: Principal, job_id: str) -> dict:
        path, _, _ = self.result_file(who, job_id)
        summary = path.parent / "summary.json"
        if not summary.is_file():
            raise NotReady(f"job {job_id} wrote no summary.json")
        return json.loads(summary.read_text())

    def logs(self, who: Principal, job_id: str) -> str:
        self._visible(who, job_id)
        lines = []
        for row in self.store.logs(job_id):
            at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(row["at"]))
            lines.append(f"{at}Z attempt {row['attempt']} {row['source']}: {row['message']}")
        return "\n".join(lines) + ("\n" if lines else "")

    def info(self, job: dict) -> JobInfo:
        artifacts = None
        if job["attempt"] and job["status"] in FINAL:
            manifest = self.artifacts.manifest(job["id"], job["attempt"])
            if manifest is not None:
                artifacts = Artifacts(partial=manifest["partial"], files=sorted(manifest["files"]))
        return JobInfo(
            id=job["id"],
            kind=job["kind"],
            status=job["status"],
            phase=job["phase"],
            attempt=job["attempt"],
            max_attempts=job["max_attempts"],
            error_type=job["error_type"],
            error_message=job["error_message"],
            cancel_requested=job["cancel_requested"] is not None,
            progress=Progress(**job["progress"]) if job["progress"] else None,
            worker=WorkerInfo(**job["worker"]) if job["worker"] else None,
            request=job["request"],
            created_at=timestamp(job["created_at"]),
            started_at=timestamp(job["started_at"]),
            finished_at=timestamp(job["finished_at"]),
            result_sha256=job["artifact_sha256"],
            artifacts=artifacts,
        )
