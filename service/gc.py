"""Removing what jobs leave behind: old results, inputs of ended jobs, abandoned staging.

* Results (``artifacts/<job>/``) of jobs that finished more than ``artifact_ttl_s`` ago are
  removed and the job is marked purged: ``GET …/result`` then answers 410. A job whose
  result an unfinished campaign round still needs is kept.
* Inputs (``uploads/<job>/``) of jobs that ended, or that the database has not known for an
  hour (a crash between staging and queueing), are removed; the dispatcher removes them when a
  job ends, this catches what a crash left.
* Staging folders (uploads being received) older than an hour are removed.

Run by the server once an hour and by ``sigmalab gc``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from service.artifacts import ArtifactStore
from service.campaigns.store import UNFINISHED, campaign_runs
from service.config import Settings
from service.status import JobStatus
from service.store import JobStore

STAGING_TTL_S = 3600.0


@dataclass
class GcReport:
    """What one pass removed (or would remove, for a dry run)."""

    purged_jobs: int = 0
    removed_inputs: int = 0
    removed_staging: int = 0
    freed_bytes: int = 0


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove(path: Path, report: GcReport, dry_run: bool) -> None:
    report.freed_bytes += _size(path)
    if not dry_run:
        shutil.rmtree(path, ignore_errors=True)


def _needed_by_campaigns(store: JobStore) -> set[str]:
    q = sa.select(campaign_runs.c.analyze_job, campaign_runs.c.propose_job).where(
        campaign_runs.c.status.in_(UNFINISHED)
    )
    with store.engine.begin() as c:
        return {job for row in c.execute(q) for job in row if job}


def collect_garbage(
    settings: Settings,
    store: JobStore,
    artifacts: ArtifactStore,
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> GcReport:
    """One pass (see the module docstring); ``settings.artifact_ttl_s`` None keeps results."""
    now = time.time() if now is None else now
    report = GcReport()
    if settings.artifact_ttl_s is not None:
        keep = _needed_by_campaigns(store)
        for job in store.finished_before(now - settings.artifact_ttl_s):
            if job["id"] in keep:
                continue
            _remove(artifacts.root / job["id"], report, dry_run)
            if not dry_run:
                store.mark_purged(job["id"])
            report.purged_jobs += 1
    staging_roots = [settings.uploads_dir, *settings.data_dir.glob("campaigns/*/staging")]
    for root in staging_roots:
        for folder in root.glob(".staging-*" if root == settings.uploads_dir else "*"):
            if folder.is_dir() and now - folder.stat().st_mtime > STAGING_TTL_S:
                _remove(folder, report, dry_run)
                report.removed_staging += 1
    if settings.uploads_dir.is_dir():
        folders = {p.name: p for p in settings.uploads_dir.iterdir()
                   if p.is_dir() and not p.name.startswith(".")}  # fmt: skip
        statuses = store.statuses(folders)
        for job_id, folder in folders.items():
            status = statuses.get(job_id)
            # An unknown folder may be a submission being queued right now: only old ones go.
            orphan = status is None and now - folder.stat().st_mtime > STAGING_TTL_S
            if orphan or (status is not None and JobStatus(status).is_terminal()):
                _remove(folder, report, dry_run)
                report.removed_inputs += 1
    return report
