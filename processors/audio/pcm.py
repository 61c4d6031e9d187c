"""Decode an AudioChunk payload to linear int16 samples, by codec name.

Returns an array shaped (frames, channels). Codecs the schema knows but that need a codec
library (G722, OPUS, AMR_WB, MP3, WAV containers) raise UnsupportedCodecError naming the codec.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from processors.audio.errors import MalformedAudioError, UnsupportedCodecError
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
