"""Per-stream state of a Cresta call session: setup, sequenceId tracking, session state and audio aggregation.

Pure: no I/O and no clock; the caller passes each message's receive time (UTC ms) and sends the
records a step returns. ``CallSession.accept`` checks a message completely before it changes any
state, so a refused message leaves nothing behind.

sequenceId rule: ids that parse as integers must increase by exactly 1 (the first one may be any
integer); an integer id inside the range already seen is a duplicate; anything else (a gap, or an id
below the first) is FAILED_PRECONDITION naming the expected and the received id. Non-numeric ids are
not ordered: such an id is a duplicate when it equals one of the stream's last ``RECENT_IDS``
non-numeric ids, and new otherwise. A duplicate is acknowledged but records nothing. Messages
without an id are always new.

Audio aggregation: each track collects whole sample frames (every channel of one sample) and emits an
AudioChunk whenever it holds ``chunk_ms`` of audio; a trailing partial frame (an odd L16 byte, half a
stereo frame) is carried to the next bytes. Partial aggregates are emitted before every sessionEvent
or audioEvent, when the stream is idle (``flush``) and when it ends or breaks (``close``); only
``close`` and CALL_END also emit a carried partial frame, as a chunk of its own, so nothing is dropped.
Positions (``start_sample``) count samples per channel at the configured rate since the track began;
a PAUSE advances every track (and tracks that start later) by pauseDuration. With the encoding
unknown (AUDIO_ENCODING_UNSPECIFIED) or a rate of 0, every message is its own chunk and positions
count bytes.

Acknowledgement rule: a result line confirms that everything the message carried is on Kafka. A
step returns the sequenceIds whose records are all among the records it returns (or returned
before), and the caller writes their result lines only after Kafka acknowledged those records. An
audio message is therefore acknowledged once the aggregate holding its last byte has been emitted,
which may be a later step (the one that fills the chunk, the next event, ``flush`` or ``close``);
a duplicate is acknowledged once every byte received so far has been emitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from producers.cresta.models import (
    NANOS_PER_S,
    PRECONDITION_FAILURE_TYPE,
    AudioContent,
    AudioEvent,
    AudioEventType,
    ChannelType,
    Code,
    CrestaError,
    Role,
    SessionEvent,
    SessionEventType,
    StreamingConfig,
    StreamRequest,
    field_violation,
    format_duration,
    parse_duration,
)
from producers.cresta.translate import (
    AudioFormat,
    CallRef,
    audio_chunk_record,
    audio_event_record,
    session_event_record,
    track_of,
)

Record = dict[str, Any]
RECENT_IDS = 256
_INTEGER = re.compile(r"-?[0-9]+")


class Endpoint(StrEnum):
    """The two streaming methods."""

    STREAM = "streamCallSession"
    AUDIO = "streamCallSessionAudio"


class SessionState(StrEnum):
    ACTIVE = "SESSION_STATE_ACTIVE"
    ON_HOLD = "SESSION_STATE_ON_HOLD"
    ENDED = "SESSION_STATE_ENDED"


_A, _H, _E = SessionState.ACTIVE, SessionState.ON_HOLD, SessionState.ENDED
# (state, sessionEvent type) -> next state. Repeated hold/unhold/start keep the state (tolerated);
# nothing is accepted once the session has ended.
TRANSITIONS: Mapping[tuple[SessionState, SessionEventType], SessionState] = {
    (_A, SessionEventType.EVENT_TYPE_UNSPECIFIED): _A,
    (_A, SessionEventType.CALL_START): _A,
    (_A, SessionEventType.CALL_HOLD): _H,
    (_A, SessionEventType.CALL_UNHOLD): _A,
    (_A, SessionEventType.CALL_END): _E,
    (_H, SessionEventType.EVENT_TYPE_UNSPECIFIED): _H,
    (_H, SessionEventType.CALL_START): _H,
    (_H, SessionEventType.CALL_HOLD): _H,
    (_H, SessionEventType.CALL_UNHOLD): _A,
    (_H, SessionEventType.CALL_END): _E,
}


def next_state(state: SessionState, event: SessionEventType) -> SessionState:
    """The state after ``event``; FAILED_PRECONDITION naming both when the transition is not in the table."""
    after = TRANSITIONS.get((state, event))
    if after is None:
        raise CrestaError(Code.FAILED_PRECONDITION, f"sessionEvent {event.name} is not accepted in {state.value}")
    return after


@dataclass(frozen=True)
class Sequencer:
    """sequenceIds seen on one stream (see the module docstring for the rule)."""

    first: int | None = None
    last: int | None = None
    recent: tuple[str, ...] = ()

    def admit(self, sequence_id: str) -> tuple[Sequencer, bool]:
        """(next state, True when the message is new / False for a duplicate); CrestaError on a gap or reordering."""
        if not sequence_id:
            return self, True
        if not _INTEGER.fullmatch(sequence_id):
            if sequence_id in self.recent:
                return self, False
            return replace(self, recent=(*self.recent[-(RECENT_IDS - 1) :], sequence_id)), True
        number = int(sequence_id)
        if self.first is None or self.last is None:
            return replace(self, first=number, last=number), True
        if number == self.last + 1:
            return replace(self, last=number), True
        if self.first <= number <= self.last:
            return self, False
        description = f"sequenceId out of order: expected {self.last + 1}, got {sequence_id}"
        violation = {"type": "SEQUENCE", "subject": "sequenceId", "description": description}
        raise CrestaError(
            Code.FAILED_PRECONDITION, description, [{"@type": PRECONDITION_FAILURE_TYPE, "violations": [violation]}]
        )


@dataclass(frozen=True)
class Chunk:
    """Aggregated audio of one track: its sequence, first sample position (per channel) and bytes."""

    sequence: int
    start_sample: int
    payload: bytes
    received_ms: int


@dataclass
class TrackBuffer:
    """Aggregation state of one track. Sizes in bytes; positions in samples per channel."""

    frame_bytes: int
    chunk_frames: int  # frames per chunk; 0 = every append is its own chunk
    position: int = 0  # start_sample of the next chunk
    sequence: int = 0  # sequence of the next chunk
    pending: bytearray = field(default_factory=bytearray)  # whole frames not yet emitted
    carry: bytearray = field(default_factory=bytearray)  # a partial frame, fewer than frame_bytes bytes
    received: int = 0  # bytes appended so far
    emitted: int = 0  # bytes emitted in chunks so far
    last_received_ms: int = 0

    def append(self, data: bytes, received_ms: int) -> list[Chunk]:
        """Take ``data``; the chunks it completes."""
        self.received += len(data)
        self.last_received_ms = received_ms
        joined = self.carry + data
        whole = len(joined) - len(joined) % self.frame_bytes
        self.pending += joined[:whole]
        self.carry = joined[whole:]
        size = self.chunk_frames * self.frame_bytes
        if not size:
            return self.drain(final=False)
        chunks = []
        while len(self.pending) >= size:
            chunks.append(self._emit(size))
        return chunks

    def drain(self, final: bool) -> list[Chunk]:
        """Emit the partial aggregate; with ``final`` also a carried partial frame, as a chunk of its own."""
        chunks = [self._emit(len(self.pending))] if self.pending else []
        if final and self.carry:
            self.pending, self.carry = self.carry, bytearray()
            chunks.append(self._emit(len(self.pending)))
        return chunks

    def skip(self, frames: int) -> None:
        """Advance the position by ``frames`` (a pause); call after ``drain``."""
        self.position += frames

    @property
    def received_frames(self) -> int:
        return self.received // self.frame_bytes

    def _emit(self, size: int) -> Chunk:
        payload = bytes(self.pending[:size])
        del self.pending[:size]
        chunk = Chunk(self.sequence, self.position, payload, self.last_received_ms)
        self.sequence += 1
        self.position += size // self.frame_bytes
        self.emitted += size
        return chunk


@dataclass(frozen=True)
class Outcome:
    """What one step produced: records to send (CallEvents, AudioChunks) and the sequenceIds to acknowledge after."""

    events: list[Record] = field(default_factory=list)
    chunks: list[Record] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Waiting:
    sequence_id: str
    ends: tuple[tuple[str, int], ...]  # (track, received byte count) that must be emitted first


class CallSession:
    """The state of one streamCallSession / streamCallSessionAudio stream."""

    def __init__(self, ref: CallRef, config: StreamingConfig, endpoint: Endpoint, chunk_ms: int) -> None:
        self.ref = ref
        self.endpoint = endpoint
        self.channel_type = config.channel_type
        self.audio = AudioFormat.of(
            config.audio_metadata.encoding, config.audio_metadata.sample_rate_hertz, config.channel_type
        )
        self.state = SessionState.ACTIVE
        self._chunk_frames = self.audio.chunk_frames(chunk_ms)
        self._sequencer = Sequencer()
        self._tracks: dict[tuple[str, str], TrackBuffer] = {}
        self._paused_frames = 0
        self._waiting: list[_Waiting] = []
        self._started = False

    @classmethod
    def open(cls, cid: int, endpoint: Endpoint, first: StreamRequest, chunk_ms: int) -> CallSession:
        """A session for the stream whose first message is ``first``; CrestaError unless it carries a valid config."""
        config = first.streaming_config
        if config is None:
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                "the first message of a stream must carry streamingConfig",
                [field_violation("streamingConfig", "required in the first message")],
            )
        for name, value in (("profile", config.profile), ("platformCallId", config.platform_call_id)):
            if not value:
                raise CrestaError(
                    Code.INVALID_ARGUMENT,
                    f"streamingConfig.{name} is required",
                    [field_violation(f"streamingConfig.{name}", "required")],
                )
        return cls(CallRef(cid, config.platform_call_id, config.profile, endpoint.value), config, endpoint, chunk_ms)

    @property
    def waiting(self) -> bool:
        """Whether some messages are not acknowledged yet."""
        return bool(self._waiting)

    def accept(self, message: StreamRequest, raw: str, received_ms: int) -> Outcome:
        """Process one message (its JSON text ``raw``, received at ``received_ms``)."""
        sequencer, new = self._sequencer.admit(message.sequence_id)
        if not new:
            self._waiting.append(_Waiting(message.sequence_id, self._all_received()))
            return Outcome(acks=self._release())
        pause_frames = self._check(message)
        self._sequencer, self._started = sequencer, True
        outcome = Outcome()
        ends: tuple[tuple[str, int], ...] = ()
        if message.audio_content is not None:
            ends = self._take_audio(message.audio_content, received_ms, outcome)
        if message.audio_event is not None:
            self._audio_event(message.audio_event, pause_frames, raw, message.sequence_id, received_ms, outcome)
        if message.session_event is not None:
            self._session_event(message.session_event, raw, message.sequence_id, received_ms, outcome)
        self._waiting.append(_Waiting(message.sequence_id, ends))
        outcome.acks.extend(self._release())
        return outcome

    def flush(self) -> Outcome:
        """Emit the partial aggregates (idle stream); carried partial frames stay."""
        chunks = self._drain(final=False)
        return Outcome(chunks=chunks, acks=self._release())

    def close(self) -> Outcome:
        """Emit everything held (stream end or break); every accepted message becomes acknowledgeable."""
        chunks = self._drain(final=True)
        return Outcome(chunks=chunks, acks=self._release())

    def result(self, sequence_id: str) -> dict[str, Any]:
        """The response chunk acknowledging the message with ``sequence_id`` ("" = none)."""
        body: dict[str, Any] = {"sessionStatus": self.status()}
        if sequence_id:
            body["sequenceId"] = sequence_id
        body["conversationName"] = self.ref.conversation_name
        return {"result": body}

    def status(self) -> dict[str, str]:
        """sessionStatus: state and audio received so far (longest track, pauses not counted)."""
        frames = max((track.received_frames for track in self._tracks.values()), default=0)
        rate = self.audio.sample_rate if self.audio.sample_bytes else 0
        nanos = frames * NANOS_PER_S // rate if rate else 0
        return {"state": self.state.value, "audioReceivedDuration": format_duration(nanos)}

    def _check(self, message: StreamRequest) -> int:
        """Refuse a message that cannot be applied in full; returns the frames a PAUSE in it skips."""
        if message.streaming_config is not None and self._started:
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                "streamingConfig is only accepted in the first message of a stream",
                [field_violation("streamingConfig", "only allowed in the first message")],
            )
        carries = [message.audio_content, message.audio_event, message.session_event]
        if self.state is SessionState.ENDED and any(part is not None for part in carries):
            raise CrestaError(
                Code.FAILED_PRECONDITION, f"the session of call {self.ref.call_id} has ended (CALL_END was received)"
            )
        if message.audio_content is not None:
            self._check_audio(message.audio_content)
        pause_frames = 0
        if message.audio_event is not None:
            pause_frames = self._check_audio_event(message.audio_event)
        if message.session_event is not None:
            self._check_session_event(message.session_event)
        return pause_frames

    def _check_audio(self, content: AudioContent) -> None:
        if self.channel_type is ChannelType.CHANNEL_TYPE_SEPARATE and content.participant.role is Role.ROLE_UNSPECIFIED:
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                "audioContent.participant.role is required with CHANNEL_TYPE_SEPARATE",
                [field_violation("audioContent.participant.role", "required with CHANNEL_TYPE_SEPARATE")],
            )

    def _check_audio_event(self, event: AudioEvent) -> int:
        if self.endpoint is not Endpoint.AUDIO:
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                f"audioEvent is only accepted on {Endpoint.AUDIO.value}, not on {self.endpoint.value}",
                [field_violation("audioEvent", f"not a field of {self.endpoint.value} requests")],
            )
        if event.event_type is not AudioEventType.PAUSE:
            return 0
        try:
            nanos = parse_duration(event.pause_duration)
        except ValueError as exc:
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                f"audioEvent.pauseDuration: {exc}",
                [field_violation("audioEvent.pauseDuration", str(exc))],
            ) from exc
        if nanos < 0:
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                f"audioEvent.pauseDuration must not be negative: {event.pause_duration!r}",
                [field_violation("audioEvent.pauseDuration", "negative")],
            )
        rate = self.audio.sample_rate if self.audio.sample_bytes else 0
        return (nanos * rate + NANOS_PER_S // 2) // NANOS_PER_S

    def _check_session_event(self, event: SessionEvent) -> None:
        if event.platform_call_id and event.platform_call_id != self.ref.call_id:
            description = f"{event.platform_call_id!r} is not the stream's platformCallId {self.ref.call_id!r}"
            raise CrestaError(
                Code.INVALID_ARGUMENT,
                f"sessionEvent.platformCallId: {description}",
                [field_violation("sessionEvent.platformCallId", description)],
            )
        next_state(self.state, event.event_type)

    def _take_audio(self, content: AudioContent, received_ms: int, outcome: Outcome) -> tuple[tuple[str, int], ...]:
        track = track_of(self.channel_type, content.participant.role)
        buffer = self._tracks.get(track)
        if buffer is None:
            buffer = TrackBuffer(self.audio.frame_bytes, self._chunk_frames, position=self._paused_frames)
            self._tracks[track] = buffer
        chunks = buffer.append(content.audio_content, received_ms)
        outcome.chunks.extend(self._record(track, chunk) for chunk in chunks)
        return ((track[0], buffer.received),)

    def _audio_event(
        self, event: AudioEvent, pause_frames: int, raw: str, sequence_id: str, received_ms: int, outcome: Outcome
    ) -> None:
        outcome.chunks.extend(self._drain(final=False))
        if pause_frames:
            self._paused_frames += pause_frames
            for buffer in self._tracks.values():
                buffer.skip(pause_frames)
        outcome.events.append(audio_event_record(self.ref, event, raw, sequence_id, received_ms))

    def _session_event(
        self, event: SessionEvent, raw: str, sequence_id: str, received_ms: int, outcome: Outcome
    ) -> None:
        self.state = next_state(self.state, event.event_type)
        outcome.chunks.extend(self._drain(final=self.state is SessionState.ENDED))
        outcome.events.append(session_event_record(self.ref, event, raw, sequence_id, received_ms))

    def _drain(self, final: bool) -> list[Record]:
        """AudioChunks of every track's partial aggregate (and, if ``final``, carried partial frames)."""
        return [self._record(track, c) for track, buffer in self._tracks.items() for c in buffer.drain(final)]

    def _record(self, track: tuple[str, str], chunk: Chunk) -> Record:
        return audio_chunk_record(
            self.ref, self.audio, track, chunk.sequence, chunk.start_sample, chunk.payload, chunk.received_ms
        )

    def _all_received(self) -> tuple[tuple[str, int], ...]:
        return tuple((label, buffer.received) for (label, _), buffer in self._tracks.items())

    def _release(self) -> list[str]:
        """sequenceIds of waiting messages whose bytes have all been emitted, in arrival order."""
        emitted = {label: buffer.emitted for (label, _), buffer in self._tracks.items()}
        ready: list[str] = []
        still: list[_Waiting] = []
        for waiting in self._waiting:
            if all(emitted.get(label, 0) >= end for label, end in waiting.ends):
                ready.append(waiting.sequence_id)
            else:
                still.append(waiting)
        self._waiting = still
        return ready
