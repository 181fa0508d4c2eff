"""Job kinds: the request each kind takes, how it is validated, run and checked.

=================  =========================================  ===============================
kind               inputs                                     result (``GET …/result``)
=================  =========================================  ===============================
``fit_spectrum``   one uploaded instrument file + a circuit   ``result.nc`` (posterior draws)
``analyze_study``  uploaded study files + manifest, or the    ``result.nc``; ``summary.json``
                   name of a dataset in ``<data_dir>/datasets``
``propose``        a campaign's JSON state + ``q``            ``proposals.json``
=================  =========================================  ===============================

Everything here is plain Python, callable without HTTP or Ray: :func:`stage_inputs` checks a
submission before it is queued (user mistakes raise :class:`RequestInvalid`, which names the
field), :func:`execute` runs a job into a folder, :func:`check_result` compares the written
result with the request (a result whose chain or draw count differs from the request is
never a success).
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inference.errors import InputError

#: One path segment of an uploaded file's name, and a dataset name (no separators).
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_FILES = 1000
MANIFEST_NAMES = ("manifest.toml", "manifest.csv")
INPUTS_JSON = "request.json"


class RequestInvalid(InputError):
    """A job request is invalid; ``field`` is its location (``"circuit"``, ``"files[0]"``)."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class ResultMismatch(Exception):
    """A written result does not match its request (chain or draw count, missing group)."""


class JobStopped(Exception):
    """A job kind noticed ``should_stop()`` and stopped early (cooperative cancel)."""


_common = ConfigDict(extra="forbid")


class _JobRequest(BaseModel):
    model_config = _common
    timeout_s: float | None = Field(
        None, gt=0, le=7 * 86400, description="fail the job (error_type timeout) after this"
    )


class FitSpectrumRequest(_JobRequest):
    """Fit one impedance spectrum with an equivalent circuit."""

    kind: Literal["fit_spectrum"]
    file: str | None = Field(
        None, description="name of the uploaded instrument file (default: the only upload)"
    )
    circuit: str = Field(min_length=1, max_length=500, examples=["R0-p(R1,CPE1)"])
    method: Literal["nuts", "lsq"] = "nuts"
    draws: int = Field(1000, ge=10, le=100_000, description="posterior draws per chain")
    chains: int = Field(2, ge=1, le=16)
    tune: int = Field(1000, ge=10, le=100_000)
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="default: drawn at submission")


class AnalyzeStudyRequest(_JobRequest):
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
        if value is not None and (not SAFE_NAME.match(value) or set(value) == {"."}):
            raise ValueError("a dataset name is letters, digits, '_', '.', '-' only (no paths)")
        return value


class ProposeRequest(_JobRequest):
    """Ask a campaign for its next ``q`` experiments."""

    kind: Literal["propose"]
    campaign: dict[str, Any] = Field(description="the campaign's saved JSON state")
    q: int = Field(1, ge=1, le=64, description="number of experiments to propose")

    @model_validator(mode="after")
    def _small_state(self):
        if len(json.dumps(self.campaign, default=str)) > 16 * 1024 * 1024:
            raise ValueError("campaign state larger than 16 MB")
        return self


JobRequest = Annotated[
    FitSpectrumRequest | AnalyzeStudyRequest | ProposeRequest, Field(discriminator="kind")
]
KINDS = ("fit_spectrum", "analyze_study", "propose")


def check_upload_name(name: str, index: int) -> str:
    """A relative POSIX path made of safe segments; anything else is refused."""
    parts = name.split("/")
    if (
        not name
        or len(name) > 300
        or len(parts) > 8
        or any(not SAFE_NAME.match(p) or set(p) == {"."} for p in parts)
    ):
        raise RequestInvalid(
            f"files[{index}]",
            f"file name {name!r} is not a relative path of letters, digits, '_', '.', '-'",
        )
    return name


