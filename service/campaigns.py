"""Campaigns on the service: their tables, spec checks, measurement batches and read-outs.

A campaign is an :class:`optimizer.campaign.Campaign` (its JSON state lives in the
``campaigns`` table) plus a schedule, overlap and catch-up policies (:mod:`service.schedules`),
an optional lab connector (:mod:`service.connectors`) and the records of its rounds:

``campaign_runs``
    one row per fire, ``UNIQUE (campaign_id, fire_time)``: a fire is claimed by inserting its
    row, so two scheduler loops or a restarted server can never run one fire twice. Status
    ``queued → running → succeeded | idle | failed | cancelled``, or ``skipped`` (overlap
    ``forbid``) / ``missed`` (catch-up policy) for fires that did not run. A running round's
    ``step`` (``collect → analyze → tell → propose``) is persisted, every step change is a
    compare-and-set, so after a ``kill -9`` the round resumes at the step it had reached
    (job submissions carry idempotency keys derived from the run, so resubmitting finds the
    job submitted before the crash).
``campaign_measurements``
    uploaded (or connector-delivered) batches, stored under
    ``<data_dir>/campaigns/<id>/measurements/<batch>/`` as a study folder (``manifest.toml``
    + instrument files); ``run_id`` is set when a round takes the batch.
``campaign_proposals``
    the proposals of every round (``pending → measured → told | failed``) with the GP's
    prediction (mean, sd) at the time they were proposed.

Linking measurements to proposals: in a batch's manifest, a recipe named like a pending
proposal (``[recipes."r002-1"]``, or a recipe with ``proposal = "r002-1"``) measures that
proposal; any other recipe must carry every parameter of the search space and is told to the
campaign as an outside observation.

A round analyses only the measurements that arrived since the previous round took its own
(each proposal is told once; the GP accumulates the history), which keeps every round's
analysis the same small size.
"""

from __future__ import annotations

import re
import shutil
import time
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from inference.errors import InputError
from service import schedules
from service.auth import Principal, parse_scopes
from service.models import CampaignInfo, MeasurementInfo, ProposalInfo, RunInfo
from service.store import JobStore, _row, metadata

#: Objectives a campaign can optimise, and the summary.json conductivity kind each one reads
#: (values are told as log10 of σ in S/cm).
OBJECTIVE_KINDS = {"sigma_ion": "ionic", "sigma_el": "electronic"}
#: Temperature of the conductivities told to the campaign (°C): the analysis' summary one.
SIGMA_TEMPERATURE_C = 30.0
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")

