"""Campaigns on a live server: an unattended virtual-lab campaign, overlap, pause/resume,
uploads, the folder-watch connector, the measurement trigger and bad specs.

A real uvicorn + dispatcher + scheduler in this process on the session's Ray; round analyses
use ``method="lsq"``. The long unattended campaign runs on SQLite (its kill -9 twin in
test_campaigns_recovery.py on PostgreSQL); every other test here runs on both databases.
The virtual lab's true landscape (``true_log10_sigma``) is the yardstick for "the campaign
improved".
"""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import time
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w
from service_fixtures import DATABASES, LiveServer, ray_address, wait_for  # noqa: F401

from service.campaigns.connectors import lab_recipe
from service.campaigns.store import CampaignStore
from service.errors import Conflict, InvalidRequest
from service.scheduler import Scheduler

SPACE = {
    "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
    "process": {"type": "categorical", "choices": ["dry", "wet"]},
    "press_MPa": {"type": "integer", "low": 100, "high": 500},
}
OBJECTIVES = {"sigma_ion": "maximize"}
#: A small, quiet lab: 2 ion cells per recipe at 3 temperatures, little cell-to-cell spread.
LAB = {
    "temperatures_C": [30, 50, 70],
    "ion_cells_per_recipe": 2,
    "electron_cells_per_recipe": 0,
    "cell_spread_decades": 0.03,
}
VIRTUAL_LAB = {"kind": "virtual_lab", "delay_s": 1, "lab": LAB}
ROUNDS = 4  # the initial design + 3 rounds that analyse, tell and propose
PROBLEM = "application/problem+json"


def _campaign_server(tmp_path_factory, database: str):
    live = LiveServer(tmp_path_factory.mktemp(f"campaigns-{database}"), database,
                      scheduler_tick_s=0.2)  # fmt: skip
    store = CampaignStore(live.manager.store, live.settings.data_dir)
    return live, Scheduler(live.settings, live.manager, store).start()


@pytest.fixture(scope="module")
def server(ray_address, tmp_path_factory):
    live, scheduler = _campaign_server(tmp_path_factory, "sqlite")
    yield live
    scheduler.stop()
    live.stop()


@pytest.fixture(scope="module", params=DATABASES)
def any_server(request, server, tmp_path_factory):
    """The SQLite server above, and one on PostgreSQL."""
    if request.param == "sqlite":
        yield server
        return
    live, scheduler = _campaign_server(tmp_path_factory, request.param)
    yield live
    scheduler.stop()
    live.stop()


@pytest.fixture(scope="module")
def unattended(server):
    """A campaign run by the virtual lab on a 2-second schedule until it has ROUNDS rounds."""
    with server.client() as client:
        campaign = client.create_campaign(
            SPACE,
            OBJECTIVES,
            {"cron": "* * * * * */2"},
            q=4,
            overlap="forbid",
            connector=VIRTUAL_LAB,
            analysis={"method": "lsq"},
            name="unattended",
        )
        started = time.monotonic()
        try:
            campaign.wait_rounds(ROUNDS, timeout=1200)  # a bound, not a speed claim
        finally:
            campaign.pause()  # keeps the rest of the module's CPU for the other tests
        yield campaign, client, time.monotonic() - started


def true_sigma(params: dict) -> float:
    from optimizer.virtual_lab import true_log10_sigma

    return true_log10_sigma(lab_recipe(params, VIRTUAL_LAB))["sigma_ion"]


def test_unattended_campaign_improves_on_its_initial_design(unattended):
    campaign, _, _ = unattended
    info = campaign.refresh()
    rounds = [h["round"] for h in info.history]
    assert rounds == list(range(1, len(rounds) + 1)) and len(rounds) >= ROUNDS
    initial = [p for p in campaign.proposals() if p.round == 1]
    assert len(initial) == 4 and all(p.predicted is None for p in initial)
    # The best after the first tell is the best of the initial design.
    initial_best = info.history[1]["best"]
    assert {initial_best["id"]} <= {p.id for p in initial}
    assert info.best["values"]["sigma_ion"] > initial_best["values"]["sigma_ion"]
    # Judged by the lab's truth, not only by noisy measurements: the campaign's best recipe
    # is truly better than every recipe of the initial design.
    best_true = true_sigma(info.best["params"])
    assert best_true > max(true_sigma(p.params) for p in initial)
    # Later rounds come with a GP prediction with an uncertainty.
    later = [p for p in campaign.proposals() if p.round >= 3]
    assert later and all(p.predicted["sigma_ion"]["sd"] > 0 for p in later)


