"""Job lifecycle on real Ray: cancellation, a killed worker, timeouts, and the store's CAS rules."""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import os
import signal
import time

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    CIRCUIT,
    TRUTH,
    live_server,
    ray_address,
    spectrum_file,
    wait_for,
)

from service.artifacts import ArtifactStore
from service.config import Settings
from service.dispatcher import Dispatcher, _InFlight
from service.errors import Conflict, JobCancelled, JobFailed
from service.status import ErrorType
from service.store import QUEUED, RUNNING, STARTING, JobStore

INFRASTRUCTURE_LOST, MODEL_ERROR = ErrorType.INFRASTRUCTURE_LOST, ErrorType.MODEL_ERROR


def _cpu_seconds(pid: int) -> float | None:
    """user + system CPU time of a process (s), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _running(job, phases=None):
    def check():
        info = job.refresh()
        if info.done:
            pytest.fail(f"job ended ({info.status}) before it could be interrupted")
        ok = info.status == RUNNING and info.worker is not None and info.worker.pid
        return info if ok and (phases is None or info.phase in phases) else None

    return check


def test_cancel_during_sampling_stops_compute(live_server, spectrum_file):
    import ray

    with live_server.client("admin") as client:  # admins see the worker's pid
        job = client.submit_fit(spectrum_file, CIRCUIT, draws=40_000, tune=100, chains=2)
        info = wait_for(_running(job, {"sampling"}), 180, "the fit to start sampling")
        pid = info.worker.pid
        asked_at = time.time()
        job.cancel()
        with pytest.raises(JobCancelled):
            job.wait(timeout=30, progress=False)
        info = job.refresh()
        assert info.status == "CANCELLED"
        latency = info.finished_at.timestamp() - asked_at
        print(f"\n[cancel {live_server.database}] cancel → CANCELLED in {latency:.2f} s")
        assert info.artifacts is not None and info.artifacts.partial
        with pytest.raises(Conflict):
            job.result()
        logs = job.logs()
        assert "cancel requested" in logs
        # The sampler saw the cancel and stopped by itself, within the 3 s grace period.
        assert "stopped: fit cancelled" in logs and "killing attempt" not in logs

    # The worker's CPU is free again: Ray has its CPU back and the process stopped computing.
    total = ray.cluster_resources()["CPU"]
    wait_for(lambda: ray.available_resources().get("CPU") == total, 30, "Ray to free the CPU")
    # The dispatcher's capacity is the cluster's CPUs, as the supervisor's probe task saw them.
    assert live_server.dispatcher.capacity() == total
    before = _cpu_seconds(pid)
    time.sleep(1.0)
    after = _cpu_seconds(pid)
    assert before is None or after is None or after - before < 0.3


def test_killed_worker_is_retried_and_succeeds(live_server, spectrum_file):
    with live_server.client("admin") as client:
        job = client.submit_fit(spectrum_file, CIRCUIT, draws=300, tune=300, chains=2, seed=3)
        info = wait_for(_running(job), 120, "the first attempt to start")
        assert info.attempt == 1
        os.kill(info.worker.pid, signal.SIGKILL)
        info = job.wait(timeout=240, progress=False).info
        assert info.status == "SUCCEEDED"
        assert info.attempt == 2
        assert info.worker.pid != os.getpid()
        assert "attempt 1 lost" in job.logs()
        r1 = job.result()["posterior"]["R1"]
    assert r1.sizes == {"chain": 2, "draw": 300}  # never a truncated trace
    assert abs(float(r1.median()) / TRUTH["R1"] - 1) < 0.05


def test_timeout_fails_the_job_with_error_type_timeout(live_server, spectrum_file):
    with live_server.client("alice") as client:
        job = client.submit_fit(
            spectrum_file, CIRCUIT, draws=40_000, tune=100, chains=2, timeout_s=1.0
        )
        with pytest.raises(JobFailed) as err:
            job.wait(timeout=120, progress=False)
    assert err.value.error_type == "timeout"
    assert err.value.job.attempt == 1  # a timeout is not retried


# -- the store's and dispatcher's rules, without Ray -----------------------------------------------


def _queued_job(store: JobStore, job_id: str = "j1") -> None:
    from service.auth import create_token

    owner, _ = create_token(store, "t", "submit")
    request = {"kind": "fit_spectrum", "chains": 2, "draws": 10}
    store.insert_job(
        {"id": job_id, "kind": "fit_spectrum", "owner": owner, "status": QUEUED, "attempt": 0,
         "max_attempts": 2, "request": request, "body_sha256": "x", "created_at": time.time()},
        max_active=5,
    )  # fmt: skip


def test_claims_and_transitions_are_compare_and_set(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.upgrade()
    _queued_job(store)
    assert store.claim("j1", 0, "dispatcher-a", 30)
    assert not store.claim("j1", 0, "dispatcher-b", 30)  # the second dispatcher loses
    assert store.get_job("j1")["status"] == STARTING
    assert store.mark_running("j1", 1, {"pid": 1})
    assert store.requeue("j1", 1, INFRASTRUCTURE_LOST, "worker died", time.time())
    # A zombie worker of attempt 1 learns it is superseded and cannot finish the job.
    current, _ = store.heartbeat("j1", 1, {"phase": "sampling"})
    assert not current
    assert not store.finish("j1", 1, "SUCCEEDED")
    assert store.claim("j1", 1, "dispatcher-b", 30)
    assert store.get_job("j1")["attempt"] == 2


def test_model_errors_fail_at_once_and_lost_workers_retry_until_attempts_run_out(tmp_path):
    settings = Settings(data_dir=tmp_path)
    store = JobStore(settings.database_url)
    store.upgrade()
    dispatcher = Dispatcher(settings, store, ArtifactStore(settings.artifacts_dir), 1)
    _queued_job(store, "model")
    _queued_job(store, "lost")

    def run(job_id, outcome):
        job = store.get_job(job_id)
        assert store.claim(job_id, job["attempt"], dispatcher.lease_owner, 30)
        flight = _InFlight(job_id, job["attempt"] + 1, "fit_spectrum", job["request"], None)
        dispatcher._settle(flight, outcome)
        return store.get_job(job_id)

    failed = run("model", {"outcome": "failed", "error_type": MODEL_ERROR, "message": "no fit"})
    assert (failed["status"], failed["attempt"], failed["error_type"]) == ("FAILED", 1, MODEL_ERROR)
    lost = {"outcome": "lost", "error_type": INFRASTRUCTURE_LOST, "message": "node died"}
    assert run("lost", lost)["status"] == QUEUED
    final = run("lost", lost)  # max_attempts = 2
    assert (final["status"], final["attempt"], final["error_type"]) == (
        "FAILED",
        2,
        INFRASTRUCTURE_LOST,
    )


def test_a_result_with_the_wrong_draw_count_never_succeeds(tmp_path):
    import numpy as np
    import xarray as xr

    settings = Settings(data_dir=tmp_path)
    store = JobStore(settings.database_url)
    store.upgrade()
    artifacts = ArtifactStore(settings.artifacts_dir)
    dispatcher = Dispatcher(settings, store, artifacts, 1)
    _queued_job(store)  # asks for 2 chains × 10 draws
    assert store.claim("j1", 0, dispatcher.lease_owner, 30)
    folder = artifacts.attempt_dir("j1", 1)
    folder.mkdir(parents=True)
    truncated = xr.Dataset({"R1": (("chain", "draw"), np.ones((2, 7)))})
    xr.DataTree.from_dict({"/posterior": truncated}).to_netcdf(folder / "result.nc")
    artifacts.publish("j1", 1, primary="result.nc")
    flight = _InFlight("j1", 1, "fit_spectrum", store.get_job("j1")["request"], None)
    dispatcher._settle(flight, {"outcome": "published"})
    job = store.get_job("j1")
    assert job["status"] == "FAILED"
    assert "7 draws" in job["error_message"] and "2 × 10" in job["error_message"]
