"""TimescaleDB path: the continuous aggregates are refreshed by `ldl ingest` only. A no-op on plain.

TimescaleDB's own refresh jobs (0006b: the last four days, every five minutes) take no lock an
erase knows of: a job that read the raw rows before an erase committed would write the erased
participant back into the aggregates after it. The worker's refresh (trials/evaluation_repository
`refresh_rollups`) does what the jobs did and more — exactly the hours that received rows, late
data of any age — under the advisory lock the erase takes, so the two serialise. Compression and
retention jobs stay. Written from TimescaleDB's policy_api.sql (remove_continuous_aggregate_policy).
"""

from yoyo import step

__depends__ = {"0012_timescale_late_data"}


def remove_refresh_jobs(conn) -> None:
    cursor = conn.cursor()
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if cursor.fetchone() is None:
        return
    cursor.execute(
        "SELECT format('%I.%I', view_schema, view_name)"
        " FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public'"
    )
    for (view,) in cursor.fetchall():
        cursor.execute(
            "SELECT remove_continuous_aggregate_policy(%s::regclass, if_exists => true)", (view,)
        )


steps = [step(remove_refresh_jobs)]
