"""Fixtures of the service tests: one real Ray and one PostgreSQL per session, real servers.

Imported by ``tests/test_service_*.py`` and ``tests/test_campaigns*.py``. Ray is started once
per pytest process (a module singleton, so several test modules share it) with token auth,
like the server's embedded cluster; server subprocesses and a second Ray node join it with
the same token file. PostgreSQL is a throwaway server of this session
(:mod:`postgres_server`); each server under test gets a fresh database in it. Outside CI a
machine without the PostgreSQL binaries skips the PostgreSQL tests; in CI (``CI`` set) that
is a failure, so they always run there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CIRCUIT = "R0-p(R1,CPE1)"
#: Truth used to simulate the test spectrum (Ω, Ω⁻¹ s^α, -).
TRUTH = {"R0": 20.0, "R1": 150.0, "CPE1_0": 2e-6, "CPE1_1": 0.9}

_ray_address: str | None = None
_postgres = None
DATABASES = ("sqlite", "postgresql")
#: Settings of every test server: fast loops, and limits that the tests' data fit.
FAST = {"lease_s": 5.0, "cancel_grace_s": 3.0, "poll_s": 0.1, "retry_backoff_s": 0.5,
        "min_free_bytes": 16 * 2**20, "min_cron_interval_s": 1.0}  # fmt: skip


def start_ray() -> str:
    """Start the session's Ray once; returns its address.

    3 CPUs (the server-kill test runs three jobs at once), token auth, no dashboard.
    """
    global _ray_address
    if _ray_address is None:
        import ray

        from service.ray_cluster import set_auth_env

        token_dir = Path(tempfile.mkdtemp(prefix="sigmalab-ray-"))
        (token_dir / "auth_token").write_text(os.urandom(32).hex())
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        set_auth_env("token", str(token_dir / "auth_token"))
        ray.init(
            address="local",
            num_cpus=3,
            include_dashboard=False,
            namespace="sigmalab",
            log_to_driver=False,
        )
        _ray_address = ray.get_runtime_context().gcs_address
    return _ray_address


def postgres():
    """The session's PostgreSQL server (started on first use), or skip/fail without one."""
    global _postgres
    if _postgres is None:
        import atexit

        import postgres_server

        reason = postgres_server.available()
        if reason is not None:
            if os.environ.get("CI"):
                pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}")
            pytest.skip(reason)
        _postgres = postgres_server.PostgresServer()
        atexit.register(_postgres.stop)
    return _postgres


def database_url(kind: str, data_dir: Path) -> str | None:
    """``None`` (SQLite in the data dir) or the URL of a fresh PostgreSQL database."""
    return None if kind == "sqlite" else postgres().create_database()


def write_spectrum_csv(path: Path, seed: int = 0) -> Path:
    """A 3-column CSV (frequency Hz, Z' Ω, Z'' Ω) simulated from TRUTH with 1 % noise."""
    from inference.circuits import simulate_spectrum

    f = np.logspace(6, -1, 36)
    ds = simulate_spectrum(CIRCUIT, TRUTH, f, noise_rel=0.01, seed=seed)
    data = np.column_stack([f, ds["z_real"].values, ds["z_imag"].values])
    np.savetxt(path, data, delimiter=",")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


class LiveServer:
    """The API + dispatcher in this process (uvicorn in a thread), on the session's Ray."""

    def __init__(self, data_dir: Path, database: str = "sqlite", **settings):
        import uvicorn

        from service.api import create_app, open_manager
        from service.auth import create_token
        from service.campaigns.manager import CampaignManager
        from service.config import Settings
        from service.dispatcher import Dispatcher
        from service.server import uvicorn_config

        self.database = database
        db_url = settings.pop("db_url", None) or database_url(database, data_dir)
        self.settings = Settings(data_dir=data_dir, db_url=db_url, **{**FAST, **settings})
        self.manager = open_manager(self.settings)
        store = self.manager.store
        self.tokens = {
            "alice": create_token(store, "alice", "submit")[1],
            "bob": create_token(store, "bob", "submit")[1],
            "reader": create_token(store, "reader", "read")[1],
            "limited": create_token(store, "limited", "submit", 1, 1)[1],
            "admin": create_token(store, "admin", "admin")[1],
        }
        self.dispatcher = Dispatcher(self.settings, store, self.manager.artifacts)
        self.dispatcher.start()
        self.campaigns = CampaignManager(self.manager)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(
            self.settings,
            manager=self.manager,
            campaigns=self.campaigns,
            ray_runtime=self.dispatcher.runtime,
        )
        config = uvicorn_config(app, self.settings, "127.0.0.1", port, "warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 20, "uvicorn to start")

    def client(self, name: str = "alice", **kwargs):
        from service.client import Client

        return Client(self.url, self.tokens[name], **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.dispatcher.stop()


class ServerProcess:
    """``python -m service.server`` as a child process joined to the session's Ray (or with
    its own embedded Ray when ``ray_address`` is None)."""

    def __init__(self, data_dir: Path, ray_address: str | None, *extra: str, db: str | None = None):
        self.data_dir, self.ray_address, self.extra, self.db = data_dir, ray_address, extra, db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "server.log"

    def start(self) -> ServerProcess:
        import httpx

        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "service.server", "--data-dir", str(self.data_dir),
            "--port", str(self.port), "--log-level", "warning", "--min-free-mb", "16",
            "--retry-backoff-seconds", "0.5", *self.extra,
        ]  # fmt: skip
        if self.ray_address is not None:
            cmd += ["--ray-address", self.ray_address]
        if self.db is not None:
            cmd += ["--db", self.db]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

        def healthy():
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                return httpx.get(f"{self.url}/v1/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 60, "the server process to answer /v1/health", poll_s=0.3)
        return self

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()


@contextlib.contextmanager
def second_ray_node(ray_address: str, num_cpus: int = 1):
    """A second Ray node on this machine (`ray start --address …`); yields both nodes' ids."""
    import ray

    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    node = subprocess.Popen(
        [ray_cli, "start", "--address", ray_address, "--num-cpus", str(num_cpus), "--block",
         "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    alive = lambda: [n for n in ray.nodes() if n["Alive"]]  # noqa: E731
    try:
        wait_for(lambda: len(alive()) == 2, 60, "the second Ray node to join")
        yield {n["NodeID"] for n in alive()}
    finally:
        os.killpg(node.pid, signal.SIGTERM)
        node.wait(timeout=30)
        wait_for(lambda: len(alive()) == 1, 60, "node 2 to stop")
        # `ray start` recorded our cluster as this machine's current one; a later bare
        # ray.init() elsewhere must not try to join it.
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.is_file() and current.read_text().strip() == ray_address:
            current.unlink()
    with pytest.raises(ProcessLookupError):
        os.killpg(node.pid, 0)


@pytest.fixture(scope="session")
def ray_address() -> str:
    return start_ray()


@pytest.fixture(scope="session")
def spectrum_file(tmp_path_factory) -> Path:
    return write_spectrum_csv(tmp_path_factory.mktemp("spectra") / "cell01.csv")


@pytest.fixture(scope="session", params=DATABASES)
def live_server(request, ray_address, tmp_path_factory):
    """An in-process server per database (SQLite, PostgreSQL), shared by the session."""
    server = LiveServer(tmp_path_factory.mktemp(f"service-{request.param}"), request.param)
    yield server
    server.stop()
