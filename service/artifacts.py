"""The artifact store: one folder per job attempt, published by an atomic manifest.

Layout under the root (``<data_dir>/artifacts``)::

    <job id>/<attempt>/result.nc, summary.json, …   written by the attempt's worker
    <job id>/<attempt>/manifest.json                 written last, by os.replace

An attempt's files count only once ``manifest.json`` exists and every file it lists has the
listed SHA-256; a worker killed half-way leaves a folder without a manifest, which nobody
trusts. Publishing fsyncs every file and the folder before the manifest is written (to a
temporary file, fsynced, renamed), so a published attempt survives a power cut. A cancelled
attempt publishes whatever it had with ``"partial": true`` so nobody mistakes it for a
result. The same protocol maps onto an S3-compatible store (objects under
``<job>/<attempt>/``, the manifest object written last: a PUT is atomic), see
docs/deployment.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from service.errors import ArtifactError

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ArtifactStore:
    """Attempt folders under ``root``.

    Parameters
    ----------
    root : directory shared by the server and every Ray node (a local disk for one machine,
        a shared file system for several).
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def attempt_dir(self, job_id: str, attempt: int) -> Path:
        return self.root / job_id / str(attempt)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def publish(
        self, job_id: str, attempt: int, *, primary: str | None, partial: bool = False, **info
    ) -> dict:
        """Hash and fsync the attempt's files, then publish them by writing the manifest.

        Parameters
        ----------
        primary : the file ``GET /jobs/{id}/result`` serves (``None`` when there is none).
        partial : the attempt did not finish (cancelled); its files are not a result.
        **info : stored in the manifest (e.g. the fit's diagnostics).
        """
        folder = self.attempt_dir(job_id, attempt)
        folder.mkdir(parents=True, exist_ok=True)
        files = {}
        for p in sorted(folder.rglob("*")):
            if p.is_file() and not p.name.startswith(MANIFEST):
                if not partial:
                    fsync_path(p)
                files[p.relative_to(folder).as_posix()] = {
                    "sha256": sha256_file(p),
                    "bytes": p.stat().st_size,
                }
        if primary is not None and primary not in files:
            raise ArtifactError(f"the result file {primary} was not written")
        manifest = {
            "job_id": job_id,
            "attempt": attempt,
            "partial": partial,
            "primary": primary,
            "files": files,
            "published_at": time.time(),
            **info,
        }
        tmp = folder / f"{MANIFEST}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(json.dumps(manifest, indent=1, default=str))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / MANIFEST)
        fsync_path(folder)
        return manifest

    def manifest(self, job_id: str, attempt: int) -> dict | None:
        """The published manifest of an attempt, or None if it never published."""
        path = self.attempt_dir(job_id, attempt) / MANIFEST
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def verify(self, job_id: str, attempt: int) -> dict:
        """The manifest of a complete attempt, after checking every file's hash.

        Raises
        ------
        ArtifactError
            No manifest, a partial attempt, or a file missing or changed.
        """
        manifest = self.manifest(job_id, attempt)
        if manifest is None:
            raise ArtifactError(f"attempt {attempt} published nothing")
        if manifest["partial"]:
            raise ArtifactError(f"attempt {attempt} published partial files")
        folder = self.attempt_dir(job_id, attempt)
        for name, meta in manifest["files"].items():
            path = folder / name
            if not path.is_file() or sha256_file(path) != meta["sha256"]:
                raise ArtifactError(f"{name} is missing or differs from its manifest")
        return manifest

    def remove(self, job_id: str, keep_attempt: int | None = None) -> None:
        """Remove a job's attempt folders (all, or all but ``keep_attempt``)."""
        folder = self.root / job_id
        if not folder.is_dir():
            return
        if keep_attempt is None:
            shutil.rmtree(folder, ignore_errors=True)
            return
        for attempt in folder.iterdir():
            if attempt.name != str(keep_attempt):
                shutil.rmtree(attempt, ignore_errors=True)
