"""MPEG-1/2/2.5 Layer III frame headers (ISO 11172-3, ISO 13818-3): frame length and samples per frame. Pure.

Used to cut a streamed MP3 into AudioChunks at frame boundaries and to count media time in
samples without decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADER_BYTES = 4
ID3_HEADER_BYTES = 10

# Bitrates (kbit/s) by index; index 0 ("free") and 15 are not accepted.
_BITRATES_V1 = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_BITRATES_V2 = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
# Sample rates (Hz) by version bits (0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1) and index.
_RATES = {0: (11025, 12000, 8000), 2: (22050, 24000, 16000), 3: (44100, 48000, 32000)}


@dataclass(frozen=True)
class FrameHeader:
    """One frame: its length in bytes, samples per channel, sample rate (Hz) and channel count."""

    length: int
    samples: int
    sample_rate: int
    channels: int


def frame_header(data: bytes) -> FrameHeader | None:
    """The Layer III frame header in the first 4 bytes of ``data``; None if they are not one."""
    if len(data) < HEADER_BYTES or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[1] >> 3) & 3, (data[1] >> 1) & 3
    bitrate_index, rate_index = data[2] >> 4, (data[2] >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    kbps = (_BITRATES_V1 if mpeg1 else _BITRATES_V2)[bitrate_index]
    rate = _RATES[version][rate_index]
    padding = (data[2] >> 1) & 1
    length = (144_000 if mpeg1 else 72_000) * kbps // rate + padding
    channels = 1 if data[3] >> 6 == 3 else 2  # channel mode 3 = single channel
    return FrameHeader(length=length, samples=1152 if mpeg1 else 576, sample_rate=rate, channels=channels)


def is_info_frame(frame: bytes) -> bool:
    """Whether a (first) frame is a Xing/Info or VBRI header: it describes the stream and carries no audio."""
    header = frame_header(frame)
    if header is None:
        return False
    mpeg1 = (frame[1] >> 3) & 3 == 3
    side_info = (32 if header.channels == 2 else 17) if mpeg1 else (17 if header.channels == 2 else 9)
    at = HEADER_BYTES + side_info
    return frame[at : at + 4] in (b"Xing", b"Info") or frame[36:40] == b"VBRI"


def id3v2_length(data: bytes) -> int | None:
    """Total length of an ID3v2 tag at the start of ``data`` (header, body, footer); None if there is none.

    Needs the 10 header bytes; returns 0 when ``data`` is a prefix of "ID3" too short to decide.
    """
    if data[:3] != b"ID3"[: len(data[:3])]:
        return None
    if len(data) < ID3_HEADER_BYTES:
        return 0
    size = 0
    for byte in data[6:10]:
        if byte & 0x80:
            return None  # not a syncsafe size: not a tag
        size = (size << 7) | byte
    footer = ID3_HEADER_BYTES if data[5] & 0x10 else 0
    return ID3_HEADER_BYTES + size + footer
