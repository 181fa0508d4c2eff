"""``fit_spectrum``: fit one uploaded impedance spectrum with an equivalent circuit.

Result: ``result.nc`` (the posterior draws, ArviZ groups) and ``summary.json`` (parameters,
diagnostics, warnings). The posterior must have exactly the requested chains × draws.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from inference.errors import InputError
from service.confine import scrub
from service.errors import JobStopped, RequestInvalid
from service.kinds.base import (
    JobKind,
    JobRequestBase,
    RunContext,
    Staged,
    check_netcdf,
    dumps,
)


class FitSpectrumRequest(JobRequestBase):
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


def stage(request: FitSpectrumRequest, staged: Staged) -> dict:
    from inference.circuits import parse_circuit
    from inference.readers import read_spectrum

    names = staged.names
    if len(names) != 1:
        raise RequestInvalid("files", f"a fit_spectrum job takes one file, got {len(names)}")
    name = request.file or names[0]
    if name != names[0]:
        raise RequestInvalid("file", f"{name!r} was not uploaded (uploaded: {names[0]!r})")
    try:
        parse_circuit(request.circuit)
    except InputError as exc:
        raise RequestInvalid("circuit", scrub(exc)) from exc
    try:
        read_spectrum(staged.inputs_dir / name)
    except InputError as exc:
        raise RequestInvalid("files[0]", scrub(exc, staged.inputs_dir)) from exc
    return {"file": name}


def run(request: dict, ctx: RunContext) -> str:
    from inference.fit import FitCancelled, fit_spectrum
    from inference.readers import read_spectrum

    spectrum = read_spectrum(ctx.inputs_dir / request["file"])
    # The result names the file as uploaded, never the server's folder.
    spectrum.attrs["source_file"] = request["file"]
    ctx.progress({"phase": "compiling"})
    try:
        fit = fit_spectrum(
            spectrum,
            request["circuit"],
            method=request["method"],
            draws=request["draws"],
            chains=request["chains"],
            tune=request["tune"],
            seed=request["seed"],
            progress=ctx.progress,
            should_stop=ctx.should_stop,
        )
    except FitCancelled as exc:
        raise JobStopped(str(exc)) from exc
    fit.to_netcdf(ctx.out_dir / "result.nc")
    summary = {
        "kind": "fit_spectrum",
        "circuit": fit.circuit,
        "method": fit.method,
        "diagnostics": fit.diagnostics,
        # Diagnostics warnings are reported, never a reason to fail the job.
        "warnings": fit.warnings,
        "parameters": fit.summary().to_dict(orient="index"),
    }
    (ctx.out_dir / "summary.json").write_text(dumps(summary))
    return "result.nc"


def check(request: dict, path) -> None:
    check_netcdf(path, "posterior", (request["chains"], request["draws"]))


KIND = JobKind("fit_spectrum", FitSpectrumRequest, stage, run, check)
