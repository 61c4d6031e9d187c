"""Two-track conversation metrics of one call, as a pure fold over inputs on media time (integer ms).

Inputs (plain data, ms since the call's media start):
- ``Speech(role, start_ms, end_ms)``: a closed speech segment. A role's segments arrive in order and
  do not overlap; the two roles progress independently. A closed segment also says the role's audio
  is processed up to ``end_ms``.
- ``Progress(role, until_ms, speaking_since_ms)``: the role's audio is processed up to ``until_ms``;
  speech before it is final. ``speaking_since_ms`` is the start of a segment still open at
  ``until_ms`` (the role is speaking from there through ``until_ms``); its ``Speech`` must follow
  with that start.
- ``HoldStarted(at_ms)`` / ``HoldEnded(at_ms)``: hold periods from the session events.
- ``CallEnd(at_ms)``: no more input; roles' audio not processed up to ``at_ms`` counts as no speech.
  Send it after the tracks' last segments.

``step`` advances the joint watermark (the minimum of the roles' ``until_ms``) and returns what
became certain up to it (see ``processors.analytics.sweep`` for the exact definitions); nothing is
ever revised. Any interleaving of the two roles' inputs that keeps each role's own order gives the
same outputs, in the same order, and the same state once both roles are done.

Redelivered inputs are recognised and ignored (``duplicates`` counts them): a segment ending at or
before the role's last segment end, a watermark not beyond the role's current one, a hold event
or call end seen before. A hold event for a time the joint watermark has already passed is
applied from the watermark on; the ms its boundary moved are added to ``late_hold_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from processors.analytics import sweep as sw
from processors.analytics.errors import IllegalTransitionError, InvalidInputError, OutOfOrderError
from processors.analytics.sweep import ROLES, Output, Role, Sweep, TalkConfig
from processors.analytics.timeline import Interval, pieces


@dataclass(frozen=True)
class Speech:
    role: Role
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Progress:
    role: Role
    until_ms: int
    speaking_since_ms: int | None = None


@dataclass(frozen=True)
class HoldStarted:
    at_ms: int


@dataclass(frozen=True)
class HoldEnded:
    at_ms: int


@dataclass(frozen=True)
class CallEnd:
    at_ms: int


TalkInput = Speech | Progress | HoldStarted | HoldEnded | CallEnd


@dataclass(frozen=True)
class Track:
    """What one role's input said so far (ms)."""

    until_ms: int = 0
    last_end_ms: int = 0  # end of the last closed segment accepted
    open_since_ms: int | None = None
    pending: tuple[Interval, ...] = ()  # closed segments not yet wholly behind the joint watermark

    def speech(self) -> list[Interval]:
        """The role's known speech from the oldest pending segment on, the open segment up to ``until_ms``."""
        if self.open_since_ms is None:
            return list(self.pending)
        return [*self.pending, (self.open_since_ms, self.until_ms)]


@dataclass(frozen=True)
class Hold:
    """A hold as asked (event times) and as applied (moved to the joint watermark when late); ends None while open."""

    asked_start: int
    start: int
    asked_end: int | None = None
    end: int | None = None


def _tracks() -> Mapping[Role, Track]:
    return {role: Track() for role in ROLES}


@dataclass(frozen=True)
class ConversationState:
    """Per-call memory of the conversation metrics (JSON-able via to_dict/from_dict)."""

    tracks: Mapping[Role, Track] = field(default_factory=_tracks)
    holds: tuple[Hold, ...] = ()
    sweep: Sweep = field(default_factory=Sweep)
    ended_ms: int | None = None
    late_hold_ms: int = 0
    duplicates: int = 0

    @property
    def watermark_ms(self) -> int:
        """Joint watermark: every output and total is final before it."""
        return self.sweep.cursor_ms

    @property
    def on_hold(self) -> bool:
        return bool(self.holds) and self.holds[-1].end is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracks": {
                role.value: [t.until_ms, t.last_end_ms, t.open_since_ms, [list(p) for p in t.pending]]
                for role, t in self.tracks.items()
            },
            "holds": [[h.asked_start, h.start, h.asked_end, h.end] for h in self.holds],
            "sweep": self.sweep.to_dict(),
            "ended_ms": self.ended_ms,
            "late_hold_ms": self.late_hold_ms,
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConversationState:
        tracks = {
            Role(role): Track(int(t[0]), int(t[1]), _opt(t[2]), tuple((int(s), int(e)) for s, e in t[3]))
            for role, t in dict(data["tracks"]).items()
        }
        holds = tuple(Hold(int(h[0]), int(h[1]), _opt(h[2]), _opt(h[3])) for h in data["holds"])
        return cls(
            tracks=tracks,
            holds=holds,
            sweep=Sweep.from_dict(data["sweep"]),
            ended_ms=_opt(data["ended_ms"]),
            late_hold_ms=int(data["late_hold_ms"]),
            duplicates=int(data["duplicates"]),
        )


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class TalkStep:
    """Result of one step: the new state and the facts that became certain, in time order."""

    state: ConversationState
    outputs: list[Output] = field(default_factory=list)
    duplicate: bool = False


