"""The server's Ray: connecting (embedded cluster or an existing one), watching, healing.

Ray 2.6x turns token authentication on for new local clusters unless ``RAY_AUTH_MODE`` says
otherwise, so we always set it ourselves. The embedded cluster runs with ``token`` auth, its
token in ``<data_dir>/ray/auth_token`` (mode 0600, created once): Ray's own ports listen on
the machine's interfaces, and the token is what keeps others from submitting code to them.
No dashboard, no Ray client server and no job-submission server are started.

Joining an existing cluster (``--ray-address``, e.g. a KubeRay head) uses that cluster's auth
settings from the environment (``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``);
when ``RAY_AUTH_MODE`` is unset we set the server's configured mode.

:class:`RayRuntime` watches the connection from a thread: every ``ray_probe_s`` it checks
that the embedded cluster's processes (raylet, GCS) are alive, and every few probes it runs a
no-CPU task under a timeout (three timeouts in a row, or any other failure of it, count). That
task also reports the cluster's CPUs (:attr:`RayRuntime.cpus`, the dispatcher's capacity): it
asks the GCS from a worker, because a GCS query from the server blocks while the GCS is down
and Ray ends the whole process 60 s later, even after a heal (measured, Ray 2.60). A
failed check marks the runtime ``degraded`` (``/v1/health``
answers 503, the dispatcher stops claiming) and heals it: ``ray.shutdown()`` (in a thread,
bounded), then a new ``ray.init`` — a new embedded cluster, or the external one again —
retried with exponential backoff (capped at ``ray_backoff_max_s``). ``generation`` counts
connections, so the dispatcher can tell which of its tasks belonged to a dead cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import time

import ray

from service.config import Settings
from service.study_fanout import cluster_cpus

NAMESPACE = "sigmalab"
#: The ping task runs every this many probes…
PING_EVERY = 5
#: …and this many timeouts in a row (not one) mean Ray is unavailable.
SLOW_PINGS = 3
log = logging.getLogger(__name__)


def token_path(settings: Settings):
    return settings.data_dir / "ray" / "auth_token"


def ensure_token(settings: Settings) -> str:
    """Path of the embedded cluster's Ray token, creating it on first use."""
    path = token_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return str(path)


def set_auth_env(mode: str, token_path: str | None = None) -> None:
    """Set ``RAY_AUTH_MODE`` (and the token file) for this process and the Ray it starts.

    Ray caches its configuration when it is imported; like Ray's own ``_enable_token_auth``
    we re-read it so that a mode set after ``import ray`` takes effect.
    """
    from ray._raylet import Config

    os.environ["RAY_AUTH_MODE"] = mode
    if token_path is not None:
        os.environ["RAY_AUTH_TOKEN_PATH"] = token_path
    Config.initialize("")


def connect(settings: Settings) -> None:
    """``ray.init`` for the server process (the dispatcher is the Ray driver)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if settings.ray_address:
        set_auth_env(os.environ.get("RAY_AUTH_MODE", settings.ray_auth_mode))
        ray.init(address=settings.ray_address, namespace=NAMESPACE, log_to_driver=False)
        return
    token = None
    if settings.ray_auth_mode == "token" and not os.environ.get("RAY_AUTH_TOKEN"):
        token = ensure_token(settings)
    set_auth_env(settings.ray_auth_mode, token)
    # address="local": always a new cluster, never one that happens to run on this machine.
    ray.init(
        address="local",
        num_cpus=settings.ray_num_cpus,
        include_dashboard=False,
        namespace=NAMESPACE,
        log_to_driver=False,
    )


@ray.remote(num_cpus=0, max_retries=0)
def _ping() -> int:
    """The cluster's CPUs."""
    return cluster_cpus()


