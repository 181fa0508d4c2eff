"""The service under attack, through real HTTP on loopback: each High finding's reproducer.

1. A study manifest naming a file outside its upload (absolute path, ``../``, a symbolic
   link out of a dataset) is refused with 422 before anything reads it, and no answer names
   a server path or tells whether it exists.
2. Bodies are counted as they arrive: a chunked upload over the limit, or a large body
   without a valid token, is cut off near its limit (the server answers before the client
   has sent it all), and nothing of it stays on disk.
3. Deeply nested JSON, huge cursors and other odd inputs are 4xx, never 5xx.
Plus the leaks: results, logs and job info carry no server paths, tracebacks or hosts.
"""

# ruff: noqa: F811  (pytest fixtures imported from service_fixtures shadow their names)
from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import time
import tomllib
import uuid
from pathlib import Path

import httpx
import pytest
import tomli_w
from service_fixtures import (  # noqa: F401  (fixtures)
    CIRCUIT,
    LiveServer,
    live_server,
    ray_address,
    spectrum_file,
    wait_for,
    write_spectrum_csv,
)

PROBLEM = "application/problem+json"


def _auth(server, name="alice") -> dict:
    return {"Authorization": f"Bearer {server.tokens[name]}"}


def _small_study(folder: Path) -> Path:
    """A one-recipe, one-cell study simulated by the virtual lab."""
    from optimizer.virtual_lab import LabSettings, simulate_study

    settings = LabSettings(
        temperatures_C=(30.0, 50.0), ion_cells_per_recipe=1, electron_cells_per_recipe=0
    )
    recipes = {"dry": {"binder": "PTFE", "binder_wt_pct": 0.5, "process": "dry"}}
    simulate_study(recipes, folder, seed=1, settings=settings, name="small")
    return folder


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return _small_study(tmp_path_factory.mktemp("study") / "small")


def _upload_study(server, folder: Path, manifest: dict, extra_files=()):
    files = [("files", ("manifest.toml", tomli_w.dumps(manifest).encode(), "text/plain"))]
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel != "manifest.toml" and not rel.startswith("."):
            files.append(("files", (rel, p.read_bytes(), "text/plain")))
    files += list(extra_files)
    request = {"kind": "analyze_study", "method": "lsq"}
    return httpx.post(
        f"{server.url}/v1/jobs",
        headers=_auth(server),
        data={"request": json.dumps(request)},
        files=files,
        timeout=60,
    )


def _no_server_path(text: str, server) -> None:
    assert str(server.settings.data_dir) not in text
    assert "/tmp/" not in text and "/proc/" not in text and "/etc/" not in text


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "missing-absolute"])
def test_manifest_paths_outside_the_upload_are_refused_and_named_without_server_paths(
    live_server, study, tmp_path, escape
):
    # A readable spectrum outside the upload: without confinement the job would run on it.
    outside = write_spectrum_csv(tmp_path / "secret.csv")
    manifest = tomllib.loads((study / "manifest.toml").read_text())
    target = {
        "absolute": str(outside),
        "dotdot": os.path.relpath(outside, live_server.settings.uploads_dir / "x"),
        "missing-absolute": str(tmp_path / "does-not-exist.csv"),
    }[escape]
    manifest["files"][0]["path"] = target
    live_server.settings.uploads_dir.mkdir(exist_ok=True)
    before = set(live_server.settings.uploads_dir.iterdir())
    r = _upload_study(live_server, study, manifest)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == ["files"]
    assert "files #1" in problem["detail"]
    # The answer names the entry as written, never a resolved server path, and says the
    # same whether the outside file exists or not.
    assert "exists" not in problem["detail"] and "not found" not in problem["detail"]
    _no_server_path(problem["detail"].replace(target, "<entry>"), live_server)
    assert set(live_server.settings.uploads_dir.iterdir()) == before  # nothing kept


def test_a_dataset_with_a_link_out_of_its_folder_is_refused(live_server, study, tmp_path):
    outside = write_spectrum_csv(tmp_path / "elsewhere.csv")
    dataset = live_server.settings.datasets_dir / f"linked-{uuid.uuid4().hex[:6]}"
    _copy(study, dataset)
    manifest = tomllib.loads((dataset / "manifest.toml").read_text())
    link = dataset / "eis" / "link.csv"
    link.symlink_to(outside)
    manifest["files"][0]["path"] = "eis/link.csv"
    (dataset / "manifest.toml").write_text(tomli_w.dumps(manifest))
    r = httpx.post(
        f"{live_server.url}/v1/jobs",
        headers=_auth(live_server),
        json={"kind": "analyze_study", "dataset": dataset.name, "method": "lsq"},
    )
    assert r.status_code == 422, r.text
    assert "outside the study folder" in r.json()["detail"]
    _no_server_path(r.json()["detail"], live_server)


