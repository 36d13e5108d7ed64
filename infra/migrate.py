"""Schema migrations with yoyo-migrations. `apply_migrations` is idempotent."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations

from infra.db import connect, describe_target, on_node
from infra.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The session setting through which the migrations learn the chosen path (0002_timescale.py).
PATH_SETTING = "ldl.timescale"
TimescaleMode = Literal["auto", "on", "off"]
log = logging.getLogger(__name__)


def yoyo_url(url: str) -> str:
    # yoyo picks its driver from the scheme; psycopg 3 is "postgresql+psycopg".
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in {"postgresql", "postgres"} else url


def apply_migrations(url: str, timescale: TimescaleMode = "auto") -> list[str]:
    """Apply what is missing and return the ids applied (empty when already up to date).

    `timescale` is LDL_TIMESCALE: which path a new database takes (see `choose_timescale`).
    """
    with connect(url, as_app=False, autocommit=True) as conn:  # a clear ConfigError first
        use_timescale = choose_timescale(conn, timescale, describe_target(url))
        # yoyo takes one host: the node a multi-host URL reached, the primary (a failover in
        # between fails the migration, which runs again idempotently).
        node_url = on_node(url, conn)
    # yoyo opens a connection per migration: the choice travels in the URL, as a session setting.
    backend = get_backend(
        yoyo_url(_with_setting(node_url, PATH_SETTING, "on" if use_timescale else "off"))
    )
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()  # a lingering session would block CREATE DATABASE ... TEMPLATE
    return [migration.id for migration in pending]


def _with_setting(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    options = " ".join([*(v for k, v in query if k == "options"), f"-c {name}={value}"])
    query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def choose_timescale(conn: psycopg.Connection, mode: TimescaleMode, target: str) -> bool:
    """Whether the migrations build the TimescaleDB path.

    A database that already has the extension stays on it. Otherwise `off` never creates it,
    `on` insists (a ConfigError naming what is missing), and `auto` uses it when it is both
    installed and preloaded: CREATE EXTENSION without the preload crashes mid-migration.
    """
    if timescale_enabled(conn):
        return True
    if mode == "off":
        return False
    installed = (
        conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        is not None
    )
    preloaded = timescale_preloaded(conn)
    if mode == "on" and not installed:
        raise ConfigError(f"LDL_TIMESCALE=on: TimescaleDB is not installed on {target}")
    if installed and not preloaded:
        advice = (
            "add timescaledb to shared_preload_libraries in postgresql.conf and restart PostgreSQL"
        )
        if mode == "on":
            raise ConfigError(
                f"LDL_TIMESCALE=on: TimescaleDB is not preloaded on {target}: {advice}"
            )
        log.warning(
            "TimescaleDB is installed on %s but not preloaded; migrating for plain PostgreSQL"
            " (to use it, %s)",
            target,
            advice,
        )
    return installed and preloaded


def timescale_preloaded(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    libraries = str(row[0]) if row else ""
    return "timescaledb" in {name.strip().strip('"') for name in libraries.split(",")}


def timescale_enabled(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None
