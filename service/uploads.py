"""Uploads: files streamed into a staging folder as they arrive, names and disk space checked.

A multipart body is parsed while it streams in (python-multipart's parser, the one Starlette
uses); each ``files`` part goes straight into its file under the staging folder, hashed on
the way, so no upload is ever held in memory. A name is checked before its first byte is
written; the free space of the file system is checked before the first byte and every few
MB; ``ENOSPC`` anywhere becomes :class:`~service.errors.StorageFull` (507). Whatever fails,
the caller removes the staging folder.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.errors import BodyTooLarge, MalformedBody, RequestInvalid, StorageFull

#: One path segment of an uploaded file's name (no separators, no spaces).
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_FILES = 1000
#: Free space is checked again after every this many bytes written.
SPACE_CHECK_BYTES = 4 * 1024 * 1024


@dataclass
class Upload:
    """The files of one submission, in ``folder``; ``files`` maps name → SHA-256."""

    folder: Path
    files: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.files)


def check_upload_name(name: str, index: int) -> str:
    """A relative POSIX path made of safe segments; anything else is refused."""
    parts = name.split("/")
    if (
        not name
        or len(name) > 300
        or len(parts) > 8
        or any(not SAFE_NAME.match(p) or set(p) == {"."} for p in parts)
    ):
        raise RequestInvalid(
            f"files[{index}]",
            f"file name {name!r} is not a relative path of letters, digits, '_', '.', '-'",
        )
    return name


def free_bytes(path: Path) -> int:
    """Free space of the file system holding ``path`` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def require_space(path: Path, min_free: int, needed: int = 0) -> None:
    """Raise :class:`StorageFull` unless ``needed`` bytes fit with ``min_free`` left over."""
    free = free_bytes(path)
    if free - needed < min_free:
        raise StorageFull(
            f"the server's disk is too full to store this ({free // 2**20} MiB free, "
            f"{min_free // 2**20} MiB are kept in reserve)"
        )


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a full disk or quota."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc) or "errno = 28" in str(exc):
            return True  # HDF5 reports the errno in its message only
        exc = exc.__cause__ or exc.__context__
    return False


def _open_new(folder: Path, name: str):
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def stage_files(files: list[tuple[str, bytes]], folder: Path, min_free: int = 0) -> Upload:
    """Write in-memory ``(name, content)`` pairs into a new staging folder."""
    if len(files) > MAX_FILES:
        raise RequestInvalid("files", f"{len(files)} files; at most {MAX_FILES} per job")
    require_space(folder, min_free, sum(len(c) for _, c in files))
    upload = Upload(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, content) in enumerate(files):
        check_upload_name(name, i)
        if name in upload.files:
            raise RequestInvalid("files", "two uploaded files have the same name")
        try:
            with _open_new(folder, name) as f:
                f.write(content)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFull("the server's disk filled up while storing the upload") from exc
            raise
        upload.files[name] = hashlib.sha256(content).hexdigest()
    return upload


class _Stager:
    """Callbacks of the multipart parser; file data is queued, then written off the loop."""

    def __init__(self, upload: Upload, fields: tuple[str, ...], max_field_bytes: int):
        self.upload, self.allowed, self.max_field_bytes = upload, fields, max_field_bytes
        self.header_name, self.header_value = b"", b""
        self.disposition = b""
        self.name: str | None = None  # the current part's form field
        self.file: str | None = None  # the current part's file name (file parts)
        self.data = bytearray()
        self.pending: list[tuple[str, str, bytes | None]] = []  # (op, file name, data)
        self.n_files = 0

    def on_part_begin(self) -> None:
        self.disposition, self.name, self.file = b"", None, None
        self.data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]
        if len(self.header_value) > 4096:
            raise MalformedBody("a multipart header is longer than 4 KiB")

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise MalformedBody("a multipart part has no Content-Disposition name")
        self.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            return
        index = self.n_files
        self.n_files += 1
        if self.name != "files":
            raise RequestInvalid(self.name, "files are sent as parts named 'files'")
        if self.n_files > MAX_FILES:
            raise RequestInvalid("files", f"more than {MAX_FILES} files")
        name = check_upload_name(options[b"filename"].decode("utf-8", "replace"), index)
        if name in self.upload.files or any(p[1] == name for p in self.pending if p[0] == "open"):
            raise RequestInvalid("files", "two uploaded files have the same name")
        self.file = name
        self.pending.append(("open", name, None))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is not None:
            self.pending.append(("write", self.file, bytes(data[start:end])))
            return
        self.data += data[start:end]
        if len(self.data) > self.max_field_bytes:
            raise BodyTooLarge(f"form field {self.name!r} is larger than {self.max_field_bytes}")

    def on_part_end(self) -> None:
        if self.file is not None:
            self.pending.append(("close", self.file, None))
        elif self.name in self.allowed:
            self.upload.fields[self.name] = self.data.decode("utf-8", "replace")


class _Writer:
    """The files being written (runs in a worker thread)."""

    def __init__(self, upload: Upload, min_free: int):
        self.upload, self.min_free = upload, min_free
        self.open: dict[str, tuple] = {}
        self.since_check = 0

    def apply(self, ops: list[tuple[str, str, bytes | None]]) -> None:
        try:
            for op, name, data in ops:
                if op == "open":
                    self.open[name] = (_open_new(self.upload.folder, name), hashlib.sha256())
                elif op == "write":
                    f, h = self.open[name]
                    f.write(data)
                    h.update(data)
                    self.since_check += len(data)
                    if self.since_check > SPACE_CHECK_BYTES:
                        self.since_check = 0
                        require_space(self.upload.folder, self.min_free)
                else:
                    f, h = self.open.pop(name)
                    f.close()
                    self.upload.files[name] = h.hexdigest()
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFull("the server's disk filled up while storing the upload") from exc
            raise

    def close(self) -> None:
        for f, _ in self.open.values():
            f.close()


async def receive_multipart(
    request,
    folder: Path,
    *,
    fields: tuple[str, ...],
    max_field_bytes: int,
    min_free: int,
) -> Upload:
    """Stream a ``multipart/form-data`` body into ``folder``.

    Parameters
    ----------
    request : the Starlette request (its body is read once, as it arrives).
    folder : a new staging folder.
    fields : names of the text fields kept (others are ignored).
    max_field_bytes : largest text field.
    min_free : free space (bytes) the file system must keep.

    Raises
    ------
    MalformedBody, RequestInvalid, BodyTooLarge, StorageFull
    """
    _, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if not boundary:
        raise MalformedBody("multipart/form-data needs a boundary parameter")
    length = request.headers.get("content-length")
    require_space(folder, min_free, int(length) if length and length.isdigit() else 0)
    folder.mkdir(parents=True, exist_ok=True)
    upload = Upload(folder)
    stager = _Stager(upload, fields, max_field_bytes)
    writer = _Writer(upload, min_free)
    callbacks = {
        name: getattr(stager, name)
        for name in ("on_part_begin", "on_part_data", "on_part_end", "on_header_field",
                     "on_header_value", "on_header_end", "on_headers_finished")
    }  # fmt: skip
    parser = MultipartParser(boundary, callbacks)
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if stager.pending:
                ops, stager.pending = stager.pending, []
                await anyio.to_thread.run_sync(writer.apply, ops)
        parser.finalize()
    except MultipartParseError as exc:
        raise MalformedBody(f"the multipart body is malformed: {exc}") from None
    finally:
        writer.close()
    if writer.open:
        raise MalformedBody("the multipart body ended inside a file")
    return upload
