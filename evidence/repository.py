"""All SQL of the evaluation: rollup upkeep, usage, time-saved inputs, costs, coverage, exports.

Rollups (names and columns: infra/migrations/0006_evaluation.sql) are continuous aggregates on
TimescaleDB and tables on plain PostgreSQL; `refresh_rollups` keeps both fresh the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row
from pydantic import BaseModel

from evidence import trial_rollup
from infra.migrate import timescale_enabled

ROLLUP_TIMEZONE = "Europe/Copenhagen"
ROLLUP_LOCK = 6_000_006  # serialises refresh and purge, so an erase cannot race a refresh
# Rows are found by arrival time; this overlap covers transactions that committed late.
ARRIVAL_OVERLAP = "10 minutes"
Granularity = Literal["hour", "day"]
Level = Literal["trial", "site", "unit", "device"]
GRAIN = {"hour": "hourly", "day": "daily"}
# (rollup stem, raw table, extra grouping column or None, count column)
ROLLUPS = (
    ("usage_readings", "telemetry_readings", None, "readings"),
    ("usage_events", "telemetry_events", "event_type", "events"),
)
KEY_COLUMNS = ("trial_id", "site_id", "unit_id", "device_id", "participant_id")


# ------------------------------------------------------------------------ rollup upkeep
def _columns(extra: str | None) -> sql.Composable:
    names = [*KEY_COLUMNS, *([extra] if extra else [])]
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


def _affected_hours(conn: psycopg.Connection, raw: str, since: datetime | None) -> list[Any]:
    query = sql.SQL(
        "SELECT DISTINCT trial_id, date_trunc('hour', ts) FROM {raw}"
        " WHERE %(since)s::timestamptz IS NULL"
        "    OR received_at > %(since)s::timestamptz - {overlap}::interval"
    ).format(raw=sql.Identifier(raw), overlap=sql.Literal(ARRIVAL_OVERLAP))
    return conn.execute(query, {"since": since}).fetchall()


RECOMPUTE_SLICE = 24  # (trial, bucket) pairs per statement: a day of hours at a time


def _recompute(
    conn: psycopg.Connection,
    source: str,
    target: str,
    extra: str | None,
    count: str,
    width: str,
    pairs: list[Any],
) -> None:
    """Replace `target`'s rows for the (trial, bucket) pairs with a fresh aggregate of `source`.

    In slices, so that a large catch-up (a first refresh over months of data, or after an
    outage) aggregates a day at a time in memory instead of sorting everything on disk at once.
    """
    for first in range(0, len(pairs), RECOMPUTE_SLICE):
        _recompute_slice(
            conn, source, target, extra, count, width, pairs[first : first + RECOMPUTE_SLICE]
        )


def _recompute_slice(
    conn: psycopg.Connection,
    source: str,
    target: str,
    extra: str | None,
    count: str,
    width: str,
    pairs: list[Any],
) -> None:
    params = {
        "trials": [p[0] for p in pairs],
        "buckets": [p[1] for p in pairs],
        "tz": ROLLUP_TIMEZONE,
    }
    affected = sql.SQL(
        "(SELECT * FROM unnest(%(trials)s::bigint[], %(buckets)s::timestamptz[]) AS a(trial_id, bucket))"
    )
    conn.execute(
        sql.SQL(
            "DELETE FROM {t} r USING {a} a WHERE r.trial_id = a.trial_id AND r.bucket = a.bucket"
        ).format(t=sql.Identifier(target), a=affected),
        params,
    )
    columns = _columns(extra)
    from_raw = width == "hour"
    bucket = (
        sql.SQL("date_trunc('hour', s.ts)")
        if from_raw
        else sql.SQL("date_trunc('day', s.bucket, %(tz)s)")
    )
    time_col = sql.SQL("s.ts" if from_raw else "s.bucket")
    # The end of a local day is computed in local time: a DST day has 23 or 25 hours.
    bucket_end = (
        sql.SQL("a.bucket + interval '1 hour'")
        if from_raw
        else sql.SQL("((a.bucket AT TIME ZONE %(tz)s) + interval '1 day') AT TIME ZONE %(tz)s")
    )
    total = sql.SQL("count(*)" if from_raw else f"sum(s.{count})")
    conn.execute(
        sql.SQL(
            "INSERT INTO {t} (bucket, {cols}, {count})"
            " SELECT {bucket}, {scols}, {total} FROM {s} s JOIN {a} a"
            "   ON s.trial_id = a.trial_id AND {time} >= a.bucket AND {time} < {end}"
            " GROUP BY {bucket}, {scols}"
        ).format(
            t=sql.Identifier(target),
            cols=columns,
            count=sql.Identifier(count),
            bucket=bucket,
            scols=sql.SQL(", ").join(
                sql.Identifier("s", n) for n in [*KEY_COLUMNS, *([extra] if extra else [])]
            ),
            total=total,
            s=sql.Identifier(source),
            a=affected,
            time=time_col,
            end=bucket_end,
        ),
        params,
    )


def refresh_rollups(conn: psycopg.Connection) -> int:
    """Bring the rollups up to date with the telemetry; returns how many hour buckets were redone.

    Both paths find the (trial, hour) pairs that received rows since the last run by arrival
    time (late data of any age included) and redo exactly those hours, then the local days
    containing them, then the trial-level rollup. Plain PostgreSQL recomputes the rollup tables
    in the caller's transaction; TimescaleDB refreshes the continuous aggregates over those
    windows, and `conn` must then be in autocommit mode (refresh_continuous_aggregate cannot run
    inside a transaction block).
    """
    if timescale_enabled(conn):
        return _refresh_continuous_aggregates(conn)
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK,))
    # Enough memory to hash-aggregate a slice (tens of thousands of groups) without spilling.
    conn.execute("SET LOCAL work_mem = '64MB'")
    since = _watermark(conn)
    redone = 0
    trial_hours: list[Any] = []
    for stem, raw, extra, count in ROLLUPS:
        hours = _affected_hours(conn, raw, since)
        redone += len(hours)
        trial_hours += hours
        _recompute_hours_and_days(conn, stem, raw, extra, count, hours)
    trial_rollup.recompute(conn, trial_hours)
    _set_watermark(conn, None)
    return redone


def _recompute_hours_and_days(
    conn: psycopg.Connection, stem: str, raw: str, extra: str | None, count: str, hours: list[Any]
) -> None:
    """Plain PostgreSQL: redo the (trial, hour) pairs from raw, then the local days holding them."""
    _recompute(conn, raw, f"{stem}_hourly", extra, count, "hour", hours)
    days = conn.execute(
        "SELECT DISTINCT t, date_trunc('day', b, %(tz)s)"
        " FROM unnest(%(trials)s::bigint[], %(buckets)s::timestamptz[]) AS a(t, b)",
        {"trials": [h[0] for h in hours], "buckets": [h[1] for h in hours], "tz": ROLLUP_TIMEZONE},
    ).fetchall()
    _recompute(conn, f"{stem}_hourly", f"{stem}_daily", extra, count, "day", days)


def _watermark(conn: psycopg.Connection) -> datetime | None:
    row = conn.execute(
        "SELECT received_until FROM rollup_watermarks WHERE name = 'usage' FOR UPDATE"
    ).fetchone()
    return row[0] if row else None


def _set_watermark(conn: psycopg.Connection, until: datetime | None) -> None:
    conn.execute(
        "INSERT INTO rollup_watermarks (name, received_until)"
        " VALUES ('usage', coalesce(%s::timestamptz, now()))"
        " ON CONFLICT (name) DO UPDATE SET received_until = excluded.received_until",
        (until,),
    )


def _rollup_names() -> list[str]:
    return [f"{stem}_{grain}" for stem, *_ in ROLLUPS for grain in ("hourly", "daily")]


def _refresh_continuous_aggregates(conn: psycopg.Connection) -> int:
    # A session lock, held across the refresh calls (each its own transaction): an erase waits
    # for the whole refresh, and a refresh for the erase.
    conn.execute("SELECT pg_advisory_lock(%s)", (ROLLUP_LOCK,))
    try:
        started = conn.execute("SELECT now()").fetchone()
        assert started is not None
        since = _watermark(conn)
        trial_hours: list[Any] = []
        for stem, raw, *_ in ROLLUPS:
            hours = _affected_hours(conn, raw, since)
            trial_hours += hours
            for start, end in _windows(conn, [h[1] for h in hours], "hour"):
                _refresh_window(conn, f"{stem}_hourly", start, end)
            for start, end in _windows(conn, [h[1] for h in hours], "day"):
                _refresh_window(conn, f"{stem}_daily", start, end)
        _refresh_requested_windows(
            conn
        )  # the first bucket of a withdrawal (purge_participant_rollups)
        with conn.transaction():
            trial_rollup.recompute(conn, trial_hours)
            _set_watermark(conn, started[0])
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (ROLLUP_LOCK,))
    return len(trial_hours)


def _windows(
    conn: psycopg.Connection, hours: list[datetime], width: Granularity
) -> list[tuple[datetime, datetime]]:
    """The hours (or the local days holding them) as few contiguous [start, end) windows."""
    rows = conn.execute(
        "SELECT b, CASE WHEN %(width)s = 'hour' THEN b + interval '1 hour'"
        "   ELSE ((b AT TIME ZONE %(tz)s) + interval '1 day') AT TIME ZONE %(tz)s END"
        " FROM (SELECT DISTINCT date_trunc(%(width)s, h, %(tz)s) AS b"
        "       FROM unnest(%(hours)s::timestamptz[]) AS h) AS buckets ORDER BY b",
        {"width": width, "tz": ROLLUP_TIMEZONE, "hours": hours},
    ).fetchall()
    windows: list[tuple[datetime, datetime]] = []
    for start, end in rows:
        if windows and windows[-1][1] == start:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _refresh_window(conn: psycopg.Connection, view: str, start: datetime, end: datetime) -> None:
    conn.execute(
        "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
        (view, start, end),
    )


def _refresh_requested_windows(conn: psycopg.Connection) -> None:
    windows = conn.execute(
        "SELECT id, window_start, window_end FROM rollup_refresh_requests ORDER BY id"
    ).fetchall()
    for _, start, end in windows:
        for view in _rollup_names():
            _refresh_window(conn, view, start, end)
    if windows:
        conn.execute(
            "DELETE FROM rollup_refresh_requests WHERE id = ANY(%s)", ([w[0] for w in windows],)
        )


def _rollup_storage(conn: psycopg.Connection) -> list[tuple[Granularity, sql.Composable]]:
    """Where the rollups' rows are stored, with their grain: the rollup tables of plain
    PostgreSQL, or the materialisation hypertables behind TimescaleDB's continuous aggregates."""
    grain_of: dict[str, Granularity] = {
        f"{stem}_{GRAIN[width]}": width for stem, *_ in ROLLUPS for width in ("hour", "day")
    }
    if not timescale_enabled(conn):
        return [(grain, sql.Identifier(name)) for name, grain in grain_of.items()]
    rows = conn.execute(
        "SELECT view_name, materialization_hypertable_schema, materialization_hypertable_name"
        " FROM timescaledb_information.continuous_aggregates"
        " WHERE view_schema = current_schema() AND view_name = ANY(%s) ORDER BY view_name",
        (list(grain_of),),
    ).fetchall()
    return [(grain_of[view], sql.Identifier(schema, name)) for view, schema, name in rows]


