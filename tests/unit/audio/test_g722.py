"""G.722 over PyAV: round-trip quality, chunk invariance, resume by re-priming."""

from __future__ import annotations

import json

import numpy as np
import pytest

from processors.audio import g722
from processors.audio.errors import AudioStateError
from tests.unit.audio.signals import SENTENCES, VOWEL_A, VOWEL_I, best_lag, snr_db, speech, splits, vowel

RATE = 16_000
CODEC_DELAY = 22  # samples: G.722's QMF analysis + synthesis filters (measured, stable)

# Thresholds, a few dB under the measured values (speech 26.6 / 29.0 dB, vowels 34.5 / 32.3 dB):
# 64 kbit/s G.722 is transparent for wideband speech, and any broken path (lost state, wrong
# byte order, wrong rate, misaligned samples) falls to a few dB at most.
SPEECH_SNR_DB = 22.0
VOWEL_SNR_DB = 28.0


def signals() -> dict[str, np.ndarray]:
    return {
        "speech-0": speech(SENTENCES[0], RATE),
        "speech-1": speech(SENTENCES[1], RATE),
        "vowel-a": vowel(120.0, VOWEL_A, RATE),
        "vowel-i": vowel(220.0, VOWEL_I, RATE),
    }


@pytest.mark.parametrize(
    ("name", "threshold"),
    [("speech-0", SPEECH_SNR_DB), ("speech-1", SPEECH_SNR_DB), ("vowel-a", VOWEL_SNR_DB), ("vowel-i", VOWEL_SNR_DB)],
)
def test_round_trip_snr(name: str, threshold: float) -> None:
    source = signals()[name]
    encoded = g722.encode(source)
    assert len(encoded) == (source.size + 1) // 2  # 64 kbit/s: one byte per two samples
    decoded = g722.decode(encoded)
    assert decoded.dtype == np.int16
    assert decoded.size == 2 * len(encoded)
    assert best_lag(source, decoded, 64) == CODEC_DELAY
    assert snr_db(source[: source.size - CODEC_DELAY], decoded[CODEC_DELAY : source.size]) > threshold


def test_a_decoder_restarted_per_chunk_is_much_worse() -> None:
    """The SNR test can fail: losing the ADPCM state between 20 ms chunks wrecks the signal."""
    source = signals()["speech-0"]
    encoded = g722.encode(source)
    stateless = np.concatenate([g722.decode(encoded[i : i + 160]) for i in range(0, len(encoded), 160)])
    assert snr_db(source[: source.size - CODEC_DELAY], stateless[CODEC_DELAY : source.size]) < 10.0


@pytest.mark.parametrize("seed", range(5))
def test_any_chunk_split_decodes_bit_identically(seed: int) -> None:
    encoded = g722.encode(signals()["speech-1"])
    pieces = splits(len(encoded), np.random.default_rng(seed), 60)
    decoder = g722.G722Decoder()
    parts = [decoder.decode(encoded[a:b]) for a, b in pieces]
    assert [p.size for p in parts] == [2 * (b - a) for a, b in pieces]
    assert np.array_equal(np.concatenate(parts), g722.decode(encoded))


def test_one_byte_at_a_time_is_bit_identical() -> None:
    encoded = g722.encode(signals()["vowel-a"])[:3000]
    decoder = g722.G722Decoder()
    assert np.array_equal(
        np.concatenate([decoder.decode(encoded[i : i + 1]) for i in range(3000)]), g722.decode(encoded)
    )


def test_empty_payload_decodes_to_nothing_and_keeps_state() -> None:
    encoded = g722.encode(signals()["vowel-i"])
    decoder = g722.G722Decoder()
    first = decoder.decode(encoded[:1000])
    assert decoder.decode(b"").shape == (0,)
    assert np.array_equal(np.concatenate([first, decoder.decode(encoded[1000:])]), g722.decode(encoded))


def test_encoder_output_does_not_depend_on_the_split() -> None:
    source = signals()["speech-0"]
    encoder = g722.G722Encoder()
    rng = np.random.default_rng(3)
    pieces = [encoder.encode(source[a:b]) for a, b in splits(source.size, rng, 40)]
    assert b"".join(pieces) + encoder.flush() == g722.encode(source)


def _resumed(encoded: bytes, cut: int, prime_bytes: int) -> np.ndarray:
    decoder = g722.G722Decoder(prime_bytes)
    decoder.decode(encoded[:cut])
    state = json.loads(json.dumps(decoder.to_state()))
    return g722.G722Decoder.from_state(state).decode(encoded[cut:])


@pytest.mark.parametrize("name", ["speech-0", "speech-1", "vowel-a", "vowel-i"])
def test_resume_with_default_priming_is_bit_identical(name: str) -> None:
    """Observed bound with PRIME_BYTES=6000: zero difference at every cut point (every 211 bytes)."""
    encoded = g722.encode(signals()[name])
    whole = g722.decode(encoded)
    for cut in range(1, len(encoded), 211):
        assert np.array_equal(_resumed(encoded, cut, g722.PRIME_BYTES), whole[2 * cut :]), f"cut at byte {cut}"


def test_resume_with_short_priming_differs_for_a_while() -> None:
    """Why the priming is long: 512 bytes leave audible differences, which then die out."""
    encoded = g722.encode(signals()["speech-1"])
    whole = g722.decode(encoded)
    cut = 12_000
    resumed = _resumed(encoded, cut, 512)
    difference = np.abs(resumed.astype(np.int32) - whole[2 * cut :])
    assert difference.max() > 100
    assert not difference[8000:].any()  # identical again after 0.5 s


def test_state_is_json_and_small() -> None:
    decoder = g722.G722Decoder()
    decoder.decode(bytes(range(256)) * 40)
    state = decoder.to_state()
    assert json.loads(json.dumps(state)) == state
    assert state["prime_bytes"] == 6000
    assert len(str(state["tail"])) == 8000  # 6000 bytes as base64


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"prime_bytes": "6000", "tail": ""}, "prime_bytes"),
        ({"prime_bytes": 10, "tail": "not base64!"}, "not valid base64"),
        ({"prime_bytes": 10, "tail": 5}, "must be base64 text"),
        ({"prime_bytes": -1, "tail": ""}, "prime_bytes must be >= 0"),
    ],
)
def test_bad_state_is_refused(state: dict[str, object], message: str) -> None:
    with pytest.raises(AudioStateError, match=message):
        g722.G722Decoder.from_state(state)
