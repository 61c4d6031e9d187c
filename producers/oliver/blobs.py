"""Where uploaded audio files are kept. ``BlobStore`` is the contract; ``LocalBlobStore`` keeps them on disk.

An upload is written to a temporary file next to its final place, probed there, and only then
renamed (atomically) to ``<root>/<cid>/<pid>.<ext>``. If the block that holds the upload fails at
any point (too large, not audio, Kafka down) nothing is left behind, not even a committed file.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobUpload(Protocol):
    """One file being received."""

    @property
    def path(self) -> Path:
        """A local file holding the bytes written so far (for probing)."""
        ...

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def commit(self, pid: int, ext: str) -> str:
        """Make the file durable under its final name; returns its URI."""
        ...


class BlobStore(Protocol):
    def upload(self, cid: int) -> AbstractAsyncContextManager[BlobUpload]:
        """A new upload for tenant ``cid``; everything it wrote is removed if the block raises."""
        ...


def safe_ext(ext: str) -> str:
    """A file extension made of 1-8 lower-case letters/digits; "bin" otherwise."""
    ext = ext.lower().lstrip(".")
    return ext if 0 < len(ext) <= 8 and ext.isascii() and ext.isalnum() else "bin"


class _LocalUpload:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f".upload-{uuid.uuid4().hex}.part"
        self.size = 0
        self.final: Path | None = None
        self._file: BinaryIO = self.path.open("wb")

    async def write(self, data: bytes) -> None:
        await asyncio.to_thread(self._append, data)
        self.size += len(data)

    def _append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()  # ``path`` shows every byte written (it is probed before commit)

    async def commit(self, pid: int, ext: str) -> str:
        final = self.folder / f"{pid}.{safe_ext(ext)}"
        await asyncio.to_thread(self._persist, final)
        self.final = final
        return final.resolve().as_uri()

    def _persist(self, final: Path) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.path, final)

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
        if self.final is not None:
            self.final.unlink(missing_ok=True)


class LocalBlobStore:
    """Files under ``root`` (``Settings.blobs_path``): ``<root>/<cid>/<pid>.<ext>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @asynccontextmanager
    async def upload(self, cid: int) -> AsyncIterator[BlobUpload]:
        folder = self.root / str(cid)
        folder.mkdir(parents=True, exist_ok=True)
        upload = _LocalUpload(folder)
        try:
            yield upload
        except BaseException:
            upload.discard()
            raise
        else:
            if upload.final is None:  # never committed: nothing to keep
                upload.discard()
