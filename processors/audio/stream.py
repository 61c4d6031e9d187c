"""Per-track stateful decoding of AudioChunk payloads: chunk after chunk, resumable from a JSON dict.

``TrackDecoder(codec, sample_rate, channels)`` decodes the payloads of one (call, track) in sequence
order to int16 shaped (frames, channels), whatever the chunk boundaries: partial samples, WAV
headers split across chunks, MP3/AMR-WB frames split across chunks and G.722's adaptive state all
carry over. ``to_state()`` gives a JSON-able dict (for a Faust table); ``from_state`` resumes.

Codecs (schema names): PCMU, PCMA, L16_LE, L16_BE (stateless per sample; partial frames carry over),
G722 (16 kHz out; a declared 8000 Hz is accepted as the RTP clock rate of RFC 3551), WAV (RIFF header
parsed from the stream; PCM 8/16-bit, A-law, mu-law data; a new RIFF header after a complete data
chunk starts the next file), MP3 (ffmpeg parser + decoder; a leading ID3v2 tag is skipped),
AMR_WB (storage-format frames, ffmpeg parser; the ``#!AMR-WB`` file magic is skipped), OPUS (each
payload is exactly one Opus packet, as carried in RTP; output is 48 kHz). For WAV and MP3 the
declared rate is a hint (the stream's own headers decide ``output_rate``); the declared channel
count is binding for every codec (a WAV/MP3 stream with other channels is a codec mismatch), so
every result, empty or not, is shaped (frames, channels).

Resume of the ffmpeg-backed codecs (their state is not serialisable) re-primes a fresh decoder
with recently decoded bytes/packets and discards that output; see ``g722.py`` for G.722 and
``PRIME_PACKETS`` / ``PRIME_BYTES`` for the others. Partial frames are kept exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from processors.audio.errors import (
    AudioStateError,
    CodecMismatchError,
    MalformedAudioError,
    TruncatedAudioError,
    UnsupportedCodecError,
)
from processors.audio.g722 import SAMPLE_RATE_HZ as G722_RATE_HZ
from processors.audio.g722 import AvDecoder, Block, G722Decoder
from processors.audio.pcm import DECODERS, Samples, bytes_from_text, bytes_to_text, to_int16

STATE_VERSION = 1
PRIME_PACKETS = 8  # ffmpeg-backed packet codecs: re-prime with at least this many recent packets...
PRIME_BYTES = 1024  # ...and at least this many bytes (an MP3 frame may borrow 511 bytes from earlier ones)
MAX_PENDING = 16_384  # bytes without a complete frame before the stream is declared not to be that codec

# Container signatures that must not appear at the start of a raw stream (the codec is mis-declared).
MAGIC = {b"RIFF": "WAV", b"RF64": "WAV", b"ID3": "MP3", b"fLaC": "FLAC", b"OggS": "OGG", b"#!AMR": "AMR"}


@dataclass(frozen=True)
class PacketCodec:
    """How an ffmpeg-decoded schema codec arrives: ``parsed`` streams are cut into frames by ffmpeg's
    parser (else each payload is one packet); ``holds_last``: the parser keeps a complete last frame
    until the end of stream (else bytes it still holds at the end are a cut frame)."""

    ffmpeg: str
    parsed: bool
    output_rate: int | None  # fixed by the codec, or None: from the stream
    holds_last: bool = False


PACKET_CODECS = {
    "MP3": PacketCodec("mp3", parsed=True, output_rate=None),
    "AMR_WB": PacketCodec("amrwb", parsed=True, output_rate=16_000, holds_last=True),
    "OPUS": PacketCodec("libopus", parsed=False, output_rate=48_000),
}
ID3V1_TAG = 128  # bytes of the "TAG" block some MP3 files end with
RAW_DECODERS: dict[str, Callable[[bytes], Samples]] = {
    **DECODERS,
    "PCM_U8": lambda data: to_int16(np.frombuffer(data, np.uint8)),  # 8-bit WAV data only
}
# WAV fmt (format tag, bits per sample) -> raw decoder
WAV_FORMATS = {(1, 16): "L16_LE", (1, 8): "PCM_U8", (6, 8): "PCMA", (7, 8): "PCMU"}


class _Engine(Protocol):
    output_rate: int | None

    def decode(self, payload: bytes) -> Samples: ...

    def finish(self) -> Samples: ...

    def to_state(self) -> dict[str, object]: ...


def _magic(payload: bytes) -> str | None:
    return next((name for magic, name in MAGIC.items() if payload.startswith(magic)), None)


class _Raw:
    """G.711 / L16 samples; bytes of an incomplete frame wait for the next payload."""

    def __init__(self, codec: str, rate: int, channels: int, *, sniff: bool = True) -> None:
        self.codec = codec
        self.output_rate: int | None = rate
        self.channels = channels
        self._decode = RAW_DECODERS[codec]
        self._frame_bytes = (2 if codec.startswith("L16") else 1) * channels
        self._pending = b""
        self._sniff = sniff

    def decode(self, payload: bytes) -> Samples:
        if self._sniff and payload:
            self._sniff = False
            found = _magic(payload)
            if found:
                raise CodecMismatchError(f"{self.codec} payload starts with a {found} header ({payload[:4]!r})")
        data = self._pending + payload
        whole = len(data) - len(data) % self._frame_bytes
        self._pending = data[whole:]
        return self._decode(data[:whole]).reshape(-1, self.channels)

    def finish(self) -> Samples:
        if self._pending:
            raise TruncatedAudioError(
                f"{self.codec} stream ends with {len(self._pending)} stray bytes,"
                f" not a whole {self._frame_bytes}-byte frame"
            )
        return np.zeros((0, self.channels), np.int16)

    def to_state(self) -> dict[str, object]:
        return {"pending": bytes_to_text(self._pending), "sniff": self._sniff}

    def restore(self, state: Mapping[str, object]) -> None:
        self._pending = bytes_from_text(state.get("pending"), f"{self.codec} state 'pending'")
        self._sniff = bool(state.get("sniff"))


class _G722:
    output_rate: int | None = G722_RATE_HZ

    def __init__(self, decoder: G722Decoder | None = None) -> None:
        self._decoder = decoder or G722Decoder()

    def decode(self, payload: bytes) -> Samples:
        return self._decoder.decode(payload).reshape(-1, 1)

    def finish(self) -> Samples:
        return np.zeros((0, 1), np.int16)

    def to_state(self) -> dict[str, object]:
        return self._decoder.to_state()


@dataclass(frozen=True)
class WavFormat:
    """What a WAV fmt chunk says: format tag, bits per sample, rate (Hz) and channels."""

    tag: int
    bits: int
    sample_rate: int
    channels: int

    @property
    def codec(self) -> str:
        """The raw decoder for the data; UnsupportedCodecError for formats without one."""
        codec = WAV_FORMATS.get((self.tag, self.bits))
        if codec is None:
            raise UnsupportedCodecError(
                f"WAV format tag 0x{self.tag:04x} with {self.bits}-bit samples is not supported"
                " (PCM 8/16-bit, A-law, mu-law are)"
            )
        return codec


class WavParser:
    """Incremental RIFF/WAVE parser: bytes in any split -> the bytes of its data chunks.

    A data size of 0 or 0xFFFFFFFF (and any RF64 file) means "until the end of the stream", as live
    WAV writers do. After a complete data chunk, other chunks are skipped and a new RIFF header
    starts the next file, which must have the same format.
    """

    def __init__(self) -> None:
        self.format: WavFormat | None = None
        self._buf = b""
        self._phase = "riff"  # riff | chunk | fmt | skip | data
        self._left = 0  # bytes left in the current chunk body (with its pad byte); -1: data to the end
        self._pad = 0  # pad byte still due after the current data chunk
        self._rf64 = False
        self._after_data = False  # the skip phase is the pad byte of a data chunk
        self._offset = 0  # stream bytes consumed, for messages

    def feed(self, data: bytes) -> list[bytes]:
        """Parse the next bytes; returns the data-chunk bytes among them (possibly split)."""
        self._buf += data
        pieces = []
        while (piece := self._step()) is not None:
            if piece:
                pieces.append(piece)
        return pieces

    def _take(self, count: int) -> bytes:
        taken, self._buf = self._buf[:count], self._buf[count:]
        self._offset += len(taken)
        return taken

    def _step(self) -> bytes | None:
        """One parsing step: None when more bytes are needed, else the data bytes it released."""
        if self._phase == "riff":
            return self._riff()
        if self._phase == "chunk":
            return self._chunk()
        if self._phase == "fmt":
            if len(self._buf) < self._left:
                return None
            self.format = self._fmt(self._take(self._left))
            self._phase = "chunk"
            return b""
        if not self._buf:
            return None
        size = len(self._buf) if self._left < 0 else min(len(self._buf), self._left)
        taken = self._take(size)
        data = self._phase == "data"
        if self._left > 0:
            self._left -= size
            if self._left == 0:
                self._phase, self._left = ("skip", self._pad) if data and self._pad else ("chunk", 0)
                self._after_data = data
        return taken if data else b""

    def _riff(self) -> bytes | None:
        head = self._buf[:4]
        if not (b"RIFF".startswith(head) or b"RF64".startswith(head)):
            raise CodecMismatchError(f"WAV stream has {head!r} at byte {self._offset}, not a RIFF header")
        if len(self._buf) < 12:
            return None
        if self._buf[8:12] != b"WAVE":
            raise CodecMismatchError(f"WAV: RIFF file of type {self._buf[8:12]!r} at byte {self._offset}, not WAVE")
        self._rf64 = self._take(12).startswith(b"RF64")
        self._phase = "chunk"
        return b""

    def _chunk(self) -> bytes | None:
        if len(self._buf) < 8:
            return None
        if self._buf.startswith(b"RIFF"):
            self._phase = "riff"  # the next file of a concatenated stream
            return b""
        name, size = self._buf[:4], int.from_bytes(self._buf[4:8], "little")
        if not all(0x20 <= c < 0x7F for c in name):
            raise MalformedAudioError(f"WAV: chunk id {name!r} at byte {self._offset} is not text")
        self._take(8)
        if name == b"data":
            if self.format is None:
                raise MalformedAudioError(f"WAV: data chunk at byte {self._offset - 8} before any fmt chunk")
            unbounded = self._rf64 or size in (0, 0xFFFFFFFF)
            self._phase, self._left, self._pad = "data", -1 if unbounded else size, size % 2
        else:
            self._phase, self._left = ("fmt" if name == b"fmt " else "skip"), size + size % 2
            self._phase = "chunk" if self._left == 0 else self._phase
        return b""

    def _fmt(self, body: bytes) -> WavFormat:
        if len(body) < 16:
            raise MalformedAudioError(f"WAV: fmt chunk of {len(body)} bytes, need at least 16")
        tag, channels, rate = int.from_bytes(body[0:2], "little"), body[2] | body[3] << 8, _u32(body[4:8])
        bits = int.from_bytes(body[14:16], "little")
        if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag
            tag = int.from_bytes(body[24:26], "little")
        if channels < 1 or rate < 1:
            raise MalformedAudioError(f"WAV: fmt chunk says {channels} channels at {rate} Hz")
        found = WavFormat(tag, bits, rate, channels)
        if self.format is not None and found != self.format:
            raise MalformedAudioError(f"WAV format changed mid-stream from {self.format} to {found}")
        return found

    def finish(self) -> None:
        """End of stream: TruncatedAudioError if it stopped inside a header or a sized chunk
        (a missing pad byte after the last data chunk is tolerated: writers often omit it)."""
        if self._phase == "skip" and self._left == 1 and self._after_data and not self._buf:
            return
        if self._buf or self._left > 0:
            raise TruncatedAudioError(
                f"WAV stream ends inside its {self._phase} part at byte {self._offset + len(self._buf)}"
                f" ({len(self._buf)} bytes unparsed, {max(self._left, 0)} bytes of the chunk missing)"
            )

    def to_state(self) -> dict[str, object]:
        fmt = self.format
        return {
            "format": None if fmt is None else [fmt.tag, fmt.bits, fmt.sample_rate, fmt.channels],
            "buf": bytes_to_text(self._buf),
            "phase": self._phase,
            "left": self._left,
            "pad": self._pad,
            "rf64": self._rf64,
            "after_data": self._after_data,
            "offset": self._offset,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> WavParser:
        parser = cls()
        fmt, phase = state.get("format"), state.get("phase")
        if fmt is not None:
            if not (isinstance(fmt, list) and len(fmt) == 4 and all(isinstance(v, int) for v in fmt)):
                raise AudioStateError(f"WAV state 'format' must be [tag, bits, rate, channels], got {fmt!r}")
            parser.format = WavFormat(*fmt)
        if phase not in ("riff", "chunk", "fmt", "skip", "data"):
            raise AudioStateError(f"WAV state 'phase' is {phase!r}")
        parser._phase, parser._buf = str(phase), bytes_from_text(state.get("buf"), "WAV state 'buf'")
        parser._left, parser._pad, parser._offset = _int(state, "left"), _int(state, "pad"), _int(state, "offset")
        parser._rf64, parser._after_data = bool(state.get("rf64")), bool(state.get("after_data"))
        return parser


def _u32(data: bytes) -> int:
    return int.from_bytes(data, "little")


class _Wav:
    """WAV stream: the header parser finds the data; a raw decoder turns it into samples."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._parser = WavParser()
        self._raw: _Raw | None = None
        self.output_rate: int | None = None

    def decode(self, payload: bytes) -> Samples:
        blocks = [self._data(piece) for piece in self._parser.feed(payload)]
        return np.concatenate(blocks) if blocks else np.zeros((0, self.channels), np.int16)

    def _data(self, piece: bytes) -> Samples:
        fmt = self._parser.format
        assert fmt is not None  # the parser only yields data after a fmt chunk
        if self._raw is None:
            if fmt.channels != self.channels:
                raise CodecMismatchError(
                    f"WAV header has {fmt.channels} channels, the track was declared with {self.channels}"
                )
            self._raw = _Raw(fmt.codec, fmt.sample_rate, fmt.channels, sniff=False)
            self.output_rate = fmt.sample_rate
        return self._raw.decode(piece)

    def finish(self) -> Samples:
        self._parser.finish()
        return self._raw.finish() if self._raw else np.zeros((0, self.channels), np.int16)

    def to_state(self) -> dict[str, object]:
        return {"parser": self._parser.to_state(), "raw": self._raw.to_state() if self._raw else None}

    def restore(self, state: Mapping[str, object]) -> None:
        self._parser = WavParser.from_state(_mapping(state.get("parser"), "WAV state 'parser'"))
        if state.get("raw") is not None and self._parser.format is not None:
            self._data(b"")
            assert self._raw is not None
            self._raw.restore(_mapping(state.get("raw"), "WAV state 'raw'"))


