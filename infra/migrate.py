"""Schema migrations with yoyo-migrations. `apply_migrations` is idempotent."""

from __future__ import annotations

from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

from infra.db import connect

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def yoyo_url(url: str) -> str:
    # yoyo picks its driver from the scheme; psycopg 3 is "postgresql+psycopg".
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in {"postgresql", "postgres"} else url


def apply_migrations(url: str) -> list[str]:
    """Apply what is missing and return the ids applied (empty when already up to date)."""
    connect(url, as_app=False).close()  # a clear ConfigError before yoyo's own traceback
    backend = get_backend(yoyo_url(url))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()  # a lingering session would block CREATE DATABASE ... TEMPLATE
    return [migration.id for migration in pending]


def timescale_enabled(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None
