"""Exception types of the optimizer package.

The hierarchy, so a user knows what to catch::

    inference.errors.InputError       a user's input is wrong
    ├── SpaceError                    a search-space spec is invalid: names the parameter and field
    ├── ObservationError              a tell/params entry is invalid: names the entry and field
    └── CampaignFileError             a saved campaign cannot be read: names the file
    inference.errors.SigmalabError
    └── CampaignError                 an operation does not fit the campaign's set-up

Each message is one line that names what is at fault and what was expected.
"""

from __future__ import annotations

from inference.errors import InputError, SigmalabError


class SpaceError(InputError):
    """A search-space spec is invalid.

    Parameters
    ----------
    field : where in the spec, e.g. ``"binder_wt_pct.high"`` or ``"constraints[0]"``.
    problem : what is wrong and what was expected.
    what : the spec at fault: the search space, or the campaign's own settings.
    """

    def __init__(self, field: str, problem: str, what: str = "search space"):
        self.field = field
        self.problem = problem
        super().__init__(f"{what}, {field}: {problem}")


class ObservationError(InputError):
    """A proposal, observation or parameter set does not fit the campaign.

    Parameters
    ----------
    where : the entry at fault, e.g. ``"tell[2]"`` or ``"tell[0].params.press_MPa"``.
    problem : what is wrong and what was expected.
    """

    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class CampaignFileError(InputError):
    """A saved campaign file cannot be read (not JSON, wrong format or version, bad content)."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CampaignError(SigmalabError):
    """A campaign operation that does not apply to this campaign's set-up."""
