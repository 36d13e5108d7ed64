"""The trial-level hourly rollup answers exactly as aggregating the device-level rollups would,
the same for coordinators and companies, after late data, a backdated consent and an erase; below
the trial, a company's breakdown counts a participant only under company_dashboards consent."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import psycopg

from evidence.repository import device_rollup_usage, purge_participant_rollups, usage
from tests.evidence.seed import (
    company,
    device,
    participant,
    reading,
    refresh,
    site_with_units,
    trial,
)
from tests.evidence.test_rollups import START, World, _random_telemetry

END = START + timedelta(days=3)


def _same_answers(conn: psycopg.Connection, trial_id: int) -> None:
    computed = device_rollup_usage(conn, trial_id, "hour", START, END, "trial", for_company=False)
    for for_company in (False, True):
        ready = usage(conn, trial_id, "hour", START, END, "trial", for_company=for_company)
        assert ready == computed, "company" if for_company else "all"
        assert ready.rows, "no hours to compare"


def test_trial_hourly_rollup_matches_the_device_rollups_through_consent_changes_and_erase(
    conn: psycopg.Connection,
) -> None:
    firm = company(conn, "Firm")
    site, units = site_with_units(conn, "Home", "Kolding", 2)
    trial_id = trial(conn, firm, site, units, "T1")
    people = [
        participant(conn, trial_id, site, "P-0", ["telemetry", "company_dashboards"], START),
        participant(conn, trial_id, site, "P-1", ["telemetry"], START),
        participant(
            conn,
            trial_id,
            site,
            "P-2",
            ["telemetry", "company_dashboards"],
            START + timedelta(hours=12),
        ),
    ]
    for i in range(3):
        device(conn, f"bed-{i}", "sensor_bed", firm)
    device(conn, "door-1", "door_sensor", firm)
    world = World(trial_id, site, units, people)
    rng = random.Random(8)
    _random_telemetry(conn, world, rng, 400, 48)
    refresh(conn)
    _same_answers(conn, trial_id)
    hidden = usage(conn, trial_id, "hour", START, END, "unit", for_company=True).rows
    shown = usage(conn, trial_id, "hour", START, END, "unit", for_company=False).rows
    assert sum(r.readings for r in hidden) < sum(r.readings for r in shown)

    # Late data for hours already rolled up.
    _random_telemetry(conn, world, rng, 100, 48)
    refresh(conn)
    _same_answers(conn, trial_id)

    # No new data (the data arrived long ago, as far as the refresh can tell), but a consent
    # for P-1's dashboards, given on paper, registered backdated.
    conn.execute("UPDATE rollup_watermarks SET received_until = now() + interval '1 day'")
    conn.execute(
        "UPDATE consents SET valid_until = %s, ended_by = 'superseded' WHERE participant_id = %s",
        (START + timedelta(hours=6), people[1]),
    )
    conn.execute(
        "INSERT INTO consents (participant_id, version, scopes, given_by, evidence_ref, valid_from)"
        " VALUES (%s, 2, '{telemetry,company_dashboards}', 'participant', 'DOC-2', %s)",
        (people[1], START + timedelta(hours=6)),
    )
    refresh(conn)
    _same_answers(conn, trial_id)

    # An erase recomputes the trial's hours at once, in the erase's own transaction.
    for table in ("telemetry_readings", "telemetry_events"):
        conn.execute(f"DELETE FROM {table} WHERE participant_id = %s", (people[0],))
    purge_participant_rollups(conn, people[0])
    _same_answers(conn, trial_id)
    conn.commit()


def test_a_companys_breakdown_shows_only_hours_the_dashboards_consent_covered_whole(
    conn: psycopg.Connection,
) -> None:
    """Consent from 06:30 to 20:30 (trial time): hours 6 and 20 are partly outside it. The
    trial's own figures count every hour, for the company too."""
    firm = company(conn, "Firm")
    site, units = site_with_units(conn, "Home", "Kolding", 1)
    trial_id = trial(conn, firm, site, units, "T1")
    consented_from, withdrawn = (
        START + timedelta(hours=6, minutes=30),
        START + timedelta(hours=20.5),
    )
    person = participant(
        conn, trial_id, site, "P-0", ["telemetry", "company_dashboards"], consented_from, withdrawn
    )
    device(conn, "bed-0", "sensor_bed", firm)
    for minute in range(0, 24 * 60, 10):  # six readings an hour, all day
        reading(conn, trial_id, site, "bed-0", START + timedelta(minutes=minute), person)
    refresh(conn)

    api: dict[datetime, int] = {}
    for row in usage(conn, trial_id, "hour", START, END, "device", for_company=True).rows:
        if row.readings:
            api[row.bucket] = api.get(row.bucket, 0) + row.readings
    trial_level = usage(conn, trial_id, "hour", START, END, "trial", for_company=True).rows
    assert sum(row.readings for row in trial_level) == 24 * 6
    conn.execute("RESET ROLE")  # the views are Grafana's; the app's role may not read them
    grafana: dict[datetime, int] = dict(
        conn.execute(
            "SELECT bucket, sum(readings) FROM ldl_grafana.usage_hourly"
            " WHERE trial_id = %s AND company_visible GROUP BY bucket",
            (trial_id,),
        ).fetchall()
    )
    whole_hours = {START + timedelta(hours=h): 6 for h in range(7, 20)}
    assert api == whole_hours
    assert grafana == whole_hours
