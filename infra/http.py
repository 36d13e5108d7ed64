"""HTTP plumbing shared by every router: the request's connection and pagination."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Generic, TypeVar

import psycopg
from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from infra.capacity import ServiceBusy

T = TypeVar("T")


async def _request_connection(request: Request) -> AsyncIterator[psycopg.Connection]:
    # Waited for on the event loop through the gate (infra/capacity.py), used on a thread.
    async with request.app.state.connection_gate.connection() as conn:
        try:
            yield conn
        except psycopg.errors.QueryCanceled as exc:  # LDL_API_STATEMENT_TIMEOUT_MS ran out
            raise ServiceBusy("the request took too long; try again in a moment") from exc


# scope="function": the transaction commits before the response is sent, so a client never sees
# a 2xx for a write that is not yet (or never) committed.
Conn = Annotated[psycopg.Connection, Depends(_request_connection, scope="function")]


class PageParams(BaseModel):
    limit: int
    offset: int


def _page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="rows per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# ------------------------------------------------------------------ the error shape
class Problem(BaseModel):
    field: str
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every error the API returns has this shape (api/errors.py renders it)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(examples=["conflict"])
    detail: str
    problems: list[Problem] | None = Field(None, description="on 422: every invalid field")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the body cannot be read as text (not UTF-8)"},
    401: {"model": ErrorBody, "description": "missing, unknown or revoked API key"},
    403: {"model": ErrorBody, "description": "the key's role may not do this"},
    404: {"model": ErrorBody, "description": "not found (or not yours to see)"},
    409: {"model": ErrorBody, "description": "conflicts with the current state"},
    413: {"model": ErrorBody, "description": "the body is larger than LDL_API_MAX_BODY_BYTES"},
    422: {"model": ErrorBody, "description": "invalid input; lists every problem at once"},
}