class RayRuntime:
    """The Ray connection of one server, watched and healed.

    Parameters
    ----------
    settings : ``ray_address`` (None: embedded cluster), probe period and timeouts.
    owned : False when someone else started Ray in this process (tests): the runtime then
        only watches and never restarts it.

    Attributes
    ----------
    lock : held by the dispatcher around its Ray calls and by the healer around a restart.
    generation : incremented on every (re)connection.
    cpus : the cluster's CPUs as the last probe task saw them (1 until it answers).
    state : ``connected``, ``degraded`` or ``stopped``.
    """

    def __init__(self, settings: Settings, *, owned: bool = True):
        self.settings, self.owned = settings, owned
        self.lock = threading.RLock()
        self.generation = 0
        self.state, self.reason, self.since = "starting", None, time.time()
        self.restarts = 0
        self.cpus = 1
        self._probes = 0
        self._slow_pings = 0
        self._stop = threading.Event()
        self._suspect = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> RayRuntime:
        """Connect (retrying with backoff) and start watching."""
        if self.owned:
            self._connect_with_backoff()
        else:
            self._set("connected", None)
            self.generation += 1
        self._thread = threading.Thread(target=self._loop, name="ray-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._suspect.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.owned:
            self._shutdown()
        self._set("stopped", None)

    @property
    def healthy(self) -> bool:
        return self.state == "connected"

    def status(self) -> dict:
        return {"state": self.state, "reason": self.reason, "since": self.since,
                "restarts": self.restarts}  # fmt: skip

    def suspect(self) -> None:
        """Ask for a check now (the dispatcher saw a Ray system error)."""
        self._suspect.set()

    # -- watching -----------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._suspect.wait(self.settings.ray_probe_s)
            self._suspect.clear()
            if self._stop.is_set():
                return
            problem = self.check()
            if problem is None:
                if self.state != "connected":
                    self._set("connected", None)
                continue
            log.warning("Ray is unavailable: %s", problem)
            self._set("degraded", problem)
            if self.owned:
                self._heal()

    def check(self) -> str | None:
        """None when Ray answers; otherwise what is wrong."""
        if not ray.is_initialized():
            return "not connected"
        dead = self._dead_processes()
        if dead:
            return f"{', '.join(dead)} died"
        probe, self._probes = self._probes, self._probes + 1
        if probe % PING_EVERY and self.state == "connected" and not self._slow_pings:
            return None
        try:
            self.cpus = ray.get(_ping.remote(), timeout=self.settings.ray_probe_timeout_s)
        except ray.exceptions.GetTimeoutError:
            # A busy machine can be slow to start a worker: only repeated timeouts count.
            self._slow_pings += 1
            if self._slow_pings < SLOW_PINGS:
                return None
            return f"{self._slow_pings} probe tasks timed out"
        except Exception as exc:  # any other failure of the round trip: Ray cannot run jobs
            return f"a probe task failed: {type(exc).__name__}"
        self._slow_pings = 0
        return None

    def _dead_processes(self) -> list[str]:
        node = getattr(ray._private.worker, "_global_node", None)
        if not self.owned or node is None:
            return []
        return sorted({name for name, _ in node.dead_processes()})

    # -- healing ------------------------------------------------------------------------------

    def _heal(self) -> None:
        with self.lock:
            self._shutdown()
            if self._connect_with_backoff():
                self.restarts += 1
                log.warning("Ray reconnected (generation %d)", self.generation)

    def _connect_with_backoff(self) -> bool:
        delay = 1.0
        while not self._stop.is_set():
            try:
                with self.lock:
                    connect(self.settings)
                    self.generation += 1
                    self._probes = 0  # the first probe of a new cluster runs the task
                self._set("connected", None)
                return True
            except Exception as exc:  # the cluster is still down: wait and try again
                log.warning("connecting to Ray failed (%s); retrying in %.0f s", exc, delay)
                self._set("degraded", f"reconnecting: {type(exc).__name__}")
                self._shutdown()
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.ray_backoff_max_s)
        return False

    def _shutdown(self, timeout_s: float = 60.0) -> None:
        """``ray.shutdown()``, bounded; processes of a dead embedded cluster are killed."""
        node = getattr(ray._private.worker, "_global_node", None)
        pids = []
        if node is not None and self.owned and not self.settings.ray_address:
            pids = [p.process.pid for ps in node.all_processes.values() for p in ps]
        done = threading.Event()

        def shutdown():
            try:
                ray.shutdown()
            except Exception as exc:  # a half-dead cluster may fail to shut down cleanly
                log.warning("ray.shutdown failed: %s", exc)
            done.set()

        threading.Thread(target=shutdown, name="ray-shutdown", daemon=True).start()
        if not done.wait(timeout_s):
            log.warning("ray.shutdown did not return within %.0f s", timeout_s)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _set(self, state: str, reason: str | None) -> None:
        if state != self.state:
            self.since = time.time()
        self.state, self.reason = state, reason
