"""A durable local outbox: encoded records waiting for Kafka, in an append-only file (synchronous, thread-safe).

Layout of the spool directory (one gateway process owns it, enforced with an exclusive ``flock``):

- ``spool.log``: one entry per line, ``<crc32 of the JSON, 8 hex digits> <JSON>\\n`` with the JSON
  ``{"seq": n, "topic": ..., "key": ..., "value": <base64 of the encoded record>}``. Each append is
  one ``write`` followed by ``fsync``, so a crash can only tear the *last* line.
- ``spool.ack``: the highest sequence number delivered; every entry up to it is done. Replaced
  atomically (write, fsync, rename, fsync of the directory).

Recovery on open: a last line that is incomplete (no newline) or fails its CRC/JSON check is a torn
append from a crash; it was never acknowledged to anyone, so it is cut off (logged). A bad line
anywhere else means the file was damaged after it was written: ``SpoolCorruptError`` naming the
offset, and the gateway does not start until an operator looks at it.

Removal: ``ack(seq)`` records delivery up to ``seq``; once every entry is delivered the log is
truncated, and when delivered entries make up most of a large log it is rewritten without them
(to a temporary file that atomically replaces it).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import logging
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from producers.mediaservice.models import CallbackError

log = logging.getLogger(__name__)

LOG_NAME = "spool.log"
ACK_NAME = "spool.ack"
LOCK_NAME = "spool.lock"
COMPACT_BYTES = 8 * 1024 * 1024  # rewrite the log once this many delivered bytes lead it (and they are most of it)


class SpoolError(CallbackError):
    """The spool cannot be opened, read or written."""


class SpoolCorruptError(SpoolError):
    """A line other than the last one does not decode: the file was damaged after it was written."""


@dataclass(frozen=True)
class SpoolEntry:
    """One encoded record waiting for Kafka."""

    seq: int
    topic: str
    key: str
    value: bytes


@dataclass(frozen=True)
class _Slot:
    seq: int
    offset: int
    length: int


def encode_line(entry: SpoolEntry) -> bytes:
    body = json.dumps(
        {"seq": entry.seq, "topic": entry.topic, "key": entry.key, "value": base64.b64encode(entry.value).decode()},
        separators=(",", ":"),
    ).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_line(line: bytes) -> SpoolEntry:
    """One line (with or without its newline); ``ValueError`` when it is not an intact entry."""
    crc, _, body = line.rstrip(b"\n").partition(b" ")
    if len(crc) != 8 or int(crc, 16) != zlib.crc32(body):
        raise ValueError("CRC mismatch")
    data: Any = json.loads(body)
    try:
        return SpoolEntry(int(data["seq"]), str(data["topic"]), str(data["key"]), base64.b64decode(data["value"]))
    except (KeyError, TypeError, binascii.Error) as exc:
        raise ValueError(f"not a spool entry: {exc}") from exc


def _scan(data: bytes, path: Path) -> tuple[list[tuple[SpoolEntry, _Slot]], int]:
    """The intact entries of a log's content and the length of its intact prefix (torn tail excluded)."""
    entries: list[tuple[SpoolEntry, _Slot]] = []
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        last = end == -1 or end == len(data) - 1
        line = data[offset:] if end == -1 else data[offset : end + 1]
        try:
            entry = decode_line(line)
            if end == -1:
                raise ValueError("no newline")
        except ValueError as exc:
            if last:
                log.warning("spool %s: cut off a torn last entry at byte %d (%s)", path, offset, exc)
                return entries, offset
            raise SpoolCorruptError(f"{path}: entry at byte {offset} is damaged ({exc})") from exc
        if entries and entry.seq <= entries[-1][0].seq:
            raise SpoolCorruptError(f"{path}: entry at byte {offset} has seq {entry.seq} after {entries[-1][0].seq}")
        entries.append((entry, _Slot(entry.seq, offset, len(line))))
        offset += len(line)
    return entries, offset


