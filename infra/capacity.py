"""How many requests may hold a database connection at once, and what the others do meanwhile.

A request waits for a connection on the event loop, holding nothing: no worker thread, no
connection. At most as many requests as the pool has connections are admitted, so an admitted
request's `getconn` never waits for another request, and worker threads only ever run code that
can finish: no request waits for a connection while holding a thread that a holder needs (the
lock-up of issue 22). Beyond that a bounded queue waits a bounded time; the rest are refused at
once with 503 and Retry-After — shed, not hung.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager
from typing import ClassVar, TypeVar

import anyio
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from infra.errors import LdlError

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_AFTER_SECONDS = 1


class ServiceBusy(LdlError):
    """More work than the service can carry right now; the client may retry after a second."""

    status_code = 503
    error = "busy"
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class ConnectionGate:
    """The pool, behind a limiter sized to it with a bounded queue."""

    def __init__(self, pool: ConnectionPool, queue_limit: int, queue_timeout: float) -> None:
        self.pool = pool
        self.queue_limit = queue_limit
        self.queue_timeout = queue_timeout
        self._free = asyncio.Semaphore(pool.max_size)
        self.waiting = 0
        self.refused = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.Connection]:
        """A pooled connection for the block (committed on success, rolled back on error)."""
        async with self._admitted():
            try:
                async with _on_threads(self.pool.connection()) as conn:
                    yield conn
            except PoolTimeout as exc:  # the database is slow to hand out connections, or away
                raise ServiceBusy("the database is busy; try again in a moment") from exc

    @asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        if self._free.locked() and self.waiting >= self.queue_limit:
            self._refuse("the queue is full")
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout):
                await self._free.acquire()
        except TimeoutError:
            self._refuse(f"no database connection came free within {self.queue_timeout:g} s")
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            self._free.release()

    def _refuse(self, why: str) -> None:
        self.refused += 1
        if self.refused == 1 or self.refused % 1000 == 0:  # a burst is one line, not thousands
            log.warning("shedding load (%d refused so far): %s", self.refused, why)
        raise ServiceBusy("the service is busy; try again in a moment")


@asynccontextmanager
async def _on_threads(context: AbstractContextManager[T]) -> AsyncIterator[T]:
    """Enter and leave a blocking context manager on worker threads; leave it even when the
    request is cancelled, so no connection is ever lost to the pool."""
    value = await run_in_threadpool(context.__enter__)
    try:
        yield value
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            suppressed = await run_in_threadpool(
                context.__exit__, type(exc), exc, exc.__traceback__
            )
        if not suppressed:
            raise
    else:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(context.__exit__, None, None, None)
