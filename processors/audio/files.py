"""Uploaded audio files: decode with PyAV (WAV, MP3, FLAC, OGG/Vorbis/Opus, ... whatever ffmpeg
reads), split channels into per-role tracks, and cut tracks into the chunks a live stream would bring.

Sample counts are exact: ``DecodedFile.frames`` samples per channel at ``sample_rate`` Hz.
Files that state their exact length (WAV data size, FLAC STREAMINFO, an MP3 Xing/Info header) must
deliver all of it, else the file is reported truncated; otherwise ffmpeg's decoder errors decide.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
from av.audio.stream import AudioStream

from processors.audio.errors import AudioFileError, MalformedAudioError, TruncatedAudioError
from processors.audio.pcm import Samples, interleaved
from processors.audio.stream import WavParser, id3v2_length

DEFAULT_MAPPING: Mapping[str, int] = {"agent": 0, "customer": 1}
MONO_TRACK = "mixed"
EXACT_LENGTH_CODECS = ("flac",)  # codecs whose header states the exact sample count (WAV: see _check_wav)
CHUNK_MS = 200


@dataclass(frozen=True)
class DecodedFile:
    """A decoded file: one int16 array per channel, all ``frames`` long, at ``sample_rate`` Hz."""

    name: str
    format: str  # ffmpeg container name, e.g. "wav", "mp3", "flac", "ogg"
    codec: str  # ffmpeg codec name, e.g. "pcm_s16le", "mp3float", "vorbis"
    sample_rate: int
    channels: list[Samples]

    @property
    def frames(self) -> int:
        """Samples per channel."""
        return int(self.channels[0].size) if self.channels else 0

    @property
    def duration_s(self) -> float:
        """Duration in seconds (``frames / sample_rate``)."""
        return self.frames / self.sample_rate


def decode_file(source: str | Path | bytes, name: str | None = None) -> DecodedFile:
    """Decode a whole file (a path or its bytes); ``name`` labels errors (default: the path)."""
    label = name or (str(source) if not isinstance(source, bytes) else "<upload>")
    data = source if isinstance(source, bytes) else _read(source, label)
    if not data:
        raise AudioFileError(f"{label}: empty file (0 bytes)")
    try:
        with av.open(io.BytesIO(data), "r") as container:
            stream = next((s for s in container.streams if isinstance(s, AudioStream)), None)
            if stream is None:
                raise AudioFileError(f"{label}: no audio stream in this {container.format.name} file")
            blocks = [_samples(frame) for frame in container.decode(stream)]
            decoded = _assemble(label, container.format.name, stream, blocks)
            expected = _stated_frames(stream, data)
    except av.error.FFmpegError as error:
        raise AudioFileError(f"{label}: not decodable as audio, or truncated ({error.strerror or error})") from error
    if decoded.format == "wav":
        _check_wav(label, data)
    if expected is not None and decoded.frames < expected:
        raise AudioFileError(f"{label}: truncated: header announces {expected} samples, file holds {decoded.frames}")
    return decoded


def _read(path: str | Path, label: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise AudioFileError(f"{label}: cannot read ({error.strerror or error})") from error


def _check_wav(label: str, data: bytes) -> None:
    """ffmpeg trusts a WAV's file size over its header; the header's data size must be there in full."""
    parser = WavParser()
    try:
        parser.feed(data)
        parser.finish()
    except TruncatedAudioError as error:
        raise AudioFileError(f"{label}: truncated: {error}") from error
    except MalformedAudioError:
        return  # ffmpeg decoded a layout the stream parser does not follow (e.g. RIFX): no size to check


def _samples(frame: av.AudioFrame) -> tuple[Samples, int]:
    channels = len(frame.layout.channels)
    return interleaved(frame.to_ndarray(), planar=frame.format.is_planar, channels=channels), frame.sample_rate


def _stated_frames(stream: AudioStream, data: bytes) -> int | None:
    """Exact sample count stated by the file (FLAC STREAMINFO, an MP3 Xing/Info/VBRI header); else None."""
    codec = stream.codec_context.name
    exact = codec.startswith(EXACT_LENGTH_CODECS) or (codec.startswith("mp3") and _has_vbr_header(data))
    if not exact or not stream.duration or not stream.time_base:
        return None
    return round(stream.duration * stream.time_base * stream.codec_context.sample_rate)


def _has_vbr_header(data: bytes) -> bool:
    """Whether the first MP3 frame (after an ID3v2 tag) is a Xing/Info/VBRI header stating the length."""
    start = id3v2_length(data) if data.startswith(b"ID3") and len(data) >= 10 else 0
    first = data[start : start + 64]
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


def _assemble(label: str, fmt: str, stream: AudioStream, blocks: list[tuple[Samples, int]]) -> DecodedFile:
    if not blocks or not sum(b.shape[0] for b, _ in blocks):
        raise AudioFileError(f"{label}: no audio samples in this {fmt} file")
    shapes = {(rate, b.shape[1]) for b, rate in blocks}
    if len(shapes) > 1:
        raise AudioFileError(f"{label}: rate/channel count changes inside the file: {sorted(shapes)}")
    samples = np.concatenate([b for b, _ in blocks])
    rate = blocks[0][1]
    return DecodedFile(
        label, fmt, stream.codec_context.name, rate, [samples[:, c].copy() for c in range(samples.shape[1])]
    )


def split_tracks(decoded: DecodedFile, mapping: Mapping[str, int] | None = None) -> dict[str, Samples]:
    """Per-role tracks: ``mapping`` role -> channel index (default agent 0, customer 1).

    A mono file gives one track named ``MONO_TRACK``. The mapping has the shape of Oliver's
    ``basic.id`` map; every index must name a channel of the file.
    """
    if len(decoded.channels) == 1:
        return {MONO_TRACK: decoded.channels[0]}
    roles = DEFAULT_MAPPING if mapping is None else mapping
    bad = {role: index for role, index in roles.items() if not 0 <= index < len(decoded.channels)}
    if bad:
        raise AudioFileError(f"{decoded.name}: channel mapping {bad} does not fit {len(decoded.channels)} channels")
    return {role: decoded.channels[index] for role, index in roles.items()}


def chunk_samples(sample_rate: int, chunk_ms: int = CHUNK_MS) -> int:
    """Samples per chunk of ``chunk_ms`` ms (at least one)."""
    return max(1, sample_rate * chunk_ms // 1000)


def iter_file_chunks(track: Samples, sample_rate: int, chunk_ms: int = CHUNK_MS) -> Iterator[tuple[int, Samples]]:
    """(start_sample, block) pairs covering ``track`` in order, ``chunk_ms`` ms each (the last may be shorter).

    The same sequence the gateway produces for a live track aggregated to ``chunk_ms`` records:
    start_sample counts samples per channel from the track start.
    """
    size = chunk_samples(sample_rate, chunk_ms)
    for start in range(0, track.shape[0], size):
        yield start, track[start : start + size]