class _Packets:
    """An ffmpeg decoder fed whole packets (found by ffmpeg's parser, or one packet per payload)."""

    def __init__(self, codec: str, channels: int) -> None:
        self.codec = codec
        self._kind = PACKET_CODECS[codec]
        self._parsed, self.output_rate = self._kind.parsed, self._kind.output_rate
        self._channels = channels
        self._decoder = AvDecoder(self._kind.ffmpeg, channels=channels)
        self._head = b""  # stream start, until it is known whether a tag/magic must be skipped
        self._skip = 0  # bytes of a tag still to skip
        self._started = False
        self._pending = b""  # bytes the parser holds (not yet returned as a packet)
        self._prime: list[bytes] = []
        self._frames = 0  # decoded frames so far
        self._refeed = False  # after a restore, ``_pending`` is not yet inside the new parser

    def decode(self, payload: bytes) -> Samples:
        if not self._parsed:
            return self._decode_packets([payload] if payload else [])
        data = self._strip_start(payload)
        if self._refeed:  # bytes the parser held before a restore go in again, ahead of the new ones
            data, self._pending, self._refeed = self._pending + data, b"", False
        packets = self._decoder.packets(data) if data else []
        unparsed = len(self._pending) + len(data) - sum(len(p) for p in packets)
        self._pending = (self._pending + data)[-unparsed:] if unparsed > 0 else b""
        if len(self._pending) > MAX_PENDING:
            raise CodecMismatchError(f"{self.codec}: no frame sync in the last {len(self._pending)} bytes")
        return self._decode_packets(packets)

    def _strip_start(self, payload: bytes) -> bytes:
        """Skip a leading ID3v2 tag (MP3) or ``#!AMR-WB\\n`` magic; refuse other containers."""
        if self._skip:
            taken = min(self._skip, len(payload))
            self._skip -= taken
            payload = payload[taken:]
        if self._started:
            return payload
        self._head += payload
        if len(self._head) < 10:
            return b""
        head, self._head, self._started = self._head, b"", True
        found = _magic(head)
        if found == "MP3" and self.codec == "MP3":
            size = id3v2_length(head)
            self._skip = max(0, size - len(head))
            return head[size:]
        if found == "AMR" and self.codec == "AMR_WB" and head.startswith(b"#!AMR-WB\n"):
            return head[9:]
        if found:
            raise CodecMismatchError(f"{self.codec} stream starts with a {found} header ({head[:4]!r})")
        return head

    def _decode_packets(self, packets: list[bytes]) -> Samples:
        blocks = [block for packet in packets for block in self._decode_one(packet)]
        for packet in packets:
            self._prime = _recent([*self._prime, packet])
        return np.concatenate([self._check(b) for b in blocks]) if blocks else self._empty()

    def _empty(self) -> Samples:
        return np.zeros((0, self._channels), np.int16)

    def _decode_one(self, packet: bytes) -> list[Block]:
        try:
            blocks = self._decoder.decode(packet)
        except MalformedAudioError as error:
            if self._frames == 0:
                raise CodecMismatchError(f"payload is not {self.codec}: {error}") from error
            raise
        self._frames += len(blocks)
        return blocks

    def _check(self, block: Block) -> Samples:
        rate, channels = block.sample_rate, block.samples.shape[1]
        if channels != self._channels:
            raise CodecMismatchError(
                f"{self.codec} stream has {channels} channels, the track was declared with {self._channels}"
            )
        if self.output_rate is None:
            self.output_rate = rate
        if rate != self.output_rate:
            raise MalformedAudioError(f"{self.codec} stream changed from {self.output_rate} Hz to {rate} Hz")
        return block.samples

    def finish(self) -> Samples:
        tail = self.decode(b"") if self._refeed else self._empty()
        if self._head or self._skip:
            raise TruncatedAudioError(
                f"{self.codec} stream ends inside its header"
                f" ({len(self._head)} bytes, {self._skip} bytes of tag missing)"
            )
        if not self._parsed or not self._pending:
            return tail
        if not self._kind.holds_last:
            if len(self._pending) == ID3V1_TAG and self._pending.startswith(b"TAG"):
                return tail
            raise TruncatedAudioError(f"{self.codec} stream ends inside a frame ({len(self._pending)} bytes)")
        try:
            last = self._decode_packets(self._decoder.packets(b""))  # the parser releases what it holds
        except MalformedAudioError as error:
            raise TruncatedAudioError(
                f"{self.codec} stream ends inside a frame ({len(self._pending)} bytes)"
            ) from error
        self._pending = b""
        return np.concatenate([tail, last])

    def to_state(self) -> dict[str, object]:
        return {
            "head": bytes_to_text(self._head),
            "skip": self._skip,
            "started": self._started,
            "pending": bytes_to_text(self._pending),
            "prime": [bytes_to_text(p) for p in self._prime],
            "frames": self._frames,
            "output_rate": self.output_rate,
        }

    def restore(self, state: Mapping[str, object]) -> None:
        prime = state.get("prime")
        if not isinstance(prime, list):
            raise AudioStateError(f"{self.codec} state 'prime' must be a list, got {type(prime).__name__}")
        for packet in prime:
            self._decode_one(bytes_from_text(packet, f"{self.codec} state 'prime'"))
        self._prime = [bytes_from_text(p, "prime") for p in prime]
        self._head = bytes_from_text(state.get("head"), f"{self.codec} state 'head'")
        self._pending = bytes_from_text(state.get("pending"), f"{self.codec} state 'pending'")
        self._refeed = bool(self._pending)
        self._skip, self._frames = _int(state, "skip"), _int(state, "frames")
        self._started = bool(state.get("started"))
        self.output_rate = _opt_int(state, "output_rate")


