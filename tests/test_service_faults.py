"""Faults, on SQLite and PostgreSQL: Ray's raylet and GCS killed, database connections
dropped, a full disk. Each ends with every job in the right final state, none lost, none
doubled. (kill -9 of a worker and of the server: test_service_lifecycle/_recovery.)

Marked ``faults`` (minutes): ``make faults`` runs them, and CI after ``make test``. The Ray
faults need a server with its own embedded Ray (``python -m service.server``
without ``--ray-address``); the others use the session's servers. Seconds from a fault to
``degraded`` and to healed are printed (``pytest -s``) for the deployment notes.
"""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    CIRCUIT,
    DATABASES,
    TRUTH,
    LiveServer,
    ServerProcess,
    database_url,
    live_server,
    ray_address,
    spectrum_file,
    wait_for,
)
from typer.testing import CliRunner

from service.client import Client
from service.commands import token as token_cli

pytestmark = pytest.mark.faults


def _descendants(pid: int) -> dict[int, str]:
    """pid → executable name of every process below ``pid``."""
    parents, names = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        parents[int(entry)], names[int(entry)] = int(fields[1]), Path(argv0).name
    out, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in out:
                out[child] = names[child]
                todo.append(child)
    return out


def _kill(server: ServerProcess, name: str) -> None:
    pids = [p for p, n in _descendants(server.proc.pid).items() if n == name]
    assert pids, f"no {name} below the server"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def _health(url: str) -> int:
    try:
        return httpx.get(f"{url}/v1/health", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _token(data_dir: Path, db: str | None) -> str:
    args = ["create", "--name", "ops", "--scope", "admin", "--data-dir", str(data_dir)]
    result = CliRunner().invoke(token_cli.app, args + (["--db", db] if db else []))
    assert result.exit_code == 0, result.output
    return result.output.split()[-1]


def _timed_outage(server: ServerProcess, process: str) -> tuple[float, float]:
    """Kill one Ray process; seconds until /v1/health says degraded, then healthy again."""
    t0 = time.monotonic()
    _kill(server, process)
    wait_for(lambda: _health(server.url) == 503, 60, f"degraded after {process} died", 0.05)
    degraded = time.monotonic() - t0
    heal_s = 240
    try:
        wait_for(lambda: _health(server.url) == 200, heal_s, f"healed after {process} died", 0.2)
    except pytest.fail.Exception:
        # An intermittent stall: say whether the server lives and what its Ray supervisor logged.
        state = "alive" if server.proc.poll() is None else f"exited {server.proc.returncode}"
        tail = server.log.read_text(errors="replace")[-4000:]
        pytest.fail(f"not healed {heal_s} s after {process} died; server {state}; log:\n{tail}")
    return degraded, time.monotonic() - t0


@pytest.mark.parametrize("database", DATABASES)
def test_raylet_and_gcs_deaths_heal_and_lose_no_job(database, spectrum_file, tmp_path):
    data_dir = tmp_path / "service"
    db = database_url(database, data_dir)
    server = ServerProcess(data_dir, None, "--num-cpus", "2", "--lease-seconds", "6",
                           db=db).start()  # fmt: skip
    try:
        client = Client(server.url, _token(data_dir, db))
        jobs = [client.submit_fit(spectrum_file, CIRCUIT, draws=600, tune=300, seed=i)
                for i in range(2)]  # fmt: skip

        def running():
            infos = [j.refresh() for j in jobs]
            assert not any(i.done for i in infos), "a job ended before the fault"
            return all(i.status == "RUNNING" for i in infos)

        wait_for(running, 180, "both jobs to run")
        raylet = _timed_outage(server, "raylet")
        health = httpx.get(f"{server.url}/v1/health").json()
        assert health["status"] == "ok" and health["ray_restarts"] == 1
        for job in jobs:
            info = job.wait(timeout=300, progress=False).info
            assert info.status == "SUCCEEDED" and info.attempt == 2
            assert "the Ray cluster died" in job.logs() or "lost" in job.logs()
            r1 = job.result()["posterior"]["R1"]
            assert r1.sizes == {"chain": 2, "draw": 600}
            assert abs(float(r1.median()) / TRUTH["R1"] - 1) < 0.05
        gcs = _timed_outage(server, "gcs_server")
        after = client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=50)
        assert after.wait(timeout=300, progress=False).info.status == "SUCCEEDED"
        assert sorted(j.id for j in client.jobs()) == sorted([*(j.id for j in jobs), after.id])
        print(f"\n[faults {database}] raylet: degraded after {raylet[0]:.1f} s, healed after "
              f"{raylet[1]:.1f} s; GCS: degraded after {gcs[0]:.1f} s, healed after "
              f"{gcs[1]:.1f} s")  # fmt: skip
    finally:
        server.stop()


