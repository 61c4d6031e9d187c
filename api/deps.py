"""Authentication, tenant checks and shared query parameters, in one place: typed dependencies every route uses."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from pydantic import SecretStr

from api import cursor
from api.queries import Page, Window
from infra.settings import Settings
from infra.store import Store

AUTH_HEADER = "X-Auth-Token"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _matches(token: str, keys: Iterable[SecretStr]) -> bool:
    found = False
    for key in keys:  # no early exit: the time taken does not depend on which key matched
        found |= hmac.compare_digest(key.get_secret_value().encode(), token.encode())
    return found


def _owner(settings: Settings, token: str) -> int | None:
    owners = [tenant for tenant, key in settings.api_keys.items() if _matches(token, [key])]
    return owners[0] if owners else None


def _check(settings: Settings, token: str | None, cid: int, missing: str) -> int:
    if not token:
        raise HTTPException(401, missing)
    owner = _owner(settings, token)
    if owner is None:
        raise HTTPException(401, "Invalid API key")
    if owner != cid:
        raise HTTPException(403, f"This API key does not give access to client {cid}")
    return cid


def authorised_cid(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    cid: Annotated[int, Path(description="Tenant (client) id")],
) -> int:
    """The path's cid, if the bearer key belongs to that tenant: 401 without a valid key, 403 for another tenant."""
    return _check(settings, _bearer(request), cid, "Missing bearer API key (Authorization: Bearer <key>)")


def oliver_cid(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    cid: Annotated[int, Path(description="Tenant (client) id")],
) -> int:
    """Like ``authorised_cid``, also accepting the gateway's ``X-Auth-Token`` (header or query parameter)."""
    token = request.headers.get(AUTH_HEADER) or request.query_params.get(AUTH_HEADER) or _bearer(request)
    return _check(settings, token, cid, f"{AUTH_HEADER} (or Authorization: Bearer <key>) is missing")


def admin(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    """Only an admin key (``admin_keys``) passes: 401 without a valid key, 403 for a tenant key."""
    token = _bearer(request)
    if not token:
        raise HTTPException(401, "Missing bearer admin key (Authorization: Bearer <key>)")
    if _matches(token, settings.admin_keys):
        return
    if _owner(settings, token) is not None:
        raise HTTPException(403, "Read-only SQL needs an admin key; tenant keys cannot run free SQL")
    raise HTTPException(401, "Invalid API key")


Since = Annotated[datetime | None, Query(alias="from", description="Inclusive start, ISO-8601 (naive = UTC)")]
Until = Annotated[datetime | None, Query(alias="to", description="Exclusive end, ISO-8601 (naive = UTC)")]


def window(since: Since = None, until: Until = None) -> Window:
    """The ``from``/``to`` time range; 400 when ``from`` is not before ``to``."""
    if since is not None and until is not None and _aware(since) >= _aware(until):
        raise HTTPException(400, f"Invalid query.from: {since.isoformat()} is not before to={until.isoformat()}")
    return Window(since, until)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _page(limit: int, token: str | None, key_type: type[str] | type[int]) -> Page:
    if token is None:
        return Page(limit)
    try:
        after_ms, after_id = cursor.decode(token, key_type)
    except cursor.CursorError as exc:
        raise HTTPException(400, f"Invalid query.cursor: {exc}") from exc
    return Page(limit, after_ms, after_id)


Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page (opaque)", max_length=512)]


def page_by_text_id(limit: Limit = 100, cursor: Cursor = None) -> Page:
    """``limit`` and ``cursor`` of a list sorted by (time, text id)."""
    return _page(limit, cursor, str)


def page_by_int_id(limit: Limit = 100, cursor: Cursor = None) -> Page:
    """``limit`` and ``cursor`` of a list sorted by (time, numeric id)."""
    return _page(limit, cursor, int)


TenantId = Annotated[int, Depends(authorised_cid)]
OliverTenant = Annotated[int, Depends(oliver_cid)]
Admin = Annotated[None, Depends(admin)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
WindowDep = Annotated[Window, Depends(window)]
TextPage = Annotated[Page, Depends(page_by_text_id)]
IntPage = Annotated[Page, Depends(page_by_int_id)]
