"""The request samples of seed 002 (field names and example values as published), shared by the mediaservice tests.

Each sample is the raw JSON text a callback would carry. The test below checks every one parses
into its callback model with the lenient types (numbers where the seed documents strings).
"""

from __future__ import annotations

import json

import pytest

from producers.mediaservice.models import MODELS, CallAnswered, CallNotify, NewRemoteCall

CALL_NOTIFY = """{"event": "ringing", "monitoringParticipant": false,
 "participantId": "9bb07660-c747-11ea-afa0-bd07728b88b7", "sessionId": "9bb07660-c747-11ea-afa0-bd07728b88b7",
 "sessionReferenceId": 20000, "user": "+46890510", "remoteUser": "+46890200",
 "remoteParticipantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16", "sipCallId": 5473001594892095000,
 "ivrServer": "127.0.0.1", "traceId": "d9b15290-fa96-11ef-a9c8-631ff62a0f63", "siteId": "hy",
 "httpTransactionId": "6f486ab0-fa96-11ef-a5b0-5d34730683ab"}"""

CALL_ANSWERED = """{"callingPartyNumber": 46890510, "callerParticipantId": "d93f0370-c787-11eb-a47c-c9c4e460ef16",
 "calleeParticipantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16", "remotePartyNumber": 46890200,
 "connectionId": "da9ce5c0-c787-11eb-a47c-c9c4e460ef16", "callingPartyExpires": 600, "calledPartyExpires": 600,
 "codec": "GSM", "monitoringParticipant": false, "remoteRtpIp": "10.0.0.2", "remoteRtpPort": 45000,
 "replyId": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkb21...", "sessionReferenceId": {},
 "traceId": "d9b15290-fa96-11ef-a9c8-631ff62a0f63", "siteId": "hy",
 "httpTransactionId": "6f486ab0-fa96-11ef-a5b0-5d34730683ab"}"""

NEW_CALL = """{"sessionId": "9bb07660-c747-11ea-afa0-bd07728b88b7", "sipCallId": 5473001594892095000,
 "ivrServer": "127.0.0.1", "callingPartyPrivacy": "public", "callingParty": "caller", "displayName": "Carl Carlsson",
 "fromUser": "fromUser", "xHeaders": {}, "pHeaders": {}, "copyHeaders": ["string"], "calledParty": "ivr",
 "diversionHeaders": "<sip:user@domain.com>;reason=time-of-day",
 "referredBy": "<sip:referrer@referrer.example>;cid=\\"20398823.2UWQFN309shb3@referrer.example\\"",
 "paiNumber": "string", "subject": "string", "srcAddr": "string"}"""

GET_CALL_IDENTIFIER = """{"sessionId": "9bb07660-c747-11ea-afa0-bd07728b88b7", "calledParty": "ivr"}"""

SESSION_COMPLETED = """{"sessionId": "9bb07660-c747-11ea-afa0-bd07728b88b7",
 "domain": "customer.prod-eu-north-1.iotcomms.io", "sessionDuration": 46890510,
 "reason": "d93f0370-c787-11eb-a47c-c9c4e460ef16", "sessionReferenceId": {}, "ivrServer": "127.0.0.1",
 "traceId": "d9b15290-fa96-11ef-a9c8-631ff62a0f63", "siteId": "hy",
 "httpTransactionId": "6f486ab0-fa96-11ef-a5b0-5d34730683ab"}"""

CALL_EVENT = """{"connectionId": "da5cbeb0-c787-11eb-a47c-c9c4e460ef16",
 "domain": "customer.prod-eu-north-1.iotcomms.io", "event": "calledPartyDrop", "ivrServer": "127.0.0.1",
 "participantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16", "remoteParticipantId": "da9cbeb0-c787-11eb-a47c-c9c4e460ef16",
 "remoteUser": "+46890200", "sessionId": "9bb07660-c747-11ea-afa0-bd07728b88b7", "user": "+46890510",
 "sessionReferenceId": 20000}"""

NEW_REMOTE_CALL = """{"replyId": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJkb21...", "callId": "nfdfsij82893kn",
 "codec": "PCMA", "destinationUri": "sip:user@domain.com", "sourceUser": 1234567, "remoteRtpIp": "10.2.30.12",
 "remoteRtpPort": 20000}"""

GET_IVR_COMMAND = """{"sessionId": "9bb07660-c747-11ea-afa0-bd07728b88b7", "sessionReferenceId": null,
 "ivrServer": null, "dtmfBuffer": null, "dtmfParams": {"dtmfMatch": "12", "reason": "terminationKey",
 "matchedTerminationKey": "#", "encryption": {}}, "replyId": null}"""

RECORDING_READY = """{"sessionId": "9bb07660-c747-11ea-afa0-bd07728b88b7",
 "connectionId": "9bb0eee0-c747-11ea-afa0-bd07728b88b7", "recordingFileName": "recording.mp3", "fileSize": 4711,
 "ivrServer": "127.0.0.1", "domain": "customer.prod-eu-north-1.iotcomms.io", "event": "recordingSuccessful",
 "reason": "No callee media received"}"""

ALARM = """{"type": "sessionError", "domain": "customer.prod-eu-north-1.iotcomms.io",
 "sessionId": "8eaf1600-c20b-11eb-9fdb-f32f171bb218", "error": "maxDuration", "errorDetails": {},
 "status": "string", "participantId": "string", "user": "string", "callId": "string"}"""

SAMPLES = {
    "callNotify": CALL_NOTIFY,
    "callAnswered": CALL_ANSWERED,
    "newCall": NEW_CALL,
    "getCallIdentifier": GET_CALL_IDENTIFIER,
    "sessionCompleted": SESSION_COMPLETED,
    "callEvent": CALL_EVENT,
    "newRemoteCall": NEW_REMOTE_CALL,
    "getIvrCommand": GET_IVR_COMMAND,
    "recordingReady": RECORDING_READY,
    "alarm": ALARM,
}

SESSION = "9bb07660-c747-11ea-afa0-bd07728b88b7"
TRACE = "d9b15290-fa96-11ef-a9c8-631ff62a0f63"


@pytest.mark.parametrize("callback", sorted(SAMPLES))
def test_every_seed_sample_parses_and_keeps_every_field(callback: str) -> None:
    parsed = json.loads(SAMPLES[callback])
    body = MODELS[callback].model_validate(parsed)
    assert set(body.model_dump()) >= set(parsed)  # unknown fields are kept, none is lost


def test_numbers_where_the_seed_documents_strings_become_their_decimal_text() -> None:
    notify = CallNotify.model_validate(json.loads(CALL_NOTIFY))
    answered = CallAnswered.model_validate(json.loads(CALL_ANSWERED))
    remote = NewRemoteCall.model_validate(json.loads(NEW_REMOTE_CALL))
    assert notify.sipCallId == "5473001594892095000"
    assert (answered.callingPartyNumber, answered.remotePartyNumber, answered.remoteRtpPort) == (
        "46890510",
        "46890200",
        "45000",
    )
    assert remote.sourceUser == "1234567"
    assert remote.remoteRtpPort == 20000.0
    assert notify.sessionReferenceId == 20000  # any JSON, kept as given


def test_numeric_strings_parse_where_numbers_are_documented() -> None:
    answered = CallAnswered.model_validate({"callingPartyExpires": "600", "monitoringParticipant": "false"})
    assert (answered.callingPartyExpires, answered.monitoringParticipant) == (600.0, False)
