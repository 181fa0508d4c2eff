"""Beyond one process: kill -9 of the server during running jobs, and a second Ray node.

The server runs as a real child process (``python -m service.server``) joined to the session's
Ray; its token comes from the real ``sigmalab token create`` command.
"""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import os
from pathlib import Path

import pytest
from service_fixtures import (  # noqa: F401  (fixtures)
    CIRCUIT,
    TRUTH,
    ServerProcess,
    live_server,
    ray_address,
    second_ray_node,
    spectrum_file,
    wait_for,
)
from typer.testing import CliRunner

from service.client import Client
from service.commands import token as token_cli

FAST_RECOVERY = ("--lease-seconds", "4", "--cancel-grace-seconds", "2")


def _new_token(data_dir: Path, scope: str = "submit", db: str | None = None) -> str:
    args = ["create", "--name", "lab", "--scope", scope, "--data-dir", str(data_dir)]
    result = CliRunner().invoke(token_cli.app, args + (["--db", db] if db else []))
    assert result.exit_code == 0, result.output
    return result.output.split()[-1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_token_create_prints_a_working_token_last(tmp_path, live_server):
    token = _new_token(live_server.settings.data_dir, db=live_server.settings.db_url)
    with Client(live_server.url, token) as client:
        assert list(client.jobs()) == []  # authenticated: a 401 would raise AuthError
    listed = CliRunner().invoke(token_cli.app, ["list", "--data-dir", str(tmp_path)])
    assert listed.exit_code == 0 and token not in listed.output


def test_server_killed_during_three_running_jobs_loses_none(ray_address, spectrum_file, tmp_path):
    data_dir = tmp_path / "service"
    server = ServerProcess(data_dir, ray_address, *FAST_RECOVERY).start()
    try:
        token = _new_token(data_dir, "admin")  # admins see where jobs run (their pids)
        with Client(server.url, token) as client:
            jobs = [
                client.submit_fit(spectrum_file, CIRCUIT, draws=400, tune=300, seed=i)
                for i in range(3)
            ]

            def all_running():
                infos = [j.refresh() for j in jobs]
                assert not any(i.done for i in infos), "a job ended before the kill"
                ok = all(i.status == "RUNNING" and i.worker for i in infos)
                return infos if ok else None

            infos = wait_for(all_running, 120, "three jobs to run at once")
        server.kill9()
        # Ray fate-shares tasks with their driver: the dead server's attempts stop computing.
        pids = [i.worker.pid for i in infos]
        wait_for(lambda: not any(_alive(p) for p in pids), 60, "the old workers to exit")
    finally:
        server.stop()

    restarted = ServerProcess(data_dir, ray_address, *FAST_RECOVERY).start()
    try:
        with Client(restarted.url, token) as client:
            for job in jobs:
                job.client = client
                info = job.wait(timeout=240, progress=False).info
                assert info.status == "SUCCEEDED"
                assert info.attempt == 2  # the first attempt died with the server
                assert "expired; recovering" in job.logs()
                r1 = job.result()["posterior"]["R1"]
                assert r1.sizes == {"chain": 2, "draw": 400}
                assert abs(float(r1.median()) / TRUTH["R1"] - 1) < 0.05
            assert sorted(j.id for j in client.jobs()) == sorted(j.id for j in jobs)
    finally:
        restarted.stop()


@pytest.mark.parametrize("live_server", ["sqlite"], indirect=True)  # the database plays no part
def test_jobs_run_on_a_second_ray_node(ray_address, live_server, spectrum_file):
    """`ray start --address …` adds a node on this machine; jobs land on both nodes."""
    with second_ray_node(ray_address) as node_ids, live_server.client("admin") as client:
        jobs = [
            client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=2000, seed=i)
            for i in range(8)
        ]
        used = set()
        for job in jobs:
            info = job.wait(timeout=180, progress=False).info
            assert info.status == "SUCCEEDED"
            used.add(info.worker.node_id)
    assert used == node_ids
