"""A study job fans its fits out over the Ray cluster: a second node takes part, the result is
the one a local analysis gives, and a cancel stops every task."""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import time
from pathlib import Path

import pytest
from service_fixtures import live_server, ray_address, second_ray_node, wait_for  # noqa: F401

pytestmark = pytest.mark.slow

RECIPES = {
    "dry": {"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry"},
    "wet": {"binder": "NBR", "binder_wt_pct": 0.5, "process": "wet"},
}


def _study(folder: Path, temperatures_C, cells: int) -> Path:
    from optimizer.virtual_lab import LabSettings, simulate_study

    settings = LabSettings(
        temperatures_C=temperatures_C, ion_cells_per_recipe=cells, electron_cells_per_recipe=cells
    )
    simulate_study(RECIPES, folder, seed=5, settings=settings, name=folder.name)
    return folder


@pytest.fixture(scope="module")
def second_node(ray_address):
    with second_ray_node(ray_address) as node_ids:
        yield node_ids


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)  # the database plays no part
def test_a_study_job_runs_on_both_nodes_and_gives_the_local_result(live_server, second_node):
    from inference.analysis import analyze_study

    # The layout of test_service_api's study (its Arrhenius samplers are compiled once).
    study = _study(live_server.settings.datasets_dir / "fanout", (30.0, 60.0), cells=1)
    with live_server.client("alice") as client:
        job = client.submit_study(dataset="fanout", method="lsq", seed=4)
        assert job.wait(timeout=600, progress=False).info.status == "SUCCEEDED"
        summary, logs = job.summary(), job.logs()
    assert "study fits ran on 2 Ray node(s)" in logs
    local = analyze_study(study, method="lsq", seed=4, workers=1)
    assert summary["conductivity"] == local.summary_dict()["conductivity"]


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)
def test_cancelling_a_study_job_stops_every_task(live_server, second_node):
    import ray

    from service.errors import JobCancelled

    _study(live_server.settings.datasets_dir / "long", (30.0, 45.0, 60.0, 75.0), cells=3)
    with live_server.client("alice") as client:
        job = client.submit_study(dataset="long", method="nuts", seed=0)

        def fitting():
            info = job.refresh()
            assert info.status in ("QUEUED", "STARTING", "RUNNING"), info
            return info.progress is not None and (info.progress.done or 0) >= 1

        wait_for(fitting, 300, "the study's first fits", poll_s=0.2)
        cancelled_at = time.monotonic()
        job.cancel()
        with pytest.raises(JobCancelled):
            job.wait(timeout=120, progress=False)
    total = ray.cluster_resources()["CPU"]
    wait_for(lambda: ray.available_resources().get("CPU") == total, 30, "every CPU to be free")
    assert time.monotonic() - cancelled_at < 60
