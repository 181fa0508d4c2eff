"""What the HTTP routes do, as plain functions: submit, look up, list, cancel, read results.

Visibility: a token sees its own jobs (an ``admin`` token sees all); any other job is "not
found" — the same answer as for an id that never existed, so nothing about other users'
jobs leaks. Where a job ran (host, PID, Ray node) is shown to admin tokens only.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import time
import uuid
from pathlib import Path

from pydantic import BaseModel

from service import jobs
from service.artifacts import ArtifactStore
from service.auth import Principal
from service.config import Settings
from service.errors import (
    IdempotencyConflict,
    JobNotFound,
    NotReady,
    RequestInvalid,
    ResultExpired,
)
from service.models import Artifacts, JobInfo, JobPage, Progress, WorkerInfo, timestamp
from service.status import JobStatus
from service.store import FINAL, QUEUED, JobStore, dumps
from service.uploads import Upload, stage_files

#: Cursors are job sequence numbers, which the database keeps within a signed 64-bit int.
MAX_SEQ = 2**63 - 1


def body_digest(request: dict, upload: Upload | None) -> str:
    """SHA-256 over the request JSON and the uploaded files: what idempotency compares."""
    h = hashlib.sha256(dumps(request).encode())
    for name, sha256 in sorted((upload.files if upload else {}).items()):
        h.update(f"\0{name}\0{sha256}".encode())
    return h.hexdigest()


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, value = raw.partition(":")
        seq = int(value)
        if tag != "seq" or not value.isdigit() or not 0 < seq <= MAX_SEQ:
            raise ValueError(cursor)
        return seq
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid("cursor", "not a cursor returned by this server") from exc


class JobManager:
    """Job operations on behalf of an authenticated principal.

    Parameters
    ----------
    settings : where uploads, artifacts and datasets live; limits and defaults.
    store, artifacts : the job and artifact stores.
    """

    def __init__(self, settings: Settings, store: JobStore, artifacts: ArtifactStore):
        self.settings, self.store, self.artifacts = settings, store, artifacts

    def staging(self) -> Path:
        """A new staging folder for one submission's files (the API streams into it)."""
        return self.settings.uploads_dir / f".staging-{uuid.uuid4().hex}"

    def submit(
        self,
        who: Principal,
        request: BaseModel,
        upload: Upload | list[tuple[str, bytes]] | None,
        idempotency_key: str | None,
    ) -> tuple[JobInfo, bool]:
        """Validate a job, keep its inputs and queue it.

        Parameters
        ----------
        upload : the files, already staged (the API streams them), or ``(name, content)``
            pairs (the scheduler's merged studies), or None.

        Returns
        -------
        (job, created) — ``created`` is False when the idempotency key replayed an earlier job.

        Raises
        ------
        RequestInvalid, IdempotencyConflict, LimitExceeded, StorageFull
        """
        who.require("submit")
        if not isinstance(upload, Upload):
            upload = stage_files(upload or [], self.staging(), self.settings.min_free_bytes)
        staging = upload.folder
        job_id = uuid.uuid4().hex
        inputs = self.settings.uploads_dir / job_id
        try:
            digest = body_digest(request.model_dump(mode="json"), upload)
            if idempotency_key is not None:
                # A replay needs no new validation; insert_job re-checks under the lock.
                existing = self.store.job_by_key(who.token_id, idempotency_key)
                if existing is not None:
                    if existing["body_sha256"] != digest:
                        raise IdempotencyConflict(idempotency_key)
                    return self.info(existing, who), False
            staging.mkdir(parents=True, exist_ok=True)
            stored = jobs.stage_inputs(request, upload, self.settings.datasets_dir)
            if stored.get("timeout_s") is None:
                stored["timeout_s"] = self.settings.default_timeout_s
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
                    "timeout_s": stored["timeout_s"],
                    "created_at": time.time(),
                },
                max_active=who.max_active_jobs,
            )
        except BaseException:
            shutil.rmtree(inputs, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not created:
            shutil.rmtree(inputs, ignore_errors=True)
        return self.info(row, who), created

    def _visible(self, who: Principal, job_id: str) -> dict:
        who.require("read")
        job = self.store.get_job(job_id) if len(job_id) <= 64 else None
        if job is None or (job["owner"] != who.token_id and not who.is_admin):
            raise JobNotFound(job_id)
        return job

    def get(self, who: Principal, job_id: str) -> JobInfo:
        return self.info(self._visible(who, job_id), who)

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
            if s not in JobStatus.__members__:
                statuses = ", ".join(JobStatus)
                raise RequestInvalid("status", f"{s[:40]!r} is not one of {statuses}")
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
        return JobPage(items=[self.info(r, who) for r in rows], next_cursor=next_cursor)

    def cancel(self, who: Principal, job_id: str) -> JobInfo:
        """Ask a job to stop; a finished job is returned unchanged."""
        who.require("submit")
        job = self._visible(who, job_id)
        if job["status"] in FINAL:
            return self.info(job, who)
        job = self.store.request_cancel(job_id)
        self.store.add_logs(job_id, job["attempt"], "api", ["cancel requested"])
        if job["status"] == JobStatus.CANCELLED:
            self.remove_inputs(job_id)  # it never ran: nothing else will need them
        return self.info(job, who)

    def remove_inputs(self, job_id: str) -> None:
        shutil.rmtree(self.settings.uploads_dir / job_id, ignore_errors=True)

    def artifact_file(self, job: dict) -> Path:
        """The primary result file of a succeeded job.

        Raises
        ------
        ResultExpired
            Its files were removed after their time to live.
        """
        if job["purged_at"] is not None:
            raise ResultExpired(
                f"job {job['id']}'s files were removed after their time to live; run it again"
            )
        return self.artifacts.root / job["artifact_path"]

    def result_file(self, who: Principal, job_id: str) -> tuple[Path, str, JobInfo]:
        """(path, sha256, job) of a succeeded job's result file."""
        job = self._visible(who, job_id)
        if job["status"] != JobStatus.SUCCEEDED:
            raise NotReady(f"job {job_id} is {job['status']}; a result exists once it SUCCEEDED")
        return self.artifact_file(job), job["artifact_sha256"], self.info(job, who)

    def summary(self, who: Principal, job_id: str) -> dict:
        import json

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

    def info(self, job: dict, who: Principal | None = None) -> JobInfo:
        """The API view of a job row; ``who`` decides whether the worker's host is shown."""
        artifacts = None
        if job["attempt"] and job["status"] in FINAL and job["purged_at"] is None:
            manifest = self.artifacts.manifest(job["id"], job["attempt"])
            if manifest is not None:
                artifacts = Artifacts(partial=manifest["partial"], files=sorted(manifest["files"]))
        show_worker = who is not None and who.is_admin and job["worker"]
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
            worker=WorkerInfo(**job["worker"]) if show_worker else None,
            request=job["request"],
            created_at=timestamp(job["created_at"]),
            started_at=timestamp(job["started_at"]),
            finished_at=timestamp(job["finished_at"]),
            result_sha256=job["artifact_sha256"],
            artifacts=artifacts,
        )
