"""sigmalab optimizer: search spaces, GP surrogate, acquisition, campaigns and the virtual lab.

Names are imported on first use (PEP 562): ``import optimizer.errors`` loads no scikit-learn.
"""

from __future__ import annotations

from inference import lazy

#: Public name → module that defines it.
_EXPORTS = {
    "Campaign": "optimizer.campaign",
    "Proposals": "optimizer.campaign",
    "CampaignError": "optimizer.errors",
    "CampaignFileError": "optimizer.errors",
    "ObservationError": "optimizer.errors",
    "observations_from_study": "optimizer.observations",
    "SpaceError": "optimizer.errors",
    "plot_progress": "optimizer.plots",
    "Space": "optimizer.space",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy.exports(__name__, _EXPORTS)
