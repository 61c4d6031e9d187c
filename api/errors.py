"""The API's error shapes: ``{"code", "message"}`` everywhere, the vendor's own bodies on the Oliver paths."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class VendorError(Exception):
    """An error answered with a vendor's body as-is (the Oliver paths)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body


def error(status: int, message: str) -> JSONResponse:
    """The one error shape of the read API."""
    return JSONResponse({"code": status, "message": message}, status_code=status)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of the usual errors, each with an example body."""
    text = {
        400: "Invalid query.limit: Input should be less than or equal to 1000",
        401: "Invalid API key",
        403: "This API key does not give access to client 2",
        404: "Call c-1 not found",
    }
    return {
        s: {
            "description": text.get(s, "error"),
            "content": {"application/json": {"example": {"code": s, "message": text.get(s, "")}}},
        }
        for s in statuses
    }
