"""Getting an instrument file's text safely: size limit, empty and binary files, encodings.

Every reader goes through :func:`load_text` (or :func:`check_file` for binary formats), so the
same checks and the same one-line errors apply to every format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from inference.errors import FileFormatError

#: Default largest file the readers accept (bytes). Instrument exports of a few spectra are
#: kilobytes; a long DC record at 1 Hz for a week is ~ 40 MB of text. Pass ``max_bytes`` to
#: any reader to raise the limit.
MAX_FILE_BYTES = 20_000_000

#: Bytes looked at to recognise a format or a binary file.
HEAD_BYTES = 8192


@dataclass(frozen=True)
class TextFile:
    """Decoded text of an instrument file.

    Attributes
    ----------
    path : the file, as given (used in error messages).
    lines : the file's lines without line endings; ``lines[0]`` is line 1.
    encoding : the encoding that decoded it (``utf-8``, ``utf-16`` or ``latin-1``).
    """

    path: str
    lines: list[str]
    encoding: str


def check_file(path, max_bytes: int = MAX_FILE_BYTES) -> int:
    """Size of ``path`` in bytes, after checking it exists, is a file, is not empty or too large."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise FileFormatError(path, "no such file") from None
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror})") from None
    if Path(path).is_dir():
        raise FileFormatError(path, "is a directory, not a file")
    if size == 0:
        raise FileFormatError(path, "file is empty")
    if size > max_bytes:
        raise FileFormatError(
            path,
            f"file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit for instrument "
            "files (pass max_bytes=... to read it anyway)",
        )
    return size


def read_head(path, n: int = HEAD_BYTES) -> bytes:
    """The first ``n`` bytes of ``path``."""
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror})") from None


def looks_binary(data: bytes) -> bool:
    """True for content that no text export contains: NUL bytes or many control characters."""
    if b"\x00" in data:
        return True
    control = sum(1 for b in data if b < 9 or 13 < b < 32)
    return control > 0.01 * max(len(data), 1)


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def is_utf16(data: bytes) -> bool:
    """True for text that starts with a UTF-16 byte-order mark (PalmSens PSTrace, Excel)."""
    return data[:2] in _UTF16_BOMS


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding name: UTF-16 with a BOM, UTF-8 (with or without BOM), else Latin-1.

    EC-Lab and Gamry on Windows write Latin-1 / cp1252 (``µ``, ``°`` as single bytes); Latin-1
    decodes every byte, and the characters that differ from cp1252 never occur in numbers.
    """
    if is_utf16(data):
        return data.decode("utf-16", errors="replace"), "utf-16"
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def load_text(path, max_bytes: int = MAX_FILE_BYTES) -> TextFile:
    """Read a text export: checks size, emptiness and binary content before decoding.

    Raises
    ------
    FileFormatError
        Missing, empty, too large (over ``max_bytes``) or binary file.
    """
    check_file(path, max_bytes)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FileFormatError(path, f"cannot be read ({exc.strerror})") from None
    if not is_utf16(data) and (looks_binary(data[:HEAD_BYTES]) or b"\x00" in data):
        raise FileFormatError(path, "binary file, not a text export")
    text, encoding = decode(data)
    if not text.strip():
        raise FileFormatError(path, "file is empty (only blank lines)")
    return TextFile(path=str(path), lines=text.splitlines(), encoding=encoding)
