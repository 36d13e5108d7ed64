"""Database connections: one way to connect, one way to build a pool, both acting as the app role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from infra.errors import ConfigError

APP_ROLE = "ldl_app"
# What a URL of several nodes must ask for, so it reaches the primary (libpq's names).
WRITABLE_SESSION_ATTRS = frozenset({"read-write", "primary"})


def node_addresses(url: str) -> list[str]:
    """Each node of the URL as host:port (one, or several in a multi-host URL)."""
    params = conninfo_to_dict(url)
    hosts = str(params.get("host") or "local socket").split(",")
    ports = str(params.get("port") or "5432").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    return [
        f"{host or 'local socket'}:{port or 5432}" for host, port in zip(hosts, ports, strict=False)
    ]


def describe_target(url: str) -> str:
    return f"{','.join(node_addresses(url))}/{conninfo_to_dict(url).get('dbname', '')}"


def on_node(url: str, conn: psycopg.Connection) -> str:
    """`url` narrowed to the one node `conn` reached (for tools that take one host, like yoyo)."""
    parts = urlsplit(url)
    if not parts.netloc or len(node_addresses(url)) == 1:
        return url
    host = conn.info.host
    host = f"[{host}]" if ":" in host else host
    credentials = parts.netloc.rpartition("@")[0]
    node = f"{host}:{conn.info.port}"
    return urlunsplit(parts._replace(netloc=f"{credentials}@{node}" if credentials else node))


def asks_for_writable(url: str) -> bool:
    return conninfo_to_dict(url).get("target_session_attrs") in WRITABLE_SESSION_ATTRS


def _act_as_app_role(conn: psycopg.Connection) -> None:
    # Superuser rights are dropped for the session: the app cannot rewrite the audit log.
    conn.execute(f"SET ROLE {APP_ROLE}")
    conn.commit()


def connect(url: str, *, as_app: bool = True, autocommit: bool = False) -> psycopg.Connection:
    """Open one connection; an unreachable database becomes a ConfigError naming the setting.

    A multi-host URL (`postgresql://h1:p1,h2:p2/ldl?target_session_attrs=read-write`) reaches
    whichever node is the primary now; when none is, the one line says so and why, per node.
    """
    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise ConfigError(_cannot_connect(url, exc)) from None
    if as_app:
        conn.execute(f"SET ROLE {APP_ROLE}")
        if not autocommit:
            conn.commit()
    return conn


def _cannot_connect(url: str, exc: psycopg.OperationalError) -> str:
    message = str(exc)
    attempts = [line for line in message.splitlines() if line.startswith("- host: ")]
    if len(attempts) < 2:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        reason = lines[0].split(": ", 1)[-1] if lines else type(exc).__name__
        if reason.endswith("session is read-only") and asks_for_writable(url):
            reason = "it is read-only (a standby) and the URL asks for a writable node"
        return f"LDL_DATABASE_URL: cannot connect to {describe_target(url)}: {reason}"
    reasons = [_reason(line) for line in attempts]
    per_node = "; ".join(f"{node} {why}" for node, why in reasons)
    hint = ""
    if any(why.startswith("read-only") for _, why in reasons):
        # The usual cause in a Patroni cluster: a failover under way, or etcd away.
        hint = "; under Patroni: a failover under way, or etcd unreachable (the primary steps down)"
    what = "writable node" if asks_for_writable(url) else "node"
    return f"LDL_DATABASE_URL: no {what} among {describe_target(url)}: {per_node}{hint}"


_ATTEMPT = re.compile(r"- host: '(?P<host>[^']*)', port: '(?P<port>[^']*)'.* failed: (?P<why>.*)$")


def _reason(attempt: str) -> tuple[str, str]:
    """The node and libpq's reason from one attempt's line of psycopg's message."""
    match = _ATTEMPT.match(attempt.strip())
    if match is None:
        return "?", attempt.strip()
    why = " ".join(match["why"].removeprefix("FATAL:").split())
    return f"{match['host']}:{match['port'] or 5432}", (
        "read-only (a standby)" if why == "session is read-only" else why
    )


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