# Everything stored about a participant that an erase must remove; the rollups derived from it
# go with it (purge_participant_rollups), so one erase reaches all of it.
PARTICIPANT_DATA_TABLES: tuple[str, ...] = ("telemetry_readings", "telemetry_events")


def erase_participant_data(
    conn: psycopg.Connection, participant_id: int, since: datetime | None = None
) -> dict[str, int]:
    """Delete the participant's rows (those at or after `since`, if given); rows per table."""
    erased: dict[str, int] = {}
    for table in PARTICIPANT_DATA_TABLES:
        cursor = conn.execute(
            sql.SQL(
                "DELETE FROM {} WHERE participant_id = %(p)s"
                " AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s)"
            ).format(sql.Identifier(table)),
            {"p": participant_id, "since": since},
        )
        erased[table] = cursor.rowcount
    return erased


def purge_participant_rollups(
    conn: psycopg.Connection, participant_id: int, since: datetime | None = None
) -> None:
    """Remove a participant from the rollups, in the caller's (erase or withdrawal) transaction.

    Without `since` (an erase) all their rows go; with it (a withdrawal that keeps what came
    before) the buckets from `since` on. The grain includes participant_id, so nobody else's
    counts change. Plain PostgreSQL recomputes those hours and days from the raw rows the caller
    has already deleted. On TimescaleDB the rows are deleted from the continuous aggregates'
    materialisation hypertables (the aggregates cannot be edited, and refresh_continuous_aggregate
    cannot run in a transaction); the part not yet materialised is computed from the deleted raw
    rows' remainder. The bucket holding `since` also held the participant's earlier readings:
    until the worker's next refresh (queued here) it undercounts them rather than show a reading
    taken after the withdrawal.
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLLUP_LOCK,))
    touched = trial_rollup.participant_pairs(conn, participant_id, since)
    if since is not None and not timescale_enabled(conn):
        for stem, raw, extra, count in ROLLUPS:
            _recompute_hours_and_days(conn, stem, raw, extra, count, touched)
    else:
        for grain, table in _rollup_storage(conn):
            conn.execute(
                sql.SQL(
                    "DELETE FROM {} WHERE participant_id = %(p)s AND (%(since)s::timestamptz IS NULL"
                    " OR bucket >= date_trunc(%(grain)s, %(since)s::timestamptz, %(tz)s))"
                ).format(table),
                {"p": participant_id, "since": since, "grain": grain, "tz": ROLLUP_TIMEZONE},
            )
        if since is not None:
            # The first bucket's earlier readings were deleted with it: a no-op update marks
            # them changed for TimescaleDB, and the request has the worker's refresh redo them.
            for _, raw, *_ in ROLLUPS:
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET participant_id = participant_id WHERE participant_id = %(p)s"
                        " AND ts >= date_trunc('day', %(since)s::timestamptz, %(tz)s)"
                        " AND ts < %(since)s"
                    ).format(sql.Identifier(raw)),
                    {"p": participant_id, "since": since, "tz": ROLLUP_TIMEZONE},
                )
            conn.execute(
                "INSERT INTO rollup_refresh_requests (window_start, window_end, reason)"
                " SELECT day, ((day AT TIME ZONE %(tz)s) + interval '1 day') AT TIME ZONE %(tz)s,"
                "   'withdrawal: the participant''s readings before it, in its first bucket'"
                " FROM (SELECT date_trunc('day', %(since)s::timestamptz, %(tz)s) AS day) AS d",
                {"since": since, "tz": ROLLUP_TIMEZONE},
            )
    trial_rollup.recompute(conn, touched)  # no count derived from the deleted rows survives


def apply_retention(conn: psycopg.Connection, retention_days: int) -> int:
    """Raw telemetry older than the retention goes; rollups stay (they hold no raw values).

    Plain PostgreSQL: DELETE, returns the rows deleted. TimescaleDB: (re)sets the retention policy
    on both hypertables to this many days, returns 0.
    """
    tables = [raw for _, raw, *_ in ROLLUPS]
    if timescale_enabled(conn):
        for table in tables:
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table,))
            conn.execute(
                "SELECT add_retention_policy(%s, drop_after => make_interval(days => %s))",
                (table, retention_days),
            )
        return 0
    deleted = 0
    for table in tables:
        cursor = conn.execute(
            sql.SQL("DELETE FROM {} WHERE ts < now() - make_interval(days => %s)").format(
                sql.Identifier(table)
            ),
            (retention_days,),
        )
        deleted += cursor.rowcount
    return deleted


# --------------------------------------------------------------------------- trial facts
class TrialFacts(BaseModel):
    id: int
    company_id: int
    company_name: str
    title: str
    product: str
    need: str
    collaboration_form: str
    status: str
    baseline_from: datetime | None
    baseline_until: datetime | None
    trial_from: datetime | None
    trial_until: datetime | None
    success_criteria: str
    staff_hourly_cost: Decimal | None
    currency: str
    decision: str | None
    decision_rationale: str | None
    decided_at: datetime | None
    sites: list[str]
    now: datetime
    # The period whose device events count as time saved (0014's trial_intervention_periods):
    # None before the trial starts.
    period_from: datetime | None
    period_until: datetime | None


TRIAL_FACTS = """
SELECT t.id, t.company_id, c.name AS company_name, t.title, t.product, t.need,
       t.collaboration_form, t.status, t.baseline_from, t.baseline_until, t.trial_from,
       t.trial_until, t.success_criteria, t.staff_hourly_cost, t.currency, t.decision,
       t.decision_rationale, t.decided_at,
       coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM trial_sites ts
                 JOIN sites s ON s.id = ts.site_id WHERE ts.trial_id = t.id), '{}') AS sites,
       now() AS now, p.period_from, p.period_until
