"""Where compiled models are kept, so that every process on a machine reuses them.

:func:`configure` runs when :mod:`inference` is first imported — before anything of ours imports
PyTensor or JAX — so the CLI, the Python API, a notebook and a Ray worker all share one cache:

- PyTensor: ``base_compiledir=<cache>/pytensor`` is added to ``PYTENSOR_FLAGS`` unless those
  flags already name a ``base_compiledir`` or ``compiledir``;
- JAX's persistent compilation cache: ``JAX_COMPILATION_CACHE_DIR=<cache>/jax`` unless set, every
  compiled function kept (``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0``: the small helpers
  too, they add up in a new process), at most 2 GiB (least recently used entries go first).
  When JAX was imported before :mod:`inference`, its configuration is updated instead, unless
  the user set a cache directory there.

``<cache>`` is ``$SIGMALAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/sigmalab``, else
``~/.cache/sigmalab``; ``SIGMALAB_CACHE_DIR=off`` leaves both libraries at their own defaults
(JAX: no persistent cache). Variables the user set always win. PyTensor reads its flags once,
when it is imported: a process that imported PyTensor (e.g. ``import pymc``) before
:mod:`inference` keeps PyTensor's own default, ``~/.pytensor``, which persists too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Upper bound of JAX's persistent cache (bytes).
JAX_CACHE_MAX_BYTES = 2 * 1024**3
_DONE = False


def cache_dir() -> Path | None:
    """The sigmalab cache folder (not created), or None when caching is switched off."""
    explicit = os.environ.get("SIGMALAB_CACHE_DIR")
    if explicit is not None:
        return None if explicit.strip().lower() in ("", "off", "0", "none") else Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sigmalab"


def configure() -> Path | None:
    """Point PyTensor and JAX at the cache folder (once per process); returns the folder."""
    global _DONE
    root = cache_dir()
    if _DONE or root is None:
        return root
    _DONE = True
    try:
        (root / "pytensor").mkdir(parents=True, exist_ok=True)
        (root / "jax").mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: run without a shared cache rather than fail
        return None
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "compiledir" not in flags and "pytensor" not in sys.modules:
        extra = f"base_compiledir={root / 'pytensor'}"
        os.environ["PYTENSOR_FLAGS"] = f"{flags},{extra}" if flags.strip() else extra
    jax_settings = {
        "JAX_COMPILATION_CACHE_DIR": str(root / "jax"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_COMPILATION_CACHE_MAX_SIZE": str(JAX_CACHE_MAX_BYTES),
    }
    if "jax" in sys.modules:
        _update_jax(jax_settings)
    else:
        for name, value in jax_settings.items():
            os.environ.setdefault(name, value)
    return root


def _update_jax(settings: dict[str, str]) -> None:
    """JAX already read its environment: set the options it left at their defaults."""
    import jax

    if "JAX_COMPILATION_CACHE_DIR" in os.environ or jax.config.jax_compilation_cache_dir:
        return
    jax.config.update("jax_compilation_cache_dir", settings["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_compilation_cache_max_size", JAX_CACHE_MAX_BYTES)
