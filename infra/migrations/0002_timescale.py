"""Make the telemetry tables hypertables where TimescaleDB is available; a no-op otherwise.

Written from TimescaleDB's documentation (create_hypertable with by_range, 2.13+). Table and column
names stay the same either way, so nothing above the database knows which path it runs on.
"""

from yoyo import step

__depends__ = {"0001_schema"}

HYPERTABLES = {"telemetry_readings": "7 days", "telemetry_events": "7 days"}


def timescale_chosen(conn) -> bool:
    """The path infra.migrate.apply_migrations chose (LDL_TIMESCALE), passed as a session
    setting; run by yoyo alone, TimescaleDB when it is installed and preloaded."""
    cursor = conn.cursor()
    cursor.execute("SELECT current_setting('ldl.timescale', true)")
    chosen = cursor.fetchone()[0]
    if chosen in ("on", "off"):
        return chosen == "on"
    cursor.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        " AND 'timescaledb' = ANY(string_to_array(replace("
        "current_setting('shared_preload_libraries'), ' ', ''), ','))"
    )
    return cursor.fetchone() is not None


def make_hypertables(conn) -> None:
    if not timescale_chosen(conn):
        return
    cursor = conn.cursor()
    cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    for table, chunk in HYPERTABLES.items():
        # migrate_data: the tables may already hold rows when the extension arrives later.
        cursor.execute(
            f"SELECT create_hypertable('{table}', by_range('ts', INTERVAL '{chunk}'),"
            " if_not_exists => true, migrate_data => true)"
        )


steps = [step(make_hypertables)]
