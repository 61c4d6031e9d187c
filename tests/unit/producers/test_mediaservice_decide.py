"""Decision callbacks answered from the documented example policy: routing, defaults, the IVR walk, transfers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from producers.mediaservice import decide
from producers.mediaservice.models import CallEvent, GetCallIdentifier, GetIvrCommand, NewCall, NewRemoteCall
from producers.mediaservice.policy import Policy, parse_policy
from producers.mediaservice.reference import SessionRef
from tests.unit.producers.test_mediaservice_policy import docs_example
from tests.unit.producers.test_mediaservice_samples import (
    CALL_EVENT,
    GET_CALL_IDENTIFIER,
    GET_IVR_COMMAND,
    NEW_CALL,
    NEW_REMOTE_CALL,
    SESSION,
)

DOMAIN = "customer47.prod-eu-north-1.iotcomms.io"
SALES = {
    "action": "call",
    "destAddr": "sip:sales@customer47.prod-eu-north-1.iotcomms.io",
    "maxRingTime": 25,
    "callRecording": True,
}
MAIN_PHRASES = [
    {
        "format": "awstts",
        "awsTTSParameters": {"Text": "Welcome. Sales: press 1. Support: press 2.", "VoiceId": "Joanna"},
    }
]
SORRY = {"format": "awstts", "awsTTSParameters": {"Text": "Sorry, I did not get that."}}
MAIN_DTMF = {"flush": True, "maxDigits": 1, "firstTimeout": 10, "betweenTimeout": 3}
SUPPORT_PHRASES = [
    {
        "format": "googletts",
        "googleTTSParameters": {
            "input": {"text": "Technical support: 1 and hash. Billing: 2 and hash. Back: 9 9 and hash."}
        },
    }
]
SUPPORT_DTMF = {"flush": True, "maxDigits": 3, "firstTimeout": 10, "betweenTimeout": 3, "terminationKey": "#"}


@pytest.fixture
def policy() -> Policy:
    return parse_policy(json.dumps(docs_example()).encode(), "example.json")


def new_call(policy: Policy, **fields: Any) -> dict[str, Any]:
    body = NewCall.model_validate({**json.loads(NEW_CALL), **fields})
    return decide.new_call(policy, body, SESSION, DOMAIN)


def marker(**state: Any) -> dict[str, Any]:
    return {"switchboard": {"callId": SESSION, **state}}


def test_the_seed_new_call_goes_to_the_ivr_route(policy: Policy) -> None:
    assert new_call(policy) == {"action": "ivr", "sessionReferenceId": marker(menu="main", tries=0)}


def test_a_prefix_route_renders_the_recording_file_name(policy: Policy) -> None:
    answer = new_call(policy, calledParty="+4685012345", callingParty="+4631555")
    assert answer == {
        **SALES,
        "recordingFileName": f"{SESSION}-+4685012345.mp3",
        "sessionReferenceId": marker(),
    }


def test_routes_are_tried_in_order_and_the_regex_must_match_the_whole_number(policy: Policy) -> None:
    blocked = new_call(policy, calledParty="+4685012345", callingParty="+46700001234")
    assert blocked == {"action": "drop", "dropCode": "busy", "sessionReferenceId": marker()}
    longer = new_call(policy, calledParty="+4685012345", callingParty="+467000012345")  # not a full match
    assert longer["action"] == "call"


def test_an_unmatched_call_gets_the_default(policy: Policy) -> None:
    assert new_call(policy, calledParty="+4940111") == {
        "action": "drop",
        "dropCode": "busy",
        "sessionReferenceId": marker(),
    }


def test_without_routes_the_built_in_default_is_busy() -> None:
    bare = parse_policy(b'{"cid": 5}', "bare.json")
    assert new_call(bare) == {"action": "drop", "dropCode": "busy", "sessionReferenceId": marker()}


def test_placeholder_values_are_made_safe_for_names_and_uris() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "cid": 1,
                "new_call": {
                    "default": {
                        "action": "call",
                        "destAddr": "sip:q@x",
                        "recordingFileName": "{callingParty}/{user}.mp3",
                    }
                },
            }
        ).encode(),
        "p.json",
    )
    answer = new_call(policy, callingParty="../../etc passwd")
    assert answer["recordingFileName"] == ".._.._etc_passwd/.mp3"


def test_the_customers_reference_is_kept_beside_the_marker(policy: Policy) -> None:
    assert new_call(policy, sessionReferenceId={"crm": "c-9"})["sessionReferenceId"] == {
        "crm": "c-9",
        **marker(menu="main", tries=0),
    }
    assert new_call(policy, sessionReferenceId="ticket-4")["sessionReferenceId"] == {
        "ref": "ticket-4",
        **marker(menu="main", tries=0),
    }


def ivr(policy: Policy, reference: Any, digits: str | None, reply: str = "r-1") -> dict[str, Any]:
    body = GetIvrCommand.model_validate(
        {**json.loads(GET_IVR_COMMAND), "sessionReferenceId": reference, "dtmfBuffer": digits, "replyId": reply}
    )
    return decide.ivr_command(policy, body, SESSION, DOMAIN)


def play(reference: dict[str, Any], phrases: list[dict[str, Any]], dtmf: dict[str, Any], reply: str) -> dict[str, Any]:
    return {
        "sessionId": SESSION,
        "replyId": reply,
        "sessionReferenceId": reference,
        "phrases": phrases,
        "dtmf": dtmf,
        "bargeIn": "current",
        "hangup": False,
    }


def test_an_ivr_walk_over_several_get_ivr_commands(policy: Policy) -> None:
    start = new_call(policy)["sessionReferenceId"]
    first = ivr(policy, start, None, "r-1")
    assert first == play(marker(menu="main", tries=1), MAIN_PHRASES, MAIN_DTMF, "r-1")
    wrong = ivr(policy, first["sessionReferenceId"], "7", "r-2")
    assert wrong == play(marker(menu="main", tries=2), [SORRY, *MAIN_PHRASES], MAIN_DTMF, "r-2")
    support = ivr(policy, wrong["sessionReferenceId"], "2", "r-3")
    assert support == play(marker(menu="support", tries=1), SUPPORT_PHRASES, SUPPORT_DTMF, "r-3")
    back = ivr(policy, support["sessionReferenceId"], "99#", "r-4")
    assert back == play(marker(menu="main", tries=1), MAIN_PHRASES, MAIN_DTMF, "r-4")
    sales = ivr(policy, back["sessionReferenceId"], "1", "r-5")
    assert sales == {
        "sessionId": SESSION,
        "replyId": "r-5",
        "sessionReferenceId": marker(transfer="sales"),
        "hangup": True,
        "phrases": [{"format": "awstts", "awsTTSParameters": {"Text": "Connecting you to sales."}}],
    }
    # The IVR leg hangs up; the caller is connected to sales and the marker is cleared.
    event = CallEvent.model_validate({**json.loads(CALL_EVENT), "sessionReferenceId": sales["sessionReferenceId"]})
    assert decide.call_event(policy, event, SESSION, DOMAIN) == {
        **SALES,
        "recordingFileName": f"{SESSION}-.mp3",  # calledParty is not part of a callEvent: empty
        "sessionReferenceId": marker(),
    }


def test_the_menu_fails_over_after_max_attempts(policy: Policy) -> None:
    reference = marker(menu="main", tries=3)
    assert ivr(policy, reference, None) == {
        "sessionId": SESSION,
        "replyId": "r-1",
        "sessionReferenceId": marker(transfer="support"),
        "hangup": True,
    }


def test_hangup_option_and_the_seed_sample_without_a_marker(policy: Policy) -> None:
    assert ivr(policy, marker(menu="main", tries=1), "0") == {
        "sessionId": SESSION,
        "replyId": "r-1",
        "sessionReferenceId": marker(),
        "hangup": True,
    }
    seed = decide.ivr_command(policy, GetIvrCommand.model_validate(json.loads(GET_IVR_COMMAND)), SESSION, DOMAIN)
    assert seed == {
        "sessionId": SESSION,
        **{k: v for k, v in play(marker(menu="main", tries=1), MAIN_PHRASES, MAIN_DTMF, "").items() if k != "replyId"},
    }


def test_a_marker_echoed_as_json_text_or_naming_a_removed_menu(policy: Policy) -> None:
    as_text = json.dumps(marker(menu="support", tries=1))
    assert ivr(policy, as_text, "2#")["sessionReferenceId"] == marker(transfer="billing")
    assert ivr(policy, marker(menu="deleted", tries=2), "1")["sessionReferenceId"] == marker(menu="main", tries=1)


def test_a_domain_without_ivr_hangs_the_ivr_leg_up() -> None:
    bare = parse_policy(b'{"cid": 5}', "bare.json")
    assert ivr(bare, None, "1") == {
        "sessionId": SESSION,
        "replyId": "r-1",
        "sessionReferenceId": marker(),
        "hangup": True,
    }


def test_call_events_default_to_dropping_the_remaining_party(policy: Policy) -> None:
    seed = CallEvent.model_validate(json.loads(CALL_EVENT))  # sessionReferenceId 20000: the customer's, kept
    assert decide.call_event(policy, seed, SESSION, DOMAIN) == {
        "action": "drop",
        "sessionReferenceId": {"ref": 20000, **marker()},
    }
    split = CallEvent.model_validate({**json.loads(CALL_EVENT), "event": "callerConnectionSplit"})
    assert decide.call_event(policy, split, SESSION, DOMAIN)["action"] == "drop"


def test_a_pending_transfer_waits_for_the_ivr_leg_not_the_caller(policy: Policy) -> None:
    body = {**json.loads(CALL_EVENT), "event": "callingPartyDrop", "sessionReferenceId": marker(transfer="sales")}
    assert decide.call_event(policy, CallEvent.model_validate(body), SESSION, DOMAIN)["action"] == "drop"


def test_call_identifier_and_remote_call_answers(policy: Policy) -> None:
    identify = GetCallIdentifier.model_validate(json.loads(GET_CALL_IDENTIFIER))
    assert decide.call_identifier(policy, identify, SESSION, DOMAIN) == {
        "sessionId": SESSION,
        "sessionReferenceId": {"tenant": "acme", "number": "ivr", **marker()},
    }
    remote = NewRemoteCall.model_validate(json.loads(NEW_REMOTE_CALL))
    assert decide.remote_call(policy, remote, "nfdfsij82893kn", DOMAIN) == {"sessionReferenceId": "nfdfsij82893kn"}


def test_session_reference_parsing_is_tolerant() -> None:
    assert SessionRef.parse(None) == SessionRef()
    assert SessionRef.parse("{not json") == SessionRef(base="{not json")
    assert SessionRef.parse({"switchboard": "x", "a": 1}) == SessionRef(base={"a": 1})
    parsed = SessionRef.parse({"switchboard": {"callId": "c", "menu": "m", "tries": True, "transfer": 5}})
    assert parsed == SessionRef(base={}, call_id="c", menu="m", tries=0, transfer=None)
