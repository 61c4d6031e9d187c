"""Opaque pagination cursors (pure): the sort key of the last row of a page, as URL-safe base64 JSON.

A cursor is ``[<epoch ms>, <id>]`` of the last row returned; the next page holds the rows strictly
after it in the list's order (newest first, then id descending). Clients treat it as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime


class CursorError(ValueError):
    """A cursor that this API did not issue (or that was altered)."""


def encode(at: datetime, key: str | int) -> str:
    """The cursor after a row sorted at ``at`` (naive = UTC) with id ``key``."""
    moment = at if at.tzinfo else at.replace(tzinfo=UTC)
    payload = json.dumps([round(moment.timestamp() * 1000), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode(cursor: str, key_type: type[str] | type[int]) -> tuple[int, str | int]:
    """(epoch ms, id) of a cursor; raises CursorError naming the cursor when it is malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at_ms, key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise CursorError(f"cursor {cursor!r} is not one this API issued") from exc
    if type(at_ms) is not int or type(key) is not key_type:
        raise CursorError(f"cursor {cursor!r} is not one this API issued")
    return at_ms, key
