"""The pure command state machine: ids learned from events, precedence, pending, dedup, refusals, retry policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.commands import (
    DONE_LIMIT,
    OPS,
    PENDING_LIMIT,
    PENDING_TIMEOUT_MS,
    CommandsState,
    Dispatch,
    IllegalTransitionError,
    Report,
    RetryPolicy,
    Status,
    TenantMismatchError,
    UnknownRecordError,
    Verdict,
    classify_status,
    classify_transport,
    complete,
    fold,
    step,
)
from schemas import AUDIO_CHUNK, CALL_EVENT, COMMAND, COMMAND_RESULT

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
CALL = "sess-1"
DOMAIN = "customer47.prod-eu-north-1.iotcomms.io"


def event(kind: str, at_ms: int = 0, cid: int = 1, source: str = "MEDIASERVICE", **attributes: str) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if kind == "CallAnswered":
        payload = {"connection_id": attributes.pop("payload_connection", None), "participants": []}
    at = T0 + timedelta(milliseconds=at_ms)
    return {
        "event_id": f"{CALL}-{kind}-{at_ms}",
        "call_id": CALL,
        "cid": cid,
        "source": source,
        "occurred_at": at,
        "received_at": at,
        "payload": (f"io.switchboard.calls.{kind}", payload),
        "raw": "{}",
        "attributes": attributes,
    }


def command(
    op: str, command_id: str, at_ms: int = 0, cid: int = 1, domain: str = "", body: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "command_id": command_id,
        "call_id": CALL,
        "cid": cid,
        "domain": domain,
        "op": op,
        "body": json.dumps(body or {}),
        "requested_at": T0 + timedelta(milliseconds=at_ms),
    }


def answered(at_ms: int = 0, reply: str = "r-1", connection: str = "c-1") -> dict[str, Any]:
    return event("CallAnswered", at_ms, replyId=reply, connectionId=connection, domain=DOMAIN, sessionId=CALL)


def run(
    records: list[tuple[str, dict[str, Any]]], state: CommandsState | None = None
) -> tuple[CommandsState, list[Any]]:
    """Apply records in order, collecting every action (dispatches are not completed)."""
    state = state or CommandsState(call_id=CALL)
    actions: list[Any] = []
    for name, record in records:
        result = step(state, name, record)
        state = result.state
        actions.extend(result.actions)
    return state, actions


def dispatch(command_id: str, op: str, body: dict[str, Any], domain: str = DOMAIN) -> Dispatch:
    return Dispatch(command_id=command_id, call_id=CALL, cid=1, op=op, domain=domain, body=body)


def refusal(command_id: str, op: str, reason: str, at_ms: int, cid: int = 1) -> Report:
    return Report(
        {
            "command_id": command_id,
            "call_id": CALL,
            "cid": cid,
            "op": op,
            "attempt": 0,
            "success": False,
            "http_status": None,
            "response": reason,
            "completed_at": T0_MS + at_ms,
        }
    )


def test_ids_are_learned_from_the_calls_mediaservice_events() -> None:
    state, actions = run(
        [(CALL_EVENT, answered()), (COMMAND, command("startrecording", "k1", 10, body={"recordingFileName": "a.mp3"}))]
    )
    expected = {"recordingFileName": "a.mp3", "replyId": "r-1", "connectionId": "c-1"}
    assert actions == [dispatch("k1", "startrecording", expected)]
    assert state.status("k1") is Status.INFLIGHT
    assert state.known == {"replyId": "r-1", "connectionId": "c-1", "domain": DOMAIN, "sessionId": CALL}
    assert state.cid == 1


def test_every_id_field_of_the_op_is_filled_from_the_latest_event() -> None:
    later = event("VendorEvent", 5, participantId="p-2", replyId="r-2")
    _, actions = run([(CALL_EVENT, answered()), (CALL_EVENT, later), (COMMAND, command("hangupparticipant", "k1", 9))])
    assert actions == [
        dispatch("k1", "hangupparticipant", {"participantId": "p-2", "replyId": "r-2", "sessionId": CALL})
    ]


def test_explicit_body_values_and_domain_win_over_learned_ones() -> None:
    body = {"replyId": "mine", "connectionId": "conn-mine"}
    _, actions = run(
        [(CALL_EVENT, answered()), (COMMAND, command("stoprecording", "k1", domain="other.example", body=body))]
    )
    assert actions == [dispatch("k1", "stoprecording", body, domain="other.example")]


def test_call_answered_payload_connection_id_is_learned() -> None:
    answer = event("CallAnswered", replyId="r-9", domain=DOMAIN, payload_connection="conn-payload")
    _, actions = run([(CALL_EVENT, answer), (COMMAND, command("splitconnection", "k1"))])
    assert actions == [dispatch("k1", "splitconnection", {"replyId": "r-9", "connectionId": "conn-payload"})]


def test_other_sources_teach_the_tenant_but_no_mediaservice_ids() -> None:
    telnyx = event("CallStarted", source="TELNYX", replyId="r-x", domain=DOMAIN)
    state, actions = run([(CALL_EVENT, telnyx), (COMMAND, command("hangupcall", "k1"))])
    assert actions == [] and state.known == {} and state.cid == 1
    assert state.status("k1") is Status.PENDING


def test_a_command_waits_until_an_event_brings_its_ids_then_is_sent() -> None:
    state, actions = run(
        [(COMMAND, command("hangupcall", "k1")), (COMMAND, command("sendremotecallringback", "k2", 1))]
    )
    assert actions == [] and [c["command_id"] for c in state.pending] == ["k1", "k2"]
    only_domain = event("VendorEvent", 2, domain=DOMAIN)
    state, actions = run([(CALL_EVENT, only_domain)], state)
    assert actions == [] and state.status("k1") is Status.PENDING
    state, actions = run([(CALL_EVENT, event("VendorEvent", 3, replyId="r-3"))], state)
    assert actions == [
        dispatch("k1", "hangupcall", {"replyId": "r-3"}),
        dispatch("k2", "sendremotecallringback", {"replyId": "r-3"}),
    ]
    assert state.pending == () and [c["command_id"] for c in state.inflight] == ["k1", "k2"]


def test_commands_needing_no_ids_go_out_at_once_with_an_explicit_domain() -> None:
    body = {"destAddr": "sip:agent@x"}
    state, actions = run([(COMMAND, command("placeivrcall", "k1", domain=DOMAIN, body=body))])
    assert actions == [dispatch("k1", "placeivrcall", body)]
    state, actions = run([(COMMAND, command("placeremotecall", "k2", body={"destinationUri": "sip:y"}))])
    assert actions == [] and state.status("k2") is Status.PENDING  # the domain is unknown yet


def test_a_command_id_is_executed_once_even_after_a_state_round_trip() -> None:
    state, actions = run([(CALL_EVENT, answered()), (COMMAND, command("hangupcall", "k1", 1))])
    assert len(actions) == 1
    state = complete(state, "k1")
    assert state.status("k1") is Status.DONE and state.inflight == ()
    restored = CommandsState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    again, actions = run(
        [(COMMAND, command("hangupcall", "k1", 2)), (COMMAND, command("stoprecording", "k1", 3))], restored
    )
    assert actions == [] and again.done == ("k1",)


def test_a_duplicate_of_a_pending_command_adds_nothing() -> None:
    state, actions = run([(COMMAND, command("hangupcall", "k1")), (COMMAND, command("hangupcall", "k1", 1))])
    assert actions == [] and len(state.pending) == 1


def test_a_command_left_inflight_by_a_crash_is_reported_unknown_and_never_resent() -> None:
    state, _ = run([(CALL_EVENT, answered()), (COMMAND, command("hangupcall", "k1", 1))])
    restored = CommandsState.from_dict(json.loads(json.dumps(state.to_dict())))  # worker restarted mid-send
    state, actions = run([(COMMAND, command("hangupcall", "k1", 1))], restored)  # the command is redelivered
    reason = "outcome unknown: the dispatcher stopped after marking the command as sent; not sent again"
    assert actions == [refusal("k1", "hangupcall", reason, 1)]
    assert state.status("k1") is Status.DONE


def test_any_next_record_of_the_call_settles_an_interrupted_send_first() -> None:
    state, _ = run([(COMMAND, command("hangupcall", "k1", 0)), (CALL_EVENT, answered(1))])  # k1 released: INFLIGHT
    state, actions = run(
        [(CALL_EVENT, event("VendorEvent", 2, replyId="r-2")), (COMMAND, command("hangupcall", "k2", 3))], state
    )
    reason = "outcome unknown: the dispatcher stopped after marking the command as sent; not sent again"
    assert actions == [refusal("k1", "hangupcall", reason, 2), dispatch("k2", "hangupcall", {"replyId": "r-2"})]


def test_a_pending_command_expires_after_the_timeout_of_record_time() -> None:
    state, _ = run([(CALL_EVENT, event("VendorEvent", 0, domain=DOMAIN)), (COMMAND, command("hangupcall", "k1", 0))])
    state, actions = run([(CALL_EVENT, event("VendorEvent", PENDING_TIMEOUT_MS))], state)
    assert actions == [] and state.status("k1") is Status.PENDING
    state, actions = run([(CALL_EVENT, event("VendorEvent", PENDING_TIMEOUT_MS + 1))], state)
    reason = f"replyId still unknown {PENDING_TIMEOUT_MS} ms after the command was requested"
    assert actions == [refusal("k1", "hangupcall", reason, PENDING_TIMEOUT_MS + 1)]
    assert state.status("k1") is Status.DONE


def test_the_end_of_the_call_fails_pending_commands_and_later_ones_missing_ids() -> None:
    state, _ = run([(COMMAND, command("stoprecording", "k1"))])
    state, actions = run([(CALL_EVENT, event("CallEnded", 5))], state)
    assert actions == [refusal("k1", "stoprecording", "call ended; replyId, connectionId, domain never known", 5)]
    state, actions = run([(COMMAND, command("hangupcall", "k2", 6))], state)
    assert actions == [refusal("k2", "hangupcall", "call ended; replyId, domain never known", 6)]


def test_at_most_pending_limit_commands_wait() -> None:
    records = [(COMMAND, command("hangupcall", f"k{i}")) for i in range(PENDING_LIMIT + 1)]
    state, actions = run(records)
    assert len(state.pending) == PENDING_LIMIT
    reason = f"{PENDING_LIMIT} commands already wait for ids of this call"
    assert actions == [refusal(f"k{PENDING_LIMIT}", "hangupcall", reason, 0)]


def test_a_command_of_another_tenant_is_refused_and_never_sent() -> None:
    state, actions = run([(CALL_EVENT, answered()), (COMMAND, command("hangupcall", "k1", 1, cid=2))])
    assert actions == [refusal("k1", "hangupcall", f"call {CALL} belongs to another tenant than 2", 1, cid=2)]
    state, actions = run([(COMMAND, command("hangupcall", "k2", 2, cid=2))], CommandsState(call_id=CALL))
    assert actions == [] and state.status("k2") is Status.PENDING  # tenant unknown yet: it waits
    state, actions = run([(CALL_EVENT, answered(3))], state)
    assert actions == [refusal("k2", "hangupcall", f"call {CALL} belongs to another tenant than 2", 3, cid=2)]


def test_an_event_of_another_tenant_is_an_error_and_changes_nothing() -> None:
    state, _ = run([(CALL_EVENT, answered())])
    with pytest.raises(TenantMismatchError, match=f"call {CALL} names tenant 2, but the call belongs to tenant 1"):
        step(state, CALL_EVENT, event("VendorEvent", 1, cid=2, replyId="evil"))
    assert state.known["replyId"] == "r-1"


@pytest.mark.parametrize(
    ("op", "body", "domain", "reason"),
    [
        ("dance", "{}", DOMAIN, "unknown op 'dance'; valid ops: " + ", ".join(sorted(OPS))),
        ("hangupcall", "[1, 2]", DOMAIN, "body is not a JSON object: '[1, 2]'"),
        ("hangupcall", "{not json", DOMAIN, "body is not a JSON object: '{not json'"),
        ("hangupcall", "{}", "bad/domain", "domain 'bad/domain' is not a host name"),
    ],
)
def test_commands_that_can_never_be_sent_are_refused(op: str, body: str, domain: str, reason: str) -> None:
    record = {**command(op, "k1", 1, domain=domain), "body": body}
    state, actions = run([(CALL_EVENT, answered()), (COMMAND, record)])
    assert actions == [refusal("k1", op, reason, 1)]
    assert state.status("k1") is Status.DONE


def test_a_learned_domain_that_is_no_host_name_refuses_the_waiting_command() -> None:
    state, _ = run([(COMMAND, command("hangupcall", "k1"))])
    _, actions = run([(CALL_EVENT, event("VendorEvent", 1, replyId="r", domain="x/../y"))], state)
    assert actions == [refusal("k1", "hangupcall", "domain 'x/../y' is not a host name", 1)]


def test_command_results_are_ignored() -> None:
    state, _ = run([(CALL_EVENT, answered()), (COMMAND, command("hangupcall", "k1"))])
    result = {"command_id": "k1", "call_id": CALL, "cid": 1, "op": "hangupcall", "completed_at": T0}
    assert step(state, COMMAND_RESULT, result).state is state


def test_other_record_types_are_an_error() -> None:
    with pytest.raises(UnknownRecordError, match="AudioChunk"):
        step(CommandsState(call_id=CALL), AUDIO_CHUNK, {})


def test_completing_a_command_that_is_not_inflight_is_illegal() -> None:
    state, _ = run([(COMMAND, command("hangupcall", "k1"))])
    with pytest.raises(IllegalTransitionError, match="command k1 of call sess-1 is PENDING; it cannot take COMPLETE"):
        complete(state, "k1")
    with pytest.raises(IllegalTransitionError, match="is unknown; it cannot take COMPLETE"):
        complete(state, "never")


def test_done_ids_are_bounded_to_the_most_recent() -> None:
    records = [(CALL_EVENT, answered())] + [(COMMAND, command("hangupcall", f"k{i}")) for i in range(DONE_LIMIT + 1)]
    state = fold(CALL, records)
    assert len(state.done) == DONE_LIMIT and state.done[-1] == f"k{DONE_LIMIT}"
    assert state.status("k0") is None and state.status("k1") is Status.DONE


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, '{"success": true}', Verdict.SUCCEEDED),
        (200, "", Verdict.SUCCEEDED),  # assumption: a 2xx without a JSON body succeeded
        (204, "not json", Verdict.SUCCEEDED),
        (200, '{"success": false, "error": "x"}', Verdict.FAILED),
        (400, '{"success": false}', Verdict.FAILED),
        (401, "", Verdict.FAILED),
        (404, "", Verdict.FAILED),
        (302, "", Verdict.FAILED),
        (429, "", Verdict.RETRY),
        (500, "", Verdict.RETRY),
        (503, '{"success": false}', Verdict.RETRY),
    ],
)
def test_http_answers_are_classified(status: int, body: str, verdict: Verdict) -> None:
    assert classify_status(status, body) is verdict


def test_transport_failures_retry_only_when_nothing_was_sent() -> None:
    assert classify_transport(request_sent=False) is Verdict.RETRY
    assert classify_transport(request_sent=True) is Verdict.UNKNOWN


def test_backoff_doubles_up_to_its_cap_and_attempts_are_bounded() -> None:
    policy = RetryPolicy()
    assert [policy.backoff_ms(a) for a in range(1, 8)] == [200, 400, 800, 1600, 3200, 5000, 5000]
    assert RetryPolicy(base_ms=50, factor=3, max_backoff_ms=1000).backoff_ms(3) == 450
    assert policy.final(Verdict.RETRY, 3) is Verdict.RETRY
    assert policy.final(Verdict.RETRY, 4) is Verdict.FAILED
    assert policy.final(Verdict.UNKNOWN, 1) is Verdict.UNKNOWN
