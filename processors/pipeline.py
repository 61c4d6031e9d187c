"""One call's whole analysis: session, decoding, VAD, conversation metrics, prosody and alert rules.

``CallPipeline.on_record(name, record)`` takes the call's CallEvents and AudioChunks in topic order
and returns the records to emit (SpeechSegment SPEECH and LEVEL, ProsodyInterim, Alert,
CallMetrics). Everything runs on media time: sample counts of the audio itself, never the clock.
Only two facts come from wall-clock time: hold events are placed on the media timeline through
the first audio chunk's receive time (``origin_ms``), and ``on_tick(now_ms)`` raises ``no_media``.

Tracks: a stereo chunk (2 channels) is channel 0 = agent, channel 1 = customer (the Oliver
``basic.id`` default); a mono chunk is the role it names, else ``inbound`` = customer and
``outbound`` = agent. Other mono tracks are analysed for speech and levels but take no part in the
two-party metrics.

The pipeline is a mutable working object built from, and saved to, one JSON-able dict per call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from processors.analytics import basic, talk
from processors.analytics.errors import AnalyticsError
from processors.analytics.sweep import Interruption, Monologue, Role, Run, TalkConfig
from processors.analytics.tally import (
    Detection,
    DetectionKind,
    LevelReading,
    SignalTally,
    add_detection,
    add_level,
    summary,
)
from processors.analytics.totals import open_runs, totals
from processors.audio.activity import ActivitySummary
from processors.audio.errors import AudioError
from processors.audio.segmenter import Segment
from processors.audio.stream import TrackDecoder
from processors.audio.vad import SileroModel
from processors.rules import engine as rules
from processors.rules.model import RuleSetDef
from processors.session import CallState, Phase, epoch_ms, payload_type, segment_id, step
from processors.tracks import MediaConfig, RoleTrack, Tones, TrackStep
from schemas import ALERT, AUDIO_CHUNK, CALL_METRICS, JOB_TRANSITION, PROSODY_INTERIM, SPEECH_SEGMENT, union_branch

Record = dict[str, Any]
Output = tuple[str, Record]
END_GRACE_MS = 5000  # an ended call completes once its audio has been quiet this long (worker clock)
TRACK_ROLES = {"inbound": "CUSTOMER", "outbound": "AGENT", "agent": "AGENT", "customer": "CUSTOMER"}
STEREO_ROLES = ("AGENT", "CUSTOMER")


class PipelineError(Exception):
    """A record cannot be analysed (bad audio for its codec, contradictory analytics input)."""


@dataclass(frozen=True)
class PipelineConfig:
    """Media analysis, conversation thresholds, and how often (media ms) interim metrics are emitted."""

    media: MediaConfig = field(default_factory=MediaConfig)
    talk: TalkConfig = field(default_factory=TalkConfig)
    metrics_every_ms: int = 10_000


@dataclass
class _Memory:
    """Per-call state outside the tracks and decoders."""

    session: CallState
    origin_ms: int | None = None
    talk: talk.ConversationState = field(default_factory=talk.ConversationState)
    rules: rules.RuleState = field(default_factory=rules.RuleState)
    tally: SignalTally = field(default_factory=SignalTally)
    alerts: int = 0
    metrics_at_ms: int = 0
    ended: bool = False
    last_audio_wall_ms: int | None = None
    records: int = 0  # records applied: tells a cached working pipeline from a stale one
    job_status: int | None = None  # Oliver streaming job (call id = pid): the last status this call reported
    speech_segments: int = 0
    raised: list[Record] = field(default_factory=list)  # RAISED alerts, summarised for a job's results
    ending: Record | None = None  # the CallEnded event, while the call's last audio may still be on its way
    ending_seen_ms: int | None = None  # when the end was seen (worker clock), for the grace period


class CallPipeline:
    """The analysis of one call (see the module docstring)."""

    def __init__(
        self,
        call_id: str,
        config: PipelineConfig,
        rule_set: RuleSetDef,
        *,
        state: Mapping[str, Any] | None = None,
        silero: SileroModel | None = None,
    ) -> None:
        self.call_id = call_id
        self.config = config
        self.rule_set = rule_set
        self._silero = silero
        self.decoders: dict[str, TrackDecoder] = {}
        self.track_roles: dict[str, str] = {}  # source track -> the role its chunks named
        self.tracks: dict[str, RoleTrack] = {}
        self.m = _Memory(CallState(call_id=call_id))
        self._now_ms: int | None = None
        if state is not None:
            self._restore(state)

    # ------------------------------------------------------------ entry points

    def on_record(self, name: str, record: Mapping[str, Any], now_ms: int | None = None) -> list[Output]:
        """Apply one CallEvent or AudioChunk of this call; the records to emit, in order.

        ``now_ms`` (the worker's clock, optional) only feeds ``no_media``: audio counts as arriving when
        it was received or processed, whichever is later, so a worker catching up on a backlog does not
        take old receive times for silence.
        """
        self._now_ms = now_ms
        result = step(self.m.session, name, record)  # tenant check, duplicates, phase table
        self.m.session = result.state
        self.m.records += 1
        if result.duplicate:
            return []
        try:
            if name == AUDIO_CHUNK:
                return self._audio(record)
            return self._event(record)
        except (AudioError, AnalyticsError) as exc:
            raise PipelineError(f"call {self.call_id}: {type(exc).__name__}: {exc}") from exc

    def resume(self, now_ms: int) -> None:
        """A pipeline rebuilt from its table state (after a restart or a rebalance): the audio that arrived
        meanwhile may still be in the backlog, so the wall-clock waits (no_media, completion) start again now."""
        if self.m.last_audio_wall_ms is not None:
            self.m.last_audio_wall_ms = max(self.m.last_audio_wall_ms, now_ms)
        if self.m.ending_seen_ms is not None:
            self.m.ending_seen_ms = max(self.m.ending_seen_ms, now_ms)

    def finish(self) -> list[Output]:
        """Complete an ended call now (all its audio is known to be in: a file, a replay, a test)."""
        if self.m.ending is None or self.m.ended:
            return []
        self.m.records += 1
        return self._end(self.m.ending)

    def on_tick(self, now_ms: int) -> list[Output]:
        """Wall-clock checks: an ended call completes once its audio stayed quiet for ``END_GRACE_MS``;
        an active call with no audio for a while raises ``no_media``."""
        last = self.m.last_audio_wall_ms
        if self.m.ending is not None and not self.m.ended:
            quiet_since = max(last or 0, self.m.ending_seen_ms or 0)
            return self.finish() if now_ms - quiet_since >= END_GRACE_MS else []
        if self.m.ended or last is None or self.m.session.phase is not Phase.ACTIVE:
            return []
        self.m.rules, alerts = rules.absence(
            self.rule_set, self.m.rules, self._ref(), silent_for_ms=now_ms - last, media_at_ms=self._media_end_ms()
        )
        self.m.records += bool(alerts)
        return self._count(alerts)

    # ------------------------------------------------------------ audio

    def _audio(self, chunk: Mapping[str, Any]) -> list[Output]:
        if self.m.ended:
            return []
        out: list[Output] = []
        if self.m.origin_ms is None:
            self.m.origin_ms = epoch_ms(chunk["received_at"]) - int(chunk["start_sample"]) * 1000 // int(
                chunk["sample_rate"]
            )
        if self.m.rules.raised:
            self.m.rules, cleared = rules.media_resumed(
                self.rule_set, self.m.rules, self._ref(), at_ms=self._media_end_ms()
            )
            out += self._count(cleared)
        self.m.last_audio_wall_ms = max(epoch_ms(chunk["received_at"]), self._now_ms or 0)
        decoder = self._decoder(chunk)
        samples = decoder.decode(bytes(chunk["payload"]))
        rate = decoder.output_rate or int(chunk["sample_rate"])
        touched = self._feed(chunk, samples, rate)
        return out + self._advance(chunk["cid"], touched)

    def _decoder(self, chunk: Mapping[str, Any]) -> TrackDecoder:
        key = str(chunk["track"])
        if key not in self.decoders:
            self.decoders[key] = TrackDecoder(str(chunk["codec"]), int(chunk["sample_rate"]), int(chunk["channels"]))
            self.track_roles[key] = str(chunk["role"])
        return self.decoders[key]

    def _feed(self, chunk: Mapping[str, Any], samples: np.ndarray[Any, Any], rate: int) -> dict[str, TrackStep]:
        """Push decoded (frames, channels) samples into the role tracks; what each track produced."""
        start = int(chunk["start_sample"])
        steps: dict[str, TrackStep] = {}
        for channel, role in enumerate(_roles(str(chunk["track"]), str(chunk["role"]), samples.shape[1])):
            track = self.tracks.get(role)
            if track is None:
                track = self.tracks[role] = RoleTrack(role, rate, self.config.media, self._silero)
            steps[role] = track.push(np.ascontiguousarray(samples[:, channel]), start)
        return steps

    # ------------------------------------------------------------ events

    def _event(self, event: Mapping[str, Any]) -> list[Output]:
        kind = payload_type(event)
        at = self._media_ms_of(epoch_ms(event["occurred_at"]))
        if kind == "StreamStarted" and _is_oliver_job(event) and self.m.job_status is None:
            self.m.job_status = 1
            return [(JOB_TRANSITION, self._job(event, 0, 1, "processing"))]
        if kind == "CallHeld" and self.m.session.phase is Phase.ON_HOLD and not self.m.talk.on_hold:
            self._talk(talk.HoldStarted(at))
        elif kind == "CallResumed" and self.m.talk.on_hold:
            self._talk(talk.HoldEnded(max(at, self.m.talk.holds[-1].start)))
        elif kind == "CallEnded" and self.m.ending is None and not self.m.ended:
            # Audio and events travel on different topics, so the call's last audio may be processed after
            # its end: the call completes on finish() or once its audio has been quiet (on_tick).
            self.m.ending = dict(event)
            self.m.ending_seen_ms = max(epoch_ms(event["received_at"]), self._now_ms or 0)
        return []

    def _end(self, event: Mapping[str, Any]) -> list[Output]:
        """Flush every decoder and track, close the conversation, clear open alerts, emit final metrics.

        For an Oliver streaming job whose stream began, the job completes with the call's results.
        """
        cid = int(event["cid"])
        out: list[Output] = []
        steps: dict[str, TrackStep] = {}
        for track_name, decoder in self.decoders.items():
            tail = decoder.finish()
            for channel, role in enumerate(_roles(track_name, self.track_roles[track_name], tail.shape[1])):
                track = self.tracks.get(role)
                if tail.size and track is not None:
                    steps[role] = track.push(np.ascontiguousarray(tail[:, channel]), track.source_cursor)
        for role, track in self.tracks.items():
            steps[role] = steps.get(role, TrackStep()) + track.flush()
        out += self._advance(cid, steps, final=True)
        end_ms = max((t.end_ms for t in self.tracks.values()), default=self.m.talk.watermark_ms)
        self._talk(talk.CallEnd(max(end_ms, self.m.talk.watermark_ms)))
        out += self._evaluate(cid, [])
        self.m.rules, closing = rules.close(self.rule_set, self.m.rules, self._ref(cid), at_ms=self.m.talk.watermark_ms)
        out += self._count(closing)
        self.m.ended = True
        metrics = self._metrics(cid, final=True)
        out.append((CALL_METRICS, metrics))
        if self.m.job_status == 1:
            self.m.job_status = 2
            document = job_results(metrics, self.m.speech_segments, self.m.raised, self.signals())
            out.append((JOB_TRANSITION, self._job(event, 1, 2, "completed", orjson.dumps(document).decode())))
        return out

    def _job(
        self, event: Mapping[str, Any], before: int, after: int, reason: str, results: str | None = None
    ) -> Record:
        return {
            "job_id": int(self.call_id),
            "cid": int(event["cid"]),
            "from_status": before,
            "to_status": after,
            "at": epoch_ms(event["occurred_at"]),
            "reason": reason,
            "metadata": {},
            "results": results,
        }

    # ------------------------------------------------------------ analytics and rules

    def _advance(self, cid: int, steps: Mapping[str, TrackStep], final: bool = False) -> list[Output]:
        out: list[Output] = []
        levels: list[rules.LevelInterval] = []
        talk_outputs: list[Any] = []
        for role, produced in steps.items():
            track = self.tracks[role]
            out += [(SPEECH_SEGMENT, self._speech(cid, track, s)) for s in produced.segments]
            self.m.speech_segments += len(produced.segments)
            out += [(SPEECH_SEGMENT, self._level(cid, track, a)) for a in produced.activity]
            out += [(PROSODY_INTERIM, self._interim(cid, w)) for w in produced.windows if w.outputs()]
            levels += [self._level_interval(track, a) for a in produced.activity]
            if role in STEREO_ROLES:
                for a in produced.activity:
                    reading = LevelReading(
                        Role(role), a.start_sample, a.end_sample, a.level.rms_dbfs, a.level.peak_dbfs
                    )
                    self.m.tally = add_level(self.m.tally, reading)
            levels += self._tones(track, produced.tones)
            if role in STEREO_ROLES:
                for s in produced.segments:
                    talk_outputs += self._talk(
                        talk.Speech(Role(role), track.ms(s.start_sample), track.ms(s.end_sample))
                    )
                if not final:
                    until, since = track.progress_ms()
                    if until > self.m.talk.tracks[Role(role)].until_ms:
                        talk_outputs += self._talk(talk.Progress(Role(role), until, since))
        out += self._evaluate(cid, talk_outputs, levels)
        if not final and self.m.talk.watermark_ms >= self.m.metrics_at_ms + self.config.metrics_every_ms:
            self.m.metrics_at_ms = self.m.talk.watermark_ms - self.m.talk.watermark_ms % self.config.metrics_every_ms
            out.append((CALL_METRICS, self._metrics(cid, final=False)))
        return out

    def _talk(self, item: talk.TalkInput) -> list[Any]:
        result = talk.step(self.m.talk, item, self.config.talk)
        self.m.talk = result.state
        return list(result.outputs)

    def _evaluate(self, cid: int, outputs: list[Any], levels: list[rules.LevelInterval] | None = None) -> list[Output]:
        opened = open_runs(self.m.talk)
        closed: dict[str, list[rules.Run]] = {"silence": [], "overtalk": [], "hold": []}
        monologue: list[tuple[str, rules.Run]] = []
        interruptions: list[rules.Interruption] = []
        for item in outputs:
            if isinstance(item, Run):
                closed[item.kind].append(rules.Run(item.start_ms, item.end_ms))
            elif isinstance(item, Monologue):
                monologue.append((item.role.value, rules.Run(item.start_ms, item.end_ms)))
            elif isinstance(item, Interruption):
                interruptions.append(rules.Interruption(item.at_ms, item.by.value, item.of.value))
        for role, run in opened.monologue.items():
            if run is not None:
                monologue.append((role.value, rules.Run(run[0], None, until_ms=run[1])))
        observation = rules.Observation(
            at_ms=opened.at_ms,
            silence=(*closed["silence"], *_open(opened.silence_since)),
            overtalk=(*closed["overtalk"], *_open(opened.overtalk_since)),
            monologue=tuple(monologue),
            hold=(*closed["hold"], *_open(opened.hold_since)),
            interruptions=tuple(interruptions),
            levels=tuple(levels or ()),
        )
        self.m.rules, alerts = rules.evaluate(self.rule_set, self.m.rules, observation, self._ref(cid))
        return self._count(alerts)

    def _count(self, alerts: list[Record]) -> list[Output]:
        raised = [a for a in alerts if a["status"] == "RAISED"]
        self.m.alerts += len(raised)
        self.m.raised += [_alert_summary(a) for a in raised]
        return [(ALERT, a) for a in alerts]

    # ------------------------------------------------------------ records

    def _speech(self, cid: int, track: RoleTrack, s: Segment) -> Record:
        return {
            "segment_id": segment_id(self.call_id, track.role, "SPEECH", s.start_sample),
            "call_id": self.call_id,
            "cid": cid,
            "track": track.role.lower(),
            "role": _schema_role(track.role),
            "kind": "SPEECH",
            "start_sample": s.start_sample,
            "end_sample": s.end_sample,
            "sample_rate": track.rate,
            "rms_dbfs": None,
            "peak_dbfs": None,
            "speech_probability": round(s.probability, 4),
            "detector": track.vad.detector,
            "voiced_fraction": None,
        }

    def _level(self, cid: int, track: RoleTrack, a: ActivitySummary) -> Record:
        return {
            "segment_id": segment_id(self.call_id, track.role, "LEVEL", a.start_sample),
            "call_id": self.call_id,
            "cid": cid,
            "track": track.role.lower(),
            "role": _schema_role(track.role),
            "kind": "LEVEL",
            "start_sample": a.start_sample,
            "end_sample": a.end_sample,
            "sample_rate": track.rate,
            "rms_dbfs": a.level.rms_dbfs,
            "peak_dbfs": a.level.peak_dbfs,
            "speech_probability": None,
            "detector": "level-meter:2",
            "voiced_fraction": round(a.voiced_fraction, 4),
        }

    def _level_interval(self, track: RoleTrack, a: ActivitySummary) -> rules.LevelInterval:
        speaking = a.voiced_fraction >= 0.5  # the interval's level is the speaker's level
        rms = a.level.rms_dbfs if speaking else None
        return rules.LevelInterval(track.role, track.ms(a.start_sample), track.ms(a.end_sample), rms, None)

    def _tones(self, track: RoleTrack, found: Tones) -> list[rules.LevelInterval]:
        """Count tones in the tally; clipping intervals become level facts for the clipping rule."""
        role = Role(track.role) if track.role in STEREO_ROLES else None
        detections = [Detection(DetectionKind.DTMF, *track_ms(track, d), role, d.digit) for d in found.dtmf]
        detections += [Detection(DetectionKind.BEEP, *track_ms(track, b), role) for b in found.beeps]
        detections += [Detection(DetectionKind.RINGBACK, *track_ms(track, r), role) for r in found.rings]
        detections += [
            Detection(DetectionKind.CLIPPING, *track_ms(track, c), role) for c in found.clipping if c.clipped
        ]
        for detection in detections:
            self.m.tally = add_detection(self.m.tally, detection)
        return [
            rules.LevelInterval(track.role, track.ms(c.start_sample), track.ms(c.end_sample), None, c.ratio)
            for c in found.clipping
        ]

    def _interim(self, cid: int, w: Any) -> Record:
        outputs = w.outputs()
        return {
            "call_id": self.call_id,
            "cid": cid,
            "role": w.role.value,
            "start_ms": w.start_sample * 1000 // w.sample_rate_hz,
            "end_ms": w.end_sample * 1000 // w.sample_rate_hz,
            "intensity": outputs.get("intensity"),
            "vocal_variety": outputs.get("vocal_variety"),
            "speaking_rate": outputs.get("speaking_rate"),
        }

    def _metrics(self, cid: int, *, final: bool) -> Record:
        t = totals(self.m.talk)
        longest = {r: (m[1] - m[0]) if m else 0 for r, m in t.longest_monologue.items()}
        block = basic.basic_block(self.m.talk, self.m.tally) if final else {}
        return {
            "call_id": self.call_id,
            "cid": cid,
            "watermark_ms": t.watermark_ms,
            "final": final,
            "talk_agent_ms": t.talk_ms[Role.AGENT],
            "talk_customer_ms": t.talk_ms[Role.CUSTOMER],
            "silence_ms": t.silence_ms,
            "overtalk_ms": t.overtalk_ms,
            "hold_ms": t.hold_ms,
            "interruptions_agent": t.interruptions[Role.AGENT],
            "interruptions_customer": t.interruptions[Role.CUSTOMER],
            "longest_monologue_agent_ms": longest[Role.AGENT],
            "longest_monologue_customer_ms": longest[Role.CUSTOMER],
            "speaker_changes": t.speaker_changes,
            "talk_ratio": None if t.talk_ratio is None else round(t.talk_ratio, 4),
            "beeps": self.m.tally.count(DetectionKind.BEEP),
            "rings": self.m.tally.count(DetectionKind.RINGBACK),
            "dtmf": "".join(d.value for d in self.m.tally.of_kind(DetectionKind.DTMF)),
            "alerts": self.m.alerts,
            "basic": orjson.dumps(block).decode(),
        }

    # ------------------------------------------------------------ time

    def _ref(self, cid: int | None = None) -> rules.CallRef:
        owner = cid if cid is not None else (self.m.session.cid or 0)
        return rules.CallRef(self.call_id, owner, self.m.origin_ms or 0)

    def _media_ms_of(self, wall_ms: int) -> int:
        """Media time of a wall-clock instant (0 before the media began)."""
        return 0 if self.m.origin_ms is None else max(0, wall_ms - self.m.origin_ms)

    def _media_end_ms(self) -> int:
        return max((t.end_ms for t in self.tracks.values()), default=0)

    # ------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        m = self.m
        return {
            "session": m.session.to_dict(),
            "origin_ms": m.origin_ms,
            "talk": m.talk.to_dict(),
            "rules": m.rules.to_dict(),
            "rules_version": self.rule_set.version,
            "tally": m.tally.to_dict(),
            "alerts": m.alerts,
            "metrics_at_ms": m.metrics_at_ms,
            "ended": m.ended,
            "last_audio_wall_ms": m.last_audio_wall_ms,
            "records": m.records,
            "job_status": m.job_status,
            "ending": None if m.ending is None else _jsonable(m.ending),
            "ending_seen_ms": m.ending_seen_ms,
            "speech_segments": m.speech_segments,
            "raised": m.raised,
            # A completed call keeps only its facts: decoders and tracks (the bulk of the state) are done with.
            "decoders": {} if m.ended else {k: d.to_state() for k, d in self.decoders.items()},
            "track_roles": {} if m.ended else dict(self.track_roles),
            "tracks": {} if m.ended else {k: t.to_state() for k, t in self.tracks.items()},
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.m = _Memory(
            session=CallState.from_dict(state["session"]),
            origin_ms=state["origin_ms"],
            talk=talk.ConversationState.from_dict(state["talk"]),
            rules=rules.RuleState.from_dict(state["rules"]),
            tally=SignalTally.from_dict(state["tally"]),
            alerts=int(state["alerts"]),
            metrics_at_ms=int(state["metrics_at_ms"]),
            ended=bool(state["ended"]),
            last_audio_wall_ms=state["last_audio_wall_ms"],
            records=int(state["records"]),
            job_status=state["job_status"],
            ending=_restored_event(state["ending"]),
            ending_seen_ms=state["ending_seen_ms"],
            speech_segments=int(state["speech_segments"]),
            raised=list(state["raised"]),
        )
        self.decoders = {k: TrackDecoder.from_state(v) for k, v in dict(state["decoders"]).items()}
        self.track_roles = {str(k): str(v) for k, v in dict(state["track_roles"]).items()}
        self.tracks = {
            k: RoleTrack.from_state(v, self.config.media, self._silero) for k, v in dict(state["tracks"]).items()
        }

    @property
    def session(self) -> CallState:
        return self.m.session

    @property
    def last_audio_wall_ms(self) -> int | None:
        """Receive time (UTC ms) of the call's latest audio."""
        return self.m.last_audio_wall_ms

    @property
    def quiet_since_ms(self) -> int | None:
        """Since when (worker clock, ms) nothing arrived that a wall-clock check waits for: the latest audio,
        or the end of the call if that came later. None while there is nothing to watch."""
        times = [t for t in (self.m.last_audio_wall_ms, self.m.ending_seen_ms) if t is not None]
        return max(times) if times else None

    @property
    def ended(self) -> bool:
        return self.m.ended

    def signals(self) -> dict[str, Any]:
        """Beep and ring-back times, DTMF digits, clipping and levels per role found so far."""
        return summary(self.m.tally)

    @property
    def records(self) -> int:
        """How many records (and ticks that changed something) this call's state has seen."""
        return self.m.records

    def with_rules(self, rule_set: RuleSetDef) -> CallPipeline:
        """Switch to a newer rule set (occurrences already raised keep their state)."""
        self.rule_set = rule_set
        return self


def _roles(track: str, role: str, channels: int) -> list[str]:
    """Role of each channel of a track: stereo is agent/customer; mono is the named role, else by track name."""
    if channels == 2:
        return list(STEREO_ROLES)
    if role != "UNSPECIFIED":
        return [role] * channels
    return [TRACK_ROLES.get(track, f"MIXED:{track}")] * channels


def track_ms(track: RoleTrack, found: Any) -> tuple[int, int]:
    """[start, end) in media ms of something a detector found (sample offsets at the track's rate)."""
    return track.ms(found.start_sample), track.ms(found.end_sample)


def job_results(
    metrics: Mapping[str, Any], speech_segments: int, raised: list[Record], signals: Mapping[str, Any]
) -> Record:
    """A job's result document: the Oliver ``basic`` block, the call metrics, counts, the alerts raised, and
    the in-band signals (beep and ring-back times, DTMF digits, clipping and levels per role)."""
    return {
        "basic": orjson.loads(metrics["basic"]),
        "metrics": {k: v for k, v in metrics.items() if k not in ("call_id", "cid", "basic", "final")},
        "segments": speech_segments,
        "alerts": raised,
        "signals": dict(signals),
    }


def _alert_summary(alert: Mapping[str, Any]) -> Record:
    return {"rule_id": alert["rule_id"], "kind": alert["rule_kind"], "st": alert["start_ms"] / 1000,
            "et": alert["end_ms"] / 1000}  # fmt: skip


def _is_oliver_job(event: Mapping[str, Any]) -> bool:
    return event["source"] == "OLIVER" and str(event["call_id"]).isdigit()


def _jsonable(event: Mapping[str, Any]) -> Record:
    """The fields of a CallEnded event the completion needs, in JSON-able form."""
    kind, payload = union_branch(event["payload"])
    return {
        "call_id": event["call_id"],
        "cid": event["cid"],
        "source": event["source"],
        "occurred_at": epoch_ms(event["occurred_at"]),
        "received_at": epoch_ms(event["received_at"]),
        "payload": (f"io.switchboard.calls.{kind}", dict(payload)),
    }


def _restored_event(saved: Mapping[str, Any] | None) -> Record | None:
    """A ``_jsonable`` event back from the table's JSON, where its (type, record) payload became a list."""
    if saved is None:
        return None
    kind, payload = saved["payload"]
    return {**saved, "payload": (str(kind), dict(payload))}


def _open(since: int | None) -> tuple[rules.Run, ...]:
    return () if since is None else (rules.Run(since, None),)


def _schema_role(role: str) -> str:
    return role if role in ("AGENT", "CUSTOMER", "BOT", "SUPERVISOR") else "UNSPECIFIED"
