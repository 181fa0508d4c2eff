"""sigmalab optimizer: search spaces, GP surrogate, acquisition, campaigns and the virtual lab.

Names are imported on first use (PEP 562): ``import optimizer.errors`` loads no scikit-learn.
"""

from __future__ import annotations

import importlib

#: Public name → module that defines it.
_EXPORTS = {
    "Campaign": "optimizer.campaign",
    "Proposals": "optimizer.campaign",
    "plot_progress": "optimizer.campaign",
    "CampaignError": "optimizer.errors",
    "CampaignFileError": "optimizer.errors",
    "ObservationError": "optimizer.errors",
    "SpaceError": "optimizer.errors",
    "Space": "optimizer.space",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'optimizer' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
