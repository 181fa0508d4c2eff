"""A client is never trusted: paths stay inside their upload, messages name no server path.

:func:`confine_manifest` refuses a study manifest whose files lie outside the study's root
(absolute paths, ``..``, symbolic links out), before anything reads them, at submission and
again when the job runs. :func:`scrub` turns any message the service passes on to a user
into one line without server paths.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path, PurePosixPath

from service.errors import RequestInvalid

#: An absolute POSIX path inside a message: a '/' that starts a word.
_ABSOLUTE = re.compile(r"(?<![\w.~-])/[^\s'\"`,;()\[\]{}<>]*")


def scrub(text: object, *roots: Path) -> str:
    """The first line of ``text``, paths under ``roots`` made relative, others ``<path>``."""
    line = (str(text).splitlines() or [""])[0]
    for root in sorted({str(r) for r in roots}, key=len, reverse=True):
        line = line.replace(f"{root}/", "").replace(root, ".")
    return _ABSOLUTE.sub("<path>", line)


def confine_manifest(manifest: Path, root: Path) -> None:
    """Refuse a manifest whose ``[[files]]`` paths leave ``root``.

    Parameters
    ----------
    manifest : the study's manifest (inside ``root``).
    root : the folder the study may read: the job's upload, or one dataset's folder.

    Raises
    ------
    RequestInvalid
        ``files``: names the manifest entry (as written) and why; no server path.

    A manifest that does not parse is left to the loader, which reads no data file then.
    """
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    entries = data.get("files")
    if not isinstance(entries, list):
        return
    root = root.resolve()
    where = manifest.resolve().relative_to(root).as_posix()
    for i, item in enumerate(entries):
        path = item.get("path") if isinstance(item, dict) else None
        if not isinstance(path, str):
            continue
        entry = f"{where} [files #{i + 1} ({path})]"
        pure = PurePosixPath(path)
        if pure.is_absolute() or "\\" in path or path.startswith("~"):
            raise RequestInvalid("files", f"{entry}: absolute paths are not allowed")
        if ".." in pure.parts:
            raise RequestInvalid("files", f"{entry}: '..' is not allowed in a file path")
        if not (manifest.parent / path).resolve().is_relative_to(root):
            raise RequestInvalid("files", f"{entry}: the file lies outside the study folder")
