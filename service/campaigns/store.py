"""The campaign tables and their store; every method is one short transaction.

Tables (they share :data:`service.store.metadata` and the job store's engine):

``campaigns``
    the optimizer state (JSON, bumped ``version`` on every change: compare-and-set), spec,
    status, the fire cursor, the idempotency key with its body digest, and the counts of
    run rows compacted away.
``campaign_runs``
    one row per fire, ``UNIQUE (campaign_id, fire_time)``: a fire is claimed by inserting its
    row. Status :class:`~service.status.RunStatus`; a running round's ``step`` is persisted.
``campaign_measurements``
    uploaded or connector-delivered batches; ``run_id`` is set when a round takes the batch.
``campaign_proposals``
    every round's proposals (``pending → measured → told | failed``) with the GP's prediction.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from service.errors import CampaignQuotaExceeded, IdempotencyConflict
from service.status import CampaignStatus, RunStatus
from service.store import JobStore, metadata, row_dict, tokens

ACTIVE, PAUSED = CampaignStatus.ACTIVE, CampaignStatus.PAUSED
UNFINISHED = RunStatus.unfinished()
#: Run statuses whose rows are compacted into counts once they are old.
COMPACTED = (RunStatus.SKIPPED, RunStatus.MISSED, RunStatus.IDLE)

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
    sa.Column("body_sha256", sa.String(64)),  # of the creating request (idempotency)
    sa.Column("compacted", sa.JSON),  # {run status: rows compacted away}
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


class _Lost(Exception):
    """A compare-and-set lost its race; the transaction is rolled back."""


def new_run(campaign_id, fire_time, trigger, status, message=None) -> dict:
    now = time.time()
    final = status in (RunStatus.SKIPPED, RunStatus.MISSED)
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


class CampaignStore:
    """The campaign tables (compare-and-set wherever a concurrent scheduler could race).

    Parameters
    ----------
    store : the job store whose engine (and tokens table) the campaign tables share.
    data_dir : the server's data directory (``campaigns/<id>/…`` lives there).
    """

    def __init__(self, store: JobStore, data_dir: Path):
        self.store, self.engine = store, store.engine
        self.root = Path(data_dir) / "campaigns"

    def dir(self, campaign_id: str) -> Path:
        return self.root / campaign_id

    # -- campaigns --------------------------------------------------------------------------

    def insert(self, row: dict) -> tuple[dict, bool]:
        """Insert a campaign and claim its initial fire.

        Returns
        -------
        (row, created) — an idempotent replay (same key, same body) returns the earlier
        campaign with ``created`` False.

        Raises
        ------
        IdempotencyConflict
            The key was used with another body.
        CampaignQuotaExceeded
            The owner already has as many active campaigns as its token allows.
        """
        key = row.get("idempotency_key")
        with self.engine.begin() as c:
            limit = c.execute(
                sa.select(tokens.c.max_active_campaigns)
                .where(tokens.c.id == row["owner"])
                .with_for_update()  # PostgreSQL: one owner's creations one at a time
            ).scalar_one()
            if key is not None:
                q = campaigns.select().where(
                    campaigns.c.owner == row["owner"], campaigns.c.idempotency_key == key
                )
                existing = row_dict(c.execute(q).first())
                if existing is not None:
                    stored = existing["body_sha256"]
                    if stored is not None and stored != row["body_sha256"]:
                        raise IdempotencyConflict(key)
                    return existing, False
            if self._active(c, row["owner"]) >= limit:
                raise CampaignQuotaExceeded(limit)
            c.execute(campaigns.insert().values(**row))
            c.execute(
                campaign_runs.insert().values(
                    **new_run(row["id"], row["created_at"], "initial", RunStatus.QUEUED)
                )
            )
        return self.get(row["id"]), True

    @staticmethod
    def _active(c, owner: str) -> int:
        q = sa.select(sa.func.count()).where(
            campaigns.c.owner == owner, campaigns.c.status == ACTIVE
        )
        return c.execute(q).scalar_one()

    def get(self, campaign_id: str) -> dict | None:
        with self.engine.begin() as c:
            q = campaigns.select().where(campaigns.c.id == campaign_id)
            return row_dict(c.execute(q).first())

    def list(self, owner: str | None = None, status: str | None = None) -> list[dict]:
        q = campaigns.select().order_by(campaigns.c.seq)
        if owner is not None:
            q = q.where(campaigns.c.owner == owner)
        if status is not None:
            q = q.where(campaigns.c.status == status)
        with self.engine.begin() as c:
            return [row_dict(r) for r in c.execute(q)]

    def set_status(self, campaign_id: str, status: str, now: float) -> dict:
        """Pause or resume; resuming moves the fire cursor to ``now`` (fires due while paused
        are not caught up: pausing means "no rounds", not "later").

        Raises
        ------
        CampaignQuotaExceeded
            Resuming would exceed the owner's active campaigns.
        """
        values: dict[str, Any] = {"status": status, "updated_at": now}
        with self.engine.begin() as c:
            row = row_dict(
                c.execute(campaigns.select().where(campaigns.c.id == campaign_id)).first()
            )
            if row["status"] != status:
                if status == ACTIVE:
                    limit = c.execute(
                        sa.select(tokens.c.max_active_campaigns)
                        .where(tokens.c.id == row["owner"])
                        .with_for_update()
                    ).scalar_one()
                    if self._active(c, row["owner"]) >= limit:
                        raise CampaignQuotaExceeded(limit)
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
        row = new_run(campaign_id, fire_time, trigger, status, message)
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
            return [row_dict(r) for r in c.execute(q)]

    def run(self, run_id: str) -> dict | None:
        with self.engine.begin() as c:
            return row_dict(
                c.execute(campaign_runs.select().where(campaign_runs.c.id == run_id)).first()
            )

    def unfinished_runs(self) -> list[dict]:
        q = (
            campaign_runs.select()
            .where(campaign_runs.c.status.in_(UNFINISHED))
            .order_by(campaign_runs.c.fire_time, campaign_runs.c.seq)
        )
        with self.engine.begin() as c:
            return [row_dict(r) for r in c.execute(q)]

    def update_run(self, run_id: str, expect: dict, **values) -> bool:
        """Compare-and-set: apply ``values`` if the run's columns still equal ``expect``."""
        q = campaign_runs.update().where(campaign_runs.c.id == run_id)
        for column, value in expect.items():
            col = campaign_runs.c[column]
            q = q.where(col.is_(None) if value is None else col == value)
        with self.engine.begin() as c:
            return c.execute(q.values(**values)).rowcount == 1

    def compact(self, campaign_id: str, keep: int, older_than: float) -> int:
        """Fold old skipped, missed and idle fires into counts on the campaign.

        The newest ``keep`` such rows of the campaign stay, and so does every row newer than
        ``older_than`` (Unix s) or that a measurement batch names. The fire cursor has long
        passed a compacted fire, so it is never recorded again. Returns the rows removed.
        """
        taken = sa.select(campaign_measurements.c.run_id).where(
            campaign_measurements.c.campaign_id == campaign_id,
            campaign_measurements.c.run_id.is_not(None),
        )
        candidates = (
            sa.select(campaign_runs.c.id, campaign_runs.c.status)
            .where(
                campaign_runs.c.campaign_id == campaign_id,
                campaign_runs.c.status.in_(COMPACTED),
                campaign_runs.c.id.not_in(taken),
            )
            .order_by(campaign_runs.c.fire_time.desc(), campaign_runs.c.seq.desc())
            .offset(keep)
        )
        with self.engine.begin() as c:
            rows = [
                r
                for r in c.execute(candidates.add_columns(campaign_runs.c.fire_time)).all()
                if r.fire_time < older_than
            ]
            if not rows:
                return 0
            c.execute(campaign_runs.delete().where(campaign_runs.c.id.in_([r.id for r in rows])))
            counts = dict(
                c.execute(
                    sa.select(campaigns.c.compacted).where(campaigns.c.id == campaign_id)
                ).scalar_one()
                or {}
            )
            for r in rows:
                counts[r.status] = counts.get(r.status, 0) + 1
            c.execute(
                campaigns.update().where(campaigns.c.id == campaign_id).values(compacted=counts)
            )
        return len(rows)

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
            return [row_dict(r) for r in c.execute(q)]

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
            return [row_dict(r) for r in c.execute(q)]

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
                status=RunStatus.SUCCEEDED,
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


def _move_step(c, run: dict, at_step: str, *conditions, **values) -> bool:
    """Compare-and-set inside transaction ``c``: apply ``values`` to ``run`` only while it is
    still RUNNING at ``at_step`` (and meets ``conditions``); True when it moved."""
    q = campaign_runs.update().where(
        campaign_runs.c.id == run["id"],
        campaign_runs.c.status == RunStatus.RUNNING,
        campaign_runs.c.step == at_step,
        *conditions,
    )
    return c.execute(q.values(**values)).rowcount == 1


def _save_state(c, campaign_id: str, version: int, state: dict, now: float) -> bool:
    """Save the campaign's optimizer state if it is still at ``version``; True when saved."""
    q = campaigns.update().where(campaigns.c.id == campaign_id, campaigns.c.version == version)
    return c.execute(q.values(state=state, version=version + 1, updated_at=now)).rowcount == 1