FROM trials t JOIN companies c ON c.id = t.company_id
LEFT JOIN trial_intervention_periods p ON p.trial_id = t.id
"""


def trial_facts(conn: psycopg.Connection, trial_id: int) -> TrialFacts | None:
    with conn.cursor(row_factory=class_row(TrialFacts)) as cur:
        return cur.execute(TRIAL_FACTS + " WHERE t.id = %s", (trial_id,)).fetchone()


def all_trial_facts(conn: psycopg.Connection) -> list[TrialFacts]:
    with conn.cursor(row_factory=class_row(TrialFacts)) as cur:
        return cur.execute(TRIAL_FACTS + " ORDER BY t.id").fetchall()


# ------------------------------------------------------------------------------- usage
class UsageRow(BaseModel):
    bucket: datetime
    group_id: str | None
    readings: int
    events: int
    active_devices: int
    active_participants: int


class EventTypeRow(BaseModel):
    bucket: datetime
    group_id: str | None
    event_type: str
    events: int


LEVEL_COLUMN = {"trial": None, "site": "site_id", "unit": "unit_id", "device": "device_id"}
# Below the trial, a company sees a participant's data only for buckets that participant's
# company_dashboards consent covered whole: the one rule, company_may_see (0018). A bucket's end
# is computed in local time, so a day is the Copenhagen day (23 or 25 hours at the clock change).
DASHBOARD_CONSENT_JOIN = sql.SQL(
    " LEFT JOIN company_dashboard_consent k ON k.participant_id = u.participant_id"
)
DASHBOARD_CONSENT = sql.SQL(
    " AND company_may_see(u.participant_id, k.covered, u.bucket,"
    " ((u.bucket AT TIME ZONE %(tz)s) + ('1 ' || %(unit)s)::interval) AT TIME ZONE %(tz)s)"
)


Query = sql.SQL | sql.Composed


class _CountedUsageRow(UsageRow):
    total: int  # rows over the whole period (a window count), so one query pages and counts


@dataclass(frozen=True)
class UsageSlice:
    rows: list[UsageRow]  # the page, ordered by bucket then group
    by_type: list[EventTypeRow]  # events by type for the page's buckets (possibly more groups)
    total: int  # rows over the whole period


def usage(
    conn: psycopg.Connection,
    trial_id: int,
    granularity: Granularity,
    start: datetime,
    end: datetime,
    level: Level,
    *,
    for_company: bool,
    limit: int | None = None,
    offset: int = 0,
) -> UsageSlice:
    """One page of usage (all of it without `limit`); only the page is built in Python.

    The trial level is the same for every reader; below it, a company's breakdown counts a
    participant's data only under the company rule."""
    if level == "trial" and granularity == "hour":
        rows, by_type = _trial_hourly_usage_sql()
    else:
        rows, by_type = _device_rollup_usage_sql(granularity, level, for_company)
    params = _usage_params(trial_id, granularity, start, end)
    return _usage_page(conn, rows, by_type, params, limit, offset)


