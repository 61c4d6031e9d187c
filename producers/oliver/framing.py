"""Cut streamed audio (any frame sizes) into AudioChunk payloads of about ``chunk_ms`` each. Pure and resumable.

A framer is fed the binary WebSocket messages in order and returns the chunks that became complete;
bytes of an unfinished sample frame (an odd byte, half of a stereo frame, part of an MP3 frame) are
kept for the next message, never dropped. ``flush`` at the end of the task returns the tail.

- ``raw``: 16-bit signed little-endian PCM at 8000 Hz, channels interleaved -> ``L16_LE``.
- ``wav``: a RIFF/WAVE header (parsed here), then PCM/A-law/mu-law data, forwarded without the header.
- ``mp3``: forwarded byte for byte as ``MP3``, cut at frame boundaries; anything between frames (an ID3
  tag, junk, a truncated last frame) travels in the chunk it arrived in, so the payloads concatenate to
  exactly the bytes received. Media time is counted from the frame headers (1152 or 576 samples per frame;
  a leading Xing/Info/VBRI header frame counts none).

``start_sample`` counts samples per channel since the task started. The only bytes a framer does not
forward are reported in ``discarded``: a partial sample frame left at ``flush`` and, for WAV, bytes after
the declared end of the data chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from producers.oliver import mp3, wav
from producers.oliver.errors import FramingError
from producers.oliver.models import StreamFormat

RAW_SAMPLE_RATE = 8000  # Hz
MAX_JUNK_BYTES = 64 * 1024  # between MP3 frames, before the stream is refused
MAX_ID3_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Chunk:
    """An AudioChunk payload: codec, rate (Hz), channels, first sample (per channel) and samples per channel."""

    payload: bytes
    codec: str
    sample_rate: int
    channels: int
    start_sample: int
    frames: int


class Framer(Protocol):
    @property
    def samples(self) -> int:
        """Samples per channel forwarded so far."""
        ...

    @property
    def sample_rate(self) -> int | None:
        """Hz, once known."""
        ...

    @property
    def discarded(self) -> int:
        """Bytes not forwarded (see the module doc)."""
        ...

    def feed(self, data: bytes) -> list[Chunk]: ...

    def flush(self) -> list[Chunk]: ...

    def abort(self) -> list[Chunk]:
        """After a FramingError: the chunks of the audio accepted before it; the rest counts as discarded."""
        ...


def chunk_frames(sample_rate: int, chunk_ms: int) -> int:
    """Samples per channel in a chunk of ``chunk_ms`` at ``sample_rate`` Hz (at least 1)."""
    return max(1, sample_rate * chunk_ms // 1000)


class PcmFramer:
    """Fixed-size sample frames (``frame_bytes`` per sample of all channels), chunked to ``chunk_ms``."""

    def __init__(self, codec: str, sample_rate: int, channels: int, frame_bytes: int, chunk_ms: int) -> None:
        self.codec, self.sample_rate, self.channels = codec, sample_rate, channels
        self.frame_bytes = frame_bytes
        self.chunk_bytes = chunk_frames(sample_rate, chunk_ms) * frame_bytes
        self.samples = 0
        self.discarded = 0
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Chunk]:
        self._buffer += data
        chunks = []
        while len(self._buffer) >= self.chunk_bytes:
            chunks.append(self._take(self.chunk_bytes))
        return chunks

    def flush(self) -> list[Chunk]:
        whole = len(self._buffer) - len(self._buffer) % self.frame_bytes
        chunks = [self._take(whole)] if whole else []
        self.discarded += len(self._buffer)
        self._buffer.clear()
        return chunks

    def abort(self) -> list[Chunk]:
        return self.flush()

    def _take(self, size: int) -> Chunk:
        payload = bytes(self._buffer[:size])
        del self._buffer[:size]
        frames = size // self.frame_bytes
        chunk = Chunk(payload, self.codec, self.sample_rate, self.channels, self.samples, frames)
        self.samples += frames
        return chunk


class WavFramer:
    """Reads the WAV header, then chunks the data as PCM; the header's channel count must be ``channels``."""

    def __init__(self, channels: int, chunk_ms: int) -> None:
        self.channels, self.chunk_ms = channels, chunk_ms
        self.discarded = 0
        self._header = bytearray()
        self._pcm: PcmFramer | None = None
        self._left: int | None = None  # data bytes still expected; None = until the end

    @property
    def samples(self) -> int:
        return self._pcm.samples if self._pcm else 0

    @property
    def sample_rate(self) -> int | None:
        return self._pcm.sample_rate if self._pcm else None

    def feed(self, data: bytes) -> list[Chunk]:
        if self._pcm is None:
            self._header += data
            header = wav.parse_header(bytes(self._header))
            if header is None:
                return []
            if header.channels != self.channels:
                raise FramingError(f"WAV header gives {header.channels} channels; the task announced {self.channels}")
            self._pcm = PcmFramer(header.codec, header.sample_rate, header.channels, header.block_align, self.chunk_ms)
            self._left = header.data_bytes
            data = bytes(self._header[header.data_offset :])
            self._header.clear()
        if self._left is not None:
            self.discarded += max(0, len(data) - self._left)
            data = data[: self._left]
            self._left -= len(data)
        return self._pcm.feed(data)

    def flush(self) -> list[Chunk]:
        if self._pcm is None:
            if self._header:
                raise FramingError(f"the stream ended inside the WAV header ({len(self._header)} bytes received)")
            return []
        chunks = self._pcm.flush()
        self.discarded += self._pcm.discarded
        return chunks

    def abort(self) -> list[Chunk]:
        self.discarded += len(self._header)
        self._header.clear()
        return self.flush()


