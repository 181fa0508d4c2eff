"""The campaign scheduler: fires rounds on schedule and moves each round along its job chain.

One scheduler runs in each server process, a thread beside the dispatcher. Every tick it

1. records the fires that came due for each active campaign (:mod:`service.schedules`
   decides, with the catch-up and overlap policies, whether a fire is queued, skipped or
   missed); a fire is claimed by inserting its ``(campaign_id, fire_time)`` row, so a second
   loop or a restarted server never records one fire twice;
2. polls each campaign's lab connector (:mod:`service.connectors`);
3. advances every unfinished round by as many steps as are ready::

       collect   take the measurement batches that arrived since the last round took its own
       analyze   one ``analyze_study`` job on them (skipped when no instrument file came)
       tell      read its result.nc: per recipe the posterior mean and sd of log10 σ at
                 30 °C (``optimizer.observations_from_study``, the estimator the closed loop
                 and ``Campaign.tell_study`` use too); proposals whose cells all failed are
                 told as failed experiments
       propose   one ``propose`` job for q new recipes; they are stored as pending proposals

   Each step change is a compare-and-set on the run row (and, for tell and propose, on the
   campaign's state version) and each job is submitted with an idempotency key derived from
   the run, so a ``kill -9`` anywhere resumes at the persisted step without a second job.

A round that has nothing new to tell while proposals are still pending ends ``idle`` without
proposing more (the lab is still busy with the last batch).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

from inference.errors import InputError
from service.campaigns import connectors, schedules
from service.campaigns.ingest import new_arrivals, read_manifest
from service.campaigns.manager import OBJECTIVE_KINDS, principal_of
from service.campaigns.store import ACTIVE, UNFINISHED, CampaignStore
from service.config import Settings
from service.errors import LimitExceeded, RequestInvalid
from service.kinds.analyze_study import AnalyzeStudyRequest
from service.kinds.propose import ProposeRequest
from service.manager import JobManager
from service.status import JobStatus, RunStatus

#: Temperature of the conductivities told to the campaign (°C): the analysis' summary one.
SIGMA_TEMPERATURE_C = 30.0
QUEUED, RUNNING = RunStatus.QUEUED, RunStatus.RUNNING

log = logging.getLogger(__name__)


class Scheduler:
    """Fires campaign rounds and advances them.

    Parameters
    ----------
    settings : the server's settings (``scheduler_tick_s``, ``data_dir``).
    manager : the job manager (jobs are submitted through it, as the campaign's owner).
    campaigns : the campaign store.
    """

    def __init__(self, settings: Settings, manager: JobManager, campaigns: CampaignStore):
        self.settings, self.manager, self.campaigns = settings, manager, campaigns
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._compacted_at = 0.0

    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.scheduler_tick_s):
            self.tick()

    def tick(self, now: float | None = None) -> None:
        """One pass: fires, connectors, rounds. A failure is logged and confined to its
        campaign or round, so one bad campaign cannot stop the others."""
        now = time.time() if now is None else now
        for campaign in self.campaigns.list():
            if campaign["status"] == ACTIVE:
                self._guarded(self.plan_fires, campaign, now)
            if campaign["spec"].get("connector"):
                self._guarded(
                    connectors.deliver, self.campaigns, campaign, self.settings.data_dir, now
                )
        for run in self.campaigns.unfinished_runs():
            self._guarded(self.advance, run)
        if now - self._compacted_at > self.settings.run_compaction_s:
            self._compacted_at = now
            for campaign in self.campaigns.list():
                self._guarded(self.compact, campaign, now)

    def compact(self, campaign: dict, now: float) -> None:
        """Fold the campaign's old skipped, missed and idle fires into counts."""
        self.campaigns.compact(
            campaign["id"],
            keep=self.settings.run_rows_kept,
            older_than=now - self.settings.run_compaction_s,
        )

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # one bad campaign or round must not stop the loop
            log.exception("scheduler: %s failed", fn.__name__)

    # -- fires ------------------------------------------------------------------------------

    def plan_fires(self, campaign: dict, now: float) -> None:
        """Record the fires of ``campaign`` that came due by ``now``."""
        spec = campaign["spec"]
        schedule = schedules.parse_schedule(spec["schedule"])
        if schedule.cron is None:
            fire = schedules.measurement_fire(
                new_arrivals(self.campaigns, campaign["id"]), schedule.measurements
            )
            if fire is not None:
                self._fire(campaign, fire, "measurements", late=False)
            return
        due = schedules.cron_fires(schedule, campaign["fire_cursor"], now)
        if not due:
            return
        plan = schedules.plan_catch_up(
            due,
            now,
            spec["catch_up"],
            grace_s=spec["grace_s"],
            max_catch_up=spec["max_catch_up"],
        )
        for fire, action, late in plan:
            if action == schedules.MISSED:
                message = f"due while no scheduler ran; catch-up policy {spec['catch_up']}"
                self.campaigns.claim_fire(campaign["id"], fire, "cron", RunStatus.MISSED, message)
            else:
                self._fire(campaign, fire, "cron", late)
        self.campaigns.advance_cursor(campaign["id"], due[-1])

    def _fire(self, campaign: dict, fire: float, trigger: str, late: bool) -> None:
        active = self.campaigns.runs(campaign["id"], UNFINISHED)
        action = schedules.overlap_action(campaign["spec"]["overlap"], len(active), late=late)
        if action == schedules.SKIP:
            if trigger == "measurements":
                return  # its measurements stay new; it fires once the running round ends
            message = (
                f"round {active[0]['id'][:8]} was still {active[0]['status']} (overlap forbid)"
            )
            self.campaigns.claim_fire(campaign["id"], fire, trigger, RunStatus.SKIPPED, message)
            return
        claimed = self.campaigns.claim_fire(campaign["id"], fire, trigger, QUEUED)
        if claimed is not None and action == schedules.REPLACE:
            for run in active:
                self.cancel_run(run, f"replaced by the fire at {_iso(fire)} (overlap replace)")

    def cancel_run(self, run: dict, reason: str) -> bool:
        """Cancel a queued or running round: its jobs are cancelled, and measurements it had
        not told yet go back to the pool for the next round."""
        for _ in range(3):
            if self.campaigns.update_run(
                run["id"],
                {"status": run["status"], "step": run["step"]},
                status=RunStatus.CANCELLED,
                message=reason,
                finished_at=time.time(),
            ):
                for job_id in (run["analyze_job"], run["propose_job"]):
                    if job_id:
                        self.manager.store.request_cancel(job_id)
                if run["step"] != "propose":
                    self.campaigns.release_measurements(run["id"])
                return True
            run = self.campaigns.run(run["id"])
            if run["status"] not in UNFINISHED:
                return False
        return False

    # -- rounds -----------------------------------------------------------------------------

    def advance(self, run: dict) -> None:
        """Move one round forward by every step that is ready now."""
        campaign = self.campaigns.get(run["campaign_id"])
        if run["status"] == QUEUED:
            if not self._may_start(campaign, run):
                return
            if not self.campaigns.update_run(
                run["id"],
                {"status": QUEUED},
                status=RUNNING,
                step="collect",
                started_at=time.time(),
            ):
                return
        for _ in range(len(("collect", "analyze", "tell", "propose")) + 1):
            run = self.campaigns.run(run["id"])
            if run["status"] != RUNNING:
                return
            step = {
                "collect": lambda c, r: self.campaigns.start_collect(r),
                "analyze": self._analyze,
                "tell": self._tell,
                "propose": self._propose,
            }[run["step"]]
            if not step(campaign, run):
                return
            campaign = self.campaigns.get(run["campaign_id"])

    def _may_start(self, campaign: dict, run: dict) -> bool:
        if campaign["spec"]["overlap"] == "allow":
            return True
        others = self.campaigns.runs(campaign["id"], UNFINISHED)
        if any(r["status"] == RUNNING for r in others):
            return False
        return others[0]["id"] == run["id"]  # the oldest queued fire goes first

    def _fail(self, run: dict, message: str) -> bool:
        self.campaigns.update_run(
            run["id"],
            {"status": RUNNING},
            status=RunStatus.FAILED,
            message=message,
            finished_at=time.time(),
        )
        return False

    def _submit(self, campaign: dict, run: dict, request, files, key: str):
        """Submit a job as the campaign's owner; None while its token is at its job limit."""
        who = principal_of(self.manager.store, campaign["owner"])
        if who is None:
            self._fail(run, "the token that created this campaign was revoked")
            return None
        try:
            job, _ = self.manager.submit(who, request, files, key)
        except LimitExceeded:
            return None  # retried on a later tick
        except RequestInvalid as exc:
            self._fail(run, f"the {request.kind} job was refused: {exc}")
            return None
        return job

    def _job_outcome(self, run: dict, job_id: str) -> dict | None:
        """The job's row once it succeeded; fails the run if it failed; None while running."""
        job = self.manager.store.get_job(job_id)
        if job["status"] == JobStatus.SUCCEEDED:
            return job
        if job["status"] in (JobStatus.FAILED, JobStatus.CANCELLED):
            self._fail(
                run, f"{job['kind']} job {job_id} {job['status']}: {job['error_message'] or ''}"
            )
        return None

    def _analyze(self, campaign: dict, run: dict) -> bool:
        batches = self.campaigns.measurements(campaign["id"], run_id=run["id"])
        n_measured = sum(len(b["recipes"]) for b in batches)
        if sum(b["n_files"] for b in batches) == 0:
            return self.campaigns.update_run(
                run["id"],
                {"step": "analyze", "status": RUNNING},
                step="tell",
                n_measured=n_measured,
            )
        if run["analyze_job"] is None:
            request = AnalyzeStudyRequest(
                kind="analyze_study",
                method=campaign["spec"]["analysis"]["method"],
                seed=campaign["spec"]["seed"],
            )
            files = merged_study(self.campaigns.dir(campaign["id"]) / "measurements", batches)
            job = self._submit(campaign, run, request, files, f"campaign-run-{run['id']}-analyze")
            if job is None:
                return False
            return self.campaigns.update_run(
                run["id"],
                {"step": "analyze", "analyze_job": None},
                analyze_job=job.id,
                n_measured=n_measured,
            )
        if self._job_outcome(run, run["analyze_job"]) is None:
            return False
        return self.campaigns.update_run(run["id"], {"step": "analyze"}, step="tell")

    def _tell(self, campaign: dict, run: dict) -> bool:
        from optimizer.campaign import Campaign

        result = None
        if run["analyze_job"] is not None:
            job = self.manager.store.get_job(run["analyze_job"])
            result = self.manager.artifact_file(job)  # the job's result.nc
        batches = self.campaigns.measurements(campaign["id"], run_id=run["id"])
        folder = self.campaigns.dir(campaign["id"]) / "measurements"
        optimizer = Campaign.from_dict(campaign["state"])
        observations, told, notes = observations_from(
            result, batches, folder, list(optimizer.objectives), run["analyze_job"]
        )
        try:
            optimizer.tell(observations)
        except InputError as exc:
            return self._fail(run, f"telling the campaign failed: {exc}")
        single = len(optimizer.objectives) == 1
        best = optimizer.best() if single else None
        values = {
            "n_told": len(observations),
            "best": _brief(best) if best else None,
            "pareto": [_brief(h) for h in optimizer.pareto()],
            "message": "; ".join(notes) or None,
        }
        if observations or not optimizer.pending:
            values["step"] = "propose"
        else:
            pending = len(optimizer.pending)
            values |= {"status": RunStatus.IDLE, "step": None, "finished_at": time.time()}
            values["message"] = f"nothing new to tell; {pending} proposals still pending"
        return (
            self.campaigns.commit_tell(run, campaign["version"], optimizer.to_dict(), told, values)
            and values.get("step") == "propose"
        )

    def _propose(self, campaign: dict, run: dict) -> bool:
        if run["propose_job"] is None or run["propose_version"] != campaign["version"]:
            request = ProposeRequest(
                kind="propose", campaign=campaign["state"], q=campaign["spec"]["q"]
            )
            key = f"campaign-run-{run['id']}-propose-v{campaign['version']}"
            job = self._submit(campaign, run, request, [], key)
            if job is None:
                return False
            return self.campaigns.update_run(
                run["id"],
                {"step": "propose", "propose_job": run["propose_job"]},
                propose_job=job.id,
                propose_version=campaign["version"],
            )
        job = self._job_outcome(run, run["propose_job"])
        if job is None:
            return False
        out = json.loads(self.manager.artifact_file(job).read_text())
        proposals = out["proposals"]
        for p, predicted in zip(proposals, predictions(campaign["state"], proposals), strict=True):
            p["predicted"] = predicted
        # False when another round changed the state meanwhile: the next tick proposes again
        # from the new state (propose_version no longer matches).
        self.campaigns.commit_proposals(run, out["campaign"], proposals, out["round"])
        return False


# -- helpers (plain functions, testable without a loop) ---------------------------------------


def merged_name(name: str, proposal: str | None, batch: str) -> str:
    """A recipe's name in a round's merged study: a proposal id, or ``name@batch``."""
    return name if proposal else f"{name}@{batch}"


def merged_study(folder: Path, batches: list[dict]) -> list[tuple[str, bytes]]:
    """One study from several batch folders: ``(relative name, content)`` for the job upload.

    Files move under ``<batch>/``; recipes that are not proposals are renamed ``name@batch``
    and cell ids that two batches share get ``@batch`` appended, so batches never collide.
    """
    merged: dict = {"study": {"name": "campaign round"}, "recipes": {}, "cells": [], "files": []}
    files: list[tuple[str, bytes]] = []
    seen_cells: set[str] = set()
    for b in batches:
        root = folder / b["batch"]
        manifest = read_manifest(root)
        names = {r: merged_name(r, b["recipes"].get(r), b["batch"]) for r in manifest["recipes"]}
        for r, recipe in manifest["recipes"].items():
            merged["recipes"][names[r]] = recipe
        cell_ids = {}
        for cell in manifest.get("cells", []):
            new_id = cell["id"] if cell["id"] not in seen_cells else f"{cell['id']}@{b['batch']}"
            seen_cells.add(new_id)
            cell_ids[cell["id"]] = new_id
            merged["cells"].append({**cell, "id": new_id, "recipe": names[cell["recipe"]]})
        for entry in manifest.get("files", []):
            name = f"{b['batch']}/{entry['path']}"
            files.append((name, (root / entry["path"]).read_bytes()))
            merged["files"].append({**entry, "path": name, "cell": cell_ids[entry["cell"]]})
    return [("manifest.toml", tomli_w.dumps(merged).encode()), *files]


def observations_from(
    result_path: Path | None,
    batches: list[dict],
    folder: Path,
    objectives: list[str],
    analysis_job: str | None,
) -> tuple[list[dict], dict[str, str], list[str]]:
    """What a round tells its campaign: the analysis' ``result.nc`` through
    ``optimizer.observations_from_study``; a recipe without σ whose cells all failed is told as
    failed, any other one only noted.

    Returns
    -------
    (observations for ``Campaign.tell``, proposal id → "told" | "failed", notes)
    """
    import xarray as xr

    from optimizer.observations import observations_from_study

    result = None
    if result_path is not None:
        with xr.open_datatree(result_path, engine="h5netcdf") as tree:
            result = tree.load()
    observations, told, notes = [], {}, []
    for b in batches:
        manifest = read_manifest(folder / b["batch"])
        recipes = {}
        for name, pid in b["recipes"].items():
            source = {"batch": b["batch"], "recipe": name, "analysis_job": analysis_job}
            ident = {"id": pid} if pid else {"params": manifest["recipes"][name]}
            recipes[merged_name(name, pid, b["batch"])] = {**ident, "source": source}
        found = {}
        if result is not None:
            found = dict(
                zip(
                    recipes,
                    observations_from_study(
                        result,
                        objectives,
                        recipes,
                        temperature_C=SIGMA_TEMPERATURE_C,
                        kinds=OBJECTIVE_KINDS,
                        missing="fail",
                    ),  # fmt: skip
                    strict=True,
                )
            )
        for (name, pid), merged in zip(b["recipes"].items(), recipes, strict=True):
            obs = found.get(merged)
            if obs is not None and not obs.get("failed"):
                observations.append(obs)
                if pid:
                    told[pid] = "told"
                continue
            cells = [c for c in manifest.get("cells", []) if c["recipe"] == name]
            if cells and all(c.get("status") == "failed" for c in cells):
                reason = cells[0].get("failure_reason") or "every cell failed"
                ident = {k: v for k, v in recipes[merged].items() if k != "source"}
                observations.append(
                    {**ident, "failed": True, "reason": reason, "source": recipes[merged]["source"]}
                )
                if pid:
                    told[pid] = "failed"
            else:
                notes.append(f"no σ at {SIGMA_TEMPERATURE_C:g} °C for {merged}; not told")
    return observations, told, notes


def predictions(state: dict, proposals: list[dict]) -> list[dict | None]:
    """The campaign's GP mean and sd per objective at each proposal (``Campaign.predict``),
    from the observations in ``state``; None for each while fewer than two experiments
    succeeded (the initial design)."""
    from optimizer.campaign import Campaign

    campaign = Campaign.from_dict(state)
    if len(campaign.successes()) < 2 or not proposals:
        return [None] * len(proposals)
    mean, sd = campaign.predict([p["params"] for p in proposals])
    return [
        {m: {"mean": float(mean[m][i]), "sd": float(sd[m][i])} for m in campaign.objectives}
        for i in range(len(proposals))
    ]


def _brief(h: dict) -> dict:
    return {"id": h["id"], "params": h["params"], "values": h["values"], "sd": h["sd"]}


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")
