"""TimescaleDB path: late data found by arrival time, erase in the same transaction, Grafana roles
that can run a query. A no-op on plain PostgreSQL.

- The rollup refresh finds new rows by `received_at` on both paths (trials/evaluation_repository.py):
  a BRIN index on uncompressed chunks (as 0006b gives plain tables) and, where the release has
  the option, a min/max sparse index on compressed ones, so a week-late reading in a compressed
  chunk is found without decompressing the rest.
- An erase deletes the participant's rows from the continuous aggregates' materialisation
  hypertables: the app role needs DELETE there.
- `ldl grafana sync` used to revoke USAGE on `_timescaledb_internal` from PUBLIC, which broke
  every query of a Grafana role; chunks carry their hypertable's grants, so it is given back.
Written from TimescaleDB's documentation (ALTER TABLE ... SET (timescaledb.sparse_index),
timescaledb_information.continuous_aggregates).
"""

import psycopg
from yoyo import step

__depends__ = {"0011_device_sequence_restarts"}

RAW_TABLES = ("telemetry_readings", "telemetry_events")


def timescale_enabled(conn) -> bool:
    cursor = conn.cursor()
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return cursor.fetchone() is not None


def timescale_late_data(conn) -> None:
    if not timescale_enabled(conn):
        return
    cursor = conn.cursor()
    for raw in RAW_TABLES:
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {raw}_received_brin ON {raw} USING brin (received_at)"
        )
        # TimescaleDB releases before this option fall back to their automatic sparse indexes.
        cursor.execute("SAVEPOINT sparse_index")
        try:
            cursor.execute(
                f"ALTER TABLE {raw} SET (timescaledb.sparse_index = 'minmax(received_at)')"
            )
        except psycopg.Error:
            cursor.execute("ROLLBACK TO SAVEPOINT sparse_index")
    cursor.execute(
        "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)"
        " FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public'"
    )
    for (table,) in cursor.fetchall():
        cursor.execute(f"GRANT SELECT, DELETE ON {table} TO ldl_app")
    cursor.execute("GRANT USAGE ON SCHEMA _timescaledb_internal TO PUBLIC")


steps = [step(timescale_late_data)]
