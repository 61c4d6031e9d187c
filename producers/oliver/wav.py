"""The RIFF/WAVE header of a streamed WAV file: where the sample data starts and how it is encoded. Pure.

Only encodings the AudioChunk schema names are accepted: 16-bit PCM (``L16_LE``), A-law (``PCMA``)
and mu-law (``PCMU``), plain or as WAVE_FORMAT_EXTENSIBLE. Live writers do not know the length when
they write the header, so a ``data`` size of 0 or 0xFFFFFFFF means "until the stream ends".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from producers.oliver.errors import FramingError

MAX_HEADER_BYTES = 64 * 1024
UNKNOWN_SIZES = (0, 0xFFFFFFFF)
MAX_SAMPLE_RATE = 384_000  # Hz

# (format tag, bits per sample) -> AudioChunk codec
_CODECS = {(1, 16): "L16_LE", (6, 8): "PCMA", (7, 8): "PCMU"}
_EXTENSIBLE = 0xFFFE


@dataclass(frozen=True)
class WavHeader:
    """The decoded header: codec, rate (Hz), channels, bytes per frame, where data starts and how long it is."""

    codec: str
    sample_rate: int
    channels: int
    block_align: int
    data_offset: int
    data_bytes: int | None  # None: until the stream ends


def parse_header(buffer: bytes) -> WavHeader | None:
    """The header at the start of ``buffer``; None while more bytes are needed. Raises FramingError if invalid."""
    if buffer[:4] != b"RIFF"[: len(buffer)] or (len(buffer) >= 12 and buffer[8:12] != b"WAVE"):
        raise FramingError(f"not a RIFF/WAVE stream: it starts with {bytes(buffer[:12])!r}")
    fmt: tuple[str, int, int, int] | None = None
    pos = 12
    while len(buffer) >= pos + 8:
        chunk_id, size = buffer[pos : pos + 4], struct.unpack_from("<I", buffer, pos + 4)[0]
        if chunk_id == b"data":
            if fmt is None:
                raise FramingError("WAV data chunk comes before its fmt chunk")
            codec, rate, channels, align = fmt
            return WavHeader(codec, rate, channels, align, pos + 8, None if size in UNKNOWN_SIZES else size)
        end = pos + 8 + size + (size & 1)
        if end > MAX_HEADER_BYTES:
            raise FramingError(f"WAV chunk {chunk_id!r} of {size} bytes: no data chunk within {MAX_HEADER_BYTES} bytes")
        if len(buffer) < end:
            return None
        if chunk_id == b"fmt ":
            fmt = _format(bytes(buffer[pos + 8 : pos + 8 + size]))
        pos = end
    return None


def _format(body: bytes) -> tuple[str, int, int, int]:
    if len(body) < 16:
        raise FramingError(f"WAV fmt chunk has {len(body)} bytes, fewer than 16")
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the sub-format GUID
    codec = _CODECS.get((tag, bits))
    if codec is None:
        raise FramingError(
            f"WAV format tag {tag} with {bits} bits per sample is not supported; send 16-bit PCM, A-law or mu-law"
        )
    if not 1 <= channels <= 2 or not 0 < rate <= MAX_SAMPLE_RATE:
        raise FramingError(f"WAV header gives {channels} channels at {rate} Hz; expected 1-2 channels, 1..384000 Hz")
    if align != channels * bits // 8:
        raise FramingError(f"WAV block align {align} does not match {channels} channels of {bits} bits")
    return codec, rate, channels, align
