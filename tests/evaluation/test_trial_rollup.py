"""The trial-level hourly rollup answers exactly as aggregating the device-level rollups would,
for coordinators and for companies, after late data, a backdated consent and an erase."""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg

from tests.evaluation.seed import company, device, participant, refresh, site_with_units, trial
from tests.evaluation.test_rollups import START, World, _random_telemetry
from trials.evaluation_repository import device_rollup_usage, purge_participant_rollups, usage

END = START + timedelta(days=3)


def _same_answers(conn: psycopg.Connection, trial_id: int) -> None:
    for dashboards_only in (False, True):
        ready = usage(conn, trial_id, "hour", START, END, "trial", dashboards_only=dashboards_only)
        computed = device_rollup_usage(
            conn, trial_id, "hour", START, END, "trial", dashboards_only=dashboards_only
        )
        assert ready == computed, "company" if dashboards_only else "all"
        assert ready[0], "no hours to compare"


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
    hidden = usage(conn, trial_id, "hour", START, END, "trial", dashboards_only=True)[0]
    shown = usage(conn, trial_id, "hour", START, END, "trial", dashboards_only=False)[0]
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
