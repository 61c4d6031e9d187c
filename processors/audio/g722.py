"""ITU-T G.722 over PyAV (ffmpeg's maintained codec), plus the small typed PyAV decoder wrapper.

G.722 is 64 kbit/s sub-band ADPCM: one byte carries two 16 kHz samples, and the decoder's adaptive
state runs on from byte to byte, so a stream must be decoded by one decoder in order. Feeding the
bytes in any split gives bit-identical output to feeding them whole.

Resume strategy (PyAV's codec state cannot be serialised): the decoder's state is the last
``prime_bytes`` encoded bytes it saw. A restored decoder re-primes a fresh ffmpeg decoder with them
and discards that output. The ADPCM state (step sizes and predictor coefficients with leakage
factors of 127/128 and 255/256 per sample) forgets its start: two decoders fed the same bytes
became bit-identical after ~4400 bytes at worst on the speech and vowel signals tested. The default
6000 bytes (375 ms, 8 KB of base64 state) leaves a margin; with it the resumed output was
bit-identical to the uninterrupted one at every cut point tested (tests/unit/audio/test_g722.py),
while 2048 bytes left differences of up to ~700 LSB for up to ~230 ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import av
import av.error
import numpy as np
import numpy.typing as npt
from av.audio.codeccontext import AudioCodecContext

from processors.audio.errors import AudioStateError, MalformedAudioError, UnsupportedCodecError
from processors.audio.pcm import Samples, bytes_from_text, bytes_to_text, interleaved

SAMPLE_RATE_HZ = 16_000
SAMPLES_PER_BYTE = 2
PRIME_BYTES = 6000  # 375 ms of 64 kbit/s G.722


@dataclass(frozen=True)
class Block:
    """Decoded samples (int16, shaped (frames, channels)) and their sample rate (Hz)."""

    samples: Samples
    sample_rate: int


def _context(codec: str, mode: str) -> AudioCodecContext:
    try:
        context = av.CodecContext.create(codec, "r" if mode == "r" else "w")
    except (av.error.FFmpegError, ValueError) as error:
        raise UnsupportedCodecError(f"ffmpeg has no {codec!r} {'decoder' if mode == 'r' else 'encoder'}") from error
    if not isinstance(context, AudioCodecContext):
        raise UnsupportedCodecError(f"ffmpeg codec {codec!r} is not an audio codec")
    return context


class AvDecoder:
    """One ffmpeg audio decoder (by ffmpeg codec name), fed packet by packet; not serialisable."""

    def __init__(self, codec: str, *, sample_rate: int | None = None, channels: int | None = None) -> None:
        self.codec = codec
        self._context = _context(codec, "r")
        if sample_rate is not None:
            self._context.sample_rate = sample_rate
        if channels is not None:
            self._context.layout = "mono" if channels == 1 else "stereo"

    def packets(self, data: bytes) -> list[bytes]:
        """Split a byte stream into codec packets with ffmpeg's parser (keeps partial packets inside)."""
        return [bytes(packet) for packet in self._context.parse(data)]

    def decode(self, packet: bytes) -> list[Block]:
        """Decode one non-empty packet (an empty one would mean end of stream to ffmpeg)."""
        if not packet:
            return []
        try:
            frames = self._context.decode(av.Packet(packet))
        except av.error.FFmpegError as error:
            raise MalformedAudioError(f"{self.codec}: cannot decode a {len(packet)}-byte packet: {error}") from error
        return [_block(frame) for frame in frames]


def _block(frame: av.AudioFrame) -> Block:
    channels = len(frame.layout.channels)
    samples = interleaved(frame.to_ndarray(), planar=frame.format.is_planar, channels=channels)
    return Block(samples, frame.sample_rate)


class G722Decoder:
    """G.722 bytes -> 16 kHz mono int16, chunk after chunk (2 samples per byte)."""

    def __init__(self, prime_bytes: int = PRIME_BYTES) -> None:
        if prime_bytes < 0:
            raise AudioStateError(f"G722 prime_bytes must be >= 0, got {prime_bytes}")
        self.prime_bytes = prime_bytes
        self._decoder = AvDecoder("g722", sample_rate=SAMPLE_RATE_HZ, channels=1)
        self._tail = b""

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        """Decode the next bytes of the stream: exactly ``2 * len(payload)`` samples."""
        blocks = self._decoder.decode(payload)
        samples = np.concatenate([b.samples[:, 0] for b in blocks]) if blocks else np.zeros(0, np.int16)
        if samples.size != SAMPLES_PER_BYTE * len(payload):
            raise MalformedAudioError(f"G722: {len(payload)} bytes decoded to {samples.size} samples")
        if self.prime_bytes:
            self._tail = (self._tail + payload)[-self.prime_bytes :]
        return samples

    def to_state(self) -> dict[str, object]:
        """JSON-able state: the last ``prime_bytes`` encoded bytes (base64)."""
        return {"prime_bytes": self.prime_bytes, "tail": bytes_to_text(self._tail)}

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> G722Decoder:
        """A decoder re-primed with the saved bytes (their output is discarded)."""
        prime_bytes = state.get("prime_bytes")
        if not isinstance(prime_bytes, int):
            raise AudioStateError(f"G722 state needs an int 'prime_bytes', got {prime_bytes!r}")
        decoder = cls(prime_bytes)
        decoder.decode(bytes_from_text(state.get("tail"), "G722 state 'tail'"))
        return decoder


class G722Encoder:
    """16 kHz mono int16 -> G.722 bytes (64 kbit/s); samples are sent to ffmpeg in whole frames."""

    def __init__(self) -> None:
        self._context = _context("g722", "w")
        self._context.sample_rate = SAMPLE_RATE_HZ
        self._context.format = "s16"
        self._context.layout = "mono"
        self._context.open()
        self._frame = self._context.frame_size or 320
        self._pending = np.zeros(0, np.int16)

    def encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        """Encode the next samples; whole ffmpeg frames only, the rest waits for more or ``flush``."""
        self._pending = np.concatenate([self._pending, samples.astype(np.int16).ravel()])
        whole = self._pending.size - self._pending.size % self._frame
        out = b"".join(self._encode(self._pending[i : i + self._frame]) for i in range(0, whole, self._frame))
        self._pending = self._pending[whole:]
        return out

    def flush(self) -> bytes:
        """Encode the remaining samples and end the stream."""
        out = self._encode(self._pending) if self._pending.size else b""
        self._pending = np.zeros(0, np.int16)
        return out + b"".join(bytes(p) for p in self._context.encode(None))

    def _encode(self, samples: npt.NDArray[np.int16]) -> bytes:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        return b"".join(bytes(p) for p in self._context.encode(frame))


def encode(samples: npt.NDArray[np.int16]) -> bytes:
    """A whole 16 kHz mono signal -> G.722 bytes."""
    encoder = G722Encoder()
    return encoder.encode(samples) + encoder.flush()


def decode(payload: bytes) -> npt.NDArray[np.int16]:
    """A whole G.722 stream -> 16 kHz mono int16 samples."""
    return G722Decoder(prime_bytes=0).decode(payload)
