"""The per-domain policy file: the documented example, validation at load, and live reload."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest

from producers.mediaservice.policy import Action, Policy, PolicyError, PolicyStore, parse_policy

DOCS = Path(__file__).resolve().parents[3] / "docs" / "mediaservice-policy.md"
DOMAIN = "customer47.prod-eu-north-1.iotcomms.io"
MENU = {"phrases": [{"format": "file", "fileName": "menu.mp3"}]}


def docs_example() -> dict[str, Any]:
    """The example policy of docs/mediaservice-policy.md (the first json block)."""
    match = re.search(r"```json\n(.*?)```", DOCS.read_text(), re.S)
    assert match is not None
    loaded: dict[str, Any] = json.loads(match.group(1))
    return loaded


def load(policy: dict[str, Any]) -> Policy:
    return parse_policy(json.dumps(policy).encode(), "test.json")


def test_the_documented_example_is_a_valid_policy() -> None:
    policy = load(docs_example())
    assert policy.cid == 1
    assert sorted(policy.actions) == ["billing", "busy", "sales", "support", "welcome"]
    assert policy.ivr is not None and sorted(policy.ivr.menus) == ["main", "support"]
    assert policy.actions["billing"].body() == {
        "action": "call",
        "destAddr": "sip:billing@customer47.prod-eu-north-1.iotcomms.io",
        "xHeaders": {"x-queue": "billing"},
    }


def test_a_minimal_policy_has_the_documented_defaults() -> None:
    policy = load({"cid": 7})
    assert (policy.alarm_path, policy.session_duration_unit) == ("alarm", "s")
    assert (policy.roles.caller, policy.roles.callee) == ("CUSTOMER", "AGENT")
    assert policy.new_call.default == Action(action="drop", dropCode="busy")
    assert policy.call_event.default == Action(action="drop")
    assert (policy.ivr, policy.call_identifier_reference, policy.remote_call_reference) == (None, None, "{callId}")


BROKEN: list[tuple[dict[str, Any], str]] = [
    ({}, "cid: Field required"),
    ({"cid": "1"}, "cid: Input should be a valid integer"),
    ({"cid": 1, "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"cid": 1, "actions": {"a": {"action": "call", "destAddr": "sip:a@b", "callRecording": "true"}}}, "callRecording"),
    ({"cid": 1, "actions": {"a": {"action": "call"}}}, "a call action needs destAddr"),
    ({"cid": 1, "actions": {"a": {"action": "transfer"}}}, "actions.a.action: Input should be 'call'"),
    ({"cid": 1, "actions": {"a": {"action": "httpcall", "codec": "PCMA"}}}, "needs receiveIp, receivePort"),
    ({"cid": 1, "actions": {"a": {"action": "drop", "menu": "main"}}}, "menu is only valid on an ivr action"),
    ({"cid": 1, "new_call": {"routes": [{"action": "nowhere"}]}}, "new_call.routes[0]: no action named 'nowhere'"),
    ({"cid": 1, "new_call": {"default": "nowhere"}}, "new_call.default: no action named 'nowhere'"),
    (
        {"cid": 1, "new_call": {"routes": [{"match": {"called_party": {"regex": "(+"}}, "action": "x"}]}},
        "regex '(+' does not compile",
    ),
    (
        {"cid": 1, "new_call": {"routes": [{"match": {"called_party": {"exact": "1", "prefix": "2"}}, "action": "x"}]}},
        "exactly one of exact, prefix, regex",
    ),
    (
        {"cid": 1, "actions": {"a": {"action": "call", "destAddr": "sip:{agent}@x"}}},
        "actions.a: unknown placeholder {agent}",
    ),
    ({"cid": 1, "remote_call_reference": "{secret}"}, "remote_call_reference: unknown placeholder {secret}"),
    ({"cid": 1, "actions": {"a": {"action": "ivr"}}}, "actions.a: an ivr action needs an ivr section"),
    ({"cid": 1, "ivr": {"entry_menu": "main", "menus": {}}}, "ivr.entry_menu: no menu named 'main'"),
    (
        {"cid": 1, "ivr": {"entry_menu": "m", "menus": {"m": {**MENU, "options": {"1": {"menu": "gone"}}}}}},
        "ivr.menus.m.options.1: no menu named 'gone'",
    ),
    (
        {"cid": 1, "ivr": {"entry_menu": "m", "menus": {"m": {**MENU, "on_failure": {"transfer": "gone"}}}}},
        "ivr.menus.m.on_failure: no action named 'gone'",
    ),
    (
        {"cid": 1, "ivr": {"entry_menu": "m", "menus": {"m": {**MENU, "options": {"12": {"hangup": True}}}}}},
        "options.12: cannot be entered with maxDigits 1",
    ),
    (
        {
            "cid": 1,
            "ivr": {
                "entry_menu": "m",
                "menus": {
                    "m": {**MENU, "dtmf": {"maxDigits": 3, "terminationKey": "#"}, "options": {"1#": {"hangup": True}}}
                },
            },
        },
        "options.1#: cannot be entered with maxDigits 3 and terminationKey '#'",
    ),
    (
        {
            "cid": 1,
            "ivr": {"entry_menu": "m", "menus": {"m": {**MENU, "options": {"1": {"menu": "m", "hangup": True}}}}},
        },
        "a step needs exactly one of menu, transfer, hangup; got ['menu', 'hangup']",
    ),
    (
        {"cid": 1, "ivr": {"entry_menu": "m", "menus": {"m": {"phrases": [{"format": "awstts"}]}}}},
        "a awstts phrase needs awsTTSParameters",
    ),
    ({"cid": 1, "ivr": {"entry_menu": "m", "menus": {"m": {"phrases": []}}}}, "phrases: List should have at least 1"),
    ({"cid": 1, "alarm_path": "newCall"}, "alarm_path 'newCall' is the path of the newCall callback"),
    ({"cid": 1, "alarm_path": "../x"}, "alarm_path: String should match pattern"),
    (
        {"cid": 1, "call_event": {"events": {"calledPartyHangup": {"action": "drop"}}}},
        "unknown event 'calledPartyHangup'",
    ),
]


@pytest.mark.parametrize(("policy", "message"), BROKEN)
def test_an_invalid_policy_is_refused_naming_what_is_wrong(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        load(policy)


def test_a_file_that_is_not_json_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"test\.json: not a valid policy: \(file\): Invalid JSON"):
        parse_policy(b'{"cid": 1,', "test.json")


def write(path: Path, policy: dict[str, Any] | str, mtime_ns: int) -> None:
    path.write_text(policy if isinstance(policy, str) else json.dumps(policy))
    os.utime(path, ns=(mtime_ns, mtime_ns))  # explicit, so two quick edits never share an mtime


def test_unknown_domains_and_names_that_are_not_host_names_have_no_policy(tmp_path: Path) -> None:
    write(tmp_path / "x.json", {"cid": 1}, 1_000)
    store = PolicyStore(tmp_path)
    assert store.get("other.example") is None
    assert store.get("..") is None
    assert store.get("a/../x") is None
    assert store.get("x") is not None
    assert PolicyStore(tmp_path / "missing").get("x") is None


def test_an_edited_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / f"{DOMAIN}.json"
    write(path, {"cid": 1}, 1_000_000_000)
    store = PolicyStore(tmp_path)
    first = store.get(DOMAIN)
    assert first is not None and first.cid == 1
    assert store.get(DOMAIN) is first  # unchanged file: not re-read
    write(path, {"cid": 2}, 2_000_000_000)
    second = store.get(DOMAIN)
    assert second is not None and second.cid == 2


def test_a_broken_edit_keeps_the_last_good_policy_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / f"{DOMAIN}.json"
    write(path, {"cid": 1}, 1_000_000_000)
    store = PolicyStore(tmp_path)
    good = store.get(DOMAIN)
    write(path, {"cid": 1, "alarm_path": "callEvent"}, 2_000_000_000)
    with caplog.at_level(logging.ERROR, logger="producers.mediaservice.policy"):
        assert store.get(DOMAIN) is good
        assert store.get(DOMAIN) is good
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1
    assert "keeping the last good policy" in errors[0] and "alarm_path 'callEvent'" in errors[0]
    write(path, {"cid": 3}, 3_000_000_000)
    fixed = store.get(DOMAIN)
    assert fixed is not None and fixed.cid == 3


def test_a_file_that_never_loaded_cannot_serve_its_domain(tmp_path: Path) -> None:
    write(tmp_path / f"{DOMAIN}.json", "{not json", 1_000)
    with pytest.raises(PolicyError, match="not a valid policy"):
        PolicyStore(tmp_path).get(DOMAIN)


def test_a_removed_file_makes_the_domain_unknown(tmp_path: Path) -> None:
    path = tmp_path / f"{DOMAIN}.json"
    write(path, {"cid": 1}, 1_000)
    store = PolicyStore(tmp_path)
    assert store.get(DOMAIN) is not None
    path.unlink()
    assert store.get(DOMAIN) is None
