"""Per-stream media assembler: reorder, deduplicate and aggregate Telnyx RTP payloads into chunks. Pure.

Telnyx does not guarantee frame order. Each track keeps a small reorder buffer keyed by the
packet's order number (``media.chunk``, else the frame's ``sequence_number``, else arrival order):
a packet is released once it directly follows the last released one or once more than
``reorder_window`` packets wait. A packet whose number was already seen is an exact duplicate
(counted, dropped; a different payload under a seen number is counted as a conflict and dropped);
one older than the last released packet arrived too late to be put in place (counted, dropped).
``flush`` releases everything still waiting, so the tail is never lost.

Released packets are laid on the track's timeline in samples at the audio's sample rate. The
first packet starts at ``media.timestamp`` (ms since stream start) converted to samples; each
further packet continues where the previous one ended, unless its timestamp lies more than
``gap_tolerance_ms`` beyond that point: then the open chunk is closed and a new one starts at the
timestamp's position, so a gap is never hidden. Without timestamps the position is the count of
samples released so far (packet count x packet duration) and a lost packet cannot be seen.

Packets are concatenated into chunks of at least ``chunk_ms`` worth of samples (a packet is never
split); ``flush`` emits the short last chunk.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from producers.telnyx.errors import FrameError, UnsupportedEncodingError

# encoding name as announced (lower-cased) -> (AudioChunk codec, bytes per sample per channel, fixed rate Hz)
_ENCODINGS: dict[str, tuple[str, float, int | None]] = {
    "pcmu": ("PCMU", 1.0, 8000),
    "audio/x-mulaw": ("PCMU", 1.0, 8000),
    "pcma": ("PCMA", 1.0, 8000),
    "audio/x-alaw": ("PCMA", 1.0, 8000),
    # G.722 codes 16 kHz audio in 64 kbit/s: 1 byte = 2 samples. Its RTP clock (and Telnyx's
    # sample_rate) says 8000 for historical reasons; the audio is 16000 Hz.
    "g722": ("G722", 0.5, 16000),
    "l16": ("L16_BE", 2.0, None),  # network byte order; rate as announced
}
DEFAULT_L16_RATE_HZ = 8000


@dataclass(frozen=True)
class AudioFormat:
    """How a track's payload bytes map to samples."""

    codec: str  # AudioChunk codec symbol: PCMU, PCMA, G722, L16_BE
    sample_rate: int  # Hz of the decoded audio
    channels: int
    bytes_per_sample: float  # per channel

    def samples_in(self, payload: bytes) -> int:
        """Samples per channel in ``payload``; FrameError when it is not a whole number of frames."""
        frame_bytes = self.bytes_per_sample * self.channels
        frames = len(payload) / frame_bytes
        if frames != int(frames) or not payload:
            raise FrameError(
                f"{self.codec} payload of {len(payload)} bytes is not a whole number of "
                f"{self.channels}-channel frames ({frame_bytes:g} bytes each)"
            )
        return int(frames)


def audio_format(encoding: str, sample_rate: int | None, channels: int) -> AudioFormat:
    """The format of a ``start.media_format``; UnsupportedEncodingError for OPUS, AMR-WB or unknown names.

    OPUS and AMR-WB packets are self-delimited frames that cannot be concatenated into one payload.
    """
    known = _ENCODINGS.get(encoding.lower())
    if known is None:
        raise UnsupportedEncodingError(
            f"media encoding {encoding!r} is not supported (PCMU, PCMA, G722, L16, audio/x-mulaw, audio/x-alaw)"
        )
    codec, width, fixed_rate = known
    rate = fixed_rate or sample_rate or DEFAULT_L16_RATE_HZ
    return AudioFormat(codec=codec, sample_rate=rate, channels=channels, bytes_per_sample=width)


@dataclass(frozen=True)
class Packet:
    """One media frame's audio."""

    track: str
    order: int | None  # media.chunk, else sequence_number; None: arrival order
    timestamp_ms: int | None  # media.timestamp, ms since stream start
    payload: bytes
    received_at_ms: int


@dataclass(frozen=True)
class Piece:
    """One aggregated chunk of a track, ready to become an AudioChunk."""

    track: str
    sequence: int  # 0, 1, 2... per track
    start_sample: int  # per channel, at the format's sample rate, since stream start
    media_timestamp_ms: int | None  # timestamp of its first packet
    received_at_ms: int  # receive time of its first packet
    payload: bytes
    samples: int  # per channel


@dataclass
class Counters:
    """What the assembler dropped, by cause."""

    duplicates: int = 0
    conflicts: int = 0
    late: int = 0
    filtered: int = 0


