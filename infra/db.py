"""Database connections: one way to connect, one way to build a pool, both acting as the app role."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from infra.errors import ConfigError

APP_ROLE = "ldl_app"


def describe_target(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname or 'local socket'}:{parts.port or 5432}{parts.path}"


def _act_as_app_role(conn: psycopg.Connection) -> None:
    # Superuser rights are dropped for the session: the app cannot rewrite the audit log.
    conn.execute(f"SET ROLE {APP_ROLE}")
    conn.commit()


def connect(url: str, *, as_app: bool = True, autocommit: bool = False) -> psycopg.Connection:
    """Open one connection; an unreachable database becomes a ConfigError naming the setting."""
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=5)
    except psycopg.OperationalError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0].split(": ", 1)[-1] if lines else type(exc).__name__
        raise ConfigError(
            f"LDL_DATABASE_URL: cannot connect to {describe_target(url)}: {reason}"
        ) from None
    if as_app:
        conn.execute(f"SET ROLE {APP_ROLE}")
        if not autocommit:
            conn.commit()
    return conn


@contextmanager
def connection(url: str, *, as_app: bool = True) -> Iterator[psycopg.Connection]:
    """A connection whose transaction commits on success and rolls back on error."""
    conn = connect(url, as_app=as_app)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def create_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, statement_timeout_ms: int = 0
) -> ConnectionPool:
    """A pool that is not yet open: the caller opens it in its lifespan.

    Its timeout is short: callers go through a gate sized to the pool (infra/capacity.py), so a
    wait here means the database itself is slow to connect, which is answered, not waited out.
    """
    return ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=_act_as_app_role,
        check=ConnectionPool.check_connection,
        kwargs={"connect_timeout": 5, "options": f"-c statement_timeout={statement_timeout_ms}"},
        timeout=5,
        name="ldl",
    )


EXPORT_STATEMENT_TIMEOUT = "5min"


def allow_long_statements(conn: psycopg.Connection) -> None:
    """Lift LDL_API_STATEMENT_TIMEOUT_MS to minutes for this transaction only: for work known to
    be long and rare (a whole trial's export), not for pages that a crowd can call."""
    conn.execute("SELECT set_config('statement_timeout', %s, true)", (EXPORT_STATEMENT_TIMEOUT,))


# --------------------------------------------------------------- rows as pydantic models
Row = TypeVar("Row")
Query = str | sql.SQL | sql.Composed


def fetch_one(conn: psycopg.Connection, model: type[Row], query: Query, params: Any) -> Row | None:
    """The first row of `query` as a `model` (every repository's way to read one)."""
    with conn.cursor(row_factory=class_row(model)) as cur:
        cur.execute(query, params)
        return cur.fetchone()


def fetch_all(conn: psycopg.Connection, model: type[Row], query: Query, params: Any) -> list[Row]:
    with conn.cursor(row_factory=class_row(model)) as cur:
        cur.execute(query, params)
        return cur.fetchall()
