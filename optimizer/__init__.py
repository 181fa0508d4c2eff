"""sigmalab optimizer: search spaces, GP surrogate, acquisition, campaigns and the virtual lab."""

from optimizer.campaign import Campaign, Proposals
from optimizer.errors import CampaignError, CampaignFileError, ObservationError, SpaceError
from optimizer.observations import observations_from_study
from optimizer.plots import plot_progress
from optimizer.space import Space

__all__ = [
    "Campaign",
    "CampaignError",
    "CampaignFileError",
    "ObservationError",
    "Proposals",
    "Space",
    "SpaceError",
    "observations_from_study",
    "plot_progress",
]