@dataclass
class _Track:
    """Reorder buffer and open chunk of one track."""

    pending: list[tuple[int, Packet]] = field(default_factory=list)  # heap by order
    pending_payloads: dict[int, bytes] = field(default_factory=dict)
    recent: deque[tuple[int, bytes]] = field(default_factory=deque)  # released (order, payload), newest last
    last_order: int | None = None
    arrivals: int = 0
    cursor: int | None = None  # sample where the next contiguous packet starts
    parts: list[bytes] = field(default_factory=list)
    part_samples: int = 0
    head: Packet | None = None  # first packet of the open chunk
    head_start: int = 0
    next_sequence: int = 0


class StreamAssembler:
    """Turns the media packets of one stream into ordered, aggregated pieces per track."""

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        chunk_ms: int,
        tracks: Iterable[str] | None = None,
        reorder_window: int = 10,
        gap_tolerance_ms: int = 10,
    ) -> None:
        """``tracks``: the only tracks kept (None keeps all); ``reorder_window`` in packets."""
        self.fmt = fmt
        self.target_samples = max(1, fmt.sample_rate * chunk_ms // 1000)
        self.tolerance_samples = fmt.sample_rate * gap_tolerance_ms // 1000
        self.allowed = frozenset(tracks) if tracks is not None else None
        self.window = reorder_window
        self.counters = Counters()
        self._tracks: dict[str, _Track] = {}

    def push(self, packet: Packet) -> list[Piece]:
        """Add one packet; return the pieces it completes. FrameError (state unchanged) for a misaligned payload."""
        self.fmt.samples_in(packet.payload)
        if self.allowed is not None and packet.track not in self.allowed:
            self.counters.filtered += 1
            return []
        track = self._tracks.setdefault(packet.track, _Track())
        order = packet.order if packet.order is not None else track.arrivals
        track.arrivals += 1
        if self._seen(track, order, packet.payload):
            return []
        if track.last_order is not None and order < track.last_order:
            self.counters.late += 1
            return []
        heapq.heappush(track.pending, (order, packet))
        track.pending_payloads[order] = packet.payload
        out: list[Piece] = []
        while track.pending and (
            len(track.pending) > self.window
            or (track.last_order is not None and track.pending[0][0] == track.last_order + 1)
        ):
            out.extend(self._release(track, *heapq.heappop(track.pending)))
        return out

    def flush(self) -> list[Piece]:
        """Release every waiting packet and close every open chunk (tracks in name order)."""
        out: list[Piece] = []
        for name in sorted(self._tracks):
            track = self._tracks[name]
            while track.pending:
                out.extend(self._release(track, *heapq.heappop(track.pending)))
            out.extend(self._close(name, track))
        return out

    def _seen(self, track: _Track, order: int, payload: bytes) -> bool:
        earlier = track.pending_payloads.get(order)
        if earlier is None:
            earlier = next((p for o, p in track.recent if o == order), None)
        if earlier is None:
            return False
        if earlier == payload:
            self.counters.duplicates += 1
        else:
            self.counters.conflicts += 1
        return True

    def _release(self, track: _Track, order: int, packet: Packet) -> list[Piece]:
        del track.pending_payloads[order]
        track.recent.append((order, packet.payload))
        if len(track.recent) > 4 * self.window:
            track.recent.popleft()
        track.last_order = order
        samples = self.fmt.samples_in(packet.payload)
        at = None if packet.timestamp_ms is None else packet.timestamp_ms * self.fmt.sample_rate // 1000
        out: list[Piece] = []
        if track.cursor is None:
            start = at if at is not None else 0
        elif at is not None and at - track.cursor > self.tolerance_samples:
            out.extend(self._close(packet.track, track))  # a gap: never pretend the audio is contiguous
            start = at
        else:
            start = track.cursor
        if track.head is None:
            track.head, track.head_start = packet, start
        track.parts.append(packet.payload)
        track.part_samples += samples
        track.cursor = start + samples
        if track.part_samples >= self.target_samples:
            out.extend(self._close(packet.track, track))
        return out

    def _close(self, name: str, track: _Track) -> list[Piece]:
        if track.head is None:
            return []
        piece = Piece(
            track=name,
            sequence=track.next_sequence,
            start_sample=track.head_start,
            media_timestamp_ms=track.head.timestamp_ms,
            received_at_ms=track.head.received_at_ms,
            payload=b"".join(track.parts),
            samples=track.part_samples,
        )
        track.next_sequence += 1
        track.head, track.parts, track.part_samples = None, [], 0
        return [piece]
