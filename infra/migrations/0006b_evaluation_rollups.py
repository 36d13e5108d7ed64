"""Usage rollups: continuous aggregates on TimescaleDB, rollup tables on plain PostgreSQL.

Names and columns are listed at the top of 0006_evaluation.sql and are the same on both paths.
The TimescaleDB branch is written from its documentation (CREATE MATERIALIZED VIEW ... WITH
(timescaledb.continuous), add_continuous_aggregate_policy, ALTER TABLE ... SET
(timescaledb.compress), add_compression_policy, add_retention_policy).
"""

from yoyo import step

__depends__ = {"0006_evaluation"}

TIMEZONE = "Europe/Copenhagen"
KEYS = "trial_id, site_id, unit_id, device_id, participant_id"
# (rollup stem, raw table, extra grouping column, count column)
SOURCES = [
    ("usage_readings", "telemetry_readings", "", "readings"),
    ("usage_events", "telemetry_events", ", event_type", "events"),
]
DEFAULT_RETENTION = "730 days"  # the scheduler re-applies settings.telemetry_retention_days


def timescale_enabled(conn) -> bool:
    cursor = conn.cursor()
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return cursor.fetchone() is not None


def create_rollups(conn) -> None:
    cursor = conn.cursor()
    if timescale_enabled(conn):
        _continuous_aggregates(cursor)
    else:
        _rollup_tables(cursor)
    _shared_views(cursor)


def _rollup_tables(cursor) -> None:
    for stem, raw, extra, count in SOURCES:
        for grain in ("hourly", "daily"):
            name = f"{stem}_{grain}"
            extra_col = "event_type text NOT NULL," if extra else ""
            cursor.execute(
                f"""CREATE TABLE {name} (
                    bucket         timestamptz NOT NULL,
                    trial_id       bigint NOT NULL,
                    site_id        bigint NOT NULL,
                    unit_id        bigint,
                    device_id      text NOT NULL,
                    participant_id bigint,
                    {extra_col}
                    {count}        bigint NOT NULL
                )"""
            )
            cursor.execute(f"CREATE INDEX {name}_trial_idx ON {name} (trial_id, bucket)")
            cursor.execute(
                f"CREATE INDEX {name}_participant_idx ON {name} (participant_id)"
                " WHERE participant_id IS NOT NULL"
            )
        # The refresh job finds new rows by arrival time; BRIN is nearly free for an append order.
        cursor.execute(
            f"CREATE INDEX IF NOT EXISTS {raw}_received_brin ON {raw} USING brin (received_at)"
        )


def _continuous_aggregates(cursor) -> None:
    for stem, raw, extra, count in SOURCES:
        for grain, bucket in (
            ("hourly", "time_bucket(INTERVAL '1 hour', ts)"),
            ("daily", f"time_bucket(INTERVAL '1 day', ts, '{TIMEZONE}')"),
        ):
            name = f"{stem}_{grain}"
            # materialized_only = false: the newest, not yet materialised buckets are computed live.
            cursor.execute(
                f"""CREATE MATERIALIZED VIEW {name}
                    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                    SELECT {bucket} AS bucket, {KEYS}{extra}, count(*) AS {count}
                    FROM {raw}
                    GROUP BY {bucket}, {KEYS}{extra}
                    WITH NO DATA"""
            )
            cursor.execute(
                "SELECT add_continuous_aggregate_policy(%s, start_offset => INTERVAL '4 days',"
                " end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes')",
                (name,),
            )
            cursor.execute(f"GRANT SELECT ON {name} TO ldl_app")
        # Raw telemetry: compress week-old chunks per device, drop what is past retention.
        cursor.execute(
            f"ALTER TABLE {raw} SET (timescaledb.compress,"
            " timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts DESC')"
        )
        cursor.execute(
            "SELECT add_compression_policy(%s, compress_after => INTERVAL '7 days')", (raw,)
        )
        cursor.execute(
            f"SELECT add_retention_policy(%s, drop_after => INTERVAL '{DEFAULT_RETENTION}',"
            " if_not_exists => true)",
            (raw,),
        )


def _shared_views(cursor) -> None:
    for grain in ("hourly", "daily"):
        cursor.execute(
            f"""CREATE VIEW usage_{grain} AS
                SELECT bucket, {KEYS}, sum(readings)::bigint AS readings, sum(events)::bigint AS events
                FROM (
                    SELECT bucket, {KEYS}, readings, 0::bigint AS events FROM usage_readings_{grain}
                    UNION ALL
                    SELECT bucket, {KEYS}, 0::bigint, events FROM usage_events_{grain}
                ) both_kinds
                GROUP BY bucket, {KEYS}"""
        )
    cursor.execute(
        """CREATE VIEW activity_occurrences_daily AS
           SELECT e.bucket AS day_start, a.trial_id, a.id AS activity_id, a.name AS activity_name,
                  a.event_type, e.site_id, e.unit_id, e.device_id, e.participant_id,
                  e.events AS occurrences
           FROM usage_events_daily e
           JOIN activities a ON a.trial_id = e.trial_id AND a.event_type = e.event_type"""
    )
    cursor.execute(
        "GRANT SELECT ON usage_hourly, usage_daily, activity_occurrences_daily TO ldl_app"
    )


steps = [step(create_rollups)]
