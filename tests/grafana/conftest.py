"""A database seeded with two companies' trials, rollups refreshed, Grafana roles provisioned.

Company A's trial has a consented participant (10 night-check events), a participant without
company_dashboards consent (7 events that A's dashboards must not show) and a room device
(4 bed exits); company B's trial has 6 events. Roles are cluster-wide: every role this database
made is dropped again at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from grafana.roles import DatabaseAccess, provision_company_roles, role_prefix
from infra.migrate import timescale_enabled

BASELINE_MINUTES = [10, 12, 11, 13, 9]
WITH_TECH_MINUTES = [3, 4, 2, 3, 5]
A_CONSENTED_EVENTS = 10
A_UNCONSENTED_EVENTS = 7
A_ROOM_EVENTS = 4
B_EVENTS = 6
A_READINGS = 12


@dataclass(frozen=True)
class Seed:
    day: datetime  # UTC midnight of the day the telemetry happened
    company_a: int
    company_b: int
    trial_a: int
    trial_b: int
    access: DatabaseAccess

    @property
    def time_from(self) -> datetime:
        return self.day - timedelta(days=1)

    @property
    def time_to(self) -> datetime:
        return self.day + timedelta(days=2)


def _one(conn: psycopg.Connection, query: str, params: dict | tuple = ()) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def _seed(conn: psycopg.Connection, day: datetime) -> tuple[int, int, int, int]:
    company_a = _one(conn, "INSERT INTO companies (name) VALUES ('Alpha Care') RETURNING id")
    company_b = _one(conn, "INSERT INTO companies (name) VALUES ('Beta Robotics') RETURNING id")
    site_a = _one(
        conn, "INSERT INTO sites (name, municipality) VALUES ('Lykkebo', 'Kolding') RETURNING id"
    )
    site_b = _one(
        conn, "INSERT INTO sites (name, municipality) VALUES ('Solgården', 'Kolding') RETURNING id"
    )
    unit_a = _one(
        conn, "INSERT INTO units (site_id, name) VALUES (%s, 'Afdeling 1') RETURNING id", (site_a,)
    )
    unit_b = _one(
        conn, "INSERT INTO units (site_id, name) VALUES (%s, 'Afdeling 2') RETURNING id", (site_b,)
    )
    trials = []
    for company, site, title in ((company_a, site_a, "Bed sensors"), (company_b, site_b, "Robots")):
        trial = _one(
            conn,
            "INSERT INTO trials (company_id, title, product, collaboration_form, status, trial_from)"
            " VALUES (%s, %s, 'product', 'living_design_lab', 'running', %s) RETURNING id",
            (company, title, day - timedelta(days=5)),
        )
        conn.execute("INSERT INTO trial_sites VALUES (%s, %s)", (trial, site))
        trials.append(trial)
    trial_a, trial_b = trials
    since = day - timedelta(days=5)
    participants = {}
    for pseudonym, scopes in (
        ("P-001", ["telemetry", "company_dashboards"]),
        ("P-002", ["telemetry"]),
    ):
        pid = _one(
            conn,
            "INSERT INTO participants (trial_id, pseudonym, site_id, unit_id, enrolled_at)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (trial_a, pseudonym, site_a, unit_a, since),
        )
        conn.execute(
            "INSERT INTO consents (participant_id, version, scopes, given_by, evidence_ref, valid_from)"
            " VALUES (%s, 1, %s, 'participant', 'paper form 1', %s)",
            (pid, scopes, since),
        )
        participants[pseudonym] = pid
    devices = [
        ("bed-a1", company_a, trial_a, site_a, unit_a, participants["P-001"]),
        ("bed-a2", company_a, trial_a, site_a, unit_a, participants["P-002"]),
        ("bed-a3", company_a, trial_a, site_a, None, None),
        ("bed-b1", company_b, trial_b, site_b, unit_b, None),
    ]
    for device, company, trial, site, unit, participant in devices:
        conn.execute(
            "INSERT INTO devices (id, device_type, company_id) VALUES (%s, 'sensor_bed', %s)",
            (device, company),
        )
        conn.execute(
            "INSERT INTO deployments (device_id, trial_id, site_id, unit_id, participant_id, valid_from)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (device, trial, site, unit, participant, since),
        )
    activity_a = _one(
        conn,
        "INSERT INTO activities (trial_id, name, event_type) VALUES (%s, 'Night check',"
        " 'night_check_avoided') RETURNING id",
        (trial_a,),
    )
    conn.execute(
        "INSERT INTO activities (trial_id, name, event_type) VALUES (%s, 'Night check',"
        " 'night_check_avoided')",
        (trial_b,),
    )
    for phase, minutes in (("baseline", BASELINE_MINUTES), ("intervention", WITH_TECH_MINUTES)):
        for value in minutes:
            conn.execute(
                "INSERT INTO observations (trial_id, activity_id, phase, duration_minutes,"
                " staff_role, observed_at) VALUES (%s, %s, %s, %s, 'nurse', %s)",
                (trial_a, activity_a, phase, value, since),
            )
    events = [
        (
            "bed-a1",
            "night_check_avoided",
            A_CONSENTED_EVENTS,
            trial_a,
            site_a,
            unit_a,
            participants["P-001"],
        ),
        (
            "bed-a2",
            "night_check_avoided",
            A_UNCONSENTED_EVENTS,
            trial_a,
            site_a,
            unit_a,
            participants["P-002"],
        ),
        ("bed-a3", "bed_exit", A_ROOM_EVENTS, trial_a, site_a, None, None),
        ("bed-b1", "night_check_avoided", B_EVENTS, trial_b, site_b, unit_b, None),
    ]
    for device, event_type, count, trial, site, unit, participant in events:
        for i in range(count):
            conn.execute(
                "INSERT INTO telemetry_events (ts, device_id, event_type, trial_id, site_id, unit_id,"
                " participant_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    day + timedelta(hours=1 + i, minutes=7),
                    device,
                    event_type,
                    trial,
                    site,
                    unit,
                    participant,
                ),
            )
    for i in range(A_READINGS):
        conn.execute(
            "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id)"
            " VALUES (%s, 'bed-a3', 'movement', 1, %s, %s)",
            (day + timedelta(hours=i), trial_a, site_a),
        )
    conn.execute(
        "INSERT INTO device_health (device_id, last_seen_at, battery, rssi, firmware) VALUES"
        " ('bed-a1', now(), 81, -60, '1.2.0'), ('bed-a2', now() - interval '1 day', 14, -80, '1.1.0'),"
        " ('bed-b1', now(), 55, -70, '2.0.0')"
    )
    for reason, count in (("bad_json", 3), ("unknown_device", 2)):
        for i in range(count):
            conn.execute(
                "INSERT INTO dead_letters (received_at, topic, device_id, reason) VALUES (%s, 'ldl/v1/x/readings', 'x', %s)",
                (day + timedelta(hours=2, minutes=i), reason),
            )
    conn.execute(
        "INSERT INTO telemetry_gaps (device_id, channel, expected_seq, received_seq, gap_size, trial_id, ts,"
        " detected_at) VALUES ('bed-a1', 'events', 10, 14, 4, %s, %s, %s)",
        (trial_a, day + timedelta(hours=3), day + timedelta(hours=3)),
    )
    conn.execute(
        "INSERT INTO consent_drops (day, trial_id, reason, count) VALUES (%s, %s, 'no_telemetry_consent', 5)",
        ((day + timedelta(hours=12)).date(), trial_a),
    )
    return company_a, company_b, trial_a, trial_b


def _refresh_rollups(conn: psycopg.Connection) -> None:
    from evidence.repository import refresh_rollups

    if timescale_enabled(conn):  # continuous aggregates refresh outside a transaction
        conn.commit()
        conn.autocommit = True
        refresh_rollups(conn)
        conn.autocommit = False
    else:
        refresh_rollups(conn)


def drop_prefixed_roles(db_url: str, prefix: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as admin:
        roles = admin.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix + "_",)
        ).fetchall()
        for (role,) in roles:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
            )
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def admin(db_url: str) -> Iterator[psycopg.Connection]:
    """A superuser connection (the sync's), in a transaction the test commits."""
    conn = psycopg.connect(db_url)
    prefix = role_prefix(conn)
    yield conn
    conn.close()
    drop_prefixed_roles(db_url, prefix)


@pytest.fixture
def seed(admin: psycopg.Connection) -> Seed:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
    company_a, company_b, trial_a, trial_b = _seed(admin, day)
    admin.commit()
    _refresh_rollups(admin)
    access = provision_company_roles(admin)
    admin.commit()
    return Seed(day, company_a, company_b, trial_a, trial_b, access)


def login_url(db_url: str, role: str, password: str) -> str:
    parts = urlsplit(db_url)
    netloc = f"{quote(role)}:{quote(password)}@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def login(db_url: str) -> Iterator[Callable[[str, str], psycopg.Connection]]:
    """Log in over TCP as a Grafana role, as Grafana's data source does (autocommit)."""
    opened: list[psycopg.Connection] = []

    def connect(role: str, password: str) -> psycopg.Connection:
        conn = psycopg.connect(login_url(db_url, role, password), autocommit=True)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()
