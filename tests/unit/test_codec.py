"""AvroCodec: single-object encoding, fingerprints, schema evolution and error handling."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro.schema
import pytest

from schemas import (
    ALERT,
    AUDIO_CHUNK,
    CALL_EVENT,
    CALL_METRICS,
    COMMAND,
    COMMAND_RESULT,
    JOB_TRANSITION,
    PROSODY_INTERIM,
    RULE_SET,
    SPEECH_SEGMENT,
    AvroCodec,
    CorruptRecordError,
    EncodeError,
    Schema,
    SchemaDefinitionError,
    SchemaError,
    UnknownFingerprintError,
    UnknownRecordTypeError,
    current_schemas,
)
from schemas.codec import HEADER_SIZE, MARKER

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 10, 0, 7, tzinfo=UTC)
FROZEN = Path(__file__).parent / "frozen_schemas"
NS = "io.switchboard.calls."


@pytest.fixture(scope="module")
def codec() -> AvroCodec:
    return AvroCodec.default()


def call_event(payload: tuple[str, dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": "ev-1",
        "call_id": "call-42",
        "cid": 7,
        "source": "TELNYX",
        "occurred_at": T0,
        "received_at": T1,
        "payload": payload,
        "raw": '{"event_type": "call.initiated"}',
        "attributes": {"traceId": "abc", "stream_id": "s-1"},
    }
    record.update(overrides)
    return record


def audio_chunk(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "call_id": "call-42",
        "cid": 7,
        "track": "inbound",
        "role": "CUSTOMER",
        "codec": "PCMU",
        "sample_rate": 8000,
        "channels": 1,
        "sequence": 3,
        "start_sample": 480,
        "media_timestamp_ms": 60,
        "received_at": T0,
        "payload": bytes(range(256)),
    }
    record.update(overrides)
    return record


# (record type, record as given to encode, record as decode must return it)
FULL_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (CALL_EVENT, call_event((NS + "CallHeld", {}))),
    (CALL_EVENT, call_event((NS + "CallResumed", {}))),
    (
        CALL_EVENT,
        call_event(
            (
                NS + "CallStarted",
                {
                    "from_number": "+4670000001",
                    "to_number": None,
                    "direction": "INBOUND",
                    "participants": [
                        {"role": "AGENT", "participant_id": "agent-9"},
                        {"role": "CUSTOMER", "participant_id": None},
                    ],
                    "answered": False,
                },
            )
        ),
    ),
    (CALL_EVENT, call_event((NS + "CallEnded", {"reason": "callingPartyDrop", "duration_ms": 61_500}))),
    (
        CALL_EVENT,
        call_event((NS + "StreamStarted", {"stream_id": "st-1", "codec": "PCMU", "sample_rate": 8000, "channels": 2})),
    ),
    (CALL_EVENT, call_event((NS + "StreamStopped", {"stream_id": "st-1", "reason": "socket closed"}))),
    (CALL_EVENT, call_event((NS + "Dtmf", {"digits": "12#", "track": "inbound"}))),
    (
        CALL_EVENT,
        call_event(
            (
                NS + "RecordingReady",
                {"file_name": "r.wav", "size_bytes": 2**40, "succeeded": False, "reason": "disk"},
            )
        ),
    ),
    (CALL_EVENT, call_event((NS + "PlatformAlarm", {"alarm_type": "sessionError", "error": "boom \u2603"}))),
    (CALL_EVENT, call_event((NS + "VendorEvent", {"name": "/callbacks/odd"}), source="UNKNOWN")),
    (
        CALL_EVENT,
        call_event(
            (
                NS + "CallAnswered",
                {"connection_id": "conn-1", "participants": [{"role": "AGENT", "participant_id": "p"}]},
            )
        ),
    ),
    (AUDIO_CHUNK, audio_chunk()),
    (
        AUDIO_CHUNK,
        audio_chunk(codec="L16_BE", channels=2, media_timestamp_ms=None, role="UNSPECIFIED", payload=b""),
    ),
    (
        JOB_TRANSITION,
        {
            "job_id": 123456789012,
            "cid": 7,
            "from_status": 1,
            "to_status": -1,
            "at": T0,
            "reason": "transcoder failed",
            "metadata": {"channels": "2", "calldirection": "inbound"},
            "results": '{"sentiment": 0.3}',
        },
    ),
    (
        SPEECH_SEGMENT,
        {
            "segment_id": "seg-1",
            "call_id": "call-42",
            "cid": 7,
            "track": "outbound",
            "role": "AGENT",
            "kind": "LEVEL",
            "start_sample": 0,
            "end_sample": 160,
            "sample_rate": 8000,
            "rms_dbfs": -23.01,
            "peak_dbfs": None,
            "speech_probability": 0.75,
            "detector": "level-meter:1",
            "voiced_fraction": 0.5,
        },
    ),
    (
        CALL_METRICS,
        {
            "call_id": "call-42",
            "cid": 7,
            "watermark_ms": 61_500,
            "final": True,
            "talk_agent_ms": 30_000,
            "talk_customer_ms": 20_000,
            "silence_ms": 9_000,
            "overtalk_ms": 2_500,
            "hold_ms": 0,
            "interruptions_agent": 2,
            "interruptions_customer": 1,
            "longest_monologue_agent_ms": 12_000,
            "longest_monologue_customer_ms": 5_000,
            "speaker_changes": 14,
            "talk_ratio": 0.6,
            "beeps": 1,
            "rings": 3,
            "dtmf": "12#",
            "alerts": 2,
            "basic": '{"totalduration": 61.5}',
        },
    ),
    (
        PROSODY_INTERIM,
        {
            "call_id": "call-42",
            "cid": 7,
            "role": "AGENT",
            "start_ms": 18_000,
            "end_ms": 21_000,
            "intensity": 7,
            "vocal_variety": None,
            "speaking_rate": "fast",
        },
    ),
    (
        ALERT,
        {
            "alert_id": "al-1",
            "rule_id": "r-silence",
            "call_id": "call-42",
            "cid": 7,
            "severity": "CRITICAL",
            "start_ms": 1_000,
            "end_ms": 9_000,
            "detected_at": T1,
            "details": {"threshold_ms": "5000"},
            "status": "CLEARED",
            "rule_kind": "dead_air",
        },
    ),
    (
        COMMAND,
        {
            "command_id": "cmd-1",
            "call_id": "call-42",
            "cid": 7,
            "domain": "customer47.prod-eu-north-1.iotcomms.io",
            "op": "hangupparticipant",
            "body": '{"participant": "p1"}',
            "requested_at": T0,
        },
    ),
    (
        COMMAND_RESULT,
        {
            "command_id": "cmd-1",
            "call_id": "call-42",
            "cid": 7,
            "op": "hangupparticipant",
            "attempt": 3,
            "success": True,
            "http_status": 200,
            "response": '{"success": true}',
            "completed_at": T1,
        },
    ),
    (
        RULE_SET,
        {
            "cid": 7,
            "version": 12,
            "updated_at": T0,
            "rules": [
                {
                    "rule_id": "r-silence",
                    "name": "Long silence",
                    "kind": "long_silence",
                    "severity": "CRITICAL",
                    "enabled": False,
                    "params": {"min_ms": "5000"},
                },
                {
                    "rule_id": "r-level",
                    "name": "",
                    "kind": "level_below",
                    "severity": "INFO",
                    "enabled": True,
                    "params": {},
                },
            ],
        },
    ),
]


FULL_SAMPLES_BY_NAME = {name: record for name, record in reversed(FULL_SAMPLES)}


def _sample_id(sample: tuple[str, dict[str, Any]]) -> str:
    name, record = sample
    payload = record.get("payload")
    suffix = f"-{payload[0].rsplit('.', 1)[-1]}" if isinstance(payload, tuple) else ""
    return name.rsplit(".", 1)[-1] + suffix


@pytest.mark.parametrize("sample", FULL_SAMPLES, ids=[_sample_id(s) for s in FULL_SAMPLES])
def test_round_trip_of_a_full_record(codec: AvroCodec, sample: tuple[str, dict[str, Any]]) -> None:
    name, record = sample
    data = codec.encode(name, record)
    decoded = codec.decode(data)
    assert decoded.name == name
    assert decoded.record == record
    assert decoded.writer_fingerprint == codec.schema(name).fingerprint
    assert codec.decode_as(name, data) == record


def test_samples_cover_every_current_schema(codec: AvroCodec) -> None:
    assert {name for name, _ in FULL_SAMPLES} == set(codec.names)
    assert len(codec.names) == 10
    payload_types = {r["payload"][0] for n, r in FULL_SAMPLES if n == CALL_EVENT}
    assert len(payload_types) == 11


# (record type, record with defaulted fields left out, the fields decode must fill in)
DEFAULTED_SAMPLES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        CALL_EVENT,
        {
            "event_id": "ev-2",
            "call_id": "call-1",
            "cid": 1,
            "source": "TWILIO",
            "occurred_at": T0,
            "received_at": T0,
            "payload": (NS + "CallStarted", {}),
        },
        {
            "raw": "",
            "attributes": {},
            "payload": (
                NS + "CallStarted",
                {
                    "from_number": None,
                    "to_number": None,
                    "direction": "UNSPECIFIED",
                    "participants": [],
                    "answered": True,
                },
            ),
        },
    ),
    (
        CALL_EVENT,
        {
            "event_id": "ev-3",
            "call_id": "call-1",
            "cid": 1,
            "source": "CRESTA",
            "occurred_at": T0,
            "received_at": T1,
            "payload": (NS + "CallEnded", {}),
        },
        {"raw": "", "attributes": {}, "payload": (NS + "CallEnded", {"reason": "", "duration_ms": None})},
    ),
    (
        AUDIO_CHUNK,
        {
            "call_id": "c",
            "cid": 2,
            "track": "mixed",
            "codec": "PCMA",
            "sample_rate": 8000,
            "sequence": 0,
            "start_sample": 0,
            "received_at": T0,
            "payload": b"\xd5" * 4,
        },
        {"role": "UNSPECIFIED", "channels": 1, "media_timestamp_ms": None},
    ),
    (
        JOB_TRANSITION,
        {"job_id": 1, "cid": 2, "to_status": 0, "at": T0},
        {"from_status": None, "reason": "", "metadata": {}, "results": None},
    ),
    (
        SPEECH_SEGMENT,
        {
            "segment_id": "s",
            "call_id": "c",
            "cid": 2,
            "track": "t",
            "kind": "SPEECH",
            "start_sample": 5,
            "end_sample": 6,
            "sample_rate": 16000,
        },
        {
            "role": "UNSPECIFIED",
            "rms_dbfs": None,
            "peak_dbfs": None,
            "speech_probability": None,
            "detector": "",
            "voiced_fraction": None,
        },
    ),
    (
        ALERT,
        {
            "alert_id": "a",
            "rule_id": "r",
            "call_id": "c",
            "cid": 2,
            "severity": "WARNING",
            "start_ms": 0,
            "end_ms": 1,
            "detected_at": T0,
        },
        {"details": {}, "status": "RAISED", "rule_kind": ""},
    ),
    (
        COMMAND_RESULT,
        {
            "command_id": "x",
            "call_id": "c",
            "cid": 2,
            "op": "startrecording",
            "success": False,
            "completed_at": T0,
        },
        {"attempt": 1, "http_status": None, "response": ""},
    ),
    (
        RULE_SET,
        {"cid": 2, "version": 1, "updated_at": T0, "rules": [{"rule_id": "r", "kind": "no_media"}]},
        {
            "rules": [
                {
                    "rule_id": "r",
                    "name": "",
                    "kind": "no_media",
                    "severity": "WARNING",
                    "enabled": True,
                    "params": {},
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "given", "filled"), DEFAULTED_SAMPLES, ids=[_sample_id((n, g)) for n, g, _ in DEFAULTED_SAMPLES]
)
def test_round_trip_fills_defaults(codec: AvroCodec, name: str, given: dict[str, Any], filled: dict[str, Any]) -> None:
    decoded = codec.decode(codec.encode(name, given))
    assert decoded.name == name
    assert decoded.record == {**given, **filled}


def test_timestamps_decode_as_aware_utc_datetimes(codec: AvroCodec) -> None:
    record = call_event((NS + "CallHeld", {}))
    decoded = codec.decode_as(CALL_EVENT, codec.encode(CALL_EVENT, record))
    assert decoded["occurred_at"] == T0
    assert decoded["received_at"] == T1
    assert decoded["occurred_at"].tzinfo is not None
    assert decoded["occurred_at"].utcoffset().total_seconds() == 0


def test_message_layout_is_marker_fingerprint_body(codec: AvroCodec) -> None:
    data = codec.encode(JOB_TRANSITION, {"job_id": 1, "cid": 2, "to_status": 0, "at": T0})
    assert data[:2] == b"\xc3\x01" == MARKER
    assert data[2:HEADER_SIZE] == codec.schema(JOB_TRANSITION).fingerprint
    # body: job_id=1 -> zigzag 02, cid=2 -> 04, from_status union branch 0 (null) -> 00, to_status=0 -> 00,
    # at (millis) varint, reason "" -> 00, metadata empty map -> 00, results null -> 00
    millis = int(T0.timestamp() * 1000)
    zigzag = millis << 1
    varint = bytearray()
    while zigzag > 0x7F:
        varint.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    varint.append(zigzag)
    assert data[HEADER_SIZE:] == b"\x02\x04\x00\x00" + bytes(varint) + b"\x00\x00\x00"


# ---------------------------------------------------------------- docs


def _schema_files() -> list[Any]:
    return sorted((e for e in resources.files("schemas").iterdir() if e.name.endswith(".avsc")), key=lambda e: e.name)


def _walk_records(node: Any, where: str, found: list[str], missing: list[str]) -> None:
    if isinstance(node, list):
        for branch in node:
            _walk_records(branch, where, found, missing)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "record":
        name = f"{where}:{node['name']}"
        found.append(name)
        if not str(node.get("doc", "")).strip():
            missing.append(name)
        for fld in node["fields"]:
            if not str(fld.get("doc", "")).strip():
                missing.append(f"{name}.{fld['name']}")
            _walk_records(fld["type"], where, found, missing)
    elif kind == "array":
        _walk_records(node["items"], where, found, missing)
    elif kind == "map":
        _walk_records(node["values"], where, found, missing)
    elif isinstance(kind, (dict, list)):
        _walk_records(kind, where, found, missing)


def test_every_record_and_field_has_a_doc() -> None:
    files = _schema_files()
    assert [f.name for f in files] == [
        "alert.avsc",
        "audio_chunk.avsc",
        "call_event.avsc",
        "call_metrics.avsc",
        "command.avsc",
        "command_result.avsc",
        "job_transition.avsc",
        "prosody_interim.avsc",
        "rule_set.avsc",
        "speech_segment.avsc",
    ]
    found: list[str] = []
    missing: list[str] = []
    for entry in files:
        _walk_records(json.loads(entry.read_text(encoding="utf-8")), entry.name, found, missing)
    assert missing == []
    # 10 top-level records + 11 CallEvent payload records + Participant + Rule: the walk reached them all
    assert len(found) == 23
    assert "call_event.avsc:Participant" in found
    assert "rule_set.avsc:Rule" in found


def test_doc_walker_reports_a_missing_nested_doc() -> None:
    definition = {
        "type": "record",
        "name": "Outer",
        "doc": "outer",
        "fields": [
            {
                "name": "inner",
                "doc": "the inner one",
                "type": {
                    "type": "array",
                    "items": {
                        "type": "record",
                        "name": "Inner",
                        "doc": "inner",
                        "fields": [{"name": "x", "type": "int"}],
                    },
                },
            },
        ],
    }
    found: list[str] = []
    missing: list[str] = []
    _walk_records(definition, "t", found, missing)
    assert found == ["t:Outer", "t:Inner"]
    assert missing == ["t:Inner.x"]


# ---------------------------------------------------------------- fingerprints

CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_CRC64_TABLE = _crc64_table()


def rabin_fingerprint(text: str) -> bytes:
    """CRC-64-AVRO as given in the Avro specification, little-endian on the wire."""
    fp = CRC64_EMPTY
    for byte in text.encode("utf-8"):
        fp = (fp >> 8) ^ _CRC64_TABLE[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ('"null"', 7195948357588979594),
        ('"int"', 8247732601305521295),
        ('"string"', -8142146995180207161),
        ('{"name":"foo","type":"fixed","size":15}', 1756455273707447556),
    ],
)
def test_rabin_reference_matches_published_vectors(canonical: str, expected: int) -> None:
    # apache/avro share/test/data/schema-tests.txt publishes the fingerprints as signed 64-bit longs.
    assert int.from_bytes(rabin_fingerprint(canonical), "little", signed=True) == expected


@pytest.mark.parametrize("schema", current_schemas(), ids=lambda s: s.name.rsplit(".", 1)[-1])
def test_header_fingerprint_is_crc64_avro_of_canonical_form(codec: AvroCodec, schema: Schema) -> None:
    canonical = fastavro.schema.to_parsing_canonical_form(schema.parsed)
    expected = bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))
    assert schema.fingerprint == expected
    assert schema.fingerprint == rabin_fingerprint(canonical)
    data = codec.encode(schema.name, FULL_SAMPLES_BY_NAME[schema.name])
    assert data[2:HEADER_SIZE] == expected


def test_fingerprints_are_distinct() -> None:
    prints = [s.fingerprint for s in current_schemas()]
    assert len(set(prints)) == len(prints) == 10


def test_doc_changes_do_not_change_the_fingerprint() -> None:
    path = resources.files("schemas") / "command.avsc"
    definition = json.loads(path.read_text(encoding="utf-8"))
    original = Schema.from_json(definition)
    definition["doc"] = "something else entirely"
    definition["fields"][0]["doc"] = "changed"
    assert Schema.from_json(definition).fingerprint == original.fingerprint
    definition["fields"][0]["name"] = "renamed_id"
    assert Schema.from_json(definition).fingerprint != original.fingerprint


# ---------------------------------------------------------------- evolution


@pytest.fixture(scope="module")
def audio_v0() -> Schema:
    return Schema.from_file(FROZEN / "audio_chunk_v0.avsc")


@pytest.fixture(scope="module")
def event_v0() -> Schema:
    return Schema.from_file(FROZEN / "call_event_v0.avsc")


def test_frozen_schemas_really_are_older_versions(codec: AvroCodec, audio_v0: Schema, event_v0: Schema) -> None:
    assert audio_v0.name == AUDIO_CHUNK
    assert event_v0.name == CALL_EVENT
    assert audio_v0.fingerprint != codec.schema(AUDIO_CHUNK).fingerprint
    assert event_v0.fingerprint != codec.schema(CALL_EVENT).fingerprint
    v0_fields = {f["name"] for f in audio_v0.parsed["fields"]}
    current_fields = {f["name"] for f in codec.schema(AUDIO_CHUNK).parsed["fields"]}
    assert current_fields - v0_fields == {"media_timestamp_ms", "role"}
    v0_event_fields = {f["name"] for f in event_v0.parsed["fields"]}
    current_event_fields = {f["name"] for f in codec.schema(CALL_EVENT).parsed["fields"]}
    assert current_event_fields - v0_event_fields == {"attributes"}
    assert v0_fields <= current_fields
    assert v0_event_fields <= current_event_fields


def test_old_audio_chunk_decodes_with_defaults(audio_v0: Schema) -> None:
    old_writer = AvroCodec([audio_v0])
    reader = AvroCodec(readers=current_schemas(), writers=[audio_v0])
    old = audio_chunk()
    del old["media_timestamp_ms"], old["role"]
    data = old_writer.encode(AUDIO_CHUNK, old)
    assert data[2:HEADER_SIZE] == audio_v0.fingerprint

    decoded = reader.decode(data)
    assert decoded.name == AUDIO_CHUNK
    assert decoded.writer_fingerprint == audio_v0.fingerprint
    assert decoded.record == {**old, "media_timestamp_ms": None, "role": "UNSPECIFIED"}
    assert set(decoded.record) == {f["name"] for f in reader.schema(AUDIO_CHUNK).parsed["fields"]}


def test_old_call_event_decodes_with_empty_attributes(event_v0: Schema) -> None:
    old_writer = AvroCodec([event_v0])
    reader = AvroCodec(readers=current_schemas(), writers=[event_v0])
    old = call_event((NS + "Dtmf", {"digits": "5", "track": ""}))
    del old["attributes"]
    decoded = reader.decode(old_writer.encode(CALL_EVENT, old))
    assert decoded.name == CALL_EVENT
    assert decoded.record == {**old, "attributes": {}}
    assert reader.decode_as(CALL_EVENT, old_writer.encode(CALL_EVENT, old))["attributes"] == {}


def test_call_started_from_before_answered_existed_decodes_as_answered() -> None:
    v1 = Schema.from_file(FROZEN / "call_event_v1.avsc")
    reader = AvroCodec(readers=current_schemas(), writers=[v1])
    assert v1.fingerprint != reader.schema(CALL_EVENT).fingerprint
    old = call_event((NS + "CallStarted", {"from_number": "1", "to_number": None, "direction": "INBOUND"}))
    decoded = reader.decode(AvroCodec([v1]).encode(CALL_EVENT, old))
    assert decoded.record["payload"] == (
        NS + "CallStarted",
        {"from_number": "1", "to_number": None, "direction": "INBOUND", "participants": [], "answered": True},
    )
    # the branch after the old writer's last one still resolves by name, not by position
    held = reader.decode(AvroCodec([v1]).encode(CALL_EVENT, call_event((NS + "VendorEvent", {"name": "x"}))))
    assert held.record["payload"] == (NS + "VendorEvent", {"name": "x"})


def test_alert_from_before_status_existed_decodes_as_raised() -> None:
    v0 = Schema.from_file(FROZEN / "alert_v0.avsc")
    reader = AvroCodec(readers=current_schemas(), writers=[v0])
    old = {
        "alert_id": "a",
        "rule_id": "r",
        "call_id": "c",
        "cid": 1,
        "severity": "WARNING",
        "start_ms": 0,
        "end_ms": 10,
        "detected_at": T0,
        "details": {"k": "v"},
    }
    decoded = reader.decode(AvroCodec([v0]).encode(ALERT, old))
    assert decoded.record == {**old, "status": "RAISED", "rule_kind": ""}


def test_reader_without_the_old_writer_rejects_it_by_fingerprint(codec: AvroCodec, audio_v0: Schema) -> None:
    old = audio_chunk()
    del old["media_timestamp_ms"], old["role"]
    data = AvroCodec([audio_v0]).encode(AUDIO_CHUNK, old)
    with pytest.raises(UnknownFingerprintError) as caught:
        codec.decode(data)
    assert caught.value.fingerprint == audio_v0.fingerprint
    assert audio_v0.fingerprint.hex() in str(caught.value)
    assert isinstance(caught.value, SchemaError)


def test_current_data_still_decodes_when_old_writers_are_registered(audio_v0: Schema, event_v0: Schema) -> None:
    reader = AvroCodec(readers=current_schemas(), writers=[audio_v0, event_v0])
    record = audio_chunk()
    assert reader.decode(reader.encode(AUDIO_CHUNK, record)).record == record
    assert reader.names == AvroCodec.default().names


# ---------------------------------------------------------------- corrupt input


@pytest.fixture(scope="module")
def held_bytes(codec: AvroCodec) -> bytes:
    return codec.encode(CALL_EVENT, call_event((NS + "CallHeld", {}), attributes={}, raw=""))


def test_empty_bytes_are_corrupt(codec: AvroCodec) -> None:
    with pytest.raises(CorruptRecordError, match="got 0 bytes"):
        codec.decode(b"")


def test_short_header_is_corrupt(codec: AvroCodec, held_bytes: bytes) -> None:
    with pytest.raises(CorruptRecordError, match="got 9 bytes"):
        codec.decode(held_bytes[:9])


def test_wrong_marker_is_corrupt(codec: AvroCodec, held_bytes: bytes) -> None:
    with pytest.raises(CorruptRecordError, match="c302"):
        codec.decode(b"\xc3\x02" + held_bytes[2:])
    with pytest.raises(CorruptRecordError, match="7b22"):
        codec.decode(b'{"event_id": "ev-1"}')


@pytest.mark.parametrize("cut", [1, 2, 5, 9])
def test_truncated_body_is_corrupt(codec: AvroCodec, held_bytes: bytes, cut: int) -> None:
    with pytest.raises(CorruptRecordError, match="CallEvent"):
        codec.decode(held_bytes[:-cut])


def test_header_only_is_corrupt(codec: AvroCodec, held_bytes: bytes) -> None:
    with pytest.raises(CorruptRecordError, match="does not decode"):
        codec.decode(held_bytes[:HEADER_SIZE])


@pytest.mark.parametrize("garbage", [b"\x00", b"\x02\x04junk"])
def test_trailing_garbage_is_corrupt(codec: AvroCodec, held_bytes: bytes, garbage: bytes) -> None:
    with pytest.raises(CorruptRecordError, match=f"{len(garbage)} trailing bytes"):
        codec.decode(held_bytes + garbage)


def test_held_bytes_layout_is_what_the_corruption_tests_assume(held_bytes: bytes) -> None:
    # event_id "ev-1": length 4 -> zigzag 08, then the 4 bytes
    assert held_bytes[HEADER_SIZE : HEADER_SIZE + 5] == b"\x08ev-1"


@pytest.mark.parametrize(
    "length_varint",
    [b"\x01", b"\x03", b"\x7e", b"\xff\xff\xff\xff\x0f"],
    ids=["minus1", "minus2", "63", "huge-negative"],
)
def test_invalid_string_length_is_corrupt(codec: AvroCodec, held_bytes: bytes, length_varint: bytes) -> None:
    data = held_bytes[:HEADER_SIZE] + length_varint + held_bytes[HEADER_SIZE + 1 :]
    with pytest.raises(CorruptRecordError, match=r"CallEvent \(fingerprint [0-9a-f]{16}\): body does not decode"):
        codec.decode(data)


def test_out_of_range_enum_index_is_corrupt(codec: AvroCodec, held_bytes: bytes) -> None:
    # body: event_id (5 bytes), call_id "call-42" (8 bytes), cid 7 (1 byte), then the Source enum index
    at = HEADER_SIZE + 5 + 8 + 1
    assert held_bytes[at] == 2 * 4  # TELNYX is symbol 4
    data = held_bytes[:at] + b"\x7e" + held_bytes[at + 1 :]  # index 63
    with pytest.raises(CorruptRecordError):
        codec.decode(data)


def test_out_of_range_union_branch_is_corrupt(codec: AvroCodec, held_bytes: bytes) -> None:
    # ... after the enum come two timestamp varints (6 bytes each for 2025), then the payload union index
    at = HEADER_SIZE + 5 + 8 + 1 + 1 + 6 + 6
    assert held_bytes[at] == 2 * 2  # CallHeld is branch 2
    data = held_bytes[:at] + b"\x28" + held_bytes[at + 1 :]  # branch 20 of 10
    with pytest.raises(CorruptRecordError):
        codec.decode(data)


def test_decode_as_a_different_type_is_corrupt(codec: AvroCodec, held_bytes: bytes) -> None:
    with pytest.raises(CorruptRecordError, match=re.escape(f"expected a {AUDIO_CHUNK} record, got {CALL_EVENT}")):
        codec.decode_as(AUDIO_CHUNK, held_bytes)


def test_error_hierarchy() -> None:
    for error in (
        CorruptRecordError,
        EncodeError,
        SchemaDefinitionError,
        UnknownFingerprintError,
        UnknownRecordTypeError,
    ):
        assert issubclass(error, SchemaError)


# ---------------------------------------------------------------- encode errors


def test_encode_unknown_record_type(codec: AvroCodec) -> None:
    with pytest.raises(UnknownRecordTypeError, match=re.escape("io.switchboard.calls.Nope")) as caught:
        codec.encode("io.switchboard.calls.Nope", {})
    assert CALL_EVENT in str(caught.value)


def test_encode_short_name_is_unknown(codec: AvroCodec) -> None:
    with pytest.raises(UnknownRecordTypeError):
        codec.schema("CallEvent")


@pytest.mark.parametrize(
    ("name", "record"),
    [
        (CALL_EVENT, call_event((NS + "CallHeld", {}), cid="seven")),
        (CALL_EVENT, call_event((NS + "CallHeld", {}), source="SKYPE")),
        (CALL_EVENT, call_event((NS + "Dtmf", {}))),
        (CALL_EVENT, {k: v for k, v in call_event((NS + "CallHeld", {})).items() if k != "event_id"}),
        (CALL_EVENT, call_event((NS + "CallHeld", {}), unexpected="x")),
        (AUDIO_CHUNK, audio_chunk(payload="not bytes")),
        (AUDIO_CHUNK, {k: v for k, v in audio_chunk().items() if k != "sequence"}),
        (COMMAND_RESULT, {"command_id": "x", "call_id": "c", "cid": 1, "op": "o", "completed_at": T0}),
    ],
    ids=[
        "wrong-long",
        "bad-enum-symbol",
        "payload-missing-field",
        "missing-event-id",
        "unknown-field",
        "wrong-bytes",
        "missing-sequence",
        "missing-boolean",
    ],
)
def test_encode_nonconforming_record(codec: AvroCodec, name: str, record: dict[str, Any]) -> None:
    with pytest.raises(EncodeError) as caught:
        codec.encode(name, record)
    assert str(caught.value).startswith(f"{name}: record does not match its schema")


# ---------------------------------------------------------------- schema definitions


@pytest.mark.parametrize(
    "definition",
    [
        {"type": "record", "name": "X", "fields": [{"name": "a", "type": "no.such.Type"}]},
        {"type": "enum", "name": "E", "symbols": ["A"]},
        {"type": "string"},
        {"type": "record", "name": "X", "fields": [{"name": "a", "type": "int", "default": "zero"}]},
        {"type": "record", "name": "X", "fields": "a, b"},
    ],
    ids=["unknown-type", "enum-top-level", "primitive-top-level", "bad-default", "not-a-mapping"],
)
def test_invalid_schema_definition(definition: dict[str, Any]) -> None:
    with pytest.raises(SchemaDefinitionError, match=re.escape("bad.avsc")):
        Schema.from_json(definition, origin="bad.avsc")


def test_named_types_stay_private_to_their_schema() -> None:
    # The same enum name in two schemas (Severity in Alert and RuleSet) must not collide.
    first = Schema.from_json(
        {
            "type": "record",
            "name": "A",
            "fields": [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["X"]}}],
        }
    )
    second = Schema.from_json(
        {
            "type": "record",
            "name": "B",
            "fields": [{"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["Y", "Z"]}}],
        }
    )
    assert (first.name, second.name) == ("A", "B")


def test_schema_from_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.avsc"
    with pytest.raises(SchemaDefinitionError, match=re.escape("nope.avsc")):
        Schema.from_file(missing)


def test_schema_from_file_with_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.avsc"
    path.write_text('{"type": "record", ', encoding="utf-8")
    with pytest.raises(SchemaDefinitionError, match="cannot read schema"):
        Schema.from_file(path)


def test_two_current_schemas_with_one_name_are_rejected(audio_v0: Schema) -> None:
    with pytest.raises(SchemaDefinitionError, match=re.escape(f"two current schemas are named {AUDIO_CHUNK}")):
        AvroCodec([*current_schemas(), audio_v0])
