"""sigmalab optimizer: search spaces, GP surrogate, acquisition, campaigns and the virtual lab."""

from optimizer.campaign import Campaign, Proposals, plot_progress
from optimizer.errors import CampaignError, CampaignFileError, ObservationError, SpaceError
from optimizer.space import Space

__all__ = [
    "Campaign",
    "CampaignError",
    "CampaignFileError",
    "ObservationError",
    "Proposals",
    "Space",
    "SpaceError",
    "plot_progress",
]
