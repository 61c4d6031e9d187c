"""G.711 codecs, payload decoding and level measurement."""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Callable

import numpy as np
import pytest

from processors.audio import g711, levels, pcm
from processors.audio.errors import AudioError, MalformedAudioError, UnsupportedCodecError
from processors.audio.levels import Level

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_BYTES = bytes(range(256))
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def tone(amplitude: float, freq_hz: float = 1000.0, rate_hz: int = 8000, n: int = 8000) -> np.ndarray:
    t = np.arange(n) / rate_hz
    return np.round(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


# ---------------------------------------------------------------- G.711


def test_ulaw_decode_matches_audioop_for_every_byte() -> None:
    decoded = g711.ulaw_decode(ALL_BYTES)
    assert decoded.dtype == np.int16
    assert decoded.shape == (256,)
    assert decoded.tobytes() == audioop.ulaw2lin(ALL_BYTES, 2)


def test_alaw_decode_matches_audioop_for_every_byte() -> None:
    decoded = g711.alaw_decode(ALL_BYTES)
    assert decoded.dtype == np.int16
    assert decoded.tobytes() == audioop.alaw2lin(ALL_BYTES, 2)


@pytest.mark.parametrize(
    ("byte", "ulaw", "alaw"),
    [
        (0x00, -32124, -5504),
        (0x80, 32124, 5504),
        (0xFF, 0, 848),
        (0x7F, 0, -848),
        (0xD5, 716, 8),
        (0x55, -716, -8),
        (0xAA, 5372, 32256),
        (0x2A, -5372, -32256),
    ],
)
def test_g711_decode_known_values(byte: int, ulaw: int, alaw: int) -> None:
    # Hand-checked against ITU-T G.711 tables (mu-law: bits inverted; A-law: even bits inverted).
    assert int(g711.ulaw_decode(bytes([byte]))[0]) == ulaw
    assert int(g711.alaw_decode(bytes([byte]))[0]) == alaw


def test_ulaw_encode_matches_audioop_for_every_int16() -> None:
    ours = g711.ulaw_encode(ALL_INT16)
    reference = audioop.lin2ulaw(ALL_INT16.tobytes(), 2)
    assert len(ours) == 65536
    mismatches = [int(ALL_INT16[i]) for i in range(65536) if ours[i] != reference[i]]
    assert mismatches == []


def test_alaw_encode_matches_audioop_for_every_int16() -> None:
    ours = g711.alaw_encode(ALL_INT16)
    reference = audioop.lin2alaw(ALL_INT16.tobytes(), 2)
    assert len(ours) == 65536
    mismatches = [int(ALL_INT16[i]) for i in range(65536) if ours[i] != reference[i]]
    assert mismatches == []


@pytest.mark.parametrize("sample", [32767, 32636, -32768, -32640])
def test_ulaw_encode_saturates_full_scale_to_the_largest_code(sample: int) -> None:
    # G.711 clips to the top of segment 7: code 0x80 (positive) / 0x00 (negative), decoding to +-32124.
    code = g711.ulaw_encode(np.array([sample], dtype=np.int16))
    assert code == (b"\x80" if sample > 0 else b"\x00")
    assert int(g711.ulaw_decode(code)[0]) == (32124 if sample > 0 else -32124)


@pytest.mark.parametrize(
    ("encode", "decode"), [(g711.ulaw_encode, g711.ulaw_decode), (g711.alaw_encode, g711.alaw_decode)]
)
def test_decoding_then_encoding_every_code_is_stable(
    encode: Callable[[np.ndarray], bytes], decode: Callable[[bytes], np.ndarray]
) -> None:
    # Each decoded value re-encodes to a code that decodes to the same value (mu-law has two codes for 0).
    once = decode(ALL_BYTES)
    assert np.array_equal(decode(encode(once)), once)


def test_encode_of_empty_input_is_empty() -> None:
    empty = np.zeros(0, dtype=np.int16)
    assert g711.ulaw_encode(empty) == b""
    assert g711.alaw_encode(empty) == b""


# ---------------------------------------------------------------- pcm.decode


def test_decode_pcmu_mono() -> None:
    out = pcm.decode("PCMU", b"\xff\x7f\x00\x80")
    assert out.shape == (4, 1)
    assert out.dtype == np.int16
    assert out[:, 0].tolist() == [0, 0, -32124, 32124]


def test_decode_pcma_mono() -> None:
    out = pcm.decode("PCMA", b"\xd5\x55\xaa\x2a\xd5", channels=1)
    assert out.shape == (5, 1)
    assert out[:, 0].tolist() == [8, -8, 32256, -32256, 8]


@pytest.mark.parametrize(("codec", "fmt"), [("L16_LE", "<"), ("L16_BE", ">")])
def test_decode_l16_mono(codec: str, fmt: str) -> None:
    values = [1, -2, 32767, -32768, 256, 0]
    out = pcm.decode(codec, struct.pack(f"{fmt}{len(values)}h", *values))
    assert out.shape == (6, 1)
    assert out.dtype == np.dtype(np.int16)
    assert out.dtype.byteorder in ("=", "|", "<" if np.little_endian else ">")
    assert out[:, 0].tolist() == values


def test_l16_byte_order_matters() -> None:
    payload = b"\x01\x02"
    assert pcm.decode("L16_LE", payload)[0, 0] == 0x0201
    assert pcm.decode("L16_BE", payload)[0, 0] == 0x0102


@pytest.mark.parametrize(("codec", "fmt"), [("L16_LE", "<"), ("L16_BE", ">")])
def test_decode_l16_stereo_deinterleaves(codec: str, fmt: str) -> None:
    left = [100, 200, 300]
    right = [-1, -2, -3]
    interleaved = [v for pair in zip(left, right, strict=True) for v in pair]
    out = pcm.decode(codec, struct.pack(f"{fmt}6h", *interleaved), channels=2)
    assert out.shape == (3, 2)
    assert out[:, 0].tolist() == left
    assert out[:, 1].tolist() == right


def test_decode_pcmu_stereo_deinterleaves() -> None:
    out = pcm.decode("PCMU", b"\x80\x00\xff\x80", channels=2)
    assert out.shape == (2, 2)
    assert out[:, 0].tolist() == [32124, 0]
    assert out[:, 1].tolist() == [-32124, 32124]


def test_decode_empty_payload() -> None:
    assert pcm.decode("PCMU", b"").shape == (0, 1)
    assert pcm.decode("L16_LE", b"", channels=2).shape == (0, 2)


@pytest.mark.parametrize("codec", ["L16_LE", "L16_BE"])
def test_odd_l16_byte_count_is_malformed(codec: str) -> None:
    with pytest.raises(MalformedAudioError, match=r"odd byte count \(3 bytes\)"):
        pcm.decode(codec, b"\x00\x01\x02")


@pytest.mark.parametrize(("codec", "payload"), [("PCMU", b"\xff" * 3), ("PCMA", b"\xd5" * 5), ("L16_LE", b"\x00" * 6)])
def test_samples_not_divisible_by_channels_is_malformed(codec: str, payload: bytes) -> None:
    with pytest.raises(MalformedAudioError, match=rf"{codec}: \d+ samples cannot be split into 2 interleaved channels"):
        pcm.decode(codec, payload, channels=2)


@pytest.mark.parametrize("channels", [0, -1])
def test_non_positive_channel_count_is_malformed(channels: int) -> None:
    with pytest.raises(MalformedAudioError, match=f"got {channels}"):
        pcm.decode("PCMU", b"\xff\xff", channels=channels)


@pytest.mark.parametrize("codec", ["G722", "FOO", "OPUS", "pcmu", ""])
def test_unknown_or_unsupported_codec(codec: str) -> None:
    with pytest.raises(UnsupportedCodecError, match=f"no decoder for codec '{codec}'"):
        pcm.decode(codec, b"\x00\x00")


def test_audio_errors_share_a_base() -> None:
    assert issubclass(MalformedAudioError, AudioError)
    assert issubclass(UnsupportedCodecError, AudioError)


# ---------------------------------------------------------------- levels


def test_full_scale_square_wave_is_zero_dbfs() -> None:
    square = np.tile(np.array([32767, -32767], dtype=np.int16), 400)
    level = levels.measure(square)
    assert level.rms_dbfs == pytest.approx(0.0, abs=0.01)
    assert level.rms_dbfs == pytest.approx(20 * math.log10(32767 / 32768), abs=1e-9)
    assert level.peak_dbfs == pytest.approx(20 * math.log10(32767 / 32768), abs=1e-9)


def test_most_negative_sample_is_exactly_full_scale() -> None:
    assert levels.measure(np.array([-32768, -32768], dtype=np.int16)) == Level(0.0, 0.0)


def test_full_scale_sine_is_minus_3_dbfs() -> None:
    level = levels.measure(tone(32767))
    assert level.rms_dbfs == pytest.approx(-3.01, abs=0.05)
    assert level.peak_dbfs == pytest.approx(0.0, abs=0.01)


def test_sine_at_one_tenth_of_full_scale() -> None:
    # Peak 3277/32768 -> -20 dBFS; a sine's RMS sits 3.01 dB below its peak.
    level = levels.measure(tone(3277))
    assert level.peak_dbfs == pytest.approx(-20.0, abs=0.01)
    assert level.rms_dbfs == pytest.approx(-23.01, abs=0.05)


def test_sine_with_minus_20_dbfs_rms() -> None:
    level = levels.measure(tone(3277 * math.sqrt(2), freq_hz=440.0))
    assert level.rms_dbfs == pytest.approx(-20.0, abs=0.05)


def test_single_sample_half_scale() -> None:
    level = levels.measure(np.array([16384], dtype=np.int16))
    assert level.peak_dbfs == pytest.approx(-6.0206, abs=1e-3)
    assert level.rms_dbfs == pytest.approx(-6.0206, abs=1e-3)


def test_rms_and_peak_differ_for_a_mixed_block() -> None:
    level = levels.measure(np.array([16384, 0, 0, 0], dtype=np.int16))
    assert level.peak_dbfs == pytest.approx(-6.0206, abs=1e-3)
    assert level.rms_dbfs == pytest.approx(-6.0206 - 6.0206, abs=1e-3)  # rms = 16384 / 2


def test_digital_silence_has_no_level() -> None:
    assert levels.measure(np.zeros(160, dtype=np.int16)) == Level(None, None)


def test_empty_block_has_no_level() -> None:
    assert levels.measure(np.zeros(0, dtype=np.int16)) == Level(None, None)
    assert levels.measure(np.zeros((0, 2), dtype=np.int16)) == Level(None, None)


def test_stereo_block_is_measured_over_all_channels() -> None:
    frames = np.array([[16384, 0], [16384, 0]], dtype=np.int16)
    level = levels.measure(frames)
    assert level.peak_dbfs == pytest.approx(-6.0206, abs=1e-3)
    assert level.rms_dbfs == pytest.approx(-6.0206 - 3.0103, abs=1e-3)


def test_level_of_decoded_mu_law_tone() -> None:
    samples = pcm.decode("PCMU", g711.ulaw_encode(tone(8192)))
    level = levels.measure(samples)
    # mu-law quantisation moves a 8192 peak to 8316, so the level is within a fraction of a dB
    assert level.rms_dbfs == pytest.approx(20 * math.log10(8192 / 32768) - 3.0103, abs=0.2)
    assert level.peak_dbfs == pytest.approx(20 * math.log10(8316 / 32768), abs=1e-9)
