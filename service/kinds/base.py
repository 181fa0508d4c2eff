"""What a job kind is: its request model, the check of a submission, the run, the result check.

A kind is one module of :mod:`service.kinds` that defines a request model (a subclass of
:class:`JobRequestBase` with a ``kind: Literal[...]`` field) and a :class:`JobKind` named
``KIND``. Everything here is plain Python, callable without HTTP or Ray.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from service.errors import ResultMismatch

ProgressFn = Callable[[dict], None]
StopFn = Callable[[], bool]


class JobRequestBase(BaseModel):
    """Fields every job request has."""

    model_config = ConfigDict(extra="forbid")
    timeout_s: float | None = Field(
        None,
        gt=0,
        le=7 * 86400,
        description="fail the job (error_type timeout) after this many seconds of running; "
        "default: the server's default job timeout",
    )


@dataclass(frozen=True)
class Staged:
    """A submission being checked: its files sit in ``inputs_dir`` (relative ``names``)."""

    names: list[str]
    inputs_dir: Path
    datasets_dir: Path


@dataclass(frozen=True)
class RunContext:
    """Where one attempt reads and writes, and how it reports and learns it should stop."""

    inputs_dir: Path
    datasets_dir: Path
    out_dir: Path
    progress: ProgressFn
    should_stop: StopFn


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    Attributes
    ----------
    name : the ``kind`` value of its requests.
    request : its request model.
    stage : ``stage(request, staged) -> dict`` checks a submission before it is queued and
        returns the request fields it fills in (e.g. the file name); raises
        :class:`~service.errors.RequestInvalid` naming the field at fault.
    run : ``run(request, ctx) -> str`` runs one attempt into ``ctx.out_dir`` and returns the
        primary result file's name; raises InputError/ModelError (no retry) or JobStopped.
    check : ``check(request, path)`` raises :class:`~service.errors.ResultMismatch` when the
        written result does not match its request.
    """

    name: str
    request: type[JobRequestBase]
    stage: Callable[[JobRequestBase, Staged], dict]
    run: Callable[[dict, RunContext], str]
    check: Callable[[dict, Path], None]


def check_json(path: Path) -> None:
    """A JSON result must parse."""
    try:
        json.loads(path.read_text())
    except ValueError as exc:
        raise ResultMismatch(f"{path.name} is not valid JSON: {exc}") from exc


def check_netcdf(path: Path, group: str, draws: tuple[int, int] | None = None) -> None:
    """A NetCDF result must open and hold ``group``; ``draws``: (chains, draws) of its
    ``posterior`` (a truncated trace is never a success)."""
    import xarray as xr

    try:
        tree = xr.open_datatree(path)
    except Exception as exc:  # any reader failure means the file is not a result
        raise ResultMismatch(f"{path.name} cannot be opened: {exc}") from exc
    with tree:
        if group not in tree.children:
            raise ResultMismatch(f"{path.name} has no {group} group")
        if draws is not None:
            sizes = tree["posterior"].sizes
            got = (sizes.get("chain", 0), sizes.get("draw", 0))
            if got != draws:
                raise ResultMismatch(
                    f"result has {got[0]} chain(s) × {got[1]} draws; "
                    f"the request asked for {draws[0]} × {draws[1]}"
                )


def dumps(value) -> str:
    """Strict JSON (numpy scalars → numbers, NaN → null) that any client can parse."""
    from inference.summary import json_safe

    return json.dumps(json_safe(value), indent=1, allow_nan=False)
