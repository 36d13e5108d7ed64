"""HTTP plumbing shared by every router: the request's connection and pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Generic, TypeVar

import psycopg
from fastapi import Depends, Query, Request
from pydantic import BaseModel

T = TypeVar("T")


def _request_connection(request: Request) -> Iterator[psycopg.Connection]:
    # The pool's context commits when the handler returns and rolls back when it raises.
    with request.app.state.pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(_request_connection)]


class PageParams(BaseModel):
    limit: int
    offset: int


def _page_params(
    limit: Annotated[int, Query(ge=1, le=500, description="rows per page")] = 50,
    offset: Annotated[int, Query(ge=0, description="rows to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