def stage_inputs(
    request: BaseModel, files: list[tuple[str, bytes]], inputs_dir: Path, datasets_dir: Path
) -> dict:
    """Write a submission's files into ``inputs_dir`` and check them before the job is queued.

    Parameters
    ----------
    request : the parsed request (one of the ``*Request`` models).
    files : uploaded ``(name, content)`` pairs; names are relative paths.
    inputs_dir : an empty folder that becomes the job's input folder.
    datasets_dir : where named datasets live.

    Returns
    -------
    The request as stored with the job (defaults filled in, the spectrum's file name set).

    Raises
    ------
    RequestInvalid
        Any user mistake, naming the field (``circuit``, ``files[0]``, ``dataset``, …).
    """
    if len(files) > MAX_FILES:
        raise RequestInvalid("files", f"{len(files)} files; at most {MAX_FILES} per job")
    names = [check_upload_name(name, i) for i, (name, _) in enumerate(files)]
    if len(set(names)) != len(names):
        raise RequestInvalid("files", "two uploaded files have the same name")
    inputs_dir.mkdir(parents=True, exist_ok=True)
    for name, content in files:
        target = inputs_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    stored = request.model_dump(mode="json")
    if "seed" in stored and stored["seed"] is None:
        # A seed drawn now and stored makes every attempt (and a rerun) give the same draws.
        stored["seed"] = secrets.randbelow(2**31)
    if isinstance(request, FitSpectrumRequest):
        stored["file"] = _check_fit(request, names, inputs_dir)
    elif isinstance(request, AnalyzeStudyRequest):
        stored["manifest"] = _check_study(request, names, inputs_dir, datasets_dir)
    else:
        if names:
            raise RequestInvalid("files", "a propose job takes no files")
        _check_campaign(request, inputs_dir)
    (inputs_dir / INPUTS_JSON).write_text(json.dumps(stored, indent=1))
    return stored


def _check_fit(request: FitSpectrumRequest, names: list[str], inputs_dir: Path) -> str:
    from inference.circuits import parse_circuit
    from inference.readers import read_spectrum

    if len(names) != 1:
        raise RequestInvalid("files", f"a fit_spectrum job takes one file, got {len(names)}")
    name = request.file or names[0]
    if name != names[0]:
        raise RequestInvalid("file", f"{name!r} was not uploaded (uploaded: {names[0]!r})")
    try:
        parse_circuit(request.circuit)
    except InputError as exc:
        raise RequestInvalid("circuit", str(exc).splitlines()[0]) from exc
    try:
        read_spectrum(inputs_dir / name)
    except InputError as exc:
        raise RequestInvalid("files[0]", _relative_message(exc, inputs_dir)) from exc
    return name


def _check_study(
    request: AnalyzeStudyRequest, names: list[str], inputs_dir: Path, datasets_dir: Path
) -> str | None:
    if request.dataset is not None:
        if names:
            raise RequestInvalid("files", "give either a dataset name or uploaded files, not both")
        if not (datasets_dir / request.dataset).is_dir():
            raise RequestInvalid("dataset", f"this server has no dataset {request.dataset!r}")
        return None
    if not names:
        raise RequestInvalid("files", "upload the study's files and manifest, or name a dataset")
    manifest = request.manifest or next((m for m in MANIFEST_NAMES if m in names), None)
    if manifest is None or manifest not in names:
        raise RequestInvalid("manifest", f"no manifest among the uploads ({MANIFEST_NAMES})")
    load_study = _optional("inference.study", "load_study")
    if load_study is not None:
        try:
            load_study(inputs_dir / manifest)
        except InputError as exc:
            raise RequestInvalid("files", _relative_message(exc, inputs_dir)) from exc
    return manifest


def _check_campaign(request: ProposeRequest, inputs_dir: Path) -> None:
    from optimizer.campaign import Campaign

    try:
        Campaign.from_dict(request.campaign)
    except InputError as exc:
        raise RequestInvalid("campaign", str(exc).splitlines()[0]) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RequestInvalid("campaign", f"not a campaign state: {exc}") from exc
    (inputs_dir / "campaign.json").write_text(json.dumps(request.campaign))


def _relative_message(exc: Exception, inputs_dir: Path) -> str:
    """The error's message without the server's folder names (nothing of the host leaks)."""
    return str(exc).replace(f"{inputs_dir}/", "").replace(str(inputs_dir), ".").splitlines()[0]


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