def test_a_manifest_changed_after_submission_is_confined_when_the_job_runs(
    live_server, study, tmp_path
):
    """Confinement is checked again at run time: here a dataset changed under a queued job."""
    from service.auth import create_token
    from service.store import QUEUED
    from service.worker import AttemptEnv, run_attempt

    outside = write_spectrum_csv(tmp_path / "later.csv")
    dataset = live_server.settings.datasets_dir / f"changing-{uuid.uuid4().hex[:6]}"
    _copy(study, dataset)
    manifest = tomllib.loads((dataset / "manifest.toml").read_text())
    manifest["files"][0]["path"] = str(outside)
    (dataset / "manifest.toml").write_text(tomli_w.dumps(manifest))
    store = live_server.manager.store
    owner, _ = create_token(store, "runtime", "submit")
    job_id, request = uuid.uuid4().hex, {"kind": "analyze_study", "dataset": dataset.name,
                                         "manifest": None, "method": "lsq", "seed": 1}  # fmt: skip
    store.insert_job(
        {"id": job_id, "kind": "analyze_study", "owner": owner, "status": QUEUED, "attempt": 0,
         "max_attempts": 1, "request": request, "body_sha256": "x", "created_at": time.time()},
        max_active=5,
    )  # fmt: skip
    assert store.claim(job_id, 0, "test", 30)
    settings = live_server.settings
    env = AttemptEnv(store.url, str(settings.artifacts_dir), str(settings.uploads_dir / job_id),
                     str(settings.datasets_dir))  # fmt: skip
    outcome = run_attempt(job_id, 1, "analyze_study", request, env)
    assert outcome["outcome"] == "failed" and outcome["error_type"] == "validation"
    assert "absolute path refused" in outcome["message"]
    logs = "\n".join(r["message"] for r in store.logs(job_id))
    _no_server_path(outcome["message"].replace(str(outside), "<entry>"), live_server)
    assert str(settings.data_dir) not in logs