def _read_ack(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    if not text.isdigit():
        raise SpoolCorruptError(f"{path}: expected a sequence number, found {text[:40]!r}")
    return int(text)


def read_pending(directory: Path) -> list[SpoolEntry]:
    """The undelivered entries of a spool directory, read-only and without taking its lock (inspection)."""
    try:
        data = (directory / LOG_NAME).read_bytes()
    except FileNotFoundError:
        return []
    acked = _read_ack(directory / ACK_NAME)
    return [entry for entry, _ in _scan(data, directory / LOG_NAME)[0] if entry.seq > acked]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """The open spool of one directory. Use ``Spool.open``; ``close`` releases the lock."""

    def __init__(self, directory: Path, lock_fd: int, log_fd: int, slots: list[_Slot], size: int, acked: int) -> None:
        self.directory = directory
        self._lock_fd = lock_fd
        self._fd = log_fd
        self._slots = slots  # pending entries, in order
        self._size = size
        self._acked = acked
        self._next = max([acked, *(s.seq for s in slots)]) + 1
        self._mutex = threading.Lock()

    @classmethod
    def open(cls, directory: Path) -> Spool:
        """Open (creating) the spool of ``directory``, recovering a torn last entry."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SpoolError(f"cannot open spool directory {directory}: {exc}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise SpoolError(
                f"spool {directory} is in use by another process; give each gateway its own data_dir"
            ) from None
        try:
            return cls._recover(directory, lock_fd)
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def _recover(cls, directory: Path, lock_fd: int) -> Spool:
        path = directory / LOG_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            data = os.pread(fd, os.fstat(fd).st_size, 0)
        except OSError as exc:
            raise SpoolError(f"cannot open spool log {path}: {exc}") from exc
        try:
            entries, intact = _scan(data, path)
            if intact < len(data):
                os.ftruncate(fd, intact)
                os.fsync(fd)
            acked = _read_ack(directory / ACK_NAME)
        except BaseException:
            os.close(fd)
            raise
        slots = [slot for entry, slot in entries if entry.seq > acked]
        return cls(directory, lock_fd, fd, slots, intact, acked)

    @property
    def pending_count(self) -> int:
        return len(self._slots)

    def append(self, topic: str, key: str, value: bytes) -> SpoolEntry:
        """Write one entry durably (fsync'd before returning)."""
        with self._mutex:
            entry = SpoolEntry(self._next, topic, key, value)
            line = encode_line(entry)
            try:
                written = os.write(self._fd, line)
                if written != len(line):
                    raise OSError(f"short write: {written} of {len(line)} bytes")
                os.fsync(self._fd)
            except OSError as exc:
                self._cut_to_size()
                raise SpoolError(f"cannot append to spool {self.directory}: {exc}") from exc
            self._slots.append(_Slot(entry.seq, self._size, len(line)))
            self._size += len(line)
            self._next += 1
            return entry

    def _cut_to_size(self) -> None:
        """Drop whatever part of a failed append reached the file."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as exc:
            log.error("spool %s: cannot cut a failed append (recovery will at open): %s", self.directory, exc)

    def pending(self, limit: int) -> list[SpoolEntry]:
        """The first ``limit`` undelivered entries, in order."""
        with self._mutex:
            slots = self._slots[:limit]
            try:
                return [decode_line(os.pread(self._fd, s.length, s.offset)) for s in slots]
            except (OSError, ValueError) as exc:
                raise SpoolError(f"cannot read spool {self.directory}: {exc}") from exc

    def ack(self, seq: int) -> None:
        """Record delivery of every entry up to ``seq``; shrink the log when that frees enough of it."""
        with self._mutex:
            if seq <= self._acked:
                return
            self._write_ack(seq)
            self._acked = seq
            self._slots = [s for s in self._slots if s.seq > seq]
            if not self._slots:
                self._truncate()
            elif self._slots[0].offset >= COMPACT_BYTES and self._slots[0].offset * 2 >= self._size:
                self._compact()

    def _write_ack(self, seq: int) -> None:
        tmp = self.directory / (ACK_NAME + ".tmp")
        try:
            with tmp.open("w") as out:
                out.write(f"{seq}\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.directory / ACK_NAME)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise SpoolError(f"cannot record delivery in spool {self.directory}: {exc}") from exc

    def _truncate(self) -> None:
        try:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
        except OSError as exc:
            raise SpoolError(f"cannot truncate spool {self.directory}: {exc}") from exc
        self._size = 0

    def _compact(self) -> None:
        start = self._slots[0].offset
        path, tmp = self.directory / LOG_NAME, self.directory / (LOG_NAME + ".tmp")
        try:
            tail = os.pread(self._fd, self._size - start, start)
            with tmp.open("wb") as out:
                out.write(tail)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            _fsync_dir(self.directory)
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise SpoolError(f"cannot compact spool {self.directory}: {exc}") from exc
        os.close(self._fd)
        self._fd = fd
        self._slots = [_Slot(s.seq, s.offset - start, s.length) for s in self._slots]
        self._size -= start
        log.info("spool %s compacted: %d delivered bytes removed", self.directory, start)

    def close(self) -> None:
        """Close the files and release the lock."""
        with self._mutex:
            os.close(self._fd)
            os.close(self._lock_fd)