def _optional(module: str, name: str):
    """``module.name`` if that part of sigmalab exists in this installation, else None."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


ProgressFn = Callable[[dict], None]
StopFn = Callable[[], bool]


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
    if kind == "fit_spectrum":
        return _run_fit(request, inputs_dir, out_dir, progress, should_stop)
    if kind == "analyze_study":
        return _run_study(request, inputs_dir, datasets_dir, out_dir, progress, should_stop)
    if kind == "propose":
        return _run_propose(request, inputs_dir, out_dir, progress, should_stop)
    raise ValueError(f"unknown job kind {kind!r}")


def _run_fit(request, inputs_dir, out_dir, progress, should_stop) -> str:
    from inference.fit import FitCancelled, fit_spectrum
    from inference.readers import read_spectrum

    spectrum = read_spectrum(inputs_dir / request["file"])
    progress({"phase": "compiling"})
    try:
        fit = fit_spectrum(
            spectrum,
            request["circuit"],
            method=request["method"],
            draws=request["draws"],
            chains=request["chains"],
            tune=request["tune"],
            seed=request["seed"],
            progress=progress,
            should_stop=should_stop,
        )
    except FitCancelled as exc:
        raise JobStopped(str(exc)) from exc
    fit.to_netcdf(out_dir / "result.nc")
    summary = {
        "kind": "fit_spectrum",
        "circuit": fit.circuit,
        "method": fit.method,
        "diagnostics": fit.diagnostics,
        # Diagnostics warnings are reported, never a reason to fail the job.
        "warnings": fit.warnings,
        "parameters": fit.summary().to_dict(orient="index"),
    }
    (out_dir / "summary.json").write_text(_dumps(summary))
    return "result.nc"


def _run_study(request, inputs_dir, datasets_dir, out_dir, progress, should_stop) -> str:
    from inference.errors import FitCancelled
    from service.study_fanout import analyze

    study = datasets_dir / request["dataset"] if request["dataset"] is not None else inputs_dir
    if request["dataset"] is None:
        study = study / request["manifest"]
    if should_stop():
        raise JobStopped("cancelled before the analysis started")
    try:  # the fits fan out over the Ray cluster (service.study_fanout)
        result = analyze(
            study,
            method=request["method"],
            seed=request["seed"],
            progress=progress,
            should_stop=should_stop,
        )
    except FitCancelled as exc:
        raise JobStopped(str(exc)) from exc
    if should_stop():
        raise JobStopped("cancelled after the analysis, before its files were written")
    result.write(out_dir)
    return "result.nc"


def _run_propose(request, inputs_dir, out_dir, progress, should_stop) -> str:
    from optimizer.campaign import Campaign

    progress({"phase": "proposing"})
    campaign = Campaign.load(inputs_dir / "campaign.json")
    if should_stop():
        raise JobStopped("cancelled before the proposal")
    batch = campaign.ask(request["q"])
    campaign.save(out_dir / "campaign.json")
    proposals = {
        "round": batch.round,
        "strategy": batch.strategy,
        "expected_improvement": batch.expected_improvement,
        "proposals": list(batch),
        "campaign": campaign.to_dict(),
    }
    (out_dir / "proposals.json").write_text(_dumps(proposals))
    return "proposals.json"


def _dumps(value) -> str:
    """Strict JSON (numpy scalars → numbers, NaN → null) that any client can parse."""
    from inference.summary import json_safe

    return json.dumps(json_safe(value), indent=1, allow_nan=False)


def expected_draws(kind: str, request: dict) -> tuple[int, int] | None:
    """(chains, draws) the posterior of a result must have, or None when unconstrained."""
    if kind == "fit_spectrum":
        return request["chains"], request["draws"]
    return None


def check_result(kind: str, request: dict, path: Path) -> None:
    """Check a result file against its request before the job may succeed.

    Raises
    ------
    ResultMismatch
        The NetCDF lacks a posterior or its chain/draw counts differ from the request.
    """
    if path.suffix != ".nc":
        try:
            json.loads(path.read_text())
        except ValueError as exc:
            raise ResultMismatch(f"{path.name} is not valid JSON: {exc}") from exc
        return
    import xarray as xr

    try:
        tree = xr.open_datatree(path)
    except Exception as exc:  # any reader failure means the file is not a result
        raise ResultMismatch(f"{path.name} cannot be opened: {exc}") from exc
    with tree:
        # A study result keeps its posteriors under /arrhenius/<kind>/ (inference.analysis).
        group = "arrhenius" if kind == "analyze_study" else "posterior"
        if group not in tree.children:
            raise ResultMismatch(f"{path.name} has no {group} group")
        want = expected_draws(kind, request)
        if want is not None:
            sizes = tree["posterior"].sizes
            got = (sizes.get("chain", 0), sizes.get("draw", 0))
            if got != want:
                raise ResultMismatch(
                    f"result has {got[0]} chain(s) × {got[1]} draws; "
                    f"the request asked for {want[0]} × {want[1]}"
                )


def remove_inputs(inputs_dir: Path) -> None:
    shutil.rmtree(inputs_dir, ignore_errors=True)
