"""Encoders for the simulated vendors' audio: G.711 mu-law / A-law (numpy) and G.722 (PyAV's ffmpeg).

Input is int16 PCM; mu-law and A-law take 8 kHz, G.722 takes 16 kHz (one byte per two samples).
The G.711 encoders follow the ITU-T G.711 segment tables and give audioop's bytes exactly.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from infra.simulate import SimulateError

Samples = npt.NDArray[np.int16]
_ULAW_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
G722_RATE_HZ = 16000
CODECS = ("PCMU", "PCMA", "G722")


def ulaw_encode(pcm: Samples) -> bytes:
    """int16 samples -> one mu-law byte each."""
    value = pcm.astype(np.int32) >> 2
    negative = value < 0
    magnitude = np.minimum(np.where(negative, -value, value), 8159) + 0x21
    segment = np.searchsorted(_ULAW_ENDS, magnitude)
    mantissa = (magnitude >> np.minimum(segment + 1, 31)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8).tobytes()


def alaw_encode(pcm: Samples) -> bytes:
    """int16 samples -> one A-law byte each."""
    value = pcm.astype(np.int32) >> 3
    negative = value < 0
    magnitude = np.where(negative, -value - 1, value)
    segment = np.searchsorted(_ALAW_ENDS, magnitude)
    shifted = np.where(segment < 2, magnitude >> 1, magnitude >> np.maximum(segment, 1))
    code = np.where(segment >= 8, 0x7F, (segment << 4) | (shifted & 0x0F))
    mask = np.where(negative, 0x55, 0xD5)
    return (code ^ mask).astype(np.uint8).tobytes()


def g722_encode(pcm_8k: Samples) -> bytes:
    """8 kHz int16 samples resampled to 16 kHz, G.722-encoded: ``pcm_8k.size`` bytes (half a byte a sample)."""
    wide = np.clip(np.round(resample_poly(pcm_8k.astype(np.float64), 2, 1)), -32768, 32767).astype(np.int16)
    context = av.CodecContext.create("g722", "w")
    assert isinstance(context, av.AudioCodecContext)
    context.sample_rate = G722_RATE_HZ
    context.layout = "mono"
    context.format = "s16"
    context.time_base = Fraction(1, G722_RATE_HZ)
    context.open()
    frame = av.AudioFrame.from_ndarray(wide.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = G722_RATE_HZ
    frame.pts = 0
    out = b"".join(bytes(p) for p in context.encode(frame)) + b"".join(bytes(p) for p in context.encode(None))
    return out[: wide.size // 2]


def encode(codec: str, pcm_8k: Samples) -> bytes:
    """``pcm_8k`` (8 kHz int16) in ``codec`` (PCMU, PCMA or G722); every codec gives 8 bytes per ms."""
    if codec == "PCMU":
        return ulaw_encode(pcm_8k)
    if codec == "PCMA":
        return alaw_encode(pcm_8k)
    if codec == "G722":
        return g722_encode(pcm_8k)
    raise SimulateError(f"codec {codec!r} is not one the simulator sends ({', '.join(CODECS)})")
