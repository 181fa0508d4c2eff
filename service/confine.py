"""A client is never trusted: paths stay inside their upload, messages name no server path.

:func:`confine_manifest` refuses a study manifest whose files lie outside the study's root
(absolute paths, ``..``, symbolic links out), before anything reads them, at submission; the
study loader confines them again when the job runs (``load_study(..., root=)``).
:func:`scrub` turns any message the service passes on to a user into one line without server
paths.
"""

from __future__ import annotations

import re
from pathlib import Path

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
    """Refuse a manifest whose ``[[files]]`` paths leave ``root``, reading no data file.

    The check is the study loader's own (:func:`inference.study.check_paths`, which
    ``load_study(..., root=)`` applies again when the job runs).

    Parameters
    ----------
    manifest : the study's manifest (inside ``root``).
    root : the folder the study may read: the job's upload, or one dataset's folder.

    Raises
    ------
    RequestInvalid
        ``files``: names the manifest entry (as written) and why; no server path.
    """
    from inference.errors import InputError
    from inference.study import check_paths

    try:
        check_paths(manifest, root=root)
    except InputError as exc:
        raise RequestInvalid("files", scrub(exc, root)) from None
