"""The virtual lab: a physics simulator that stands in for the experiments.

Recipe → made cell → measurement files, following ``shared/reference/physics.md``:

- :mod:`~optimizer.virtual_lab.materials` — recipe → true σ_ion(T), σ_el(T), Ea, failures;
- :mod:`~optimizer.virtual_lab.cells` — cells with geometry and cell-to-cell spread;
- :mod:`~optimizer.virtual_lab.measure` — EIS of ion cells, DC sweeps of electron cells;
- :mod:`~optimizer.virtual_lab.writers` — EC-Lab ``.mpt`` and CSV files;
- :mod:`~optimizer.virtual_lab.study` — a whole study folder with manifest and truth;
- :mod:`~optimizer.virtual_lab.presets` — named studies (``emley2023``);
- :mod:`~optimizer.virtual_lab.landscape` — cheap true objectives for optimizer benchmarks.
"""

from optimizer.virtual_lab.landscape import is_feasible, true_log10_sigma, true_rate_retention
from optimizer.virtual_lab.materials import Recipe, material_properties, parse_recipe
from optimizer.virtual_lab.presets import PRESETS, simulate_preset
from optimizer.virtual_lab.study import (
    LabSettings,
    SimulatedStudy,
    simulate_recipes_file,
    simulate_study,
)

__all__ = [
    "PRESETS",
    "LabSettings",
    "Recipe",
    "SimulatedStudy",
    "is_feasible",
    "material_properties",
    "parse_recipe",
    "simulate_preset",
    "simulate_recipes_file",
    "simulate_study",
    "true_log10_sigma",
    "true_rate_retention",
]
