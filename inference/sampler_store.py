"""Traced samplers kept on disk, so a new process skips PyMC, PyTensor and JAX tracing.

Tracing blackjax's window adaptation and NUTS for one model takes seconds of Python (4–6 s
CPU for a 3-arc circuit), and JAX's persistent compilation cache only saves the XLA compile
that follows. :mod:`inference.samplers` therefore exports each traced function with
:mod:`jax.export` and keeps it here, one file per (model structure, sampler settings, data
shapes); a later process deserialises it in milliseconds, without building the PyMC model,
and JAX's cache supplies the compiled code.

A file's name hashes its key together with :func:`code_fingerprint` — the versions of JAX,
jaxlib, blackjax, PyMC, PyTensor and numpy and the source of :mod:`inference` — so any change
of code or library makes a new entry (old ones are removed once more than :data:`MAX_FILES`
exist). Files live in ``<cache>/samplers`` (:mod:`inference.caches`); a missing, unreadable or
stale file only means tracing again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from inference import caches

#: Entries kept (least recently written removed first); one is ~0.2 MB.
MAX_FILES = 200
_PACKAGES = ("jax", "jaxlib", "blackjax", "pymc", "pytensor", "numpy")


@functools.cache
def code_fingerprint() -> str:
    """Hash of the library versions and of every source file of :mod:`inference`."""
    from importlib import metadata

    h = hashlib.sha256()
    for pkg in _PACKAGES:
        try:
            h.update(f"{pkg}={metadata.version(pkg)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{pkg}=none;".encode())
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _path(key: str) -> Path | None:
    root = caches.cache_dir()
    if root is None:
        return None
    digest = hashlib.sha256(f"{code_fingerprint()}\n{key}".encode()).hexdigest()[:40]
    return root / "samplers" / f"{digest}.npz"


@contextlib.contextmanager
def locked(key: str):
    """Hold a file lock on ``key`` (no-op without a cache folder or ``fcntl``): a process that
    traces and compiles a sampler does so alone, the others wait and then load its work."""
    path = _path(key)
    try:
        import fcntl
    except ImportError:  # not POSIX
        fcntl = None
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def has(key: str) -> bool:
    """Whether an entry for ``key`` is on disk (it may still fail to load)."""
    path = _path(key)
    return path is not None and path.is_file()


def load(key: str) -> tuple[dict, dict] | None:
    """``(meta, {name: jax.export.Exported})`` stored under ``key``, or None."""
    path = _path(key)
    if path is None or not path.is_file():
        return None
    try:
        from jax import export

        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            if meta.get("key") != key:
                return None
            functions = {
                name: export.deserialize(bytearray(npz[f"fn_{name}"].tobytes()))
                for name in meta["functions"]
            }
    except Exception:  # noqa: BLE001 — a damaged or foreign file is just a cache miss
        return None
    return meta, functions


def save(key: str, meta: dict, functions: dict) -> None:
    """Store exported functions (atomically: a reader never sees half a file)."""
    path = _path(key)
    if path is None:
        return
    blobs = {f"fn_{n}": np.frombuffer(bytes(f.serialize()), np.uint8) for n, f in functions.items()}
    header = json.dumps({**meta, "key": key, "functions": list(functions)}).encode()
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npz.tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.frombuffer(header, np.uint8), **blobs)
        os.replace(tmp, path)
        _prune(path.parent)
    except OSError:  # a full or read-only disk: run without storing
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(folder: Path) -> None:
    """Remove the oldest entries (and their lock files) beyond :data:`MAX_FILES`."""
    files = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime)
    for old in files[:-MAX_FILES]:
        old.unlink(missing_ok=True)
        old.with_suffix(".lock").unlink(missing_ok=True)
