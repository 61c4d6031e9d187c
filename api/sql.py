"""Read-only SQL for data teams: one SELECT, admin keys only, under ClickHouse limits.

Free SQL cannot be confined to one tenant, so tenant keys are refused: only ``admin_keys`` pass.
The statement is checked here (one SELECT/WITH statement, no SETTINGS/FORMAT override) and then run
as a subquery with ``readonly=1``, ``max_execution_time`` and ``max_result_rows`` (overflow throws),
so even a statement that slipped past the check could not write.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel, Field

from api import queries
from api.deps import Admin, SettingsDep, StoreDep
from api.errors import responses
from infra.store import StoreError

router = APIRouter(tags=["sql"])

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`")
_FIRST_WORD = re.compile(r"^\s*\(*\s*([A-Za-z]+)")
_FORBIDDEN = re.compile(r"\b(SETTINGS|FORMAT|INTO\s+OUTFILE)\b", re.IGNORECASE)


class SqlError(ValueError):
    """A statement the SQL endpoint does not run; the message says why."""


def select_only(sql: str) -> str:
    """The statement without a trailing ``;`` if it is a single SELECT (or WITH ... SELECT); else SqlError."""
    text = _COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
    bare = _STRINGS.sub("''", text)
    first = _FIRST_WORD.match(bare)
    if not first:
        raise SqlError("empty statement")
    if first.group(1).upper() not in ("SELECT", "WITH"):
        raise SqlError(f"only SELECT statements are allowed, got {first.group(1).upper()}")
    if ";" in bare:
        raise SqlError("only one statement is allowed")
    clause = _FORBIDDEN.search(bare)
    if clause:
        raise SqlError(f"{clause.group(1).upper()} clauses are not allowed (limits are set by the server)")
    return text


class SqlQuery(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, description="One SELECT statement")


_EXAMPLE = {"sql": "SELECT state, count() AS calls FROM switchboard.sessions GROUP BY state"}


@router.post(
    "/v1/sql",
    summary="Read-only SQL (admin)",
    responses={
        200: {"content": {"application/json": {"example": {"rows": [{"state": "ENDED", "calls": 42}], "count": 1}}}},
        **responses(400, 401, 403),
    },
)
def run_sql(
    _: Admin,
    store: StoreDep,
    settings: SettingsDep,
    query: Annotated[SqlQuery, Body(openapi_examples={"sessions by state": {"value": _EXAMPLE}})],
) -> dict[str, Any]:
    """Run one SELECT over every tenant's data with readonly=1 and the configured time and row limits."""
    try:
        statement = select_only(query.sql)
    except SqlError as exc:
        raise HTTPException(400, f"Invalid sql: {exc}") from exc
    try:
        rows = queries.read_only(
            store, statement, max_execution_s=settings.sql_max_execution_s, max_rows=settings.sql_max_rows
        )
    except StoreError as exc:
        raise HTTPException(400, f"Query refused by ClickHouse: {exc.__cause__ or exc}") from exc
    return {"rows": rows, "count": len(rows)}
