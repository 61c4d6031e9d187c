"""Pure mapping of Oliver jobs and streams to records, and of output records to socket messages."""

from __future__ import annotations

from datetime import UTC, datetime

from producers.oliver import translate
from producers.oliver.framing import Chunk
from producers.oliver.models import JobInfo, Mode, ProcessParams, StreamFormat, StreamParams, Tasks
from schemas import ALERT, JOB_TRANSITION, SPEECH_SEGMENT, AvroCodec

CODEC = AvroCodec.default()
AT_MS = 1_740_823_200_123  # 2025-03-01T10:00:00.123Z
STREAM_PARAMS = StreamParams.from_query(
    [("channels", "2"), ("calldirection", "outgoing"), ("agentId", "a-9"), ("ANI", "+301"), ("customerId", "c-1")]
)
JOB = translate.job_from_transition(
    translate.queued_transition(48213, 7, AT_MS, translate.stream_metadata(STREAM_PARAMS))
)


def test_queued_transition_encodes_and_holds_the_inputs() -> None:
    params = ProcessParams.from_query([("channels", "1"), ("calldirection", "1"), ("name", "n1")])
    audio = {"uri": "file:///b/7/1.wav", "duration": "3.0", "sample_rate": "8000", "channels": "1", "format": "wav"}
    record = translate.queued_transition(1, 7, AT_MS, translate.batch_metadata(params, audio))
    assert record == {
        "job_id": 1,
        "cid": 7,
        "from_status": None,
        "to_status": 0,
        "at": AT_MS,
        "reason": "pending",
        "metadata": {
            "channels": "1",
            "calldirection": "1",
            "name": "n1",
            "uri": "file:///b/7/1.wav",
            "duration": "3.0",
            "sample_rate": "8000",
            "format": "wav",
            "mode": "batch",
        },
        "results": None,
    }
    decoded = CODEC.decode_as(JOB_TRANSITION, CODEC.encode(JOB_TRANSITION, record))
    assert decoded["at"] == datetime(2025, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)


def test_process_record_is_pending_with_echoed_inputs() -> None:
    record = translate.process_record(48213, 7, AT_MS, STREAM_PARAMS, Mode.STREAM, duration_s=0.0, uri="")
    assert record == {
        "pid": 48213,
        "id": 48213,
        "cid": 7,
        "name": "",
        "status": 0,
        "statusmsg": "pending",
        "duration": 0.0,
        "datetime": "2025-03-01T10:00:00.123Z",
        "uri": "",
        "channels": 2,
        "calldirection": 2,
        "agentId": "a-9",
        "customerId": "c-1",
        "ANI": "+301",
        "tasks": [
            {"name": "stream", "options": {"activate": True}},
            {"name": "alerts", "options": {"activate": False}},
        ],
        "mode": "stream",
    }


def test_job_from_transition_reads_streaming_jobs_only() -> None:
    assert translate.job_from_transition(
        translate.queued_transition(48213, 7, AT_MS, translate.stream_metadata(STREAM_PARAMS))
    ) == JobInfo(
        pid=48213,
        cid=7,
        mode="stream",
        channels=2,
        tasks=Tasks(stream=True, alerts=False),
        metadata=translate.stream_metadata(STREAM_PARAMS),
        status=0,
    )
    batch = translate.queued_transition(5, 7, AT_MS, {"mode": "batch", "channels": "1"})
    assert translate.job_from_transition(batch) is None
    later = {**translate.queued_transition(48213, 7, AT_MS, translate.stream_metadata(STREAM_PARAMS)), "from_status": 0}
    assert translate.job_from_transition(later) is None


def test_stream_life_cycle_events_are_content_derived_and_encode() -> None:
    assert JOB is not None
    started = translate.stream_started(JOB, StreamFormat.RAW, 2, AT_MS, '{"control":"start"}')
    stopped = translate.stream_stopped(JOB, "", 1500, AT_MS + 2000, '{"control":"end"}')
    assert [e["event_id"] for e in started + stopped] == [
        "oliver:48213:CallStarted",
        "oliver:48213:StreamStarted",
        "oliver:48213:StreamStopped",
        "oliver:48213:CallEnded",
    ]
    assert started[0]["payload"] == (
        "io.switchboard.calls.CallStarted",
        {
            "from_number": "+301",
            "to_number": None,
            "direction": "OUTBOUND",
            "participants": [
                {"role": "AGENT", "participant_id": "a-9"},
                {"role": "CUSTOMER", "participant_id": "c-1"},
            ],
            "answered": True,
        },
    )
    assert started[1]["payload"] == (
        "io.switchboard.calls.StreamStarted",
        {"stream_id": "48213", "codec": "L16_LE", "sample_rate": 8000, "channels": 2},
    )
    assert stopped[1]["payload"] == ("io.switchboard.calls.CallEnded", {"reason": "end", "duration_ms": 1500})
    for event in started + stopped:
        assert (event["call_id"], event["cid"], event["source"]) == ("48213", 7, "OLIVER")
        CODEC.encode("io.switchboard.calls.CallEvent", event)


