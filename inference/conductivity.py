"""Conductivity from a resistance posterior: σ = L / (R·A), geometry uncertainty propagated.

Which resistance is used depends on the cell (physics.md §1, DESIGN.md § Inference):

``ion`` (Li|SE|composite|SE|Li, electron-blocking)
    the composite arc: by default the last R‖CPE / R‖C / TLM / TLMs arc of the circuit, i.e.
    the lowest-frequency one when arcs are written from high to low frequency; for a
    transmission line its ``TLM<n>_0`` / ``TLMs<n>_0``, the ionic rail contacted at both ends.
    Override with ``resistance="R3"``.
``electron`` (Ti|composite|Ti, ion-blocking)
    the DC resistance ``R_ohm`` of :func:`inference.dc.fit_dc`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from inference.errors import InputError

CELL_TYPES = ("ion", "electron")


def composite_resistance_name(
    circuit, cell_type: str = "ion", resistance: str | None = None
) -> str:
    """Name of the circuit parameter that is the composite's resistance.

    Parameters
    ----------
    circuit : parsed circuit.
    cell_type : ``"ion"``; an ``"electron"`` cell has no EIS composite arc (use the DC fit).
    resistance : explicit parameter name, checked against the circuit.
    """
    if resistance is not None:
        if resistance not in circuit.param_names:
            raise InputError(
                f"resistance {resistance!r} is not a parameter of {circuit.string}; "
                f"expected one of {', '.join(circuit.param_names)}"
            )
        return resistance
    if cell_type not in CELL_TYPES:
        raise InputError(f"cell_type {cell_type!r}; expected one of {', '.join(CELL_TYPES)}")
    if cell_type == "electron":
        raise InputError(
            "an electron cell's conductivity comes from its DC fit (inference.fit_dc); "
            "pass resistance='R…' to use an EIS resistance anyway"
        )
    if not circuit.arcs:
        raise InputError(
            f"circuit {circuit.string} has no R‖CPE, R‖C or TLM/TLMs arc; pass resistance='R…'"
        )
    return circuit.arcs[-1].r


def conductivity_draws(
    resistance_ohm_draws,
    thickness_cm: float,
    thickness_sd_cm: float = 0.0,
    area_cm2: float = 1.0,
    area_sd_cm2: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """σ = L / (R·A) per draw, in S/cm.

    Parameters
    ----------
    resistance_ohm_draws : posterior draws of the resistance (Ω), any shape.
    thickness_cm, thickness_sd_cm : layer thickness L and its sd (cm).
    area_cm2, area_sd_cm2 : electrode area A and its sd (cm²).
    seed : seed of the geometry draws.

    Geometry is drawn per resistance draw as independent Normals truncated to > 0 (rejection),
    so with zero sd the result is exactly ``L / (R·A)``.
    """
    r = np.asarray(resistance_ohm_draws, dtype=float)
    for name, value, sd in (
        ("thickness_cm", thickness_cm, thickness_sd_cm),
        ("area_cm2", area_cm2, area_sd_cm2),
    ):
        if not (np.isfinite(value) and value > 0 and np.isfinite(sd) and sd >= 0):
            raise InputError(f"{name}={value} (sd {sd}): expected a positive value, sd >= 0")
    if np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise InputError("resistance draws must be finite and > 0 Ω")
    rng = np.random.default_rng(seed)
    length = _positive_normal(rng, thickness_cm, thickness_sd_cm, r.shape)
    area = _positive_normal(rng, area_cm2, area_sd_cm2, r.shape)
    return length / (r * area)


def conductivity_dataarray(
    resistance: xr.DataArray,
    attrs,
    *,
    thickness_cm: float | None = None,
    area_cm2: float | None = None,
    thickness_sd_cm: float | None = None,
    area_sd_cm2: float | None = None,
    seed: int = 0,
) -> xr.DataArray:
    """σ draws (S/cm) on the dims of ``resistance`` (posterior draws in Ω, named after the circuit
    parameter); geometry from the arguments, else from ``attrs`` (the measured data's)."""
    given = {
        "thickness_cm": thickness_cm,
        "area_cm2": area_cm2,
        "thickness_sd_cm": thickness_sd_cm,
        "area_sd_cm2": area_sd_cm2,
    }
    defaults = {"thickness_sd_cm": 0.0, "area_sd_cm2": 0.0}
    geo = {k: v if v is not None else attrs.get(k, defaults.get(k)) for k, v in given.items()}
    missing = [k for k in ("thickness_cm", "area_cm2") if geo[k] is None]
    if missing:
        raise InputError(f"conductivity needs {' and '.join(missing)} (argument or data attrs)")
    geo = {k: float(v) for k, v in geo.items()}
    return xr.DataArray(
        conductivity_draws(resistance.values, seed=seed, **geo),
        dims=resistance.dims,
        coords=resistance.coords,
        name="sigma_S_per_cm",
        attrs={"units": "S/cm", "resistance": resistance.name, **geo},
    )


def _positive_normal(rng, mean: float, sd: float, shape) -> np.ndarray:
    """Normal(mean, sd) draws truncated to > 0 by redrawing the non-positive ones."""
    if sd == 0:
        return np.full(shape, float(mean))
    out = rng.normal(mean, sd, size=shape)
    bad = out <= 0
    while np.any(bad):
        out[bad] = rng.normal(mean, sd, size=int(bad.sum()))
        bad = out <= 0
    return out
