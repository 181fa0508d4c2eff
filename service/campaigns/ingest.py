"""Measurement batches: a study folder checked, linked to proposals and stored for a round.

Linking measurements to proposals: in a batch's manifest, a recipe named like a pending
proposal (``[recipes."r002-1"]``, or a recipe with ``proposal = "r002-1"``) measures that
proposal; any other recipe must carry every parameter of the search space and is told to the
campaign as an outside observation. A batch is stored under
``<data_dir>/campaigns/<id>/measurements/<batch>/`` as a study folder.
"""

from __future__ import annotations

import re
import shutil
import time
import tomllib
from pathlib import Path

import sqlalchemy as sa

from inference.errors import InputError
from service.campaigns.store import CampaignStore, campaign_measurements, campaign_proposals
from service.confine import scrub
from service.errors import CampaignConflict, CampaignInvalid

SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def read_manifest(folder: Path) -> dict:
    """The parsed ``manifest.toml`` of a batch folder (already checked by load_study)."""
    return tomllib.loads((folder / "manifest.toml").read_text())


def link_recipes(
    manifest: dict, campaign: dict, proposals: dict[str, dict]
) -> dict[str, str | None]:
    """Recipe name → the proposal it measures (None: an outside observation).

    Raises
    ------
    CampaignInvalid
        A recipe neither names a proposal of the campaign nor carries every parameter of the
        search space.
    CampaignConflict
        A proposal that is not pending any more (measured in an earlier batch).
    """
    from optimizer.space import Space

    space = Space.from_spec(campaign["state"]["space"])
    links: dict[str, str | None] = {}
    for name, recipe in (manifest.get("recipes") or {}).items():
        pid = recipe.get("proposal", name) if isinstance(recipe, dict) else name
        if pid in proposals:
            if proposals[pid]["status"] != "pending":
                raise CampaignConflict(
                    f"recipe {name!r}: proposal {pid} was already measured "
                    f"(batch {proposals[pid]['batch']}); upload new cells as a new recipe"
                )
            links[name] = pid
            continue
        try:
            space.validate({k: recipe.get(k) for k in space.by_name}, f"recipes.{name}")
        except InputError as exc:
            raise CampaignInvalid(
                f"manifest.recipes.{name}",
                f"names no proposal of this campaign and is no full parameter set: {exc}",
            ) from None
        links[name] = None
    if not links:
        raise CampaignInvalid("manifest.recipes", "the manifest lists no recipe")
    return links


def check_batch_name(batch: str) -> str:
    if not SAFE_NAME.match(batch) or set(batch) == {"."}:
        raise CampaignInvalid("batch", "letters, digits, '_', '.', '-' only (≤ 100 characters)")
    return batch


def ingest_batch(
    cstore: CampaignStore, campaign: dict, staging: Path, batch: str, source: str
) -> dict:
    """Check a study folder and store it as a measurement batch of ``campaign``.

    ``staging`` (a folder with ``manifest.toml`` and the files) is moved into
    ``campaigns/<id>/measurements/<batch>/``; the proposals it measures become ``measured``.

    Returns
    -------
    The batch row (an existing one when ``batch`` was stored before: a replay).

    Raises
    ------
    CampaignInvalid, CampaignConflict
        Bad files or manifest (naming the file), a file outside the folder, unknown recipes,
        proposals measured twice.
    """
    from inference.study import load_study

    check_batch_name(batch)
    existing = [m for m in cstore.measurements(campaign["id"]) if m["batch"] == batch]
    if existing:
        return existing[0]
    manifest_path = staging / "manifest.toml"
    if not manifest_path.is_file():
        raise CampaignInvalid("files", "the upload holds no manifest.toml")
    try:
        load_study(manifest_path, root=staging)
    except InputError as exc:
        raise CampaignInvalid("files", scrub(exc, staging)) from None
    manifest = read_manifest(staging)
    proposals = {p["id"]: p for p in cstore.proposals(campaign["id"])}
    links = link_recipes(manifest, campaign, proposals)
    n_files = len(manifest.get("files") or [])
    target = cstore.dir(campaign["id"]) / "measurements" / batch
    target.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    row = {
        "campaign_id": campaign["id"],
        "batch": batch,
        "source": source,
        "recipes": links,
        "n_files": n_files,
        "received_at": now,
        "run_id": None,
    }
    try:
        with cstore.engine.begin() as c:
            c.execute(campaign_measurements.insert().values(**row))
            for pid in filter(None, links.values()):
                moved = c.execute(
                    campaign_proposals.update()
                    .where(
                        campaign_proposals.c.campaign_id == campaign["id"],
                        campaign_proposals.c.id == pid,
                        campaign_proposals.c.status == "pending",
                    )
                    .values(status="measured", batch=batch, measured_at=now)
                ).rowcount
                if moved != 1:
                    raise CampaignConflict(f"proposal {pid} was measured meanwhile")
            if target.exists():  # left by a crash between the move and the commit
                shutil.rmtree(target)
            shutil.move(staging, target)
    except sa.exc.IntegrityError:
        shutil.rmtree(staging, ignore_errors=True)
    return [m for m in cstore.measurements(campaign["id"]) if m["batch"] == batch][0]


def new_arrivals(cstore: CampaignStore, campaign_id: str) -> list[float]:
    """Arrival time of every measured recipe not yet taken by a round."""
    return [
        m["received_at"]
        for m in cstore.measurements(campaign_id, unclaimed=True)
        for _ in m["recipes"]
    ]