ACTIVE, PAUSED = "active", "paused"
QUEUED, RUNNING = "queued", "running"
SUCCEEDED, IDLE, FAILED, CANCELLED = "succeeded", "idle", "failed", "cancelled"
SKIPPED, MISSED = "skipped", "missed"
UNFINISHED = (QUEUED, RUNNING)
RUN_STATUSES = (QUEUED, RUNNING, SUCCEEDED, IDLE, FAILED, CANCELLED, SKIPPED, MISSED)
STEPS = ("collect", "analyze", "tell", "propose")

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("owner", sa.String(16), sa.ForeignKey("tokens.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),  # optimizer Campaign.to_dict()
    sa.Column("version", sa.Integer, nullable=False),  # bumped by every state change (CAS)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fire_cursor", sa.Float, nullable=False),  # fires up to here were considered
    sa.Column("idempotency_key", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("owner", "idempotency_key", name="uq_campaigns_owner_idempotency_key"),
)

campaign_runs = sa.Table(
    "campaign_runs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("campaign_id", sa.String(32), nullable=False),
    sa.Column("fire_time", sa.Float, nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),  # initial, cron, measurements
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("step", sa.String(16)),
    sa.Column("analyze_job", sa.String(32)),
    sa.Column("propose_job", sa.String(32)),
    sa.Column("propose_version", sa.Integer),
    sa.Column("round", sa.Integer),  # the campaign round of the proposals it stored
    sa.Column("n_measured", sa.Integer),  # measured recipes it took
    sa.Column("n_told", sa.Integer),
    sa.Column("proposal_ids", sa.JSON),
    sa.Column("best", sa.JSON),  # campaign.best() after its tell (one objective)
    sa.Column("pareto", sa.JSON),  # campaign.pareto() after its tell
    sa.Column("message", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.UniqueConstraint("campaign_id", "fire_time", name="uq_campaign_runs_fire"),
    sa.Index("ix_campaign_runs_status", "status"),
)

campaign_measurements = sa.Table(
    "campaign_measurements",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(32), nullable=False),
    sa.Column("batch", sa.String(100), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # upload, virtual_lab, folder_watch
    sa.Column("recipes", sa.JSON, nullable=False),  # recipe name → proposal id or None
    sa.Column("n_files", sa.Integer, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(32)),
    sa.UniqueConstraint("campaign_id", "batch", name="uq_campaign_measurements_batch"),
)

campaign_proposals = sa.Table(
    "campaign_proposals",
    metadata,
    sa.Column("campaign_id", sa.String(32), primary_key=True),
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("predicted", sa.JSON),  # {metric: {"mean", "sd"}} or None (initial design)
    sa.Column("status", sa.String(16), nullable=False),  # pending, measured, told, failed
    sa.Column("batch", sa.String(100)),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("measured_at", sa.Float),
)


class CampaignInvalid(InputError):
    """A campaign request or measurement upload is invalid; ``field`` names the location."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class CampaignNotFound(Exception):
    """No campaign (or run) with this id is visible to the caller."""


class CampaignConflict(Exception):
    """The request does not fit the campaign's state (e.g. a proposal measured twice)."""


class AnalysisSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["lsq", "nuts"] = Field("lsq", description="stage-1 fits of each round")


class CampaignSpec(BaseModel):
    """``POST /v1/campaigns``: what to optimise, when rounds fire, who makes the cells."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    space: dict[str, Any] = Field(description="search-space spec (optimizer.space)")
    objectives: dict[str, str] = Field(
        description="{'sigma_ion' | 'sigma_el': 'maximize' | 'minimize'} (log10 S/cm at 30 °C)"
    )
    q: int = Field(4, ge=1, le=64, description="proposals per round")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    n_initial: int | None = Field(None, ge=1, le=1000, description="initial-design size")
    p_success_min: float | None = Field(
        None, gt=0, lt=1, description="least predicted P(success) of a proposal (default 0.7)"
    )
    failure_cost: float | None = Field(
        None, ge=0, description="price of a failed experiment, in sd of the objective (0.1)"
    )
    schedule: dict[str, Any] = Field(
        description="{'cron': '*/30 * * * * *', 'timezone': 'UTC'} or {'measurements': N}"
    )
    overlap: str = Field("forbid", description="allow, forbid or replace")
    catch_up: str = Field("once", description="skip, once or all")
    grace_s: float = Field(schedules.DEFAULT_GRACE_S, ge=0, le=86400)
    max_catch_up: int = Field(schedules.DEFAULT_MAX_CATCH_UP, ge=0, le=1000)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    connector: dict[str, Any] | None = Field(None, description="virtual_lab or folder_watch")


def check_spec(spec: CampaignSpec, data_dir: Path) -> dict:
    """Check a campaign spec beyond its types; returns the spec as stored, with the initial
    optimizer state under ``"state"``.

    Raises
    ------
    CampaignInvalid
        Naming the field: ``space.<param>.<key>``, ``objectives.<name>``, ``schedule.cron``,
        ``overlap``, ``connector.<key>``…
    """
    from optimizer.campaign import Campaign
    from service.connectors import parse_connector

    for name in spec.objectives:
        if name not in OBJECTIVE_KINDS:
            raise CampaignInvalid(
                f"objectives.{name}",
                f"unknown objective; the analysis measures {', '.join(OBJECTIVE_KINDS)}",
            )
    try:
        optimizer = Campaign(
            spec.space,
            spec.objectives,
            seed=spec.seed,
            n_initial=spec.n_initial,
            **spec.model_dump(include={"p_success_min", "failure_cost"}, exclude_none=True),
        )
    except InputError as exc:
        field = getattr(exc, "field", None)
        problem = getattr(exc, "problem", str(exc))
        if field is None or field.startswith("objectives"):
            raise CampaignInvalid(field or "space", problem) from None
        raise CampaignInvalid(f"space.{field}" if field != "spec" else "space", problem) from None
    try:
        schedule = schedules.parse_schedule(spec.schedule)
        schedules.check_policy("overlap", spec.overlap, schedules.OVERLAP_POLICIES)
        schedules.check_policy("catch_up", spec.catch_up, schedules.CATCH_UP_POLICIES)
        connector = parse_connector(spec.connector, data_dir) if spec.connector else None
    except InputError as exc:
        raise CampaignInvalid(getattr(exc, "field", "connector"), exc.problem) from None
    stored = spec.model_dump(mode="json")
    stored["schedule"] = schedule.to_dict()
    stored["connector"] = connector
    stored["name"] = spec.name or "campaign"
    stored["state"] = optimizer.to_dict()
    return stored


def principal_of(store: JobStore, token_id: str) -> Principal | None:
    """The principal a campaign's jobs run as (its creator's token); None once revoked."""
    from service.store import tokens

    with store.engine.begin() as c:
        row = _row(c.execute(tokens.select().where(tokens.c.id == token_id)).first())
    if row is None or row["revoked_at"] is not None:
        return None
    return Principal(row["id"], row["name"], parse_scopes(row["scope"]), row["max_active_jobs"])


class _Lost(Exception):
    """A compare-and-set lost its race; the transaction is rolled back."""


class CampaignStore:
    """The campaign tables; every method is one short transaction (compare-and-set where a
    concurrent scheduler could race).

    Parameters
    ----------
    store : the job store whose engine (and tokens table) the campaign tables share.
    data_dir : the server's data directory (``campaigns/<id>/…`` lives there).
    """

    def __init__(self, store: JobStore, data_dir: Path):
        self.store, self.engine = store, store.engine
        self.root = Path(data_dir) / "campaigns"

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    def dir(self, campaign_id: str) -> Path:
        return self.root / campaign_id

    # -- campaigns --------------------------------------------------------------------------

    def insert(self, row: dict) -> tuple[dict, bool]:
        """Insert a campaign and claim its initial fire; an idempotent replay returns the
        earlier campaign (``created`` False)."""
        key = row.get("idempotency_key")
        with self.engine.begin() as c:
            if key is not None:
                q = campaigns.select().where(
                    campaigns.c.owner == row["owner"], campaigns.c.idempotency_key == key
                )
                existing = _row(c.execute(q).first())
                if existing is not None:
                    return existing, False
            c.execute(campaigns.insert().values(**row))
            c.execute(
                campaign_runs.insert().values(
                    **_new_run(row["id"], row["created_at"], "initial", QUEUED)
                )
            )
        return self.get(row["id"]), True

    def get(self, campaign_id: str) -> dict | None:
        with self.engine.begin() as c:
            q = campaigns.select().where(campaigns.c.id == campaign_id)
            return _row(c.execute(q).first())

    def list(self, owner: str | None = None, status: str | None = None) -> list[dict]:
        q = campaigns.select().order_by(campaigns.c.seq)
        if owner is not None:
            q = q.where(campaigns.c.owner == owner)
        if status is not None:
            q = q.where(campaigns.c.status == status)
        with self.engine.begin() as c:
            return [_row(r) for r in c.execute(q)]

    def set_status(self, campaign_id: str, status: str, now: float) -> dict:
        """Pause or resume; resuming moves the fire cursor to ``now`` (fires due while paused
        are not caught up: pausing means "no rounds", not "later")."""
        values: dict[str, Any] = {"status": status, "updated_at": now}
        with self.engine.begin() as c:
            current = c.execute(
                sa.select(campaigns.c.status).where(campaigns.c.id == campaign_id)
            ).scalar_one()
            if current != status:
                if status == ACTIVE:
                    values["fire_cursor"] = now
                c.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(**values))
        return self.get(campaign_id)

    def advance_cursor(self, campaign_id: str, fire_time: float) -> None:
        with self.engine.begin() as c:
            c.execute(
                campaigns.update()
                .where(campaigns.c.id == campaign_id, campaigns.c.fire_cursor < fire_time)
                .values(fire_cursor=fire_time)
            )

    # -- runs -------------------------------------------------------------------------------

    def claim_fire(
        self, campaign_id: str, fire_time: float, trigger: str, status: str, message=None
    ) -> dict | None:
        """Record a fire; None when it was recorded before (by us before a restart, or by
        another scheduler loop): the unique (campaign_id, fire_time) decides."""
        row = _new_run(campaign_id, fire_time, trigger, status, message)
        try:
            with self.engine.begin() as c:
                c.execute(campaign_runs.insert().values(**row))
        except sa.exc.IntegrityError:
            return None
        return row

    def runs(self, campaign_id: str, statuses=None) -> list[dict]:
        q = (
            campaign_runs.select()
            .where(campaign_runs.c.campaign_id == campaign_id)
            .order_by(campaign_runs.c.fire_time, campaign_runs.c.seq)
        )
        if statuses:
            q = q.where(campaign_runs.c.status.in_(list(statuses)))
        with self.engine.begin() as c:
            return [_row(r) for r in c.execute(q)]

    def run(self, run_id: str) -> dict | None:
        with self.engine.begin() as c:
            return _row(
                c.execute(campaign_runs.select().where(campaign_runs.c.id == run_id)).first()
            )

    def unfinished_runs(self) -> list[dict]:
        q = (
            campaign_runs.select()
            .where(campaign_runs.c.status.in_(UNFINISHED))
            .order_by(campaign_runs.c.fire_time, campaign_runs.c.seq)
        )
        with self.engine.begin() as c:
            return [_row(r) for r in c.execute(q)]

    def update_run(self, run_id: str, expect: dict, **values) -> bool:
        """Compare-and-set: apply ``values`` if the run's columns still equal ``expect``."""
        q = campaign_runs.update().where(campaign_runs.c.id == run_id)
        for column, value in expect.items():
            col = campaign_runs.c[column]
            q = q.where(col.is_(None) if value is None else col == value)
        with self.engine.begin() as c:
            return c.execute(q.values(**values)).rowcount == 1

    # -- measurements -----------------------------------------------------------------------

    def measurements(self, campaign_id: str, run_id: str | None = ..., unclaimed=False):
        q = (
            campaign_measurements.select()
            .where(campaign_measurements.c.campaign_id == campaign_id)
            .order_by(campaign_measurements.c.seq)
        )
        if unclaimed:
            q = q.where(campaign_measurements.c.run_id.is_(None))
        elif run_id is not ...:
            q = q.where(campaign_measurements.c.run_id == run_id)
        with self.engine.begin() as c:
            return [_row(r) for r in c.execute(q)]

    def batch_exists(self, campaign_id: str, batch: str) -> bool:
        q = sa.select(sa.func.count()).where(
            campaign_measurements.c.campaign_id == campaign_id,
            campaign_measurements.c.batch == batch,
        )
        with self.engine.begin() as c:
            return c.execute(q).scalar_one() > 0

    def start_collect(self, run: dict) -> bool:
        """collect → analyze: take every unclaimed batch of the campaign, atomically."""
        with self.engine.begin() as c:
            if not _move_step(c, run, "collect", step="analyze"):
                return False
            c.execute(
                campaign_measurements.update()
                .where(
                    campaign_measurements.c.campaign_id == run["campaign_id"],
                    campaign_measurements.c.run_id.is_(None),
                )
                .values(run_id=run["id"])
            )
            return True

    def release_measurements(self, run_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(
                campaign_measurements.update()
                .where(campaign_measurements.c.run_id == run_id)
                .values(run_id=None)
            )

    # -- proposals --------------------------------------------------------------------------

    def proposals(self, campaign_id: str, status: str | None = None) -> list[dict]:
        q = (
            campaign_proposals.select()
            .where(campaign_proposals.c.campaign_id == campaign_id)
            .order_by(campaign_proposals.c.round, campaign_proposals.c.id)
        )
        if status is not None:
            q = q.where(campaign_proposals.c.status == status)
        with self.engine.begin() as c:
            return [_row(r) for r in c.execute(q)]

    # -- the tell and propose steps: campaign state and run change together -----------------

    def commit_tell(
        self, run: dict, version: int, state: dict, told: dict[str, str], values: dict
    ) -> bool:
        """tell → propose (or a final status): save the told campaign state if it is still at
        ``version``; ``told`` maps proposal id → "told" | "failed"."""
        try:
            self._tell(run, version, state, told, values)
        except _Lost:
            return False
        return True

    def _tell(self, run, version, state, told, values) -> None:
        with self.engine.begin() as c:
            moved = _move_step(c, run, "tell", **values)
            saved = _save_state(c, run["campaign_id"], version, state, time.time())
            if not (moved and saved):
                raise _Lost  # rolls back the whole transaction
            for pid, status in told.items():
                c.execute(
                    campaign_proposals.update()
                    .where(
                        campaign_proposals.c.campaign_id == run["campaign_id"],
                        campaign_proposals.c.id == pid,
                    )
                    .values(status=status)
                )

    def commit_proposals(self, run: dict, state: dict, proposals: list[dict], round_: int) -> bool:
        """propose → succeeded: save the asked campaign state (if still at the version the
        proposal was made from) and store its proposals as pending."""
        try:
            self._propose(run, state, proposals, round_)
        except _Lost:
            return False
        return True

    def _propose(self, run, state, proposals, round_) -> None:
        now = time.time()
        with self.engine.begin() as c:
            moved = _move_step(
                c,
                run,
                "propose",
                campaign_runs.c.propose_job == run["propose_job"],
                status=SUCCEEDED,
                step=None,
                round=round_,
                proposal_ids=[p["id"] for p in proposals],
                finished_at=now,
            )
            saved = _save_state(c, run["campaign_id"], run["propose_version"], state, now)
            if not (moved and saved):
                raise _Lost  # rolls back the whole transaction
            for p in proposals:
                c.execute(
                    campaign_proposals.insert().values(
                        campaign_id=run["campaign_id"],
                        id=p["id"],
                        run_id=run["id"],
                        round=round_,
                        params=p["params"],
                        predicted=p.get("predicted"),
                        status="pending",
                        created_at=now,
                    )
                )


def _new_run(campaign_id, fire_time, trigger, status, message=None) -> dict:
    now = time.time()
    final = status in (SKIPPED, MISSED)
    return {
        "id": uuid.uuid4().hex,
        "campaign_id": campaign_id,
        "fire_time": float(fire_time),
        "trigger": trigger,
        "status": status,
        "step": None,
        "message": message,
        "created_at": now,
        "finished_at": now if final else None,
    }


# -- measurement batches --------------------------------------------------------------------


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
        Bad files or manifest (naming the file), unknown recipes, proposals measured twice.
    """
    from inference.study import load_study

    if not SAFE_NAME.match(batch) or set(batch) == {"."}:
        raise CampaignInvalid("batch", "letters, digits, '_', '.', '-' only (≤ 100 characters)")
    existing = [m for m in cstore.measurements(campaign["id"]) if m["batch"] == batch]
    if existing:
        return existing[0]
    if not (staging / "manifest.toml").is_file():
        raise CampaignInvalid("files", "the upload holds no manifest.toml")
    try:
        load_study(staging / "manifest.toml")
    except InputError as exc:
        message = str(exc).replace(f"{staging}/", "").replace(str(staging), ".")
        raise CampaignInvalid("files", message.splitlines()[0]) from None
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
    return [m for m in cstore.measurements(campaign["id"]) if m["batch"] == batch][0]


def new_arrivals(cstore: CampaignStore, campaign_id: str) -> list[float]:
    """Arrival time of every measured recipe not yet taken by a round."""
    return [
        m["received_at"]
        for m in cstore.measurements(campaign_id, unclaimed=True)
        for _ in m["recipes"]
    ]


# -- what the API returns -------------------------------------------------------------------


def _ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value is not None else None


def run_info(row: dict) -> RunInfo:
    return RunInfo(
        **{k: row[k] for k in RunInfo.model_fields if k in row and not k.endswith(("_at", "time"))},
        fire_time=_ts(row["fire_time"]),
        created_at=_ts(row["created_at"]),
        started_at=_ts(row["started_at"]),
        finished_at=_ts(row["finished_at"]),
    )


def proposal_info(row: dict) -> ProposalInfo:
    fields = {k: row[k] for k in ProposalInfo.model_fields if not k.endswith("_at")}
    return ProposalInfo(
        **fields, created_at=_ts(row["created_at"]), measured_at=_ts(row["measured_at"])
    )


def measurement_info(row: dict) -> MeasurementInfo:
    fields = {k: row[k] for k in MeasurementInfo.model_fields if k != "received_at"}
    return MeasurementInfo(**fields, received_at=_ts(row["received_at"]))


class CampaignManager:
    """Campaign operations on behalf of an authenticated principal (the routes' logic).

    Visibility as for jobs: a token sees its own campaigns (``admin``: all); any other id is
    "not found".

    Parameters
    ----------
    jobs : the server's job manager (settings, job store, artifacts).
    """

    def __init__(self, jobs):
        self.jobs = jobs
        self.store = CampaignStore(jobs.store, jobs.settings.data_dir)
        self.store.create_tables()

    def create(
        self, who: Principal, spec: CampaignSpec, idempotency_key: str | None
    ) -> tuple[CampaignInfo, bool]:
        """Check and store a campaign; its initial round is queued at once.

        Raises
        ------
        CampaignInvalid
        """
        who.require("submit")
        stored = check_spec(spec, self.jobs.settings.data_dir)
        now = time.time()
        row = {
            "id": uuid.uuid4().hex,
            "owner": who.token_id,
            "name": stored["name"],
            "state": stored.pop("state"),
            "spec": stored,
            "version": 0,
            "status": ACTIVE,
            "fire_cursor": now,
            "idempotency_key": idempotency_key,
            "created_at": now,
            "updated_at": now,
        }
        row, created = self.store.insert(row)
        return self.info(row), created

    def visible(self, who: Principal, campaign_id: str) -> dict:
        who.require("read")
        row = self.store.get(campaign_id) if len(campaign_id) <= 64 else None
        if row is None or (row["owner"] != who.token_id and not who.is_admin):
            raise CampaignNotFound(campaign_id)
        return row

    def get(self, who: Principal, campaign_id: str) -> CampaignInfo:
        return self.info(self.visible(who, campaign_id))

    def list(self, who: Principal) -> list[CampaignInfo]:
        who.require("read")
        rows = self.store.list(owner=None if who.is_admin else who.token_id)
        return [self.info(r) for r in rows]

    def runs(self, who: Principal, campaign_id: str) -> list[RunInfo]:
        self.visible(who, campaign_id)
        return [run_info(r) for r in self.store.runs(campaign_id)]

    def proposals(self, who: Principal, campaign_id: str, status: str | None) -> list[ProposalInfo]:
        self.visible(who, campaign_id)
        return [proposal_info(r) for r in self.store.proposals(campaign_id, status)]

    def set_status(self, who: Principal, campaign_id: str, status: str) -> CampaignInfo:
        """Pause (no new fires; a running round finishes) or resume (fires from now on)."""
        who.require("submit")
        self.visible(who, campaign_id)
        return self.info(self.store.set_status(campaign_id, status, time.time()))

    def add_measurements(
        self, who: Principal, campaign_id: str, files: list[tuple[str, bytes]], batch: str | None
    ) -> MeasurementInfo:
        """Store uploaded study files (+ manifest.toml) as a measurement batch.

        Raises
        ------
        CampaignInvalid, CampaignConflict
        """
        from service.jobs import MAX_FILES, check_upload_name

        who.require("submit")
        campaign = self.visible(who, campaign_id)
        if not files or len(files) > MAX_FILES:
            raise CampaignInvalid("files", f"upload 1 to {MAX_FILES} files with a manifest.toml")
        names = [check_upload_name(name, i) for i, (name, _) in enumerate(files)]
        if len(set(names)) != len(names):
            raise CampaignInvalid("files", "two uploaded files have the same name")
        batch = batch or f"upload-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        staging = self.store.dir(campaign_id) / "staging" / uuid.uuid4().hex
        try:
            for name, content in files:
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                (staging / name).write_bytes(content)
            return measurement_info(ingest_batch(self.store, campaign, staging, batch, "upload"))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def report(self, who: Principal, campaign_id: str, link_base: str = "") -> str:
        """The campaign's HTML report (:mod:`service.campaign_report`)."""
        from service.campaign_report import render_report

        row = self.visible(who, campaign_id)
        return render_report(
            self.info(row),
            row["state"],
            [run_info(r) for r in self.store.runs(campaign_id)],
            [proposal_info(r) for r in self.store.proposals(campaign_id)],
            link_base=link_base,
        )

    def study_report(self, who: Principal, campaign_id: str, run_id: str) -> Path:
        """The analysis report (``report.html``) of one round's ``analyze_study`` job."""
        self.visible(who, campaign_id)
        run = self.store.run(run_id) if len(run_id) <= 64 else None
        if run is None or run["campaign_id"] != campaign_id:
            raise CampaignNotFound(run_id)
        job = self.jobs.store.get_job(run["analyze_job"]) if run["analyze_job"] else None
        if job is None or job["artifact_path"] is None:
            raise CampaignConflict(f"round {run_id} has no finished analysis")
        path = self.jobs.artifacts.root / job["artifact_path"]
        return path.parent / "report.html"

    def info(self, row: dict) -> CampaignInfo:
        from optimizer.campaign import Campaign

        optimizer = Campaign.from_dict(row["state"])
        runs = self.store.runs(row["id"])
        schedule = schedules.parse_schedule(row["spec"]["schedule"])
        next_fire = None
        if row["status"] == ACTIVE and schedule.cron is not None:
            next_fire = schedules.next_cron_fire(schedule, max(time.time(), row["fire_cursor"]))
        history = [
            {
                "round": r["round"],
                "run_id": r["id"],
                "fire_time": _ts(r["fire_time"]),
                "n_told": r["n_told"],
                "best": r["best"],
                "proposals": r["proposal_ids"],
            }
            for r in runs
            if r["status"] == SUCCEEDED
        ]
        single = len(optimizer.objectives) == 1
        return CampaignInfo(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            spec=row["spec"],
            created_at=_ts(row["created_at"]),
            next_fire_at=_ts(next_fire),
            new_measurements=len(new_arrivals(self.store, row["id"])),
            history=history,
            best=optimizer.best() if single else None,
            pareto=optimizer.pareto(),
            n_observations=sum(1 for h in optimizer.history if not h["failed"]),
            n_failed=sum(1 for h in optimizer.history if h["failed"]),
            n_pending=len(optimizer.pending),
            active_runs=[r["id"] for r in runs if r["status"] in UNFINISHED],
        )


def _move_step(c, run: dict, at_step: str, *conditions, **values) -> bool:
    """Compare-and-set inside transaction ``c``: apply ``values`` to ``run`` only while it is
    still RUNNING at ``at_step`` (and meets ``conditions``); True when it moved."""
    q = campaign_runs.update().where(
        campaign_runs.c.id == run["id"],
        campaign_runs.c.status == RUNNING,
        campaign_runs.c.step == at_step,
        *conditions,
    )
    return c.execute(q.values(**values)).rowcount == 1


def _save_state(c, campaign_id: str, version: int, state: dict, now: float) -> bool:
    """Save the campaign's optimizer state if it is still at ``version``; True when saved."""
    q = campaigns.update().where(campaigns.c.id == campaign_id, campaigns.c.version == version)
    return c.execute(q.values(state=state, version=version + 1, updated_at=now)).rowcount == 1
