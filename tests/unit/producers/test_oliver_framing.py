"""Framing streamed audio into AudioChunk payloads: raw PCM, WAV (header parsed here), MP3 (cut at frames).

The audio helpers here are also used by the Oliver integration tests.
"""

from __future__ import annotations

import io
import math
import struct
import wave

import av
import numpy as np
import pytest

from producers.oliver import mp3
from producers.oliver.errors import FramingError
from producers.oliver.framing import Chunk, Mp3Framer, PcmFramer, WavFramer, framer_for
from producers.oliver.models import StreamFormat


def pcm(frames: int, channels: int, rate: int = 8000, hz: float = 440.0) -> bytes:
    """A sine tone as 16-bit little-endian PCM, channels interleaved (channel c at ``hz * (c + 1)``)."""
    n = np.arange(frames)
    tones = [np.round(8000 * np.sin(2 * math.pi * hz * (c + 1) * n / rate)) for c in range(channels)]
    return np.stack(tones, axis=1).astype("<i2").tobytes()


def wav_bytes(frames: int, channels: int, rate: int = 8000) -> bytes:
    """A 16-bit PCM WAV file written by the stdlib ``wave`` module."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm(frames, channels, rate))
    return out.getvalue()


def mp3_bytes(seconds: float, channels: int, rate: int) -> bytes:
    """An MP3 file encoded by PyAV (libmp3lame) from a sine tone."""
    frames = int(seconds * rate)
    samples = np.frombuffer(pcm(frames, channels, rate), dtype="<i2").reshape(1, -1)
    layout = "mono" if channels == 1 else "stereo"
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=layout)
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


def pieces(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes, cycling through them."""
    out, pos, i = [], 0, 0
    while pos < len(data):
        out.append(data[pos : pos + sizes[i % len(sizes)]])
        pos += sizes[i % len(sizes)]
        i += 1
    return out


def feed_all(framer: PcmFramer | WavFramer | Mp3Framer, parts: list[bytes]) -> list[Chunk]:
    chunks = [c for part in parts for c in framer.feed(part)]
    return chunks + framer.flush()


def test_raw_pcm_chunks_carry_odd_bytes_and_half_frames_over() -> None:
    audio = pcm(1000, 2)  # 4000 bytes
    framer = framer_for(StreamFormat.RAW, 2, 20)  # 160 frames = 640 bytes per chunk
    assert isinstance(framer, PcmFramer)
    chunks = feed_all(framer, pieces(audio + b"\x07", (1, 3, 7, 333, 2)))
    assert b"".join(c.payload for c in chunks) == audio
    assert [(c.start_sample, c.frames, len(c.payload)) for c in chunks] == [
        *((i * 160, 160, 640) for i in range(6)),
        (960, 40, 160),
    ]
    assert {(c.codec, c.sample_rate, c.channels) for c in chunks} == {("L16_LE", 8000, 2)}
    assert (framer.samples, framer.discarded) == (1000, 1)  # the lone trailing byte is reported, not forwarded


def test_wav_header_is_parsed_from_any_split_and_only_pcm_is_forwarded() -> None:
    data = wav_bytes(4000, 2, rate=16000)
    framer = WavFramer(2, 100)
    chunks = feed_all(framer, pieces(data, (5, 7, 11)))
    assert b"".join(c.payload for c in chunks) == data[44:]
    assert [(c.start_sample, c.frames) for c in chunks] == [(i * 1600, 1600) for i in range(2)] + [(3200, 800)]
    assert {(c.codec, c.sample_rate, c.channels) for c in chunks} == {("L16_LE", 16000, 2)}
    assert (framer.samples, framer.sample_rate, framer.discarded) == (4000, 16000, 0)


def test_wav_bytes_after_the_declared_data_chunk_are_reported_not_forwarded() -> None:
    data = wav_bytes(800, 1) + b"LIST\x04\x00\x00\x00INFO"
    framer = WavFramer(1, 200)
    chunks = feed_all(framer, [data])
    assert b"".join(c.payload for c in chunks) == data[44 : 44 + 1600]
    assert framer.discarded == 12


def _header(tag: int, channels: int, rate: int, bits: int, data_size: int = 0xFFFFFFFF) -> bytes:
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return b"RIFF\xff\xff\xff\xffWAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_size)


