"""Authentication and tenant checks, in one place: a typed dependency every route uses."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request

from infra.settings import Settings
from infra.store import Store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def authorised_cid(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    cid: Annotated[int, Path(description="Tenant (client) id")],
) -> int:
    """The path's cid, if the bearer key belongs to that tenant: 401 without a valid key, 403 for another tenant."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Missing bearer API key (Authorization: Bearer <key>)")
    owner = next(
        (
            tenant
            for tenant, key in settings.api_keys.items()
            if hmac.compare_digest(key.get_secret_value().encode(), token.strip().encode())
        ),
        None,
    )
    if owner is None:
        raise HTTPException(401, "Invalid API key")
    if owner != cid:
        raise HTTPException(403, f"This API key does not give access to client {cid}")
    return cid


TenantId = Annotated[int, Depends(authorised_cid)]
StoreDep = Annotated[Store, Depends(get_store)]
