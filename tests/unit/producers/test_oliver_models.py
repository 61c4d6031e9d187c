"""The Oliver contract: query parameters, tasks, the WebSocket start message, statuses."""

from __future__ import annotations

import pytest

from producers.oliver.errors import BadRequestError
from producers.oliver.models import (
    CallDirection,
    ProcessParams,
    StartControl,
    Status,
    StreamFormat,
    StreamParams,
    Tasks,
)

SEED_TASKS = '[{"name": "stream", "options": {"activate": false}}, {"name": "alerts", "options": {"activate": true}}]'
SEED_QUERY = [
    ("channels", "2"),
    ("calldirection", "1"),
    ("agentId", "a-9"),
    ("agentTeam", "team-blue"),
    ("customerId", "c-77"),
    ("customerInd", "telecom"),
    ("campaignId", "spring"),
    ("name", "call-77"),
    ("ANI", "+302101234567"),
    ("calltype", "LA"),
    ("calltime", "2025-03-01T10:00:00Z"),
    ("timezone", "2"),
]


def test_seed_parameters_are_accepted_unchanged_and_echoed_in_schema_types() -> None:
    params = StreamParams.from_query([*SEED_QUERY, ("tasks", SEED_TASKS)])
    assert params.echo() == {
        "channels": 2,
        "calldirection": 1,
        "agentId": "a-9",
        "agentTeam": "team-blue",
        "customerId": "c-77",
        "customerInd": "telecom",
        "campaignId": "spring",
        "name": "call-77",
        "ANI": "+302101234567",
        "calltype": "LA",
        "calltime": "2025-03-01T10:00:00+00:00",
        "timezone": 2,
        "tasks": [
            {"name": "stream", "options": {"activate": False}},
            {"name": "alerts", "options": {"activate": True}},
        ],
    }
    assert params.metadata() == {
        "channels": "2",
        "calldirection": "1",
        "agentId": "a-9",
        "agentTeam": "team-blue",
        "customerId": "c-77",
        "customerInd": "telecom",
        "campaignId": "spring",
        "name": "call-77",
        "ANI": "+302101234567",
        "calltype": "LA",
        "calltime": "2025-03-01T10:00:00+00:00",
        "timezone": "2",
        "tasks": '[{"name":"stream","options":{"activate":false}},{"name":"alerts","options":{"activate":true}}]',
    }


@pytest.mark.parametrize(
    ("given", "expected"),
    [("1", 1), ("2", 2), ("incoming", 1), ("Outgoing", 2), ("inbound", 1), ("outbound", 2)],
)
def test_calldirection_by_number_or_name_assumption(given: str, expected: int) -> None:
    params = ProcessParams.from_query([("channels", "1"), ("calldirection", given)])
    assert params.calldirection == CallDirection(expected)
    assert params.metadata() == {"channels": "1", "calldirection": str(expected)}


def test_unknown_parameters_are_kept_as_metadata_but_the_token_never_is() -> None:
    params = ProcessParams.from_query(
        [("channels", "1"), ("calldirection", "2"), ("X-Auth-Token", "key-tenant-1"), ("queue", "gold")]
    )
    assert params.metadata() == {"queue": "gold", "channels": "1", "calldirection": "2"}
    assert params.echo() == {"channels": 1, "calldirection": 2}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([("calldirection", "1")], "channels: Field required"),
        ([("channels", "3"), ("calldirection", "1")], "channels: Value error, must be 1 or 2, got 3 (got '3')"),
        ([("channels", "two"), ("calldirection", "1")], "channels: Input should be a valid integer"),
        ([("channels", "1")], "calldirection: Field required"),
        ([("channels", "1"), ("calldirection", "sideways")], "calldirection: Input should be 1 or 2 (got 'sideways')"),
        ([("channels", "1"), ("calldirection", "1"), ("calltime", "yesterday")], "calltime: Input should be a valid"),
        ([("channels", "1"), ("calldirection", "1"), ("timezone", "15")], "timezone: Input should be less than"),
        ([("channels", "1"), ("channels", "2"), ("calldirection", "1")], "'channels' is given more than once"),
        ([("channels", "1"), ("calldirection", "1"), ("uri", "file:///etc/passwd")], "'uri' is reserved"),
    ],
)
def test_bad_parameters_are_refused_naming_the_value(query: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        ProcessParams.from_query(query)
    assert message in str(caught.value)


def test_tasks_default_to_stream_on_alerts_off() -> None:
    params = StreamParams.from_query([("channels", "2"), ("calldirection", "1")])
    assert params.tasks == Tasks(stream=True, alerts=False)
    assert Tasks.parse("[]") == Tasks(stream=True, alerts=False)
    assert Tasks.parse('[{"name":"alerts","options":{"activate":true}}]') == Tasks(stream=True, alerts=True)
    assert Tasks.parse(SEED_TASKS) == Tasks(stream=False, alerts=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[{", "tasks is not valid JSON: '[{'"),
        ('{"name":"stream"}', "tasks must be a JSON array of tasks"),
        ('[{"name":"asr","options":{"activate":true}}]', "name: Input should be 'stream' or 'alerts' (got 'asr')"),
        ('[{"name":"stream"}]', "options: Field required"),
        ('[{"name":"stream","options":{"activate":"maybe"}}]', "options.activate: Input should be a valid boolean"),
        ('["stream"]', "Input should be a valid dictionary"),
        (
            '[{"name":"stream","options":{"activate":true}},{"name":"stream","options":{"activate":false}}]',
            "tasks names 'stream' more than once",
        ),
    ],
)
def test_malformed_tasks_are_refused(text: str, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        StreamParams.from_query([("channels", "2"), ("calldirection", "1"), ("tasks", text)])
    assert message in str(caught.value)


def test_start_control_defaults_and_leniency() -> None:
    start = StartControl.model_validate({"control": "start", "pid": "48213"})
    assert (start.pid, start.format, start.channels) == (48213, StreamFormat.RAW, None)
    start = StartControl.model_validate({"control": "start", "pid": 7, "format": "MP3", "channels": 1})
    assert (start.pid, start.format, start.channels) == (7, StreamFormat.MP3, 1)


@pytest.mark.parametrize(
    "message",
    [
        {"control": "start"},
        {"control": "start", "pid": 0},
        {"control": "start", "pid": 1 << 63},
        {"control": "start", "pid": 5, "format": "flac"},
        {"control": "start", "pid": 5, "channels": 3},
    ],
)
def test_faulty_start_controls_are_invalid(message: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="validation error"):
        StartControl.model_validate(message)


def test_statuses_map_one_to_one_to_oliver_integers() -> None:
    assert [(int(s), s.message, s.final) for s in Status] == [
        (0, "pending", False),
        (1, "processing", False),
        (2, "completed", True),
        (-1, "failed", True),
        (-2, "aborted", True),
    ]