def device_rollup_usage(
    conn: psycopg.Connection,
    trial_id: int,
    granularity: Granularity,
    start: datetime,
    end: datetime,
    level: Level,
    *,
    for_company: bool,
) -> UsageSlice:
    """All usage aggregated at request time from the device/participant-level rollups (what the
    trial-level hourly rollup must equal)."""
    rows, by_type = _device_rollup_usage_sql(granularity, level, for_company)
    params = _usage_params(trial_id, granularity, start, end)
    return _usage_page(conn, rows, by_type, params, None, 0)


def _usage_params(
    trial_id: int, granularity: Granularity, start: datetime, end: datetime
) -> dict[str, Any]:
    return {
        "trial": trial_id,
        "start": start,
        "end": end,
        "unit": granularity,
        "tz": ROLLUP_TIMEZONE,
    }


# The page's event types: only the buckets the page spans (%(first)s … %(last)s).
PAGE_BUCKETS = " AND u.bucket >= %(first)s AND u.bucket <= %(last)s"


def _trial_hourly_usage_sql() -> tuple[Query, Query]:
    """The same answer as the device rollups at level "trial" by hour, kept ready per trial."""
    where = (
        " WHERE u.trial_id = %(trial)s"
        " AND u.bucket >= date_trunc('hour', %(start)s, %(tz)s) AND u.bucket < %(end)s"
    )
    rows = sql.SQL(
        "SELECT u.bucket, NULL::text AS group_id, u.readings, u.events, u.active_devices,"
        " u.active_participants, count(*) OVER () AS total"
        f" FROM usage_trial_hourly u{where}"
        " ORDER BY u.bucket LIMIT %(limit)s OFFSET %(offset)s"
    )
    by_type = sql.SQL(
        "SELECT u.bucket, NULL::text AS group_id, u.event_type, u.events"
        f" FROM usage_trial_events_hourly u{where}{PAGE_BUCKETS} ORDER BY u.bucket, u.event_type"
    )
    return rows, by_type