def step(state: ConversationState, item: TalkInput, config: TalkConfig | None = None) -> TalkStep:
    """Apply one input; on error the caller's state is unchanged (it is never mutated)."""
    config = config or TalkConfig()
    handler = _HANDLERS.get(type(item))
    if handler is None:
        raise InvalidInputError(f"conversation metrics do not take {type(item).__name__} inputs")
    _check_times(item)
    changed = handler(state, item)
    if changed is None:
        return TalkStep(replace(state, duplicates=state.duplicates + 1), duplicate=True)
    if isinstance(item, CallEnd):
        return _end(changed, item.at_ms, config)
    return _advance(changed, min(t.until_ms for t in changed.tracks.values()), config)


def fold(items: list[TalkInput], config: TalkConfig | None = None) -> tuple[ConversationState, list[Output]]:
    """Rebuild the state from inputs in order; returns it with every output."""
    state, outputs = ConversationState(), []
    for item in items:
        result = step(state, item, config)
        state = result.state
        outputs.extend(result.outputs)
    return state, outputs


def _check_times(item: TalkInput) -> None:
    times = {k: v for k, v in vars(item).items() if k.endswith("_ms") and v is not None}
    for name, value in times.items():
        if not isinstance(value, int) or value < 0:
            raise InvalidInputError(f"{type(item).__name__}.{name} must be a non-negative int of ms, got {value!r}")


def _not_ended(state: ConversationState, item: TalkInput) -> None:
    if state.ended_ms is not None:
        raise IllegalTransitionError(f"{item} arrived after the call ended at {state.ended_ms} ms")


def _speech(state: ConversationState, item: TalkInput) -> ConversationState | None:
    assert isinstance(item, Speech)
    track = state.tracks[item.role]
    if item.end_ms <= item.start_ms:
        raise InvalidInputError(f"{item.role} segment [{item.start_ms}, {item.end_ms}) is empty or reversed")
    if item.end_ms <= track.last_end_ms:
        return None
    _not_ended(state, item)
    if item.start_ms < track.last_end_ms:
        raise OutOfOrderError(
            f"{item.role} segment [{item.start_ms}, {item.end_ms}) overlaps the previous one ending at "
            f"{track.last_end_ms} ms"
        )
    if track.open_since_ms is not None:
        if item.start_ms != track.open_since_ms or item.end_ms < track.until_ms:
            raise OutOfOrderError(
                f"{item.role} segment [{item.start_ms}, {item.end_ms}) does not close the open segment that started "
                f"at {track.open_since_ms} ms and lasted past {track.until_ms} ms"
            )
    elif item.start_ms < track.until_ms:
        raise OutOfOrderError(
            f"{item.role} segment [{item.start_ms}, {item.end_ms}) starts before the role's watermark "
            f"{track.until_ms} ms"
        )
    new = Track(max(track.until_ms, item.end_ms), item.end_ms, None, (*track.pending, (item.start_ms, item.end_ms)))
    return replace(state, tracks={**state.tracks, item.role: new})


def _progress(state: ConversationState, item: TalkInput) -> ConversationState | None:
    assert isinstance(item, Progress)
    track = state.tracks[item.role]
    since = item.speaking_since_ms
    if item.until_ms < track.until_ms or (item.until_ms == track.until_ms and since == track.open_since_ms):
        return None
    _not_ended(state, item)
    if since is None and track.open_since_ms is not None:
        raise OutOfOrderError(
            f"{item.role} progress to {item.until_ms} ms without the Speech closing its segment open since "
            f"{track.open_since_ms} ms"
        )
    if since is not None and track.open_since_ms is not None and since != track.open_since_ms:
        raise OutOfOrderError(
            f"{item.role} speaking since {since} ms, but its open segment started at {track.open_since_ms} ms"
        )
    if since is not None and track.open_since_ms is None and not track.until_ms <= since <= item.until_ms:
        raise OutOfOrderError(
            f"{item.role} speaking since {since} ms is outside its new audio [{track.until_ms}, {item.until_ms}) ms"
        )
    new = replace(track, until_ms=item.until_ms, open_since_ms=since)
    return replace(state, tracks={**state.tracks, item.role: new})


