"""Campaigns survive ``kill -9`` of the server during and between rounds.

The server runs as a real child process (``python -m service.server``) joined to the
session's Ray, its store in the session's PostgreSQL (the faster campaign tests in
test_campaigns.py run on both databases; this long one runs on the production database).
Checked from the runs table: every fire is recorded once, no round is run twice or skipped,
the interrupted round finishes with its original analysis job, fires that came due while
the server was down follow the catch-up policy (``once``), and pending proposals survive.
"""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import time

from service_fixtures import (  # noqa: F401  (fixtures)
    ServerProcess,
    database_url,
    ray_address,
    wait_for,
)
from test_campaigns import LAB, OBJECTIVES, SPACE
from typer.testing import CliRunner

from service.campaigns.store import CampaignStore
from service.client import Client
from service.commands import token as token_cli
from service.store import JobStore

FAST = ("--lease-seconds", "4", "--cancel-grace-seconds", "2", "--scheduler-tick-seconds", "0.2",
        "--min-cron-interval-seconds", "1")  # fmt: skip
GRACE_S = 1.0


def _token(data_dir, db) -> str:
    args = ["create", "--name", "lab", "--scope", "submit", "--data-dir", str(data_dir)]
    result = CliRunner().invoke(token_cli.app, [*args, "--db", db])
    assert result.exit_code == 0, result.output
    return result.output.split()[-1]


def _active(runs) -> list:
    return [r for r in runs if r.status in ("queued", "running")]


def test_kill9_during_and_between_rounds(ray_address, tmp_path):
    data_dir = tmp_path / "service"
    db = database_url("postgresql", data_dir)
    server = ServerProcess(data_dir, ray_address, *FAST, db=db).start()
    token = _token(data_dir, db)
    try:
        client = Client(server.url, token)
        campaign = client.create_campaign(
            SPACE,
            OBJECTIVES,
            {"cron": "* * * * * */2"},
            q=4,
            overlap="forbid",
            catch_up="once",
            grace_s=GRACE_S,
            connector={"kind": "virtual_lab", "delay_s": 3, "lab": LAB},
            analysis={"method": "lsq"},
        )

        # 1. kill -9 while a round's analysis job runs.
        def analysing():
            runs = [r for r in campaign.runs() if r.step == "analyze" and r.analyze_job]
            return (
                runs[0] if runs and client.job(runs[0].analyze_job).status() == "RUNNING" else None
            )

        victim = wait_for(analysing, 600, "a round to be analysing")
        server.kill9()
        killed_at = time.time()
        time.sleep(6)
        server = ServerProcess(data_dir, ray_address, *FAST, db=db).start()
        restarted_at = time.time()
        client = Client(server.url, token)
        campaign.client = client

        def victim_done():
            run = {r.id: r for r in campaign.runs()}[victim.id]
            return run if run.status not in ("queued", "running") else None

        run = wait_for(victim_done, 600, "the interrupted round to finish")
        assert run.status == "succeeded" and run.analyze_job == victim.analyze_job
        assert client.job(run.analyze_job).info.attempt == 2  # its first attempt died
        # The new scheduler's first tick (it starts before the HTTP server answers, seconds
        # earlier on a loaded machine) records every fire that came due while none ran.
        runs = campaign.runs()
        after_kill = [r.created_at.timestamp() for r in runs if r.fire_time.timestamp() > killed_at]
        first_tick = min(after_kill)
        assert first_tick < restarted_at
        down = [r for r in runs if killed_at < r.fire_time.timestamp() < first_tick - GRACE_S - 1]
        assert sum(r.status == "missed" for r in down) >= 2
        assert sum(r.status != "missed" for r in down) <= 1  # catch-up once: one run for all

        # 2. kill -9 between rounds, while proposals are pending at the lab.
        def between():
            if _active(campaign.runs()):
                return None
            return campaign.proposals("pending") or None

        pending = wait_for(between, 600, "a moment between rounds", poll_s=0.05)
        rounds_before = len(campaign.refresh().history)
        server.kill9()
    finally:
        server.stop()
    cstore = CampaignStore(JobStore(db), data_dir)
    stored = {p["id"]: p for p in cstore.proposals(campaign.id)}
    assert {p.id for p in pending} <= set(stored)
    time.sleep(3)
    server = ServerProcess(data_dir, ray_address, *FAST, db=db).start()
    try:
        client = Client(server.url, token)
        campaign.client = client
        campaign.wait_rounds(rounds_before + 1, timeout=600)  # the round that tells `pending`
        campaign.pause()
        runs = campaign.runs()
        told = {p.id: p.status for p in campaign.proposals()}
        assert all(told[p.id] in ("told", "failed") for p in pending)
    finally:
        server.stop()

    # The runs table: one row per fire, rounds 1..N each stored by exactly one run.
    fire_times = [r.fire_time for r in runs]
    assert len(fire_times) == len(set(fire_times))
    rounds = [r.round for r in runs if r.status == "succeeded"]
    assert rounds == list(range(1, len(rounds) + 1))
    # One analysis job per analysed round, none submitted twice.
    jobs = JobStore(db).list_jobs(kind="analyze_study")
    assert sorted(j["id"] for j in jobs) == sorted(r.analyze_job for r in runs if r.analyze_job)
    # Every experiment was told once.
    state = cstore.get(campaign.id)["state"]
    ids = [h["id"] for h in state["history"]]
    assert len(ids) == len(set(ids))