def _device_rollup_usage_sql(
    granularity: Granularity, level: Level, for_company: bool
) -> tuple[Query, Query]:
    column = LEVEL_COLUMN[level]
    group = sql.SQL("u.{}::text").format(sql.Identifier(column)) if column else sql.SQL("NULL")
    breakdown = for_company and column is not None
    join = DASHBOARD_CONSENT_JOIN if breakdown else sql.SQL("")
    consent = DASHBOARD_CONSENT if breakdown else sql.SQL("")
    # The bucket holding `start` counts: a day asked for from 00:00 UTC starts at local midnight.
    where = sql.SQL(
        "WHERE u.trial_id = %(trial)s AND u.bucket >= date_trunc(%(unit)s, %(start)s, %(tz)s)"
        " AND u.bucket < %(end)s"
    )
    grain = GRAIN[granularity]
    rows = sql.SQL(
        "SELECT u.bucket, {g} AS group_id, sum(u.readings)::bigint AS readings,"
        " sum(u.events)::bigint AS events,"
        " count(DISTINCT u.device_id) AS active_devices,"
        " count(DISTINCT u.participant_id) AS active_participants, count(*) OVER () AS total"
        " FROM {view} u{join} {where}{consent} GROUP BY 1, 2 ORDER BY 1, 2"
        " LIMIT %(limit)s OFFSET %(offset)s"
    ).format(
        g=group, view=sql.Identifier(f"usage_{grain}"), join=join, where=where, consent=consent
    )
    by_type = sql.SQL(
        "SELECT u.bucket, {g} AS group_id, u.event_type, sum(u.events)::bigint AS events"
        " FROM {view} u{join} {where}{page}{consent} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).format(
        g=group,
        view=sql.Identifier(f"usage_events_{grain}"),
        join=join,
        where=where,
        page=sql.SQL(PAGE_BUCKETS),
        consent=consent,
    )
    return rows, by_type


