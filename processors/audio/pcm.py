"""Decode an AudioChunk payload to linear int16 samples, by codec name.

Returns an array shaped (frames, channels). Codecs the schema knows but that need a codec
library or state across chunks (G722, OPUS, AMR_WB, MP3, WAV containers) raise
UnsupportedCodecError naming the codec: those are decoded by ``stream.TrackDecoder``.
Also the conversions from a decoder's sample arrays (float, planar, ...) to int16.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from processors.audio.errors import AudioStateError, MalformedAudioError, UnsupportedCodecError
from processors.audio.g711 import alaw_decode, ulaw_decode

Samples = npt.NDArray[np.int16]


def _l16(dtype: str) -> Callable[[bytes], Samples]:
    def decode(payload: bytes) -> Samples:
        if len(payload) % 2:
            raise MalformedAudioError(f"L16 payload has an odd byte count ({len(payload)} bytes)")
        return np.frombuffer(payload, dtype=dtype).astype(np.int16)

    return decode


DECODERS: dict[str, Callable[[bytes], Samples]] = {
    "PCMU": ulaw_decode,
    "PCMA": alaw_decode,
    "L16_LE": _l16("<i2"),
    "L16_BE": _l16(">i2"),
}


def decode(codec: str, payload: bytes, channels: int = 1) -> Samples:
    """Decode ``payload`` of ``codec`` into int16 samples shaped (frames, channels)."""
    decoder = DECODERS.get(codec)
    if decoder is None:
        raise UnsupportedCodecError(f"no decoder for codec {codec!r}; supported: {', '.join(sorted(DECODERS))}")
    if channels < 1:
        raise MalformedAudioError(f"{codec}: channel count must be >= 1, got {channels}")
    samples = decoder(payload)
    if samples.size % channels:
        raise MalformedAudioError(
            f"{codec}: {samples.size} samples cannot be split into {channels} interleaved channels"
        )
    return samples.reshape(-1, channels)


def to_int16(values: npt.NDArray[np.generic]) -> Samples:
    """Any decoder sample type -> int16 on the same scale.

    Floats are full scale at +-1.0 (rounded half to even, clipped); unsigned 8-bit is offset
    binary; 32-bit integers keep their top 16 bits (rounded, clipped). int16 passes unchanged.
    """
    result: Samples
    if values.dtype == np.int16:
        result = np.asarray(values, dtype=np.int16)
    elif values.dtype == np.uint8:
        result = np.left_shift(values.astype(np.int16) - np.int16(128), 8).astype(np.int16)
    elif values.dtype == np.int32:
        result = np.clip((values.astype(np.int64) + 0x8000) >> 16, -32768, 32767).astype(np.int16)
    elif np.issubdtype(values.dtype, np.floating):
        result = np.clip(np.rint(values.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    else:
        raise UnsupportedCodecError(f"no conversion from sample type {values.dtype} to int16")
    return result


def interleaved(values: npt.NDArray[np.generic], *, planar: bool, channels: int) -> Samples:
    """A decoder's sample array -> int16 shaped (frames, channels).

    ``planar`` arrays are (channels, frames); packed ones hold interleaved samples, any shape.
    """
    samples = to_int16(values)
    if planar:
        return np.ascontiguousarray(samples.reshape(channels, -1).T)
    return samples.reshape(-1, channels)


def bytes_to_text(data: bytes) -> str:
    """Bytes -> base64 text, for JSON-able decoder/detector state."""
    return base64.b64encode(data).decode("ascii")


def bytes_from_text(text: object, what: str) -> bytes:
    """Base64 text from a saved state -> bytes; ``what`` names the field in the error."""
    if not isinstance(text, str):
        raise AudioStateError(f"{what} must be base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as error:
        raise AudioStateError(f"{what} is not valid base64 ({len(text)} chars)") from error


def samples_to_text(samples: Samples) -> str:
    """int16 samples -> base64 of their little-endian bytes."""
    return bytes_to_text(samples.astype("<i2").tobytes())


def samples_from_text(text: object, what: str) -> Samples:
    """Inverse of ``samples_to_text`` (1-D int16)."""
    data = bytes_from_text(text, what)
    if len(data) % 2:
        raise AudioStateError(f"{what} holds {len(data)} bytes, not whole int16 samples")
    return np.frombuffer(data, dtype="<i2").astype(np.int16)
