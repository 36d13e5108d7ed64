"""All SQL of the trial-level hourly usage rollup (infra/migrations/0008_usage_trial_hourly.sql).

Recomputed for (trial, hour) pairs: those the device-level rollups just redid, those a consent
change queued, and, at once in the erase transaction, those an erased participant had data in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

SLICE = 168  # (trial, hour) pairs per statement: a week of hours
PAIRS = "(SELECT * FROM unnest(%(trials)s::bigint[], %(buckets)s::timestamptz[]) AS a(trial_id, bucket))"
# The one rule for what a company key may count of an hourly rollup row `u`: room devices, and a
# participant's data only for hours their company_dashboards consent covered whole. The rollups
# keep no time finer than the hour, so an hour in which that consent began or ended is left out
# (never shown too much); the Grafana views (0007_grafana.sql) and time saved's
# time_saved_occurrences (0014) apply the same rule.
COMPANY_VISIBLE = (
    "(u.participant_id IS NULL OR coalesce((SELECT range_agg(c.valid_during) FROM consents c"
    " WHERE c.participant_id = u.participant_id AND 'company_dashboards' = ANY(c.scopes))"
    " @> tstzrange(u.bucket, u.bucket + interval '1 hour', '[)'), false))"
)
AUDIENCES = (
    " CROSS JOIN (VALUES ('all'), ('company')) AS aud(audience)"
    f" WHERE aud.audience = 'all' OR {COMPANY_VISIBLE}"
)

Pair = tuple[int, datetime]


def recompute(conn: psycopg.Connection, pairs: Sequence[Pair]) -> None:
    ordered = sorted(set(pairs))
    for first in range(0, len(ordered), SLICE):
        _recompute_slice(conn, ordered[first : first + SLICE])


def _recompute_slice(conn: psycopg.Connection, pairs: Sequence[Pair]) -> None:
    params = {"trials": [p[0] for p in pairs], "buckets": [p[1] for p in pairs]}
    for table in ("usage_trial_hourly", "usage_trial_events_hourly"):
        conn.execute(
            f"DELETE FROM {table} r USING {PAIRS} a"
            " WHERE r.trial_id = a.trial_id AND r.bucket = a.bucket",
            params,
        )
    conn.execute(
        "INSERT INTO usage_trial_hourly (bucket, trial_id, audience, readings, events,"
        " active_devices, active_participants)"
        " SELECT u.bucket, u.trial_id, aud.audience, sum(u.readings), sum(u.events),"
        " count(DISTINCT u.device_id), count(DISTINCT u.participant_id)"
        f" FROM usage_hourly u JOIN {PAIRS} a ON u.trial_id = a.trial_id AND u.bucket = a.bucket"
        f"{AUDIENCES} GROUP BY 1, 2, 3",
        params,
    )
    conn.execute(
        "INSERT INTO usage_trial_events_hourly (bucket, trial_id, audience, event_type, events)"
        " SELECT u.bucket, u.trial_id, aud.audience, u.event_type, sum(u.events)"
        f" FROM usage_events_hourly u JOIN {PAIRS} a"
        f" ON u.trial_id = a.trial_id AND u.bucket = a.bucket{AUDIENCES} GROUP BY 1, 2, 3, 4",
        params,
    )


def participant_pairs(
    conn: psycopg.Connection, participant_id: int, since: datetime | None = None
) -> list[Pair]:
    """The (trial, hour) pairs a participant has data in, from `since`'s hour on if given (read
    from the rollups, which still hold them when their raw rows are already erased)."""
    rows = conn.execute(
        "SELECT trial_id, bucket FROM usage_readings_hourly WHERE participant_id = %(p)s"
        "   AND (%(since)s::timestamptz IS NULL OR bucket >= date_trunc('hour', %(since)s))"
        " UNION SELECT trial_id, bucket FROM usage_events_hourly WHERE participant_id = %(p)s"
        "   AND (%(since)s::timestamptz IS NULL OR bucket >= date_trunc('hour', %(since)s))",
        {"p": participant_id, "since": since},
    ).fetchall()
    return [(int(t), b) for t, b in rows]


def take_queued_pairs(conn: psycopg.Connection) -> list[Pair]:
    """Empty the consent-change queue into the (trial, hour) pairs it asks to be redone."""
    rows = conn.execute(
        "WITH taken AS (DELETE FROM usage_trial_refresh_queue RETURNING trial_id, from_ts),"
        " since AS (SELECT trial_id, min(from_ts) AS from_ts FROM taken GROUP BY trial_id)"
        " SELECT u.trial_id, u.bucket FROM usage_trial_hourly u JOIN since s"
        "   ON u.trial_id = s.trial_id AND u.bucket >= date_trunc('hour', s.from_ts)"
        " UNION SELECT r.trial_id, r.bucket FROM usage_readings_hourly r JOIN since s"
        "   ON r.trial_id = s.trial_id AND r.bucket >= date_trunc('hour', s.from_ts)"
        " UNION SELECT e.trial_id, e.bucket FROM usage_events_hourly e JOIN since s"
        "   ON e.trial_id = s.trial_id AND e.bucket >= date_trunc('hour', s.from_ts)"
    ).fetchall()
    return [(int(t), b) for t, b in rows]