def _usage_page(
    conn: psycopg.Connection,
    rows_query: Query,
    types_query: Query,
    params: dict[str, Any],
    limit: int | None,
    offset: int,
) -> UsageSlice:
    with conn.cursor(row_factory=class_row(_CountedUsageRow)) as cur:
        rows = cur.execute(rows_query, {**params, "limit": limit, "offset": offset}).fetchall()
        if not rows:
            if not offset:
                return UsageSlice([], [], 0)
            # Past the end: the total still counts.
            first = cur.execute(rows_query, {**params, "limit": 1, "offset": 0}).fetchone()
            return UsageSlice([], [], first.total if first else 0)
    page = {**params, "first": rows[0].bucket, "last": rows[-1].bucket}
    with conn.cursor(row_factory=class_row(EventTypeRow)) as cur:
        by_type = cur.execute(types_query, page).fetchall()
    return UsageSlice(list(rows), by_type, rows[0].total)


# ------------------------------------------------------------------- time-saved inputs
class ActivityObservations(BaseModel):
    activity_id: int
    name: str
    event_type: str | None
    baseline: list[Decimal]
    intervention: list[Decimal]


def activity_observations(conn: psycopg.Connection, trial_id: int) -> list[ActivityObservations]:
    with conn.cursor(row_factory=class_row(ActivityObservations)) as cur:
        return cur.execute(
            "SELECT a.id AS activity_id, a.name, a.event_type,"
            " coalesce(array_agg(o.duration_minutes ORDER BY o.id)"
            "          FILTER (WHERE o.phase = 'baseline'), '{}') AS baseline,"
            " coalesce(array_agg(o.duration_minutes ORDER BY o.id)"
            "          FILTER (WHERE o.phase = 'intervention'), '{}') AS intervention"
            " FROM activities a LEFT JOIN observations o ON o.activity_id = a.id"
            " WHERE a.trial_id = %s GROUP BY a.id ORDER BY a.id",
            (trial_id,),
        ).fetchall()


def occurrences_per_day(
    conn: psycopg.Connection, trial_id: int, start: datetime, end: datetime
) -> dict[int, list[tuple[date, int]]]:
    """Device events mapped to each activity, per local day, within the trial period.

    Reads `time_saved_occurrences` (0014), the one definition the Grafana views read too: every
    stored event counts, for every reader (time saved is a trial-level figure of the evidence).
    """
    rows = conn.execute(
        "SELECT o.activity_id, (o.bucket AT TIME ZONE %(tz)s)::date AS day,"
        " sum(o.occurrences)::bigint"
        " FROM time_saved_occurrences o"
        " WHERE o.trial_id = %(trial)s AND o.bucket >= date_trunc('hour', %(start)s::timestamptz)"
        "   AND o.bucket < %(end)s"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        {"trial": trial_id, "start": start, "end": end, "tz": ROLLUP_TIMEZONE},
    ).fetchall()
    found: dict[int, list[tuple[date, int]]] = {}
    for activity_id, day, count in rows:
        found.setdefault(activity_id, []).append((day, int(count)))
    return found