@pytest.mark.parametrize(("tag", "codec"), [(6, "PCMA"), (7, "PCMU")])
def test_wav_g711_streams_with_unknown_length(tag: int, codec: str) -> None:
    payload = bytes(range(256)) * 10
    framer = WavFramer(1, 100)
    chunks = feed_all(framer, [_header(tag, 1, 8000, 8), payload])
    assert b"".join(c.payload for c in chunks) == payload
    assert [(c.codec, c.start_sample, c.frames) for c in chunks] == [
        (codec, 0, 800),
        (codec, 800, 800),
        (codec, 1600, 800),
        (codec, 2400, 160),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"OggS\x00\x02" + bytes(20), "not a RIFF/WAVE stream"),
        (b"RIFF\x00\x00\x00\x00AVI " + bytes(20), "not a RIFF/WAVE stream"),
        (_header(1, 1, 8000, 8), "format tag 1 with 8 bits per sample is not supported"),
        (_header(3, 1, 8000, 32), "format tag 3 with 32 bits per sample is not supported"),
        (_header(1, 2, 8000, 16), "WAV header gives 2 channels; the task announced 1"),
        (b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00", "data chunk comes before its fmt chunk"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk\x00\x00\x01\x00", "no data chunk within 65536 bytes"),
    ],
)
def test_bad_wav_headers_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(FramingError, match=message):
        WavFramer(1, 200).feed(data)


def test_a_stream_that_ends_inside_the_wav_header_is_an_error() -> None:
    framer = WavFramer(1, 200)
    assert framer.feed(wav_bytes(10, 1)[:30]) == []
    with pytest.raises(FramingError, match="ended inside the WAV header"):
        framer.flush()


def test_mp3_frame_header() -> None:
    assert mp3.frame_header(b"\xff\xfb\x90\x64") == mp3.FrameHeader(
        length=417, samples=1152, sample_rate=44100, channels=2
    )
    assert mp3.frame_header(b"\xff\xe3\x18\xc4") == mp3.FrameHeader(
        length=72, samples=576, sample_rate=8000, channels=1
    )
    assert mp3.frame_header(b"\xff\xfd\x90\x64") is None  # layer II
    assert mp3.frame_header(b"\xff\xfb\xf0\x64") is None  # bad bitrate index
    assert mp3.frame_header(b"RIFF") is None


def _mpeg_packets(data: bytes) -> tuple[int, int]:
    """(frames, decoded samples per channel) of an MP3 file, as FFmpeg counts them."""
    with av.open(io.BytesIO(data), "r") as container:
        packets = [p for p in container.demux(audio=0) if p.size]
    with av.open(io.BytesIO(data), "r") as container:
        samples = [f.samples for f in container.decode(audio=0)]
    return len(packets), sum(samples)


@pytest.mark.parametrize(("channels", "rate", "per_frame"), [(1, 8000, 576), (2, 16000, 576), (2, 44100, 1152)])
def test_mp3_is_forwarded_byte_for_byte_and_counted_in_samples(channels: int, rate: int, per_frame: int) -> None:
    data = mp3_bytes(2.0, channels, rate)
    assert data[:3] == b"ID3"
    framer = Mp3Framer(channels, 200)
    chunks = feed_all(framer, pieces(data, (333, 1, 1000, 17)))
    assert b"".join(c.payload for c in chunks) == data
    frames, decoded = _mpeg_packets(data)
    assert framer.samples == frames * per_frame
    assert decoded <= framer.samples  # the decoder trims the encoder delay and padding
    starts = [c.start_sample for c in chunks]
    assert starts == [sum(c.frames for c in chunks[:i]) for i in range(len(chunks))]
    minimum = rate * 200 // 1000
    assert all(minimum <= c.frames < minimum + per_frame for c in chunks[:-1])
    assert {(c.codec, c.sample_rate, c.channels) for c in chunks} == {("MP3", rate, channels)}


def test_mp3_channel_mismatch_and_non_mp3_are_refused() -> None:
    with pytest.raises(FramingError, match="MP3 frame has 2 channels; the task announced 1"):
        feed_all(Mp3Framer(1, 200), [mp3_bytes(0.5, 2, 16000)])
    framer = Mp3Framer(1, 200)
    assert framer.feed(b"hello, this is text and no audio at all") == []
    with pytest.raises(FramingError, match="no MPEG Layer III frame in the 39 bytes received"):
        framer.flush()
    with pytest.raises(FramingError, match="bytes without an MPEG Layer III frame header"):
        Mp3Framer(1, 200).feed(b"x" * 70_000)


def test_mp3_abort_keeps_whole_frames_received_before_the_error() -> None:
    good = mp3_bytes(1.0, 1, 8000)
    framer = Mp3Framer(1, 2000)
    assert framer.feed(good) == []  # 1 s of audio: no 2000 ms chunk yet
    with pytest.raises(FramingError, match="MP3 frame has 2 channels"):
        framer.feed(mp3_bytes(0.5, 2, 8000)[mp3.id3v2_length(good) or 0 :])
    kept = framer.abort()
    assert b"".join(c.payload for c in kept) == good
    assert framer.discarded > 0
