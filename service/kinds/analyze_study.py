"""``analyze_study``: analyse a study — uploaded files with a manifest, or a server dataset.

Result: ``result.nc`` (the Arrhenius layers under ``/arrhenius/<kind>``), ``summary.json``
(the summary contract of :mod:`inference.summary`) and the HTML report. The manifest may name
only files inside the study's root (the upload, or the dataset's folder): checked when the
job is submitted and again when it runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from inference.errors import InputError
from service.confine import confine_manifest, scrub
from service.errors import JobStopped, RequestInvalid
from service.kinds.base import JobKind, JobRequestBase, RunContext, Staged, check_netcdf

#: A dataset name: one folder of ``<data_dir>/datasets`` (no separators).
DATASET_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MANIFEST_NAMES = ("manifest.toml", "manifest.csv")


class AnalyzeStudyRequest(JobRequestBase):
    """Analyse a study: uploaded files with a manifest, or a dataset the server holds."""

    kind: Literal["analyze_study"]
    dataset: str | None = Field(
        None, max_length=100, description="name of a folder in the server's datasets directory"
    )
    manifest: str | None = Field(
        None, description="name of the uploaded manifest (default: manifest.toml/.csv)"
    )
    method: Literal["nuts", "lsq"] = "nuts"
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="default: drawn at submission")

    @field_validator("dataset")
    @classmethod
    def _dataset_name(cls, value: str | None) -> str | None:
        if value is not None and (not DATASET_NAME.match(value) or set(value) == {"."}):
            raise ValueError("a dataset name is letters, digits, '_', '.', '-' only (no paths)")
        return value


def study_root(request: dict, inputs_dir: Path, datasets_dir: Path) -> tuple[Path, Path]:
    """(root the study may read, its manifest) of a stored request."""
    if request["dataset"] is not None:
        root = datasets_dir / request["dataset"]
        return root, root / "manifest.toml"
    return inputs_dir, inputs_dir / request["manifest"]


def stage(request: AnalyzeStudyRequest, staged: Staged) -> dict:
    names = staged.names
    if request.dataset is not None:
        if names:
            raise RequestInvalid("files", "give either a dataset name or uploaded files, not both")
        root = staged.datasets_dir / request.dataset
        if not (root / "manifest.toml").is_file():
            raise RequestInvalid("dataset", f"this server has no dataset {request.dataset!r}")
        confine_manifest(root / "manifest.toml", root)
        return {"manifest": None}
    if not names:
        raise RequestInvalid("files", "upload the study's files and manifest, or name a dataset")
    manifest = request.manifest or next((m for m in MANIFEST_NAMES if m in names), None)
    if manifest is None or manifest not in names:
        raise RequestInvalid("manifest", f"no manifest among the uploads ({MANIFEST_NAMES})")
    _load(staged.inputs_dir, staged.inputs_dir / manifest)
    return {"manifest": manifest}


def _load(root: Path, manifest: Path):
    """The study, confined to ``root``; its records name their files relative to it."""
    from inference.study import load_study

    try:
        study = load_study(manifest, unreadable="record", root=root)
    except InputError as exc:
        raise RequestInvalid("files", scrub(exc, root)) from exc
    for ds in study.measurements:
        ds.attrs["source_file"] = ds.attrs.get("manifest_path", "")
    for skipped in study.unreadable:
        skipped["reason"] = scrub(skipped["reason"], root)
    return study


def run(request: dict, ctx: RunContext) -> str:
    from inference.errors import FitCancelled
    from service.study_fanout import analyze

    root, manifest = study_root(request, ctx.inputs_dir, ctx.datasets_dir)
    study = _load(root, manifest)

    def progress(event: dict) -> None:
        # The analysis reports progress between records: a cancel stops it there.
        if ctx.should_stop():
            raise FitCancelled("cancelled during the analysis")
        ctx.progress(event)

    if ctx.should_stop():
        raise JobStopped("cancelled before the analysis started")
    try:  # the fits fan out over the Ray cluster (service.study_fanout)
        result = analyze(
            study,
            method=request["method"],
            seed=request["seed"],
            progress=progress,
            should_stop=ctx.should_stop,
        )
    except FitCancelled as exc:
        raise JobStopped(str(exc)) from exc
    if ctx.should_stop():
        raise JobStopped("cancelled after the analysis, before its files were written")
    result.study_path = request["dataset"] or "upload"
    result.write(ctx.out_dir)
    return "result.nc"


def check(request: dict, path: Path) -> None:
    # A study result keeps its posteriors under /arrhenius/<kind>/ (inference.analysis).
    check_netcdf(path, "arrhenius")


KIND = JobKind("analyze_study", AnalyzeStudyRequest, stage, run, check)
