"""``propose``: ask a campaign (its saved JSON state) for its next ``q`` experiments.

Result: ``proposals.json`` with the proposals, the acquisition's figures and the campaign's
new state (the proposals pending).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import Field, model_validator

from inference.errors import InputError
from service.confine import scrub
from service.errors import JobStopped, RequestInvalid
from service.kinds.base import JobKind, JobRequestBase, RunContext, Staged, check_json, dumps

MAX_STATE_BYTES = 16 * 1024 * 1024


class ProposeRequest(JobRequestBase):
    """Ask a campaign for its next ``q`` experiments."""

    kind: Literal["propose"]
    campaign: dict[str, Any] = Field(description="the campaign's saved JSON state")
    q: int = Field(1, ge=1, le=64, description="number of experiments to propose")

    @model_validator(mode="after")
    def _small_state(self):
        if len(json.dumps(self.campaign, default=str)) > MAX_STATE_BYTES:
            raise ValueError("campaign state larger than 16 MB")
        return self


def stage(request: ProposeRequest, staged: Staged) -> dict:
    from optimizer.campaign import Campaign

    if staged.names:
        raise RequestInvalid("files", "a propose job takes no files")
    try:
        Campaign.from_dict(request.campaign)
    except InputError as exc:
        raise RequestInvalid("campaign", scrub(exc)) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RequestInvalid("campaign", scrub(f"not a campaign state: {exc}")) from exc
    (staged.inputs_dir / "campaign.json").write_text(json.dumps(request.campaign))
    return {}


def run(request: dict, ctx: RunContext) -> str:
    from optimizer.campaign import Campaign

    ctx.progress({"phase": "proposing"})
    campaign = Campaign.load(ctx.inputs_dir / "campaign.json")
    if ctx.should_stop():
        raise JobStopped("cancelled before the proposal")
    batch = campaign.ask(request["q"])
    campaign.save(ctx.out_dir / "campaign.json")
    proposals = {
        "round": batch.round,
        "strategy": batch.strategy,
        "expected_improvement": batch.expected_improvement,
        "proposals": list(batch),
        "campaign": campaign.to_dict(),
    }
    (ctx.out_dir / "proposals.json").write_text(dumps(proposals))
    return "proposals.json"


def check(request: dict, path) -> None:
    check_json(path)


KIND = JobKind("propose", ProposeRequest, stage, run, check)