class Mp3Framer:
    """MPEG Layer III frames, forwarded byte for byte; all frames must share rate and channel count."""

    def __init__(self, channels: int, chunk_ms: int) -> None:
        self.channels, self.chunk_ms = channels, chunk_ms
        self.samples = 0
        self.sample_rate: int | None = None
        self.discarded = 0
        self._buffer = bytearray()
        self._pending = bytearray()
        self._pending_frames = 0
        self._junk = 0
        self._at_start = True

    def feed(self, data: bytes) -> list[Chunk]:
        self._buffer += data
        chunks = []
        while self._step():
            if self.sample_rate and self._pending_frames >= chunk_frames(self.sample_rate, self.chunk_ms):
                chunks.append(self._emit())
        return chunks

    def flush(self) -> list[Chunk]:
        self._pending += self._buffer  # a truncated last frame travels as received
        self._buffer.clear()
        if not self._pending:
            return []
        if self.sample_rate is None:
            raise FramingError(f"no MPEG Layer III frame in the {len(self._pending)} bytes received")
        return [self._emit()]

    def abort(self) -> list[Chunk]:
        self.discarded += len(self._buffer)
        self._buffer.clear()
        if not self._pending_frames:  # only tags or junk: nothing decodable to keep
            self.discarded += len(self._pending)
            self._pending.clear()
            return []
        return [self._emit()]

    def _step(self) -> bool:
        """Move one tag, frame or junk run from the buffer to the pending chunk; False when more bytes are needed."""
        if self._at_start:
            tag = mp3.id3v2_length(bytes(self._buffer[: mp3.ID3_HEADER_BYTES]))
            if tag == 0 or (tag and tag > len(self._buffer)):
                if tag and tag > MAX_ID3_BYTES:
                    raise FramingError(f"ID3 tag of {tag} bytes exceeds {MAX_ID3_BYTES} bytes")
                return False
            self._at_start = False
            if tag:
                self._move(tag)
                return True
        if len(self._buffer) < mp3.HEADER_BYTES:
            return False
        header = mp3.frame_header(bytes(self._buffer[: mp3.HEADER_BYTES]))
        if header is None:
            return self._skip_junk()
        if len(self._buffer) < header.length:
            return False
        self._check(header)
        info = self.sample_rate is None and mp3.is_info_frame(bytes(self._buffer[: header.length]))
        self.sample_rate = header.sample_rate
        self._move(header.length)
        self._pending_frames += 0 if info else header.samples  # a Xing/Info frame carries no audio
        self._junk = 0
        return True

    def _skip_junk(self) -> bool:
        sync = self._buffer.find(b"\xff", 1)
        skip = sync if sync > 0 else len(self._buffer)
        self._junk += skip
        if self._junk > MAX_JUNK_BYTES:
            raise FramingError(f"{self._junk} bytes without an MPEG Layer III frame header: not MP3 audio")
        self._move(skip)
        return True

    def _check(self, header: mp3.FrameHeader) -> None:
        if header.channels != self.channels:
            raise FramingError(f"MP3 frame has {header.channels} channels; the task announced {self.channels}")
        if self.sample_rate is not None and header.sample_rate != self.sample_rate:
            raise FramingError(f"MP3 sample rate changed from {self.sample_rate} Hz to {header.sample_rate} Hz")

    def _move(self, size: int) -> None:
        self._pending += self._buffer[:size]
        del self._buffer[:size]

    def _emit(self) -> Chunk:
        assert self.sample_rate is not None
        chunk = Chunk(bytes(self._pending), "MP3", self.sample_rate, self.channels, self.samples, self._pending_frames)
        self.samples += self._pending_frames
        self._pending.clear()
        self._pending_frames = 0
        return chunk


def framer_for(fmt: StreamFormat, channels: int, chunk_ms: int) -> Framer:
    """The framer of an announced stream format."""
    if fmt == StreamFormat.RAW:
        return PcmFramer("L16_LE", RAW_SAMPLE_RATE, channels, 2 * channels, chunk_ms)
    if fmt == StreamFormat.WAV:
        return WavFramer(channels, chunk_ms)
    return Mp3Framer(channels, chunk_ms)