def _recent(packets: list[bytes]) -> list[bytes]:
    """Drop the oldest packets while at least PRIME_PACKETS packets and PRIME_BYTES bytes remain."""
    size = sum(len(p) for p in packets)
    start = 0
    while len(packets) - start > PRIME_PACKETS and size - len(packets[start]) >= PRIME_BYTES:
        size -= len(packets[start])
        start += 1
    return packets[start:]


def id3v2_length(head: bytes) -> int:
    """Bytes of the ID3v2 tag that ``head`` (its first 10 bytes at least) starts: header, body, footer."""
    body = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))  # "syncsafe" 7-bit bytes
    return 10 + body + (10 if head[5] & 0x10 else 0)


class TrackDecoder:
    """Decoder for one (call, track): payloads in sequence order -> int16 (frames, channels)."""

    def __init__(self, codec: str, sample_rate: int, channels: int = 1) -> None:
        if sample_rate <= 0:
            raise MalformedAudioError(f"{codec}: sample rate must be positive, got {sample_rate}")
        if channels < 1:
            raise MalformedAudioError(f"{codec}: channel count must be >= 1, got {channels}")
        self.codec, self.sample_rate, self.channels = codec, sample_rate, channels
        self.finished = False
        self._engine = _engine(codec, sample_rate, channels)

    @property
    def output_rate(self) -> int | None:
        """Sample rate of the decoded samples (Hz); None until a WAV/MP3 stream has shown its header."""
        return self._engine.output_rate

    @property
    def output_channels(self) -> int:
        """Channels of the decoded samples: always the declared count (others are refused)."""
        return self.channels

    def decode(self, payload: bytes) -> Samples:
        """Decode the next payload of the track; returns whatever samples it completes."""
        if self.finished:
            raise AudioStateError(f"{self.codec} track decoder already finished; payload of {len(payload)} bytes")
        return self._engine.decode(payload)

    def finish(self) -> Samples:
        """End of the track: remaining samples; TruncatedAudioError if it stopped inside a sample or frame."""
        if self.finished:
            return np.zeros((0, self.channels), np.int16)
        self.finished = True
        return self._engine.finish()

    def to_state(self) -> dict[str, object]:
        """JSON-able state (ints, strings, bools, lists, dicts; bytes as base64)."""
        return {
            "version": STATE_VERSION,
            "codec": self.codec,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "finished": self.finished,
            "engine": self._engine.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, object]) -> TrackDecoder:
        """Resume a decoder saved with ``to_state`` (ffmpeg-backed codecs are re-primed)."""
        if state.get("version") != STATE_VERSION:
            raise AudioStateError(f"track decoder state version {state.get('version')!r}, expected {STATE_VERSION}")
        codec = state.get("codec")
        if not isinstance(codec, str):
            raise AudioStateError(f"track decoder state 'codec' must be a string, got {codec!r}")
        decoder = cls(codec, _int(state, "sample_rate"), _int(state, "channels"))
        decoder.finished = bool(state.get("finished"))
        engine_state = _mapping(state.get("engine"), "track decoder state 'engine'")
        engine = decoder._engine
        if isinstance(engine, _G722):
            decoder._engine = _G722(G722Decoder.from_state(engine_state))
        elif isinstance(engine, _Raw | _Wav | _Packets):
            engine.restore(engine_state)
        return decoder


def _engine(codec: str, rate: int, channels: int) -> _Engine:
    if codec in DECODERS:
        return _Raw(codec, rate, channels)
    if codec == "G722":
        if channels != 1 or rate not in (G722_RATE_HZ, 8000):
            raise UnsupportedCodecError(f"G722 is 16 kHz mono here, got {rate} Hz with {channels} channels")
        return _G722()
    if codec == "WAV":
        return _Wav(channels)
    if codec in PACKET_CODECS:
        return _Packets(codec, channels)
    known = sorted([*DECODERS, "G722", "WAV", *PACKET_CODECS])
    raise UnsupportedCodecError(f"no stream decoder for codec {codec!r}; supported: {', '.join(known)}")


def _mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise AudioStateError(f"{what} must be an object, got {type(value).__name__}")
    return value


def _int(state: Mapping[str, object], key: str) -> int:
    value = state.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise AudioStateError(f"state {key!r} must be an int, got {value!r}")
    return value


def _opt_int(state: Mapping[str, object], key: str) -> int | None:
    return None if state.get(key) is None else _int(state, key)
