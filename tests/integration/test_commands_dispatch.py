"""The HTTP sender against a real HTTP server playing the mediaservice: retries, no retries, one result per attempt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.broker import free_port
from processors.commands import Dispatch, RetryPolicy
from processors.dispatch import Dispatcher
from tests.harness import PeerRequest, http_peer, serve

FAST = RetryPolicy(max_attempts=3, base_ms=10)
ACTION = Dispatch(
    command_id="k1", call_id="sess-1", cid=1, op="startrecording", domain="c47.example", body={"replyId": "r-1"}
)
NOW_MS = 1_741_000_000_000


def result(attempt: int, success: bool, status: int | None, response: str) -> dict[str, object]:
    return {
        "command_id": "k1",
        "call_id": "sess-1",
        "cid": 1,
        "op": "startrecording",
        "attempt": attempt,
        "success": success,
        "http_status": status,
        "response": response,
        "completed_at": NOW_MS,
    }


async def execute(url: str, client: httpx.AsyncClient | None = None) -> list[dict[str, object]]:
    async with client or httpx.AsyncClient() as http:
        dispatcher = Dispatcher(http, url, policy=FAST, clock_ms=lambda: NOW_MS)
        return [r async for r in dispatcher.execute(ACTION)]


def answers(*responses: Response) -> Callable[[PeerRequest], Response]:
    queue = list(responses)
    return lambda _: queue.pop(0) if len(queue) > 1 else queue[0]


async def test_a_success_is_sent_once_as_json_to_domain_and_op() -> None:
    async with http_peer() as peer:
        results = await execute(peer.url)
    assert results == [result(1, True, 200, '{"success":true}')]
    assert [(r.method, r.path, r.json()) for r in peer.requests] == [
        ("POST", "/c47.example/startrecording", {"replyId": "r-1"})
    ]
    assert peer.requests[0].headers["content-type"] == "application/json"
    assert "authorization" not in peer.requests[0].headers


async def test_a_503_is_retried_and_each_attempt_is_a_result() -> None:
    unavailable = JSONResponse({"success": False}, status_code=503)
    async with http_peer(answers(unavailable, JSONResponse({"success": True}))) as peer:
        results = await execute(peer.url)
    assert results == [result(1, False, 503, '{"success":false}'), result(2, True, 200, '{"success":true}')]
    assert [r.json() for r in peer.requests] == [{"replyId": "r-1"}, {"replyId": "r-1"}]


async def test_a_4xx_is_not_retried() -> None:
    async with http_peer(lambda _: JSONResponse({"success": False, "error": "bad replyId"}, status_code=400)) as peer:
        results = await execute(peer.url)
    assert results == [result(1, False, 400, '{"success":false,"error":"bad replyId"}')]
    assert len(peer.requests) == 1


async def test_retries_are_bounded() -> None:
    async with http_peer(lambda _: Response("busy", status_code=429)) as peer:
        results = await execute(peer.url)
    assert results == [result(1, False, 429, "busy"), result(2, False, 429, "busy"), result(3, False, 429, "busy")]
    assert len(peer.requests) == FAST.max_attempts


async def test_a_refused_connection_is_retried_with_no_status() -> None:
    results = await execute(f"http://127.0.0.1:{free_port()}")
    assert [(r["attempt"], r["success"], r["http_status"]) for r in results] == [
        (1, False, None),
        (2, False, None),
        (3, False, None),
    ]
    assert all(str(r["response"]).startswith("not sent: ConnectError") for r in results)


async def test_a_timeout_after_sending_has_an_unknown_outcome_and_is_not_retried() -> None:
    received: list[bytes] = []

    async def slow(request: Request) -> Response:
        received.append(await request.body())
        await asyncio.sleep(1.5)
        return JSONResponse({"success": True})

    app = Starlette(routes=[Route("/{path:path}", slow, methods=["POST"])])
    async with serve(app) as url:
        results = await execute(url, httpx.AsyncClient(timeout=httpx.Timeout(0.3, connect=5.0)))
    assert [(r["attempt"], r["success"], r["http_status"]) for r in results] == [(1, False, None)]
    assert str(results[0]["response"]).startswith("outcome unknown: ReadTimeout")
    assert received == [b'{"replyId":"r-1"}']
