"""The artifact store: one folder per job attempt, published by an atomic manifest.

Layout under the root (``<data_dir>/artifacts``)::

    <job id>/<attempt>/result.nc, summary.json, …   written by the attempt's worker
    <job id>/<attempt>/manifest.json                 written last, by os.replace

An attempt's files count only once ``manifest.json`` exists and every file it lists has the
listed SHA-256; a worker killed half-way leaves a folder without a manifest, which nobody
trusts. A cancelled attempt publishes whatever it had with ``"partial": true`` so nobody
mistakes it for a result. The same protocol maps onto an S3-compatible store (objects under
``<job>/<attempt>/``, the manifest object written last: a PUT is atomic), see
docs/deployment.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

MANIFEST = "manifest.json"


class ArtifactError(Exception):
    """A published attempt is missing files or a file's hash differs from its manifest."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        """Hash the attempt's files and publish them by writing the manifest atomically.

        Parameters
        ----------
        primary : the file ``GET /jobs/{id}/result`` serves (``None`` when there is none).
        partial : the attempt did not finish (cancelled); its files are not a result.
        **info : stored in the manifest (e.g. the fit's diagnostics).
        """
        folder = self.attempt_dir(job_id, attempt)
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(MANIFEST)
        }
        if primary is not None and primary not in files:
            raise ArtifactError(f"{folder}: the result file {primary} was not written")
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
        tmp.write_text(json.dumps(manifest, indent=1, default=str))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, folder / MANIFEST)
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
        folder = self.attempt_dir(job_id, attempt)
        if manifest is None:
            raise ArtifactError(f"{folder}: nothing published")
        if manifest["partial"]:
            raise ArtifactError(f"{folder}: the published files are partial")
        for name, meta in manifest["files"].items():
            path = folder / name
            if not path.is_file() or sha256_file(path) != meta["sha256"]:
                raise ArtifactError(f"{folder}: {name} is missing or differs from its manifest")
        return manifest
