"""Decode an uploaded file with PyAV (FFmpeg) to prove it is audio and learn its format. Blocking: run in a thread.

The whole first audio stream is decoded, so a file that only starts like audio is refused too, and the
duration is the count of decoded samples over the sample rate rather than a container's claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from producers.oliver.errors import UnsupportedAudioError


@dataclass(frozen=True)
class AudioInfo:
    """What decoding found: container format names, codec, samples per channel, rate (Hz), channels."""

    format: str
    codec: str
    samples: int
    sample_rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        """Audio duration, seconds (ms precision)."""
        return round(self.samples / self.sample_rate, 3)

    def extension(self, filename: str) -> str:
        """The uploaded name's extension when the container answers to it (m4a for mp4...), else its first name."""
        names = self.format.split(",")
        given = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        return given if given in names else names[0]

    def metadata(self) -> dict[str, str]:
        """JobTransition metadata of the stored audio (duration in s, sample rate in Hz)."""
        return {
            "duration": str(self.duration_s),
            "sample_rate": str(self.sample_rate),
            "channels": str(self.channels),
            "format": self.format.split(",")[0],
            "codec": self.codec,
        }


def probe(path: Path) -> AudioInfo:
    """Decode ``path``; raises UnsupportedAudioError naming the reason if it is not decodable audio."""
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.audio:
                raise UnsupportedAudioError(f"the file ({container.format.name}) has no audio stream")
            stream = container.streams.audio[0]
            samples, rate, channels = 0, 0, 0
            for frame in container.decode(stream):
                samples += frame.samples
                rate, channels = frame.sample_rate, frame.layout.nb_channels
            fmt, codec = container.format.name, stream.codec_context.name
    except av.FFmpegError as exc:
        raise UnsupportedAudioError(f"the file is not decodable audio: {exc.strerror}") from exc
    if samples == 0 or rate <= 0:
        raise UnsupportedAudioError(f"the file ({fmt}, {codec}) holds no decodable audio samples")
    return AudioInfo(format=fmt, codec=codec, samples=samples, sample_rate=rate, channels=channels)