def _copy(source: Path, target: Path) -> None:
    for p in source.rglob("*"):
        if p.is_file():
            (target / p.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (target / p.relative_to(source)).write_bytes(p.read_bytes())


def _raw_post(
    server, path: str, headers: dict, chunks, chunk_size: int, prefix: bytes = b""
) -> tuple[int, int]:
    """POST a chunked body over a raw socket until the server answers; returns
    (status, bytes of body sent before the answer came)."""
    sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=30)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    if prefix:
        sock.sendall(f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n")
    sock.setblocking(False)
    sent, answer = 0, b""
    block = b"x" * chunk_size
    try:
        for _ in range(chunks):
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.setblocking(True)
                sock.sendall(f"{chunk_size:x}\r\n".encode() + block + b"\r\n")
                sent += chunk_size
            except (BrokenPipeError, ConnectionResetError):
                break
            finally:
                sock.setblocking(False)
        sock.setblocking(True)
        sock.settimeout(30)
        while b"\r\n" not in answer:
            answer += sock.recv(65536)
    finally:
        sock.close()
    return int(answer.split(b" ", 2)[1]), sent


@pytest.fixture(scope="module")
def small_limits(ray_address, tmp_path_factory):
    """A server with a 2 MiB upload limit (the defaults, 64 MiB, work the same way)."""
    server = LiveServer(
        tmp_path_factory.mktemp("limits"),
        max_upload_bytes=2 * 2**20,
        max_json_bytes=256 * 1024,
        max_small_body_bytes=64 * 1024,
        header_timeout_s=1.0,
        body_timeout_s=1.0,
    )
    yield server
    server.stop()


def test_a_chunked_upload_over_the_limit_is_cut_off_as_it_streams(small_limits):
    boundary = "sigmalab-test"
    headers = {**_auth(small_limits), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    part = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n').encode()  # fmt: skip
    status, sent = _raw_post(
        small_limits, "/v1/jobs", headers, chunks=1600, chunk_size=64 * 1024, prefix=part
    )
    assert status == 413
    # The server answered at its 2 MiB limit (plus what the sockets buffer), long before the
    # 100 MiB body was sent.
    assert sent < 32 * 2**20
    time.sleep(0.5)
    uploads = small_limits.settings.uploads_dir
    assert not uploads.exists() or [p.name for p in uploads.iterdir()] == []


def test_an_unauthenticated_body_is_refused_before_it_is_read(small_limits):
    headers = {"Content-Type": "application/json"}
    for path in ("/v1/campaigns", "/v1/jobs"):
        status, sent = _raw_post(small_limits, path, headers, chunks=1600, chunk_size=64 * 1024)
        assert status == 401
        assert sent < 32 * 2**20  # cut off at the 16 KiB allowed before authentication
    declared = httpx.post(
        f"{small_limits.url}/v1/campaigns",
        content=b"{" + b" " * 300_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert declared.status_code == 401 and declared.headers["content-type"] == PROBLEM


def _connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=10)


def test_slow_or_incomplete_requests_time_out(small_limits):
    # Headers that never end: the connection is closed after the 1 s header deadline.
    slow = _connect(small_limits)
    slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert slow.recv(1024) == b""  # closed by the server
    assert time.monotonic() - started < 8
    slow.close()
    # A body that stops arriving: 408 after the 1 s pause allowed between chunks.
    stalled = _connect(small_limits)
    stalled.sendall(
        b"POST /v1/campaigns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {small_limits.tokens['alice']}\r\n".encode()
        + b"Content-Length: 100\r\n\r\n{"
    )
    answer = b""
    while b"\r\n" not in answer:
        answer += stalled.recv(1024)
    stalled.close()
    assert answer.split()[1] == b"408"


def test_declared_lengths_over_the_route_limit_are_413(small_limits):
    r = httpx.post(
        f"{small_limits.url}/v1/campaigns",
        content=b"{" + b" " * 100_000 + b"}",
        headers={**_auth(small_limits), "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM


def test_nesting_and_cursors_beyond_bounds_are_4xx(live_server):
    headers = {**_auth(live_server), "Content-Type": "application/json"}
    deep = b"[" * 100_000 + b"]" * 100_000
    r = httpx.post(f"{live_server.url}/v1/jobs", content=deep, headers=headers)
    assert r.status_code == 400 and r.headers["content-type"] == PROBLEM
    nested: dict = {}
    for _ in range(1000):
        nested = {"a": nested}
    body = {"space": nested, "objectives": {"sigma_ion": "maximize"},
            "schedule": {"measurements": 2}}  # fmt: skip
    r = httpx.post(f"{live_server.url}/v1/campaigns", json=body, headers=_auth(live_server))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    import base64

    for seq in (2**64, -1, 0):
        cursor = base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode()
        r = httpx.get(f"{live_server.url}/v1/jobs", params={"cursor": cursor},
                      headers=_auth(live_server))  # fmt: skip
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


def test_fit_results_and_job_info_name_no_server_path_or_host(live_server, spectrum_file):
    import xarray as xr

    with live_server.client() as client:
        job = client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=40)
        info = job.wait(timeout=180, progress=False).info
        assert info.worker is None  # where it ran is for admins
        tree = job.result()
        text = json.dumps(info.model_dump(mode="json")) + job.logs()
    with live_server.client("admin") as admin:
        seen = admin.job(job.id).info
        assert seen.worker is not None and seen.worker.pid > 0
    _no_server_path(text, live_server)
    assert (
        b"cell01.csv"
        in (live_server.settings.artifacts_dir / job.id / "1" / "result.nc").read_bytes()
    )
    for path in (live_server.settings.artifacts_dir / job.id).rglob("*"):
        if path.is_file() and path.suffix in (".json", ".nc"):
            raw = path.read_bytes()
            assert str(live_server.settings.data_dir).encode() not in raw, path.name
    assert isinstance(tree, xr.DataTree)
    # Its inputs are gone once it ended; its result stays.
    assert not (live_server.settings.uploads_dir / job.id).exists()


def test_data_dir_database_and_results_are_private(live_server, spectrum_file):
    with live_server.client() as client:
        job = client.submit_fit(spectrum_file, CIRCUIT, method="lsq", draws=30)
        job.wait(timeout=180, progress=False)
    data = live_server.settings.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    private = [p for p in (live_server.settings.artifacts_dir / job.id).rglob("*") if p.is_file()]
    if live_server.database == "sqlite":
        private.append(data / "sigmalab.db")
    assert private
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path.name


def test_an_unexpected_error_leaves_no_traceback_or_path_in_the_job(live_server, monkeypatch):
    """A bug in a job kind: the job fails as a model error with one clean line."""
    from dataclasses import replace

    from service import jobs
    from service.auth import create_token
    from service.kinds import KINDS
    from service.store import QUEUED
    from service.worker import AttemptEnv, run_attempt

    def broken(request, ctx):
        raise RuntimeError(f"boom while reading {ctx.inputs_dir}/secret.csv")

    monkeypatch.setitem(KINDS, "propose", replace(KINDS["propose"], run=broken))
    store = live_server.manager.store
    owner, _ = create_token(store, "bug", "submit")
    job_id = uuid.uuid4().hex
    store.insert_job(
        {"id": job_id, "kind": "propose", "owner": owner, "status": QUEUED, "attempt": 0,
         "max_attempts": 1, "request": {"kind": "propose", "q": 1}, "body_sha256": "x",
         "created_at": time.time()},
        max_active=5,
    )  # fmt: skip
    assert store.claim(job_id, 0, "test", 30)
    inputs = live_server.settings.uploads_dir / job_id
    env = AttemptEnv(store.url, str(live_server.settings.artifacts_dir), str(inputs), "/x")
    outcome = run_attempt(job_id, 1, "propose", {"kind": "propose"}, env)
    assert outcome["outcome"] == "failed" and outcome["error_type"] == "model_error"
    assert outcome["message"] == "RuntimeError: boom while reading secret.csv"
    logs = "\n".join(r["message"] for r in store.logs(job_id))
    assert "Traceback" not in logs and str(live_server.settings.data_dir) not in logs
    assert jobs.KINDS["propose"].run is broken