def _drop_connections(server: LiveServer) -> None:
    """Every database connection of the server dies under it."""
    if server.database == "postgresql":
        from service_fixtures import postgres

        assert postgres().terminate_connections(server.settings.database_url) > 0
        return
    pool = server.manager.store.engine.pool
    for record in list(pool._pool.queue):  # the idle pooled SQLite handles, closed under it
        record.dbapi_connection.close()


def test_dropped_database_connections_lose_no_job(live_server, spectrum_file):
    with live_server.client() as client:
        jobs = [client.submit_fit(spectrum_file, CIRCUIT, draws=300, tune=200, seed=i)
                for i in range(3)]  # fmt: skip
        wait_for(lambda: any(j.refresh().status == "RUNNING" for j in jobs), 120, "a job to run")
        _drop_connections(live_server)
        assert client.job(jobs[0].id).info.id == jobs[0].id  # the API reconnects
        for job in jobs:
            info = job.wait(timeout=300, progress=False).info
            assert info.status == "SUCCEEDED"
            assert job.result()["posterior"]["R1"].sizes == {"chain": 2, "draw": 300}
        ids = [j.id for j in client.jobs()]
    assert len(ids) == len(set(ids)) and {j.id for j in jobs} <= set(ids)


def _mount_tmpfs(path: Path, size_mb: int) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a size-limited tmpfs needs root")
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs",
                    str(path)], check=True)  # fmt: skip


def _fill(folder: Path) -> Path:
    """Write a ballast file until the disk is full."""
    ballast = folder / "ballast"
    block = b"\0" * (1 << 20)
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
    return ballast


@pytest.mark.parametrize("database", DATABASES)
def test_a_full_disk_fails_jobs_as_storage_full_and_refuses_uploads(
    database, ray_address, spectrum_file, tmp_path
):
    # The data directory (uploads, results) on a 48 MB file system; the database elsewhere,
    # as on a server whose PostgreSQL (or SQLite file) lives on another disk.
    data_dir = tmp_path / "disk"
    _mount_tmpfs(data_dir, 48)
    db = f"sqlite:///{tmp_path / 'jobs.db'}" if database == "sqlite" else None
    server = None
    try:
        server = LiveServer(data_dir, database, db_url=db, min_free_bytes=8 * 2**20)
        with server.client("admin") as client:
            # 60 000 draws sample for ~10 s (6 000 took 1 s, over before a poll saw them).
            job = client.submit_fit(spectrum_file, CIRCUIT, draws=60_000, tune=300, seed=1)
            wait_for(
                lambda: (i := job.refresh()).done or i.phase in ("compiling", "sampling"),
                180,
                "the fit to compile or sample",
            )
            assert not job.info.done, f"the fit ended before the disk filled: {job.info}"
            ballast = _fill(data_dir)
            health = httpx.get(f"{server.url}/v1/health")
            assert health.status_code == 503 and health.json()["disk"] == "low"
            r = httpx.post(
                f"{server.url}/v1/jobs",
                headers={"Authorization": f"Bearer {server.tokens['alice']}"},
                data={"request": '{"kind": "fit_spectrum", "circuit": "R0-p(R1,CPE1)"}'},
                files=[("files", ("cell.csv", spectrum_file.read_bytes(), "text/csv"))],
            )
            assert r.status_code == 507 and r.json()["type"].endswith("storage-full")
            # The fit's result does not fit: the job fails, and is not retried.
            info = wait_for(lambda: (i := job.refresh()).done and i, 300, "the job to end")
            assert info.status == "FAILED" and info.error_type == "storage_full"
            assert info.attempt == 1
            ballast.unlink()  # the operator frees space
            assert _health(server.url) == 200
            again = client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=50)
            assert again.wait(timeout=180, progress=False).info.status == "SUCCEEDED"
        if database == "sqlite":
            with sqlite3.connect(tmp_path / "jobs.db") as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        print(f"\n[faults {database}] full disk: job {info.status} {info.error_type} after "
              f"{info.attempt} attempt; upload answered {r.status_code}")  # fmt: skip
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", "-l", str(data_dir)], check=False)
