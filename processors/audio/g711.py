"""ITU-T G.711 mu-law and A-law, vectorised with numpy lookup tables.

Decoding maps each byte to a signed 16-bit linear sample (the same values as the classic
``audioop.ulaw2lin`` / ``alaw2lin`` with width 2). Encoding takes int16 samples.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_ULAW_BIAS = 0x84  # decoder bias on the 16-bit scale
_ULAW_CLIP_14 = 8159  # largest encodable 14-bit magnitude


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


ULAW_TO_LINEAR: npt.NDArray[np.int16] = _ulaw_decode_table()
ALAW_TO_LINEAR: npt.NDArray[np.int16] = _alaw_decode_table()


def _segment(value: npt.NDArray[np.int32], first_bit: int) -> npt.NDArray[np.int32]:
    """Segment number (0..7) = position of the highest set bit above ``first_bit``, clamped."""
    with np.errstate(divide="ignore"):
        top = np.floor(np.log2(np.maximum(value, 1))).astype(np.int32)
    return np.clip(top - first_bit, 0, 7)


def ulaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    """mu-law bytes -> int16 samples (one per byte)."""
    return ULAW_TO_LINEAR.take(np.frombuffer(payload, dtype=np.uint8))


def alaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    """A-law bytes -> int16 samples (one per byte)."""
    return ALAW_TO_LINEAR.take(np.frombuffer(payload, dtype=np.uint8))


def ulaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples -> mu-law bytes (14-bit magnitude, as G.711 specifies)."""
    v = samples.astype(np.int32) >> 2
    negative = v < 0
    biased = np.minimum(np.where(negative, -v, v), _ULAW_CLIP_14) + (_ULAW_BIAS >> 2)
    magnitude = np.minimum(biased, 0x1FFF)  # past segment 7 saturates to the largest code
    exponent = _segment(magnitude, 5)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    mask = np.where(negative, 0x7F, 0xFF)
    return bytes((((exponent << 4) | mantissa) ^ mask).astype(np.uint8).tobytes())


def alaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples -> A-law bytes."""
    x = samples.astype(np.int32)
    sign = np.where(x >= 0, 0x80, 0x00)
    magnitude = np.where(x >= 0, x, -x - 1) >> 3  # 13-bit magnitude
    exponent = _segment(magnitude, 4)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    return bytes((((sign | (exponent << 4) | mantissa) ^ 0x55) & 0xFF).astype(np.uint8).tobytes())