def costs(conn: psycopg.Connection, trial_id: int) -> list[tuple[str, Decimal, bool]]:
    return [
        (row[0], row[1], row[2])
        for row in conn.execute(
            "SELECT category, amount, recurring FROM trial_costs WHERE trial_id = %s ORDER BY id",
            (trial_id,),
        )
    ]


def unit_counts(conn: psycopg.Connection, trial_id: int) -> tuple[int, int, list[str]]:
    """(units in the trial, units of all care homes in its municipalities, those municipalities)."""
    row = conn.execute(
        """
        WITH municipalities AS (
            SELECT DISTINCT s.municipality FROM trial_sites ts JOIN sites s ON s.id = ts.site_id
            WHERE ts.trial_id = %(trial)s)
        SELECT
          coalesce(nullif((SELECT count(*) FROM trial_units WHERE trial_id = %(trial)s), 0),
                   (SELECT count(*) FROM units u JOIN trial_sites ts ON ts.site_id = u.site_id
                    WHERE ts.trial_id = %(trial)s)),
          (SELECT count(*) FROM units u JOIN sites s ON s.id = u.site_id
           WHERE s.municipality IN (SELECT municipality FROM municipalities)),
          coalesce((SELECT array_agg(municipality ORDER BY municipality) FROM municipalities), '{}')
        """,
        {"trial": trial_id},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), list(row[2])


# ------------------------------------------------------------------ coverage, completeness
class ConsentCoverage(BaseModel):
    participants: int
    telemetry_now: int
    company_dashboards_now: int
    evaluation_now: int
    withdrawn: int
    left: int


def consent_coverage(conn: psycopg.Connection, trial_ids: list[int]) -> dict[int, ConsentCoverage]:
    """Counts only: how many participants, and how many have each scope active now."""
    rows = conn.execute(
        """
        SELECT p.trial_id, count(*),
          count(*) FILTER (WHERE 'telemetry' = ANY(now_c.scopes)),
          count(*) FILTER (WHERE 'company_dashboards' = ANY(now_c.scopes)),
          count(*) FILTER (WHERE 'evaluation' = ANY(now_c.scopes)),
          count(*) FILTER (WHERE last_c.ended_by = 'withdrawn'),
          count(*) FILTER (WHERE p.left_at IS NOT NULL)
        FROM participants p
        LEFT JOIN consents now_c ON now_c.participant_id = p.id AND now_c.valid_during @> now()
        LEFT JOIN LATERAL (SELECT c.ended_by FROM consents c WHERE c.participant_id = p.id
                           ORDER BY c.version DESC LIMIT 1) last_c ON true
        WHERE p.trial_id = ANY(%s) GROUP BY p.trial_id
        """,
        (trial_ids,),
    ).fetchall()
    empty = ConsentCoverage(
        participants=0,
        telemetry_now=0,
        company_dashboards_now=0,
        evaluation_now=0,
        withdrawn=0,
        left=0,
    )
    found = {trial_id: empty for trial_id in trial_ids}
    for trial_id, *counts in rows:
        found[trial_id] = ConsentCoverage(
            **dict(zip(ConsentCoverage.model_fields, counts, strict=True))
        )
    return found


class Completeness(BaseModel):
    readings: int
    events: int
    dead_letters: int
    dead_letters_by_reason: dict[str, int]
    consent_drops: int
    gaps_recorded: int | None  # None: this deployment has no gap tracking
    messages_missing_in_gaps: int | None


def completeness(conn: psycopg.Connection, trial_id: int) -> Completeness:
    counts = conn.execute(
        "SELECT (SELECT coalesce(sum(readings), 0) FROM usage_readings_daily WHERE trial_id = %(t)s),"
        " (SELECT coalesce(sum(events), 0) FROM usage_events_daily WHERE trial_id = %(t)s),"
        " (SELECT coalesce(sum(count), 0) FROM consent_drops WHERE trial_id = %(t)s)",
        {"t": trial_id},
    ).fetchone()
    assert counts is not None
    # Dead letters carry a device id, not a trial: count those of devices deployed in the trial,
    # received while deployed.
    reasons = conn.execute(
        "SELECT dl.reason, count(*) FROM dead_letters dl WHERE EXISTS ("
        "  SELECT 1 FROM deployments d WHERE d.trial_id = %s AND d.device_id = dl.device_id"
        "  AND d.valid_during @> dl.received_at) GROUP BY dl.reason ORDER BY dl.reason",
        (trial_id,),
    ).fetchall()
    gaps: tuple[int | None, int | None] = (None, None)
    has_gaps = conn.execute("SELECT to_regclass('telemetry_gaps') IS NOT NULL").fetchone()
    if has_gaps and has_gaps[0]:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(gap_size), 0) FROM telemetry_gaps WHERE trial_id = %s",
            (trial_id,),
        ).fetchone()
        assert row is not None
        gaps = (int(row[0]), int(row[1]))
    by_reason = {reason: int(n) for reason, n in reasons}
    return Completeness(
        readings=int(counts[0]),
        events=int(counts[1]),
        dead_letters=sum(by_reason.values()),
        dead_letters_by_reason=by_reason,
        consent_drops=int(counts[2]),
        gaps_recorded=gaps[0],
        messages_missing_in_gaps=gaps[1],
    )


