"""Message framing of the Cresta streams: consecutive JSON objects in an HTTP body, one JSON object per WebSocket frame.

HTTP bodies may separate the objects by any whitespace (NDJSON, several objects on one line, one
object across lines). ``JsonObjectSplitter`` finds where each top-level object ends by tracking
brackets and strings as bytes arrive (string contents are skipped with one regex search, so base64
audio costs little), then decodes the complete object with ``json.JSONDecoder.raw_decode``. A
malformed object is therefore reported as soon as it is complete, not when the body ends.

Limits are in bytes of the encoded message (``max_bytes``, from ``Settings.max_frame_bytes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from producers.cresta.models import Code, CrestaError

_OUTSIDE = re.compile(rb'[{}\[\]"]')
_INSIDE = re.compile(rb'["\\]')
_NON_SPACE = re.compile(rb"[^ \t\r\n]")
_OPEN = frozenset(b"{[")
_QUOTE = ord('"')
_BACKSLASH = ord("\\")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Frame:
    """One request message: its JSON text as received and the decoded object."""

    text: str
    value: dict[str, Any]


def too_large(size: int, max_bytes: int) -> CrestaError:
    return CrestaError(Code.RESOURCE_EXHAUSTED, f"message of {size} bytes exceeds the limit of {max_bytes} bytes")


def decode_object(data: bytes | str, index: int, max_bytes: int) -> Frame:
    """Decode one complete message (bytes or text); it must be exactly one JSON object."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise too_large(len(raw), max_bytes)
    try:
        text = data if isinstance(data, str) else data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CrestaError(Code.INVALID_ARGUMENT, f"message {index} is not UTF-8: {exc}") from exc
    start = len(text) - len(text.lstrip())
    try:
        value, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise CrestaError(Code.INVALID_ARGUMENT, f"message {index} is not valid JSON: {exc}: {text!r:.80}") from exc
    if text[end:].strip():
        raise CrestaError(Code.INVALID_ARGUMENT, f"message {index} has text after its JSON object: {text[end:]!r:.40}")
    if not isinstance(value, dict):
        raise CrestaError(Code.INVALID_ARGUMENT, f"message {index} is not a JSON object: {text!r:.40}")
    return Frame(text=text[start:end], value=value)


class JsonObjectSplitter:
    """Incremental splitter of a byte stream into whitespace-separated JSON objects."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._scan = 0  # next byte of the buffer to look at
        self._depth = 0  # open brackets of the object being scanned; 0 = between objects
        self._in_string = False
        self._count = 0  # messages completed so far

    def feed(self, data: bytes) -> Iterator[Frame]:
        """The messages completed by ``data``, one by one: a malformed or oversize message raises CrestaError
        only once the messages before it have been taken."""
        self._buffer += data
        while (end := self._find_end()) is not None:
            self._count += 1
            frame = decode_object(bytes(self._buffer[:end]), self._count, self._max_bytes)
            del self._buffer[:end]
            self._scan = 0
            yield frame
        if self._depth and len(self._buffer) > self._max_bytes:
            raise too_large(len(self._buffer), self._max_bytes)

    def end(self) -> None:
        """The body has ended: CrestaError if it stopped inside a message."""
        if self._depth:
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                f"the body ended inside message {self._count + 1} ({len(self._buffer)} bytes unterminated)",
            )

    def _find_end(self) -> int | None:
        """Offset just past the first complete top-level object of the buffer, None if there is none yet."""
        buffer, at = self._buffer, self._scan
        while True:
            if self._depth == 0:
                found = _NON_SPACE.search(buffer, at)
                if found is None:
                    buffer.clear()
                    self._scan = 0
                    return None
                if buffer[found.start()] != ord("{"):
                    raise CrestaError(
                        Code.INVALID_ARGUMENT,
                        f"message {self._count + 1} is not a JSON object: {bytes(buffer[found.start() :])!r:.40}",
                    )
                del buffer[: found.start()]
                self._depth, at = 1, 1
            pattern = _INSIDE if self._in_string else _OUTSIDE
            found = pattern.search(buffer, at)
            if found is None:
                self._scan = len(buffer)
                return None
            at = found.end()
            char = buffer[found.start()]
            if char == _BACKSLASH:
                if at >= len(buffer):  # the escaped character has not arrived yet
                    self._scan = found.start()
                    return None
                at += 1
            elif char == _QUOTE:
                self._in_string = not self._in_string
            else:
                self._depth += 1 if char in _OPEN else -1
                if self._depth == 0:
                    return at
