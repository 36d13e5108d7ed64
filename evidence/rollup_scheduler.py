"""The job that keeps usage rollups fresh and raw telemetry within its retention.

Run inside `ldl ingest` / `ldl demo`: `threading.Thread(target=run_rollup_scheduler,
args=(settings, stop_event), name="ldl-rollups")`. Both paths redo exactly the hours that received
rows since the last run (late data included); on TimescaleDB retention is the database's own
policy, which this loop keeps at LDL_TELEMETRY_RETENTION_DAYS.
"""

from __future__ import annotations

import logging
import threading
import time

from evidence.repository import apply_retention, refresh_rollups
from infra.db import connect
from infra.migrate import timescale_enabled
from infra.settings import Settings

log = logging.getLogger(__name__)
RETENTION_EVERY_S = 3600.0


def run_maintenance_once(database_url: str, retention_days: int, *, retention: bool) -> None:
    # Timescale's refresh_continuous_aggregate must run outside a transaction block; the rollup
    # tables of plain PostgreSQL are refreshed in one transaction.
    with connect(database_url, autocommit=True) as probe:
        timescale = timescale_enabled(probe)
    if timescale:
        # The policies belong to the schema owner: act as the connecting user, not the app role.
        with connect(database_url, as_app=False, autocommit=True) as conn:
            refresh_rollups(conn)
            if retention:
                apply_retention(conn, retention_days)
        return
    with connect(database_url) as conn:  # commits on leaving the block
        refresh_rollups(conn)
    if retention:
        with connect(database_url) as conn:  # commits on leaving the block
            deleted = apply_retention(conn, retention_days)
        if deleted:
            log.info(
                "retention: deleted %d telemetry rows older than %d days", deleted, retention_days
            )


def run_rollup_scheduler(
    settings: Settings, stop_event: threading.Event, interval_s: float = 60.0
) -> None:
    """Refresh every `interval_s`, apply retention hourly, until `stop_event` is set."""
    url = settings.require_database_url()
    last_retention = float("-inf")
    while not stop_event.is_set():
        due = time.monotonic() - last_retention >= RETENTION_EVERY_S
        try:
            run_maintenance_once(url, settings.telemetry_retention_days, retention=due)
            if due:
                last_retention = time.monotonic()
        except Exception:  # the loop outlives a database outage; the next run catches up
            log.exception("rollup maintenance failed; retrying in %.0f s", interval_s)
        stop_event.wait(interval_s)
