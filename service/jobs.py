"""Jobs of every kind: the request union, the check before queueing, the run, the result check.

Each kind lives in its own module of :mod:`service.kinds` (see the table there); this module
dispatches on the registry, never on a kind's name. Everything here is plain Python,
callable without HTTP or Ray: :func:`stage_inputs` checks a submission before it is queued
(user mistakes raise :class:`~service.errors.RequestInvalid`, which names the field),
:func:`execute` runs a job into a folder, :func:`check_result` compares the written result
with the request (a result whose chain or draw count differs from the request is never a
success).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from pathlib import Path
from typing import Annotated, Union

from pydantic import BaseModel, Field

from service.errors import RequestInvalid
from service.kinds import KINDS
from service.kinds.base import ProgressFn, RunContext, Staged, StopFn
from service.uploads import MAX_FILES, Upload

__all__ = [
    "KINDS",
    "MAX_FILES",
    "JobRequest",
    "check_result",
    "execute",
    "preload",
    "stage_inputs",
]

INPUTS_JSON = "request.json"

#: The body of ``POST /v1/jobs``: one request model per kind, told apart by ``kind``.
JobRequest = Annotated[
    Union[tuple(kind.request for kind in KINDS.values())],  # noqa: UP007 (built at run time)
    Field(discriminator="kind"),
]


def stage_inputs(request: BaseModel, upload: Upload, datasets_dir: Path) -> dict:
    """Check a submission whose files are in ``upload.folder``, before it is queued.

    Returns
    -------
    The request as stored with the job (defaults filled in, a seed drawn, the kind's own
    fields set, e.g. the spectrum's file name).

    Raises
    ------
    RequestInvalid
        Any user mistake, naming the field (``circuit``, ``files[0]``, ``dataset``, …).
    """
    if len(upload.files) > MAX_FILES:
        raise RequestInvalid("files", f"{len(upload.files)} files; at most {MAX_FILES} per job")
    kind = KINDS[request.kind]
    stored = request.model_dump(mode="json")
    if "seed" in stored and stored["seed"] is None:
        # A seed drawn now and stored makes every attempt (and a rerun) give the same draws.
        stored["seed"] = secrets.randbelow(2**31)
    stored |= kind.stage(request, Staged(upload.names, upload.folder, datasets_dir))
    (upload.folder / INPUTS_JSON).write_text(json.dumps(stored, indent=1))
    return stored


def preload() -> None:
    """Import what checking a submission needs (readers, circuits, studies, campaigns) now, at
    server start, rather than in the first request; the packages import lazily otherwise."""
    import importlib

    for module in (
        "inference.readers",
        "inference.circuits",
        "inference.study",
        "optimizer.campaign",
    ):
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def execute(
    kind: str,
    request: dict,
    inputs_dir: Path,
    datasets_dir: Path,
    out_dir: Path,
    *,
    progress: ProgressFn,
    should_stop: StopFn,
) -> str:
    """Run one job, writing its files into ``out_dir``; returns the primary file's name.

    Raises
    ------
    InputError, ModelError
        From inference/optimizer: the job fails without a retry.
    JobStopped
        ``should_stop()`` turned true and the job stopped early.
    """
    ctx = RunContext(inputs_dir, datasets_dir, out_dir, progress, should_stop)
    return KINDS[kind].run(request, ctx)


def check_result(kind: str, request: dict, path: Path) -> None:
    """Check a result file against its request before the job may succeed.

    Raises
    ------
    ResultMismatch
        The file does not open, lacks its group, or its chain/draw counts differ.
    """
    KINDS[kind].check(request, path)