# ------------------------------------------------------------------------------ portfolio
class FlowRow(BaseModel):
    trial_id: int
    devices_deployed: int
    devices_online: int
    readings_last_hour: int


def flow(conn: psycopg.Connection, trial_id: int | None = None) -> dict[int, FlowRow]:
    """Per trial (or one): devices deployed now, of them seen within 3 expected intervals,
    readings last hour."""
    with conn.cursor(row_factory=class_row(FlowRow)) as cur:
        rows = cur.execute(
            """
            SELECT t.id AS trial_id,
              (SELECT count(*) FROM deployments d
               WHERE d.trial_id = t.id AND d.valid_during @> now()) AS devices_deployed,
              (SELECT count(*) FROM deployments d JOIN devices dv ON dv.id = d.device_id
               JOIN device_types dt ON dt.code = dv.device_type
               JOIN device_health h ON h.device_id = d.device_id
               WHERE d.trial_id = t.id AND d.valid_during @> now()
                 AND h.last_seen_at > now() - greatest(3 * dt.expected_interval,
                                                       interval '15 minutes')) AS devices_online,
              (SELECT count(*) FROM telemetry_readings r
               WHERE r.trial_id = t.id AND r.ts > now() - interval '1 hour') AS readings_last_hour
            FROM trials t WHERE %(trial)s::bigint IS NULL OR t.id = %(trial)s
            """,
            {"trial": trial_id},
        ).fetchall()
    return {row.trial_id: row for row in rows}


# -------------------------------------------------------------------------------- exports
EVALUATION_CONSENT = (
    " AND (x.participant_id IS NULL OR EXISTS (SELECT 1 FROM consents c"
    " WHERE c.participant_id = x.participant_id AND 'evaluation' = ANY(c.scopes)"
    " AND c.valid_during @> x.ts))"
)
EXPORT_QUERIES = {
    "readings": (
        "SELECT x.ts, x.device_id, dv.device_type, x.metric, x.value, x.site_id, x.unit_id,"
        " x.participant_id FROM telemetry_readings x LEFT JOIN devices dv ON dv.id = x.device_id"
        " WHERE x.trial_id = %(trial)s" + EVALUATION_CONSENT + " ORDER BY x.ts, x.device_id"
    ),
    "events": (
        "SELECT x.ts, x.device_id, dv.device_type, x.event_type, x.duration_s, x.attrs::text AS attrs,"
        " x.site_id, x.unit_id, x.participant_id FROM telemetry_events x"
        " LEFT JOIN devices dv ON dv.id = x.device_id"
        " WHERE x.trial_id = %(trial)s" + EVALUATION_CONSENT + " ORDER BY x.ts, x.device_id"
    ),
    # Observations are of staff, not residents; the free-text note stays out of the export.
    "observations": (
        "SELECT o.observed_at, o.activity_id, a.name AS activity, a.event_type, o.phase,"
        " o.duration_minutes, o.staff_role, o.site_id, o.unit_id"
        " FROM observations o JOIN activities a ON a.id = o.activity_id"
        " WHERE o.trial_id = %(trial)s ORDER BY o.observed_at, o.id"
    ),
}
ExportKind = Literal["readings", "events", "observations"]


def export_rows(
    conn: psycopg.Connection, kind: ExportKind, trial_id: int
) -> Iterator[dict[str, Any]]:
    """Stream the rows of one export through a server-side cursor (inside the caller's transaction)."""
    with conn.cursor(name=f"export_{kind}", row_factory=dict_row) as cur:
        cur.itersize = 5000
        cur.execute(EXPORT_QUERIES[kind], {"trial": trial_id})
        yield from cur


def export_columns(conn: psycopg.Connection, kind: ExportKind) -> list[str]:
    cursor = conn.execute("SELECT * FROM (" + EXPORT_QUERIES[kind] + ") q LIMIT 0", {"trial": 0})
    return [column.name for column in cursor.description or []]