# Hold phases: (on hold?, event type) -> on hold afterwards. Anything else is an illegal transition.
HOLD_TRANSITIONS: Mapping[tuple[bool, type], bool] = {(False, HoldStarted): True, (True, HoldEnded): False}


def _hold(state: ConversationState, item: TalkInput) -> ConversationState | None:
    assert isinstance(item, HoldStarted | HoldEnded)
    starting = isinstance(item, HoldStarted)
    if any((h.asked_start if starting else h.asked_end) == item.at_ms for h in state.holds):
        return None
    _not_ended(state, item)
    if (state.on_hold, type(item)) not in HOLD_TRANSITIONS:
        phase = "on hold" if state.on_hold else "not on hold"
        raise IllegalTransitionError(f"{type(item).__name__} at {item.at_ms} ms while the call is {phase}")
    cursor = state.watermark_ms
    if starting:
        last = state.holds[-1].asked_end if state.holds else None
        if last is not None and item.at_ms < last:
            raise OutOfOrderError(f"hold starting at {item.at_ms} ms before the previous hold ended at {last} ms")
        start = max(item.at_ms, cursor)
        hold = Hold(item.at_ms, start)
        return replace(state, holds=(*state.holds, hold), late_hold_ms=state.late_hold_ms + start - item.at_ms)
    current = state.holds[-1]
    if item.at_ms < current.asked_start:
        raise OutOfOrderError(f"hold ending at {item.at_ms} ms before it started at {current.asked_start} ms")
    end = max(item.at_ms, cursor, current.start)
    closed = replace(current, asked_end=item.at_ms, end=end)
    return replace(state, holds=(*state.holds[:-1], closed), late_hold_ms=state.late_hold_ms + end - item.at_ms)


def _call_end(state: ConversationState, item: TalkInput) -> ConversationState | None:
    assert isinstance(item, CallEnd)
    if state.ended_ms == item.at_ms:
        return None
    _not_ended(state, item)
    if item.at_ms < state.watermark_ms:
        raise OutOfOrderError(f"call end at {item.at_ms} ms is before the joint watermark {state.watermark_ms} ms")
    return state


_HANDLERS: Mapping[type, Callable[[ConversationState, TalkInput], ConversationState | None]] = {
    Speech: _speech,
    Progress: _progress,
    HoldStarted: _hold,
    HoldEnded: _hold,
    CallEnd: _call_end,
}


def _advance(state: ConversationState, target: int, config: TalkConfig) -> TalkStep:
    """Fold the timeline from the joint watermark to ``target`` and drop what lies wholly behind it."""
    lo = state.watermark_ms
    if target <= lo:
        return TalkStep(state)
    holds = [(h.start, h.end if h.end is not None else target) for h in state.holds]
    layers = [state.tracks[Role.AGENT].speech(), state.tracks[Role.CUSTOMER].speech(), holds]
    swept, outputs = sw.advance(state.sweep, pieces(lo, target, layers), config)
    tracks = {
        role: replace(t, pending=tuple(p for p in t.pending if p[1] > target)) for role, t in state.tracks.items()
    }
    return TalkStep(replace(state, tracks=tracks, sweep=swept), outputs)


def _end(state: ConversationState, at_ms: int, config: TalkConfig) -> TalkStep:
    """Advance to the call end, close every open run there and close an open hold."""
    tracks = {
        role: replace(t, until_ms=at_ms, open_since_ms=None, pending=tuple(t.speech())) if t.until_ms < at_ms else t
        for role, t in state.tracks.items()
    }
    advanced = _advance(replace(state, tracks=tracks), at_ms, config)
    swept, closing = sw.finish(advanced.state.sweep, config)
    holds = advanced.state.holds
    if holds and holds[-1].end is None:
        holds = (*holds[:-1], replace(holds[-1], asked_end=at_ms, end=max(at_ms, holds[-1].start)))
    ended = replace(advanced.state, sweep=swept, holds=holds, ended_ms=at_ms)
    return TalkStep(ended, [*advanced.outputs, *closing])
