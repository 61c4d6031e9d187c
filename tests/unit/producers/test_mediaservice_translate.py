"""Every seed callback sample -> its exact CallEvent record (pure translation), and the call-id fallbacks."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from producers.mediaservice.models import MODELS
from producers.mediaservice.translate import NAMESPACE, Inbound, MissingCallIdError, Options, call_id, to_record
from schemas import CALL_EVENT, AvroCodec
from tests.unit.producers.test_mediaservice_samples import SAMPLES, SESSION, TRACE

DOMAIN = "customer47.prod-eu-north-1.iotcomms.io"
AT = 1_741_000_000_123
CALLS = "io.switchboard.calls."
CODEC = AvroCodec.default()


def inbound(callback: str, raw: str | None = None, **changes: Any) -> Inbound:
    parsed = {**json.loads(raw or SAMPLES[callback]), **changes}
    text = raw if raw is not None and not changes else json.dumps(parsed) if changes else SAMPLES[callback]
    return Inbound(callback, MODELS[callback].model_validate(parsed), parsed, text, DOMAIN, 1, AT)


def expected_id(callback: str, parsed: dict[str, Any]) -> str:
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(("mediaservice", DOMAIN, callback, canonical))))


def record(
    callback: str, payload: tuple[str, dict[str, Any]], attributes: dict[str, str], key: str = SESSION
) -> dict[str, Any]:
    return {
        "event_id": expected_id(callback, json.loads(SAMPLES[callback])),
        "call_id": key,
        "cid": 1,
        "source": "MEDIASERVICE",
        "occurred_at": AT,
        "received_at": AT,
        "payload": payload,
        "raw": SAMPLES[callback],
        "attributes": {"domain": DOMAIN, "callback": callback, **attributes},
    }


COMMON = {"ivrServer": "127.0.0.1", "traceId": TRACE, "httpTransactionId": "6f486ab0-fa96-11ef-a5b0-5d34730683ab"}


def test_call_notify_ringing_is_a_vendor_event() -> None:
    assert to_record(inbound("callNotify"), Options()) == record(
        "callNotify",
        (CALLS + "VendorEvent", {"name": "callNotify.ringing"}),
        {
            **COMMON,
            "sessionId": SESSION,
            "participantId": SESSION,
            "remoteParticipantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16",
            "sessionReferenceId": "20000",
        },
    )


def test_call_answered_names_both_parties_and_is_keyed_by_trace_id_without_a_session() -> None:
    assert to_record(inbound("callAnswered"), Options()) == record(
        "callAnswered",
        (
            CALLS + "CallAnswered",
            {
                "connection_id": "da9ce5c0-c787-11eb-a47c-c9c4e460ef16",
                "participants": [
                    {"role": "CUSTOMER", "participant_id": "d93f0370-c787-11eb-a47c-c9c4e460ef16"},
                    {"role": "AGENT", "participant_id": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16"},
                ],
            },
        ),
        {
            "traceId": TRACE,
            "httpTransactionId": "6f486ab0-fa96-11ef-a5b0-5d34730683ab",
            "callerParticipantId": "d93f0370-c787-11eb-a47c-c9c4e460ef16",
            "calleeParticipantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16",
            "connectionId": "da9ce5c0-c787-11eb-a47c-c9c4e460ef16",
            "replyId": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkb21...",
            "sessionReferenceId": "{}",
        },
        key=TRACE,
    )


def test_call_answered_roles_follow_the_policy_the_ivr_and_monitoring() -> None:
    def roles(options: Options, **changes: Any) -> list[str]:
        payload = to_record(inbound("callAnswered", **changes), options)["payload"][1]
        return [p["role"] for p in payload["participants"]]

    marked = {"switchboard": {"callId": SESSION}}
    assert roles(Options(caller_role="AGENT", callee_role="CUSTOMER"), sessionReferenceId=marked) == [
        "AGENT",
        "CUSTOMER",
    ]
    in_ivr = {"switchboard": {"callId": SESSION, "menu": "main", "tries": 1}}
    assert roles(Options(), sessionReferenceId=in_ivr) == ["CUSTOMER", "BOT"]
    assert roles(Options(), monitoringParticipant=True) == ["CUSTOMER", "SUPERVISOR"]
    assert to_record(inbound("callAnswered", sessionReferenceId=marked), Options())["call_id"] == SESSION


def test_new_call_is_a_ringing_inbound_call_with_our_decision() -> None:
    decision = {"action": "drop", "dropCode": "busy"}
    assert to_record(inbound("newCall"), Options(), decision) == record(
        "newCall",
        (
            CALLS + "CallStarted",
            {
                "from_number": "caller",
                "to_number": "ivr",
                "direction": "INBOUND",
                "participants": [],
                "answered": False,
            },
        ),
        {"sessionId": SESSION, "ivrServer": "127.0.0.1", "decision": '{"action":"drop","dropCode":"busy"}'},
    )


def test_get_call_identifier_and_new_remote_call_are_vendor_events() -> None:
    identify = to_record(inbound("getCallIdentifier"), Options(), {"sessionId": SESSION})
    assert identify["payload"] == (CALLS + "VendorEvent", {"name": "getCallIdentifier"})
    remote = to_record(inbound("newRemoteCall"), Options(), {"sessionReferenceId": "x"})
    assert remote == record(
        "newRemoteCall",
        (CALLS + "VendorEvent", {"name": "newRemoteCall"}),
        {"replyId": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkb21...", "decision": '{"sessionReferenceId":"x"}'},
        key="nfdfsij82893kn",
    )


def test_session_completed_ends_the_call_with_its_duration_in_seconds_or_ms() -> None:
    assert to_record(inbound("sessionCompleted"), Options()) == record(
        "sessionCompleted",
        (CALLS + "CallEnded", {"reason": "d93f0370-c787-11eb-a47c-c9c4e460ef16", "duration_ms": 46_890_510_000}),
        {**COMMON, "sessionId": SESSION, "sessionReferenceId": "{}"},
    )
    in_ms = to_record(inbound("sessionCompleted"), Options(duration_unit="ms"))
    assert in_ms["payload"][1]["duration_ms"] == 46_890_510
    decimal = to_record(inbound("sessionCompleted", sessionDuration="12.5"), Options())
    assert decimal["payload"][1]["duration_ms"] == 12_500


def test_call_event_drop_ends_the_call_when_we_drop_the_remaining_party() -> None:
    assert to_record(inbound("callEvent"), Options(), {"action": "drop"}) == record(
        "callEvent",
        (CALLS + "CallEnded", {"reason": "calledPartyDrop", "duration_ms": None}),
        {
            "sessionId": SESSION,
            "ivrServer": "127.0.0.1",
            "participantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16",
            "remoteParticipantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16",
            "connectionId": "da5cbeb0-c787-11eb-a47c-c9c4e460ef16",
            "sessionReferenceId": "20000",
            "decision": '{"action":"drop"}',
        },
    )


def test_call_event_that_continues_the_call_or_splits_is_a_vendor_event() -> None:
    transfer = to_record(inbound("callEvent"), Options(), {"action": "call", "destAddr": "sip:a@b"})
    assert transfer["payload"] == (CALLS + "VendorEvent", {"name": "callEvent.calledPartyDrop"})
    split = to_record(inbound("callEvent", event="callerConnectionSplit"), Options(), {"action": "drop"})
    assert split["payload"] == (CALLS + "VendorEvent", {"name": "callEvent.callerConnectionSplit"})


def test_get_ivr_command_is_dtmf_when_digits_were_entered() -> None:
    assert to_record(inbound("getIvrCommand"), Options(), {"hangup": True})["payload"] == (
        CALLS + "VendorEvent",
        {"name": "getIvrCommand"},
    )
    digits = to_record(inbound("getIvrCommand", dtmfBuffer="12#"), Options(), {"hangup": True})
    assert digits["payload"] == (CALLS + "Dtmf", {"digits": "12#", "track": ""})
    assert "sessionReferenceId" not in digits["attributes"]  # null in the sample: not an attribute


def test_recording_ready_success_and_failure() -> None:
    assert to_record(inbound("recordingReady"), Options()) == record(
        "recordingReady",
        (CALLS + "RecordingReady", {"file_name": "recording.mp3", "size_bytes": 4711, "succeeded": True, "reason": ""}),
        {"sessionId": SESSION, "ivrServer": "127.0.0.1", "connectionId": "9bb0eee0-c747-11ea-afa0-bd07728b88b7"},
    )
    failed = to_record(inbound("recordingReady", event="recordingFailed"), Options())
    assert failed["payload"][1] == {
        "file_name": "recording.mp3",
        "size_bytes": 4711,
        "succeeded": False,
        "reason": "No callee media received",
    }
    unknown = to_record(inbound("recordingReady", event="recordingPaused"), Options())
    assert unknown["payload"] == (CALLS + "VendorEvent", {"name": "recordingReady.recordingPaused"})


def test_alarm_is_a_platform_alarm() -> None:
    alarm_session = "8eaf1600-c20b-11eb-9fdb-f32f171bb218"
    assert to_record(inbound("alarm"), Options()) == record(
        "alarm",
        (CALLS + "PlatformAlarm", {"alarm_type": "sessionError", "error": "maxDuration"}),
        {"sessionId": alarm_session, "participantId": "string"},
        key=alarm_session,
    )


@pytest.mark.parametrize("callback", sorted(SAMPLES))
def test_every_record_encodes_and_decodes_with_the_schema(callback: str) -> None:
    built = to_record(inbound(callback), Options(), {"action": "drop"})
    decoded = CODEC.decode_as(CALL_EVENT, CODEC.encode(CALL_EVENT, built))
    assert decoded["event_id"] == built["event_id"] and decoded["attributes"] == built["attributes"]


def test_the_same_callback_posted_again_has_the_same_event_id_and_another_does_not() -> None:
    first = to_record(inbound("callNotify"), Options())
    again = to_record(inbound("callNotify", raw=SAMPLES["callNotify"].replace(", ", ",")), Options())
    other = to_record(inbound("callNotify", event="update"), Options())
    assert first["event_id"] == again["event_id"]
    assert first["event_id"] != other["event_id"]


def test_call_id_fallbacks_and_refusal() -> None:
    notify = json.loads(SAMPLES["callNotify"])
    without_session = {k: v for k, v in notify.items() if k != "sessionId"}
    assert call_id("callNotify", MODELS["callNotify"].model_validate(without_session)) == "5473001594892095000"
    marked = {"sessionReferenceId": {"switchboard": {"callId": "c-1"}}, "traceId": TRACE}
    assert call_id("callAnswered", MODELS["callAnswered"].model_validate(marked)) == "c-1"
    with pytest.raises(MissingCallIdError, match="recordingReady body has no call id: none of sessionId, sipCallId"):
        call_id("recordingReady", MODELS["recordingReady"].model_validate({"fileSize": 1}))
