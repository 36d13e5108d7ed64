"""Rollups equal a direct aggregation of the raw rows; an erase leaves no trace in them."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from evidence.repository import purge_participant_rollups
from evidence.rollup_scheduler import run_maintenance_once, run_rollup_scheduler
from infra.db import connect
from infra.migrate import timescale_enabled
from tests.evidence.seed import (
    company,
    device,
    participant,
    reading,
    refresh,
    site_with_units,
    trial,
)

# 2025-03-30 is a 23-hour day in Copenhagen (clocks go forward at 02:00 local).
START = datetime(2025, 3, 29, 18, tzinfo=UTC)
KEYS = "trial_id, site_id, unit_id, device_id, participant_id"


def _raw_vs_rollup(conn: psycopg.Connection) -> None:
    for raw, stem, extra in (
        ("telemetry_readings", "usage_readings", ""),
        ("telemetry_events", "usage_events", ", event_type"),
    ):
        for grain, bucket in (
            ("hourly", "date_trunc('hour', ts)"),
            ("daily", "date_trunc('day', ts, 'Europe/Copenhagen')"),
        ):
            direct = conn.execute(
                f"SELECT {bucket}, {KEYS}{extra}, count(*) FROM {raw}"
                f" GROUP BY {bucket}, {KEYS}{extra} ORDER BY 1, 2, 3, 4, 5, 6{', 7' if extra else ''}"
            ).fetchall()
            rolled = conn.execute(
                f"SELECT bucket, {KEYS}{extra}, {'events' if extra else 'readings'}"
                f" FROM {stem}_{grain} ORDER BY 1, 2, 3, 4, 5, 6{', 7' if extra else ''}"
            ).fetchall()
            assert rolled == direct, f"{stem}_{grain} differs from {raw}"


def _random_telemetry(
    conn: psycopg.Connection, world: World, rng: random.Random, count: int, hours: int
) -> None:
    t1, site, units, people = world.trial_id, world.site_id, world.unit_ids, world.people
    for n in range(count):
        ts = START + timedelta(seconds=rng.randrange(hours * 3600))
        person = rng.choice([None, *people])
        dev = f"bed-{people.index(person)}" if person else "door-1"
        unit = None if person is None else rng.choice(units)
        if rng.random() < 0.6:
            reading(conn, t1, site, dev, ts, person, unit, metric=f"m{n}")
        else:
            conn.execute(
                "INSERT INTO telemetry_events (ts, device_id, event_type, trial_id, site_id, unit_id,"
                " participant_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    ts,
                    dev,
                    rng.choice(["bed_exit", "door_open"]) + f"_{n % 3}",
                    t1,
                    site,
                    unit,
                    person,
                ),
            )


@dataclass
class World:
    trial_id: int
    site_id: int
    unit_ids: list[int]
    people: list[int]


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    firm = company(conn, "Firm")
    site, units = site_with_units(conn, "Home", "Kolding", 3)
    t1 = trial(conn, firm, site, units, "T1")
    people = [
        participant(conn, t1, site, f"P-{i}", ["telemetry"], START - timedelta(days=1))
        for i in range(3)
    ]
    for i in range(3):
        device(conn, f"bed-{i}", "sensor_bed", firm)
    device(conn, "door-1", "door_sensor", firm)
    conn.commit()
    return World(t1, site, units, people)


def test_rollups_equal_a_direct_aggregation_including_late_data(
    conn: psycopg.Connection, world: World
) -> None:
    rng = random.Random(6)
    _random_telemetry(conn, world, rng, 600, 40)  # spans the short DST day
    conn.commit()
    assert refresh(conn) > 0
    conn.commit()
    _raw_vs_rollup(conn)

    # Late data for old hours, and new hours, arrive; the next refresh redoes only those.
    _random_telemetry(conn, world, rng, 150, 60)
    conn.commit()
    refresh(conn)
    conn.commit()
    _raw_vs_rollup(conn)

    totals = conn.execute(
        "SELECT (SELECT sum(readings) FROM usage_daily), (SELECT sum(events) FROM usage_daily),"
        " (SELECT count(*) FROM telemetry_readings), (SELECT count(*) FROM telemetry_events)"
    ).fetchone()
    assert totals[0] == totals[2] and totals[1] == totals[3]


def test_erased_participant_leaves_no_trace_in_rollups(
    conn: psycopg.Connection, world: World
) -> None:
    _random_telemetry(conn, world, random.Random(7), 300, 30)
    conn.commit()
    refresh(conn)
    conn.commit()
    erased = world.people[0]
    before = conn.execute(
        "SELECT count(*) FROM usage_hourly WHERE participant_id = %s", (erased,)
    ).fetchone()
    assert before[0] > 0

    # What the trials service's erase does, plus the hook: same transaction.
    for table in ("telemetry_readings", "telemetry_events"):
        conn.execute(f"DELETE FROM {table} WHERE participant_id = %s", (erased,))
    purge_participant_rollups(conn, erased)
    conn.commit()
    _no_trace_of(conn, erased)  # at once, before any refresh (no worker runs here)
    refresh(conn)
    conn.commit()
    _no_trace_of(conn, erased)
    _raw_vs_rollup(conn)  # everyone else's counts are untouched


def _no_trace_of(conn: psycopg.Connection, erased: int) -> None:
    for view in (
        "usage_readings_hourly",
        "usage_readings_daily",
        "usage_events_hourly",
        "usage_events_daily",
        "usage_hourly",
        "usage_daily",
        "activity_occurrences_daily",
    ):
        left = conn.execute(f"SELECT count(*) FROM {view} WHERE participant_id = %s", (erased,))
        assert left.fetchone()[0] == 0, view
    trial_total = conn.execute(
        "SELECT coalesce(sum(readings + events), 0) FROM usage_trial_hourly"
    ).fetchone()[0]
    raw_total = conn.execute(
        "SELECT (SELECT count(*) FROM telemetry_readings) + (SELECT count(*) FROM telemetry_events)"
    ).fetchone()[0]
    assert trial_total == raw_total


def test_a_reading_days_late_reaches_hourly_and_daily_usage_within_one_refresh(
    conn: psycopg.Connection, world: World
) -> None:
    # A gateway that buffered offline for ten days, after the rollups were brought up to now.
    now = datetime.now(UTC)
    reading(conn, world.trial_id, world.site_id, "door-1", now - timedelta(hours=1), None)
    conn.commit()
    refresh(conn)
    reading(conn, world.trial_id, world.site_id, "door-1", now - timedelta(days=10), None)
    conn.commit()
    refresh(conn)
    row = conn.execute(
        "SELECT (SELECT count(*) FROM telemetry_readings),"
        " (SELECT sum(readings) FROM usage_hourly), (SELECT sum(readings) FROM usage_daily),"
        " (SELECT sum(readings) FROM usage_trial_hourly)"
    ).fetchone()
    assert row == (2, 2, 2, 2)
    _raw_vs_rollup(conn)


def test_retention_drops_old_raw_rows_but_keeps_rollups(
    conn: psycopg.Connection, world: World, db_url: str
) -> None:
    t1, site = world.trial_id, world.site_id
    now = datetime.now(UTC)
    reading(conn, t1, site, "door-1", now - timedelta(days=40), None)
    reading(conn, t1, site, "door-1", now - timedelta(days=1), None)
    conn.commit()
    run_maintenance_once(db_url, 30, retention=True)  # refresh, then retention, as `ldl ingest`
    if timescale_enabled(conn):  # retention is the policy's job there: run it now
        with connect(db_url, as_app=False, autocommit=True) as owner:
            jobs = owner.execute(
                "SELECT job_id FROM timescaledb_information.jobs"
                " WHERE proc_name = 'policy_retention' AND hypertable_name = 'telemetry_readings'"
            ).fetchall()
            assert len(jobs) == 1
            owner.execute("CALL run_job(%s)", (jobs[0][0],))
    raw = conn.execute("SELECT count(*) FROM telemetry_readings").fetchone()[0]
    rolled = conn.execute("SELECT sum(readings) FROM usage_readings_daily").fetchone()[0]
    assert (raw, rolled) == (1, 2)


def test_scheduler_refreshes_until_stopped(
    conn: psycopg.Connection, world: World, settings
) -> None:
    reading(conn, world.trial_id, world.site_id, "door-1", START, None)
    conn.commit()
    stop = threading.Event()
    thread = threading.Thread(
        target=run_rollup_scheduler, args=(settings, stop, 0.05), name="ldl-rollups-test"
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = conn.execute("SELECT coalesce(sum(readings), 0) FROM usage_readings_daily")
            conn.commit()
            if found.fetchone()[0] == 1:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the scheduler did not refresh the rollups")
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
