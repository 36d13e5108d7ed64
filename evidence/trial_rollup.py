"""All SQL of the trial-level hourly usage rollup (infra/migrations/0008_usage_trial_hourly.sql).

Recomputed for (trial, hour) pairs: those the device-level rollups just redid and, at once in the
erase transaction, those an erased participant had data in. One audience: a trial's figures are
the same for every reader (0018), so a consent change that erases nothing changes no row here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

SLICE = 168  # (trial, hour) pairs per statement: a week of hours
PAIRS = "(SELECT * FROM unnest(%(trials)s::bigint[], %(buckets)s::timestamptz[]) AS a(trial_id, bucket))"
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
        "INSERT INTO usage_trial_hourly (bucket, trial_id, readings, events,"
        " active_devices, active_participants)"
        " SELECT u.bucket, u.trial_id, sum(u.readings), sum(u.events),"
        " count(DISTINCT u.device_id), count(DISTINCT u.participant_id)"
        f" FROM usage_hourly u JOIN {PAIRS} a ON u.trial_id = a.trial_id AND u.bucket = a.bucket"
        " GROUP BY 1, 2",
        params,
    )
    conn.execute(
        "INSERT INTO usage_trial_events_hourly (bucket, trial_id, event_type, events)"
        " SELECT u.bucket, u.trial_id, u.event_type, sum(u.events)"
        f" FROM usage_events_hourly u JOIN {PAIRS} a"
        " ON u.trial_id = a.trial_id AND u.bucket = a.bucket GROUP BY 1, 2, 3",
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