def test_audio_chunk_record() -> None:
    assert JOB is not None
    chunk = Chunk(b"\x01\x00" * 4, "L16_LE", 8000, 2, 1600, 2)
    record = translate.audio_chunk(JOB, chunk, 3, AT_MS)
    assert record == {
        "call_id": "48213",
        "cid": 7,
        "track": "stereo",
        "role": "UNSPECIFIED",
        "codec": "L16_LE",
        "sample_rate": 8000,
        "channels": 2,
        "sequence": 3,
        "start_sample": 1600,
        "media_timestamp_ms": None,
        "received_at": AT_MS,
        "payload": b"\x01\x00" * 4,
    }
    CODEC.encode("io.switchboard.calls.AudioChunk", record)


def _segment(start: int, end: int) -> dict[str, object]:
    return {
        "segment_id": f"s-{start}",
        "call_id": "48213",
        "cid": 7,
        "track": "stereo",
        "role": "UNSPECIFIED",
        "kind": "SPEECH",
        "start_sample": start,
        "end_sample": end,
        "sample_rate": 8000,
        "rms_dbfs": -20.5,
        "peak_dbfs": -3.0,
        "speech_probability": 0.9,
        "detector": "webrtcvad:2",
    }


ALERT_RECORD = {
    "alert_id": "al-1",
    "rule_id": "customer_anger",
    "call_id": "48213",
    "cid": 7,
    "severity": "WARNING",
    "start_ms": 18000,
    "end_ms": 21000,
    "detected_at": datetime(2025, 3, 1, 10, 0, 21, tzinfo=UTC),
    "details": {"track": "stereo"},
}


def test_result_messages_follow_the_interim_shape_and_end_with_is_final() -> None:
    results = translate.ResultStream(48213, Tasks(stream=True, alerts=True))
    assert results.message(SPEECH_SEGMENT, _segment(8000, 20000)) == {
        "id": "48213-0",
        "pid": 48213,
        "st": 1.0,
        "et": 2.5,
        "is_final": False,
        "stream": {
            "segment_id": "s-8000",
            "track": "stereo",
            "role": "UNSPECIFIED",
            "kind": "SPEECH",
            "start_sample": 8000,
            "end_sample": 20000,
            "sample_rate": 8000,
            "rms_dbfs": -20.5,
            "peak_dbfs": -3.0,
            "speech_probability": 0.9,
            "detector": "webrtcvad:2",
        },
    }
    assert results.message(ALERT, ALERT_RECORD) == {
        "id": "48213-1",
        "pid": 48213,
        "st": 18.0,
        "et": 21.0,
        "is_final": False,
        "alerts": [
            {
                "id": "al-1",
                "type": "customer_anger",
                "severity": "WARNING",
                "st": 18.0,
                "et": 21.0,
                "detected_at": "2025-03-01T10:00:21.000Z",
                "details": {"track": "stereo"},
            }
        ],
    }
    processing = {"job_id": 48213, "to_status": 1, "reason": "processing"}
    assert results.message(JOB_TRANSITION, processing) is None
    completed = {"job_id": 48213, "to_status": 2, "reason": "stream ended"}
    assert results.message(JOB_TRANSITION, completed) == {
        "id": "48213-2",
        "pid": 48213,
        "st": 0.0,
        "et": 21.0,
        "is_final": True,
        "status": 2,
        "statusmsg": "completed",
        "reason": "stream ended",
    }


def test_result_messages_respect_the_jobs_tasks() -> None:
    alerts_only = translate.ResultStream(1, Tasks(stream=False, alerts=True))
    assert alerts_only.message(SPEECH_SEGMENT, _segment(0, 800)) is None
    assert alerts_only.message(ALERT, ALERT_RECORD) is not None
    stream_only = translate.ResultStream(1, Tasks(stream=True, alerts=False))
    assert stream_only.message(ALERT, ALERT_RECORD) is None
    aborted = stream_only.message(JOB_TRANSITION, {"job_id": 1, "to_status": -2, "reason": "no credits"})
    assert aborted == {
        "id": "1-0",
        "pid": 1,
        "st": 0.0,
        "et": 0.0,
        "is_final": True,
        "status": -2,
        "statusmsg": "aborted",
        "reason": "no credits",
    }