def test_every_fire_is_one_run_and_forbid_skips_fires_during_a_round(unattended):
    campaign, _, _ = unattended
    runs = campaign.runs()
    fire_times = [r.fire_time for r in runs]
    assert len(fire_times) == len(set(fire_times))
    ran = [r for r in runs if r.started_at is not None]
    for a, b in zip(ran, ran[1:], strict=False):
        assert b.started_at >= a.finished_at  # overlap forbid: never two rounds at once
    skipped = [r for r in runs if r.status == "skipped"]
    assert skipped and all("overlap forbid" in r.message for r in skipped)
    for r in skipped:
        assert any(x.started_at <= r.fire_time <= x.finished_at for x in ran)
    told = [p for p in campaign.proposals() if p.status in ("told", "failed")]
    rounds_told = {p.round for p in told}
    assert rounds_told == set(range(1, max(rounds_told) + 1))


def test_report_shows_rounds_predictions_partial_dependence_and_study_links(unattended, server):
    campaign, client, _ = unattended
    html = campaign.report()
    assert "Best so far per round" in html and "Partial dependence" in html
    assert "binder_wt_pct per process" in html
    assert html.count("<img") >= 2  # best-so-far and partial-dependence figures
    for p in campaign.proposals(status="told"):
        assert p.id in html
    analysed = [r for r in campaign.runs() if r.analyze_job and r.status == "succeeded"]
    assert analysed
    link = f"/v1/campaigns/{campaign.id}/runs/{analysed[0].id}/study-report"
    assert link in html
    page = httpx.get(
        f"{server.url}{link}", headers={"Authorization": f"Bearer {server.tokens['alice']}"}
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_pause_stops_fires_and_resume_restarts_them(any_server):
    with any_server.client() as client:
        campaign = client.create_campaign(
            SPACE, OBJECTIVES, {"cron": "* * * * * *"}, q=2, name="pausing"
        )
        wait_for(lambda: campaign.refresh().history, 180, "the initial design")
        info = campaign.pause()
        paused_at = time.time()
        assert info.status == "paused" and info.next_fire_at is None
        time.sleep(3)
        resumed_at = time.time()
        info = campaign.resume()
        assert info.status == "active" and info.next_fire_at.timestamp() > resumed_at - 1

        def fired_after_resume():
            return [r for r in campaign.runs() if r.fire_time.timestamp() > resumed_at]

        wait_for(fired_after_resume, 90, "a fire after resuming")
        during = [
            r for r in campaign.runs() if paused_at + 1 < r.fire_time.timestamp() < resumed_at
        ]
        assert during == []  # nothing fired, nothing was recorded as missed while paused
        campaign.pause()


def _simulate(tmp_path: Path, proposals, name="batch") -> Path:
    from optimizer.virtual_lab import LabSettings, simulate_study

    recipes = {p.id: lab_recipe(p.params, VIRTUAL_LAB) for p in proposals}
    simulate_study(recipes, tmp_path / name, seed=3, settings=LabSettings.from_dict(LAB))
    return tmp_path / name


def test_uploaded_measurements_link_to_proposals_and_fire_a_measurement_round(any_server, tmp_path):
    with any_server.client() as client:
        campaign = client.create_campaign(
            SPACE, OBJECTIVES, {"measurements": 2}, q=3, name="uploads"
        )
        pending = wait_for(lambda: campaign.proposals("pending"), 180, "the initial design")
        study = _simulate(tmp_path, pending[:2])
        batch = campaign.add_measurements(study)
        assert batch.recipes == {p.id: p.id for p in pending[:2]}
        assert {p.id for p in campaign.proposals("pending")} == {pending[2].id}
        with pytest.raises(Conflict):  # the same proposals measured twice
            campaign.add_measurements(study)

        def measurement_round():
            runs = [r for r in campaign.runs() if r.trigger == "measurements"]
            return runs if runs and runs[0].n_measured is not None else None

        runs = wait_for(measurement_round, 180, "the measurement trigger to fire")
        assert len(runs) == 1 and runs[0].n_measured == 2
        campaign.pause()

        # A recipe that is neither a proposal nor a full parameter set is refused (422).
        other = _simulate(tmp_path, pending[2:], name="other")
        manifest = tomllib.loads((other / "manifest.toml").read_text())
        recipe = manifest["recipes"].pop(pending[2].id)
        del recipe["press_MPa"]
        manifest["recipes"]["mystery"] = recipe
        for cell in manifest["cells"]:
            cell["recipe"] = "mystery"
        (other / "manifest.toml").write_text(tomli_w.dumps(manifest))
        with pytest.raises(InvalidRequest) as err:
            campaign.add_measurements(other)
        assert err.value.status == 422
        assert err.value.errors[0].field == "manifest.recipes.mystery"
        assert "press_MPa" in err.value.errors[0].message


def test_folder_watch_takes_ready_folders_and_rejects_bad_ones(any_server, tmp_path):
    inbox = any_server.settings.data_dir / "inboxes" / "lab-a"
    with any_server.client() as client:
        campaign = client.create_campaign(
            SPACE,
            OBJECTIVES,
            {"measurements": 100},
            q=2,
            connector={"kind": "folder_watch", "inbox": "lab-a"},
            name="folder",
        )
        pending = wait_for(lambda: campaign.proposals("pending"), 180, "the initial design")
        _simulate(inbox, pending, name="monday")
        time.sleep(1)
        assert len(campaign.proposals("pending")) == 2  # no READY file yet: not taken
        (inbox / "monday" / "READY").touch()
        wait_for(lambda: not campaign.proposals("pending"), 120, "the inbox batch")
        assert {p.batch for p in campaign.proposals("measured")} == {"monday"}
        bad = inbox / "tuesday"
        bad.mkdir()
        (bad / "manifest.toml").write_text("this is not TOML [")
        (bad / "READY").touch()
        rejected = wait_for(lambda: (bad / "REJECTED.txt").is_file(), 120, "the rejection")
        assert rejected and "manifest" in (bad / "REJECTED.txt").read_text().lower()
        campaign.pause()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schedule": {"cron": "*/5 * * *"}}, "schedule.cron"),
        ({"schedule": {"cron": "99 * * * *"}}, "schedule.cron"),
        ({"space": {}}, "space"),
        ({"objectives": {"capacity": "maximize"}}, "objectives.capacity"),
        ({"objectives": {"sigma_ion": "up"}}, "objectives.sigma_ion"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"catch_up": "never"}, "catch_up"),
        ({"connector": {"kind": "virtual_lab", "delay_s": -1}}, "connector.delay_s"),
        ({"connector": {"kind": "folder_watch", "inbox": "../etc"}}, "connector.inbox"),
        ({"q": 0}, "q"),
        ({"failure_cost": -1}, "failure_cost"),
        ({"p_success_min": 1}, "p_success_min"),
        ({"multi_objective": "nsga2"}, "multi_objective"),
        # the Campaign's own check: a reference point needs a value for every objective
        ({"reference": {"sigma_el": -3.0}}, "reference"),
    ],
)
def test_bad_specs_are_422_problems_naming_the_field(any_server, change, field):
    body = {"space": SPACE, "objectives": OBJECTIVES, "schedule": {"cron": "* * * * *"}, **change}
    r = httpx.post(
        f"{any_server.url}/v1/campaigns",
        json=body,
        headers={"Authorization": f"Bearer {any_server.tokens['alice']}"},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert [e["field"] for e in r.json()["errors"]] == [field]


def test_two_objective_settings_reach_the_campaign(any_server):
    with any_server.client("alice") as alice:
        campaign = alice.create_campaign(
            SPACE,
            {"sigma_ion": "maximize", "sigma_el": "maximize"},
            {"measurements": 50},
            multi_objective="parego",
            reference={"sigma_ion": -6.0, "sigma_el": -3.0},
            name="two",
        )
        campaign.pause()
    spec = campaign.info.spec
    assert spec["multi_objective"] == "parego"
    assert spec["reference"] == {"sigma_ion": -6.0, "sigma_el": -3.0}


def test_campaigns_of_others_are_not_found(any_server):
    with any_server.client("alice") as alice:
        campaign = alice.create_campaign(SPACE, OBJECTIVES, {"measurements": 50}, name="mine")
        campaign.pause()
    for path in ("", "/runs", "/proposals", "/report"):
        r = httpx.get(
            f"{any_server.url}/v1/campaigns/{campaign.id}{path}",
            headers={"Authorization": f"Bearer {any_server.tokens['bob']}"},
        )
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_cli_creates_shows_and_pauses_a_campaign(any_server, tmp_path):
    import json

    from typer.testing import CliRunner

    from service.commands import campaign as campaign_cli

    spec = tmp_path / "campaign.json"
    body = {"space": SPACE, "objectives": OBJECTIVES, "schedule": {"measurements": 50}, "q": 2}
    spec.write_text(json.dumps({**body, "name": "from-cli"}))
    auth = ["--url", any_server.url, "--token", any_server.tokens["alice"]]
    runner = CliRunner()
    created = runner.invoke(campaign_cli.app, ["create", str(spec), *auth])
    assert created.exit_code == 0, created.output
    campaign_id = created.output.split()[0]
    assert "from-cli" in created.output
    paused = runner.invoke(campaign_cli.app, ["pause", campaign_id, *auth])
    assert paused.exit_code == 0 and "paused" in paused.output
    runs = runner.invoke(campaign_cli.app, ["runs", campaign_id, *auth])
    assert runs.exit_code == 0 and "initial" in runs.output
