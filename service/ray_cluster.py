"""Connecting the server to Ray: an embedded local cluster by default, or an existing one.

Ray 2.6x turns token authentication on for new local clusters unless ``RAY_AUTH_MODE`` says
otherwise, so we always set it ourselves. The embedded cluster runs with ``token`` auth, its
token in ``<data_dir>/ray/auth_token`` (mode 0600, created once): Ray's own ports listen on
the machine's interfaces, and the token is what keeps others from submitting code to them.
No dashboard, no Ray client server and no job-submission server are started, so the only
ports open are the ones Ray's processes need to talk to each other.

Joining an existing cluster (``--ray-address``, e.g. a KubeRay head) uses that cluster's auth
settings from the environment (``RAY_AUTH_MODE``, ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``);
when ``RAY_AUTH_MODE`` is unset we set the server's configured mode.
"""

from __future__ import annotations

import os
import secrets

import ray

from service.config import Settings

NAMESPACE = "sigmalab"


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
