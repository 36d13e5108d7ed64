"""A constructed trial whose time saved, interval, value and payback are known in advance.

Trial 10 days (2025-03-01 → 2025-03-11 UTC), staff cost 300.00 DKK/h, units: 2 of the 10 units of
the care homes in Kolding (a Vejle home's 3 units do not count). Costs: 50 000 one-off, 12 000 a
year. Activity "Night check": baseline 10, 11, 12, 13, 14 min; with technology 4, 5, 6, 7, 8 min:
difference 6 min, SE 1, Welch df 8, t(0.975, 8) = 2.306004135 (any t table), so
CI = 3.693995865 … 8.306004135 min. 100 night_check_avoided events (10 a day at noon UTC).
"Medicine round" has only 3 baseline observations: too few, no number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from evidence.repository import refresh_rollups
from infra.db import connect
from infra.migrate import timescale_enabled

T0 = datetime(2025, 3, 1, tzinfo=UTC)
T_END = T0 + timedelta(days=10)


def _id(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


@dataclass
class Seeded:
    company_a: int
    company_b: int
    trial_id: int
    other_trial_id: int
    site_id: int
    unit_ids: list[int]
    participant: int  # has every scope from before the trial
    bed_device: str
    room_device: str


def company(conn: psycopg.Connection, name: str) -> int:
    return _id(conn, "INSERT INTO companies (name) VALUES (%s) RETURNING id", (name,))


def site_with_units(
    conn: psycopg.Connection, name: str, municipality: str, units: int
) -> tuple[int, list[int]]:
    site = _id(
        conn,
        "INSERT INTO sites (name, municipality) VALUES (%s, %s) RETURNING id",
        (name, municipality),
    )
    unit_ids = [
        _id(conn, "INSERT INTO units (site_id, name) VALUES (%s, %s) RETURNING id", (site, f"U{i}"))
        for i in range(units)
    ]
    return site, unit_ids


def trial(
    conn: psycopg.Connection, company_id: int, site_id: int, unit_ids: list[int], title: str
) -> int:
    trial_id = _id(
        conn,
        "INSERT INTO trials (company_id, title, product, collaboration_form, status,"
        " baseline_from, baseline_until, trial_from, trial_until, staff_hourly_cost)"
        " VALUES (%s, %s, 'SleepWell', 'living_design_lab', 'evaluating', %s, %s, %s, %s, 300.00)"
        " RETURNING id",
        (company_id, title, T0 - timedelta(days=20), T0 - timedelta(days=10), T0, T_END),
    )
    conn.execute("INSERT INTO trial_sites VALUES (%s, %s)", (trial_id, site_id))
    for unit in unit_ids:
        conn.execute("INSERT INTO trial_units VALUES (%s, %s)", (trial_id, unit))
    return trial_id


def participant(
    conn: psycopg.Connection,
    trial_id: int,
    site_id: int,
    pseudonym: str,
    scopes: list[str],
    valid_from: datetime,
    valid_until: datetime | None = None,
) -> int:
    pid = _id(
        conn,
        "INSERT INTO participants (trial_id, pseudonym, site_id) VALUES (%s, %s, %s) RETURNING id",
        (trial_id, pseudonym, site_id),
    )
    conn.execute(
        "INSERT INTO consents (participant_id, version, scopes, given_by, evidence_ref, valid_from,"
        " valid_until, ended_by, withdrawal_mode)"
        " VALUES (%s, 1, %s, 'participant', 'DOC-1', %s, %s, %s, %s)",
        (
            pid,
            scopes,
            valid_from,
            valid_until,
            "withdrawn" if valid_until else None,
            "keep" if valid_until else None,
        ),
    )
    return pid


def device(conn: psycopg.Connection, device_id: str, device_type: str, company_id: int) -> str:
    conn.execute(
        "INSERT INTO devices (id, device_type, company_id) VALUES (%s, %s, %s)",
        (device_id, device_type, company_id),
    )
    return device_id


def event(
    conn: psycopg.Connection,
    trial_id: int,
    site_id: int,
    device_id: str,
    event_type: str,
    ts: datetime,
    participant_id: int | None,
) -> None:
    conn.execute(
        "INSERT INTO telemetry_events (ts, device_id, event_type, trial_id, site_id, participant_id)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (ts, device_id, event_type, trial_id, site_id, participant_id),
    )


def reading(
    conn: psycopg.Connection,
    trial_id: int,
    site_id: int,
    device_id: str,
    ts: datetime,
    participant_id: int | None,
    unit_id: int | None = None,
    metric: str = "heart_rate",
) -> None:
    conn.execute(
        "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id, unit_id,"
        " participant_id) VALUES (%s, %s, %s, 60, %s, %s, %s, %s)",
        (ts, device_id, metric, trial_id, site_id, unit_id, participant_id),
    )


def observations(
    conn: psycopg.Connection, trial_id: int, activity_id: int, phase: str, minutes: list[str]
) -> None:
    for i, value in enumerate(minutes):
        conn.execute(
            "INSERT INTO observations (trial_id, activity_id, phase, duration_minutes, staff_role,"
            " observed_at) VALUES (%s, %s, %s, %s, 'nurse', %s)",
            (trial_id, activity_id, phase, Decimal(value), T0 + timedelta(hours=i)),
        )


def activity(conn: psycopg.Connection, trial_id: int, name: str, event_type: str | None) -> int:
    return _id(
        conn,
        "INSERT INTO activities (trial_id, name, event_type) VALUES (%s, %s, %s) RETURNING id",
        (trial_id, name, event_type),
    )


def constructed_trial(conn: psycopg.Connection) -> Seeded:
    company_a, company_b = company(conn, "Sengeteknik A/S"), company(conn, "Rival ApS")
    site, units = site_with_units(conn, "Plejecenter Birkely", "Kolding", 2)
    site_with_units(conn, "Plejecenter Solgården", "Kolding", 8)
    site_with_units(conn, "Vejle Plejehjem", "Vejle", 3)
    trial_id = trial(conn, company_a, site, units, "Sensor beds at Birkely")
    other = trial(conn, company_b, site, units[:1], "Rival trial")
    night = activity(conn, trial_id, "Night check", "night_check_avoided")
    observations(conn, trial_id, night, "baseline", ["10", "11", "12", "13", "14"])
    observations(conn, trial_id, night, "intervention", ["4", "5", "6", "7", "8"])
    medicine = activity(conn, trial_id, "Medicine round", "dose_dispensed")
    observations(conn, trial_id, medicine, "baseline", ["20", "22", "21"])
    observations(conn, trial_id, medicine, "intervention", ["9", "10", "11", "12", "13"])
    for category, amount, recurring in (
        ("devices", "40000.00", False),
        ("training", "10000.00", False),
        ("licences", "12000.00", True),
    ):
        conn.execute(
            "INSERT INTO trial_costs (trial_id, category, amount, recurring) VALUES (%s, %s, %s, %s)",
            (trial_id, category, Decimal(amount), recurring),
        )
    person = participant(
        conn,
        trial_id,
        site,
        "P-001",
        ["telemetry", "company_dashboards", "evaluation"],
        T0 - timedelta(days=30),
    )
    bed = device(conn, "bed-1", "sensor_bed", company_a)
    room = device(conn, "door-1", "door_sensor", company_a)
    for day in range(10):
        for k in range(10):
            ts = T0 + timedelta(days=day, hours=12, minutes=k)
            event(conn, trial_id, site, bed, "night_check_avoided", ts, person)
    # An event of the same type before the trial started does not count.
    event(conn, trial_id, site, bed, "night_check_avoided", T0 - timedelta(days=2), person)
    event(conn, trial_id, site, room, "door_open", T0 + timedelta(hours=3), None)
    for hour in range(0, 48, 6):
        reading(conn, trial_id, site, bed, T0 + timedelta(hours=hour), person, units[0])
    conn.commit()
    return Seeded(company_a, company_b, trial_id, other, site, units, person, bed, room)


def refresh(conn: psycopg.Connection) -> int:
    """Refresh the rollups the way the scheduler does on this database's path."""
    timescale = timescale_enabled(conn)
    conn.commit()
    if timescale:  # as the aggregates' owner, outside a transaction block, as the scheduler does
        with connect(conn.info.dsn, as_app=False, autocommit=True) as owner:
            return refresh_rollups(owner)
    redone = refresh_rollups(conn)
    conn.commit()
    return redone
