"""Cheap, deterministic objective functions over recipes, for optimizer benchmarks.

The same physics as the simulated cells (:mod:`optimizer.virtual_lab.materials`) without
cells, files or noise: what a perfect lab with infinitely many cells would measure.
Recipe dicts use the keys of :func:`~optimizer.virtual_lab.materials.parse_recipe`
(``binder``, ``binder_wt_pct``, ``process``, ``press_MPa``, …).
"""

from __future__ import annotations

import math

from inference.rate_capability import capacity_retention
from optimizer.virtual_lab.materials import (
    ZERO_C_K,
    fabrication_failure,
    material_properties,
    parse_recipe,
)


def is_feasible(recipe_params: dict) -> tuple[bool, str]:
    """Whether the recipe can be made into a film, and why not (``""`` when it can).

    Raises
    ------
    InputError
        The recipe dict itself is invalid (unknown binder, wt % out of range…).
    """
    reason = fabrication_failure(parse_recipe(recipe_params))
    return reason is None, reason or ""


def true_log10_sigma(recipe_params: dict, temperature_C: float = 30.0) -> dict[str, float]:
    """True log10 conductivities (S/cm) at ``temperature_C``: ``{"sigma_ion", "sigma_el"}``.

    Infeasible recipes (see :func:`is_feasible`) give NaN for both: no film, no measurement.
    """
    recipe = parse_recipe(recipe_params)
    if fabrication_failure(recipe) is not None:
        return {"sigma_ion": math.nan, "sigma_el": math.nan}
    material = material_properties(recipe)
    temperature_K = temperature_C + ZERO_C_K
    return {
        "sigma_ion": math.log10(material.sigma_ion(temperature_K)),
        "sigma_el": math.log10(material.sigma_el(temperature_K)),
    }


def true_rate_retention(
    recipe_params: dict, c_rate_per_h: float = 0.5, temperature_C: float = 60.0
) -> float:
    """True capacity retention vs C/10 (physics.md §2.7) at ``c_rate_per_h``; NaN if infeasible."""
    recipe = parse_recipe(recipe_params)
    if fabrication_failure(recipe) is not None:
        return math.nan
    sigma = material_properties(recipe).sigma_ion(temperature_C + ZERO_C_K)
    return float(capacity_retention(sigma, c_rate_per_h))
