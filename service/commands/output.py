"""What every CLI command shares: one-line errors, output paths checked before work, JSON.

A user mistake ends a command with one line on stderr, ``error: …``, at most as wide as the
terminal (80 columns when it is not one), and exit code 2, *before* any work is done: output
folders and files are checked first (probed with a temporary file, nothing left behind). ``--json``
output goes to stdout alone, as one JSON document, so that it pipes into ``jq``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from inference.errors import InputError
from inference.summary import json_safe

#: Exit code of a user mistake (bad option, file, id, unreachable server…).
USAGE_EXIT = 2
#: A path in a message (shortened first when an error line is too long).
_PATH = re.compile(r"\S*/\S+")


def width() -> int:
    """Columns available for one line: the terminal's, or 80 when output is not a terminal."""
    return max(shutil.get_terminal_size((80, 24)).columns, 40)


def one_line(message: str, columns: int | None = None) -> str:
    """``message`` on one line of at most ``columns`` characters.

    Whitespace runs (newlines included) become one space; when still too long, paths lose
    their middle folders, longest first (``/data/…/cell.mpt``), then the message its middle.
    """
    columns = columns or width()
    text = " ".join(str(message).split())
    for token in sorted(set(_PATH.findall(text)), key=len, reverse=True):
        if len(text) <= columns:
            break
        if "://" in token:  # a URL stays whole
            continue
        parts = token.split("/")
        for keep in range(len(parts) - 1, 1, -1):  # drop middle folders until the line fits
            head, tail = parts[: keep // 2], parts[len(parts) - (keep - keep // 2) :]
            shorter = text.replace(token, "/".join([*head, "…", *tail]))
            if len(shorter) <= columns or keep == 2:
                text = shorter
                break
    if len(text) > columns:
        half = (columns - 1) // 2
        text = f"{text[:half]}…{text[-(columns - 1 - half) :]}"
    return text


def error_line(message: str) -> None:
    """Print ``error: message`` on stderr, one line (see :func:`one_line`)."""
    line = one_line(f"error: {message}")
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        Text(line, style="red"), overflow="ignore", crop=False
    )


def fail(message: str, code: int = USAGE_EXIT) -> NoReturn:
    """End the command with a one-line error and ``code`` (2: a user mistake)."""
    error_line(message)
    raise typer.Exit(code)


def _probe(folder: Path, path: Path, option: str) -> None:
    """Create and remove a temporary file in ``folder``: can ``path`` be written there?"""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sigmalab-probe-", dir=folder)
    except OSError as err:
        where = "" if folder == path else f" in {folder}"
        raise InputError(f"{option} {path}: cannot write{where} ({err.strerror})") from None
    os.close(fd)
    os.unlink(tmp)


def output_dir(path: Path, option: str = "--out") -> Path:
    """Check an output folder before any work, creating nothing: it is a folder (or does not
    exist yet) and it, or the nearest folder above it that exists, takes a new file.

    The folder itself is made when the results are written.

    Raises
    ------
    InputError
        ``path`` (or a path above it) is a file, or nothing can be written there; the message
        names ``option``.
    """
    path = Path(path)
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        what = "is a file" if existing == path else f"is below a file, {existing}"
        raise InputError(f"{option} {path}: {what}, not a folder")
    _probe(existing, path, option)
    return path


def output_file(path: Path, option: str = "--out") -> Path:
    """Check an output file's place before any work (not a folder; its folder writable or
    creatable), creating nothing."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder, not a file name")
    try:
        output_dir(path.parent, option)
    except InputError as err:  # name the file the user gave, not its folder
        reason = str(err).rsplit(": ", 1)[-1]
        raise InputError(f"{option} {path}: {reason}") from None
    return path


def print_json(value) -> None:
    """``value`` as one JSON document on stdout (NaN/inf as null, numpy scalars as numbers)."""
    typer.echo(json.dumps(json_safe(value), indent=2, default=str))


def warning_line(message: str) -> None:
    """Print ``warning: message`` on stderr, one line."""
    line = one_line(f"warning: {message}")
    Console(stderr=True, soft_wrap=True, highlight=False).print(
        Text(line, style="yellow"), overflow="ignore", crop=False
    )


def connect(url: str | None, token: str | None):
    """A service client whose retries are announced on stderr as they happen."""
    from service.client import Client

    return Client(url, token, on_retry=warning_line)


#: The packages of the ``sigmalab[service]`` extra, by import name.
SERVICE_MODULES = ("ray", "fastapi", "uvicorn", "multipart", "sqlalchemy", "alembic", "croniter")


def require_service(command: str) -> None:
    """Refuse ``command`` in one line when the ``sigmalab[service]`` extra is not installed."""
    from importlib.util import find_spec

    missing = [m for m in SERVICE_MODULES if find_spec(m) is None]
    if missing:
        what = missing[0] + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        raise InputError(f"{command}: pip install 'sigmalab[service]' first ({what} missing)")


def table(*columns: str, title: str | None = None, left: int = 1):
    """A compact rich table for 80 columns: a rule under the header, no box, one space between
    columns; the first ``left`` columns left-aligned, the rest right-aligned (numbers)."""
    from rich import box
    from rich.table import Table

    out = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
        title=title, title_justify="left",
    )  # fmt: skip
    for i, name in enumerate(columns):
        out.add_column(name, justify="left" if i < left else "right", no_wrap=i >= left)
    return out
