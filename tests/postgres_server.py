"""A throwaway PostgreSQL server for the test session: ``initdb`` in a temp folder, one port.

``make test`` installs the server binaries (``scripts/ensure-postgres.sh``, apt as root); this
module starts a private server from them, so the tests never touch a server someone else
runs. ``SIGMALAB_TEST_POSTGRES`` (a libpq URL such as ``postgresql://user@host:5432``) points
the tests at an existing server instead. As root the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


def available() -> str | None:
    """None when a server can be had, else why not."""
    if os.environ.get("SIGMALAB_TEST_POSTGRES"):
        return None
    if _bindir() is None:
        return "PostgreSQL server binaries not found (make test installs them as root)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as another user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server; :meth:`create_database` hands out fresh, empty databases."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.root: Path | None = None
        external = os.environ.get("SIGMALAB_TEST_POSTGRES")
        if external:
            self.base = external.rstrip("/")
            return
        bindir = _bindir()
        # /tmp, not $TMPDIR: the postgres user must be able to reach the folder.
        self.root = Path(tempfile.mkdtemp(prefix="sigmalab-pg-", dir="/tmp"))
        data = self.root / "data"
        self.port = _free_port()
        as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        run = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
        subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "sigmalab", "-A", "trust",
             "-E", "UTF8", "--no-sync"],
            **run,
        )  # fmt: skip
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 (closed with the server)
        self.proc = subprocess.Popen(
            [*as_user, str(bindir / "postgres"), "-D", str(data), "-p", str(self.port),
             "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.base = f"postgresql://sigmalab@127.0.0.1:{self.port}"
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 60) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.root / "server.log").read_text(errors="replace")
                raise RuntimeError(f"PostgreSQL exited with {self.proc.returncode}: {log}")
            try:
                psycopg.connect(f"{self.base}/postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"{self.base}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str) -> str:
        return self.base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{database}"

    def terminate_connections(self, url: str) -> int:
        """Drop every connection to the database of ``url`` (a lost database connection)."""
        import psycopg

        database = url.rsplit("/", 1)[1]
        with psycopg.connect(f"{self.base}/postgres", autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
        return len(rows)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown: it closes the clients' connections.
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
