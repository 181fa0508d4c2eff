"""Lab connectors: what turns a campaign's pending proposals into measurement batches.

A connector is named in the campaign spec (``"connector": {...}``) and polled by the
scheduler on every tick; whatever it delivers goes through
:func:`service.campaigns.ingest.ingest_batch`, the same checks an upload gets.

``{"kind": "virtual_lab", "delay_s": 5, "lab": {...}, "recipe": {...}, "seed": 0}``
    The virtual lab (:mod:`optimizer.virtual_lab`) "makes" each round's proposals ``delay_s``
    seconds after they were proposed and delivers their files as one batch named
    ``virtual-lab-r<round>``. ``lab``: :class:`~optimizer.virtual_lab.LabSettings` fields
    (temperatures, cells per recipe, noise…); ``recipe``: recipe fields that are not search
    parameters (e.g. ``{"se_wt_pct": 27}``); ``binder_for_process`` (default
    ``{"dry": "PTFE", "wet": "NBR"}``) supplies ``binder`` when the space has no such
    parameter. The batch name is derived from the round, so a restarted server never makes
    one round's cells twice.
``{"kind": "folder_watch", "inbox": "lab-a"}``
    An inbox folder ``<data_dir>/inboxes/lab-a/`` that a potentiostat PC writes into (a
    network share mounted there). Each sub-folder is one batch: a study folder
    (``manifest.toml`` + files) that is taken once a file named ``READY`` appears in it (write
    it last, so half-copied folders are never read). The folder's name is the batch name; a
    rejected folder gets a ``REJECTED.txt`` with the one-line reason and is not retried.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from inference.errors import InputError
from inference.summary import write_atomic
from service.campaigns.ingest import SAFE_NAME, ingest_batch
from service.campaigns.store import CampaignStore
from service.errors import CampaignConflict, CampaignInvalid, RequestInvalid

KINDS = ("virtual_lab", "folder_watch")
DEFAULT_BINDER_FOR_PROCESS = {"dry": "PTFE", "wet": "NBR"}
READY, REJECTED = "READY", "REJECTED.txt"


def _number(spec: dict, key: str, default: float, low: float, high: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise CampaignInvalid(
            f"connector.{key}", f"expected a number in [{low}, {high}], got {value!r}"
        )
    return float(value)


def parse_connector(spec, data_dir: Path) -> dict:
    """Check a connector spec; returns it with defaults filled in.

    Raises
    ------
    CampaignInvalid
        ``connector.<key>``: unknown kind or key, a bad number, bad lab settings, a bad inbox name.
    """
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise CampaignInvalid("connector.kind", f"expected one of {', '.join(KINDS)}")
    kind = spec["kind"]
    allowed = {
        "virtual_lab": {"kind", "delay_s", "lab", "recipe", "binder_for_process", "seed"},
        "folder_watch": {"kind", "inbox"},
    }[kind]
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise CampaignInvalid(f"connector.{unknown[0]}", f"unknown key; expected {sorted(allowed)}")
    if kind == "folder_watch":
        inbox = spec.get("inbox")
        if not isinstance(inbox, str) or not SAFE_NAME.match(inbox) or set(inbox) == {"."}:
            raise CampaignInvalid(
                "connector.inbox", "a folder name (letters, digits, '_', '.', '-') under inboxes/"
            )
        (Path(data_dir) / "inboxes" / inbox).mkdir(parents=True, exist_ok=True)
        return {"kind": kind, "inbox": inbox}
    from optimizer.virtual_lab import LabSettings

    lab = spec.get("lab", {})
    if not isinstance(lab, dict):
        raise CampaignInvalid("connector.lab", "expected a table of lab settings")
    try:
        LabSettings.from_dict(lab)
    except InputError as exc:
        raise CampaignInvalid("connector.lab", str(exc)) from None
    for key in ("recipe", "binder_for_process"):
        if not isinstance(spec.get(key, {}), dict):
            raise CampaignInvalid(f"connector.{key}", "expected a table")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CampaignInvalid("connector.seed", f"expected an integer ≥ 0, got {seed!r}")
    return {
        "kind": kind,
        "delay_s": _number(spec, "delay_s", 5.0, 0.0, 7 * 86400),
        "lab": lab,
        "recipe": spec.get("recipe", {}),
        "binder_for_process": spec.get("binder_for_process", DEFAULT_BINDER_FOR_PROCESS),
        "seed": seed,
    }


def lab_recipe(params: dict, config: dict) -> dict:
    """The virtual lab's recipe for proposal ``params``: the connector's fixed recipe fields,
    the parameters, and the binder of the process when the space does not choose it."""
    recipe = {**config.get("recipe", {}), **params}
    if "binder" not in recipe and "process" in recipe:
        binder = config.get("binder_for_process", DEFAULT_BINDER_FOR_PROCESS)
        recipe["binder"] = binder.get(recipe["process"], "none")
    return recipe


def deliver(cstore: CampaignStore, campaign: dict, data_dir: Path, now: float) -> list[dict]:
    """Let the campaign's connector deliver what it has; returns the new batch rows."""
    config = campaign["spec"].get("connector")
    if not config:
        return []
    if config["kind"] == "virtual_lab":
        return _virtual_lab(cstore, campaign, config, now)
    return _folder_watch(cstore, campaign, Path(data_dir) / "inboxes" / config["inbox"])


def _staging(cstore: CampaignStore, campaign_id: str) -> Path:
    folder = cstore.dir(campaign_id) / "staging" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    return folder


def _virtual_lab(cstore: CampaignStore, campaign: dict, config: dict, now: float) -> list[dict]:
    from optimizer.virtual_lab import LabSettings, simulate_study

    due: dict[int, dict[str, dict]] = {}
    for p in cstore.proposals(campaign["id"], status="pending"):
        if p["created_at"] + config["delay_s"] <= now:
            due.setdefault(p["round"], {})[p["id"]] = p["params"]
    delivered = []
    for round_, recipes in sorted(due.items()):
        batch = f"virtual-lab-r{round_:03d}"
        if cstore.batch_exists(campaign["id"], batch):
            continue
        staging = _staging(cstore, campaign["id"])
        try:
            simulate_study(
                {pid: lab_recipe(params, config) for pid, params in recipes.items()},
                staging / "study",
                seed=config["seed"] * 100_003 + round_,
                settings=LabSettings.from_dict(config["lab"]),
                name=f"{campaign['spec']['name']} {batch}",
            )
            delivered.append(
                ingest_batch(cstore, campaign, staging / "study", batch, "virtual_lab")
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return delivered


def _folder_watch(cstore: CampaignStore, campaign: dict, inbox: Path) -> list[dict]:
    delivered = []
    if not inbox.is_dir():
        return delivered
    for folder in sorted(inbox.iterdir()):
        if (
            not folder.is_dir()
            or not (folder / READY).is_file()
            or (folder / REJECTED).exists()
            or not SAFE_NAME.match(folder.name)
            or cstore.batch_exists(campaign["id"], folder.name)
        ):
            continue
        staging = _staging(cstore, campaign["id"])
        study = staging / "study"
        try:
            # Links are copied as links: the manifest check refuses those leading out.
            shutil.copytree(folder, study, symlinks=True, ignore=shutil.ignore_patterns(READY))
            delivered.append(ingest_batch(cstore, campaign, study, folder.name, "folder_watch"))
        except (RequestInvalid, CampaignConflict) as exc:
            # Whole or absent: the lab PC never reads it half-written.
            write_atomic(folder / REJECTED, f"{exc}\n".encode())
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return delivered
