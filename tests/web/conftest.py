"""People with accounts, and a signed-in HTTP client, for the web app's tests."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from access.accounts import create_user
from access.schemas import Role, UserCreate
from infra.db import connection
from infra.settings import Settings

PASSWORD = "correct horse battery"
GRAFANA_URL = "http://grafana.lab.example:3000"


@dataclass(frozen=True)
class Person:
    email: str
    role: Role
    company_id: int | None = None
    password: str = PASSWORD


def add_person(db_url: str, person: Person) -> Person:
    with connection(db_url) as conn:
        create_user(
            conn,
            UserCreate(
                email=person.email,
                role=person.role,
                company_id=person.company_id,
                password=person.password,
            ),
        )
    return person


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: httpx.Client, person: Person, password: str | None = None) -> httpx.Response:
    page = client.get("/app/login")
    return client.post(
        "/app/login",
        data={
            "email": person.email,
            "password": password or person.password,
            "csrf_token": form_token(page.text),
            "next": "/app/",
        },
    )


def add_criterion(db_url: str, trial_id: int, **values: Any) -> int:
    """A structured success criterion, stored as the service stores it (at_least by default)."""
    from evidence import assessment_repository

    with connection(db_url) as conn:
        row = {"activity_id": None, "comparison": "at_least", "description": ""} | values
        return assessment_repository.insert_criterion(conn, trial_id, row).id


def add_survey_response(db_url: str, trial_id: int, **values: Any) -> None:
    from evidence import assessment_repository

    with connection(db_url) as conn:
        assessment_repository.insert_survey_response(conn, trial_id, values)


@pytest.fixture
def coordinator(db_url: str) -> Person:
    return add_person(db_url, Person("koordinator@kolding.dk", Role.COORDINATOR))


@pytest.fixture
def web_client(api_url: str) -> Iterator[Callable[[], httpx.Client]]:
    """New HTTP clients with their own cookie jars (one per person)."""
    clients: list[httpx.Client] = []

    def new() -> httpx.Client:
        client = httpx.Client(base_url=api_url, timeout=10)
        clients.append(client)
        return client

    yield new
    for client in clients:
        client.close()


# --------------------------------------------------------------------------- the browser
@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test session (starting one costs about a second)."""
    from tests.web.browser import chromium_paths, fresh_profile, start_chromium

    if chromium_paths() is None:
        pytest.skip("chromium and chromium-driver are not installed (apt-get install them)")
    profile = fresh_profile()
    driver = start_chromium(profile)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chromium: Any, api_url: str) -> Iterator[Any]:
    from tests.web.browser import Browser

    chromium.delete_all_cookies()
    yield Browser(chromium, api_url)
    chromium.delete_all_cookies()


@pytest.fixture
def settings(db_url: str, mqtt_url: str, tmp_path: Path, topic_prefix: str) -> Settings:
    """The app's settings with this test's own topic prefix (the broker is shared)."""
    return Settings(
        environment="test",
        database_url=db_url,
        mqtt_url=mqtt_url,
        mqtt_topic_prefix=topic_prefix,
        data_dir=tmp_path,
        grafana_url=GRAFANA_URL,
    )


@pytest.fixture
def ingest_worker(db_url: str, mqtt_url: str, topic_prefix: str, tmp_path: Path) -> Iterator[Any]:
    """The real ingest worker on this test's topics, as a process."""
    from tests.ingest.conftest import WorkerProcess

    env = {
        **os.environ,
        "LDL_ENVIRONMENT": "test",
        "LDL_DATABASE_URL": db_url,
        "LDL_MQTT_URL": mqtt_url,
        "LDL_MQTT_TOPIC_PREFIX": topic_prefix,
        "LDL_INGEST_CLIENT_ID": f"ingest-{topic_prefix.split('/')[0]}",
        "LDL_INGEST_SHARE_GROUP": "",
        "LDL_INGEST_METRICS_PORT": "0",
    }
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    worker.wait_connected()
    yield worker
    worker.ensure_stopped()
    print(worker.log()[-3000:])


@pytest.fixture
def seeded(db_url: str) -> Any:
    """A trial of company A with readings, events, observations and a consenting participant,
    and company B's trial at the same care home (tests/evidence/seed.py); rollups refreshed."""
    from tests.evidence.seed import T0, constructed_trial, refresh

    with connection(db_url) as conn:
        lab = constructed_trial(conn)
        conn.execute(
            "INSERT INTO deployments (device_id, trial_id, site_id, participant_id, valid_from)"
            " VALUES (%s, %s, %s, %s, %s)",
            (lab.bed_device, lab.trial_id, lab.site_id, lab.participant, T0),
        )
    # TimescaleDB refreshes its aggregates outside a transaction block: a connection of its own.
    with psycopg.connect(db_url, autocommit=True) as conn:
        refresh(conn)
    return lab


# ------------------------------------------------------------------------- the demo lab
@dataclass(frozen=True)
class DemoLab:
    coordinator: Person
    evaluator: Person
    company: Person
    trials: list[int]
    sites: list[int]
    participants: list[int]
    no_consent: int
    company_id: int
    device: str
    activity: int


# A sensor bed's events and readings, only while its resident's consent to telemetry held (as
# the ingest worker would have stored them).
CONSENTED = (
    " FROM deployments d JOIN trials t ON t.id = d.trial_id"
    " JOIN consents c ON c.participant_id = d.participant_id AND 'telemetry' = ANY(c.scopes)"
    " WHERE d.device_id LIKE 'bed-kb-%%'"
)


@pytest.fixture
def demo_lab(db_url: str) -> DemoLab:
    """The demo's Danish lab (ldl/seed.py) with the sensor beds' data of the last weeks, a
    refused message, and a person of each role."""
    from ldl.seed import seed_demo_lab
    from tests.evidence.seed import refresh

    with connection(db_url) as conn:
        seed_demo_lab(conn)
        conn.execute(
            "INSERT INTO telemetry_events (ts, device_id, event_type, trial_id, site_id,"
            " participant_id) SELECT e.ts, d.device_id, 'night_check_avoided', d.trial_id,"
            " d.site_id, d.participant_id"
            + CONSENTED.replace(
                " WHERE",
                ", LATERAL (SELECT"
                " t.trial_from + make_interval(hours => 8 * n) AS ts FROM generate_series(1, 80) n)"
                " e WHERE",
            )
            + " AND e.ts < coalesce(c.valid_until, now()) AND e.ts < now()"
        )
        conn.execute(
            "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id,"
            " unit_id, participant_id) SELECT r.ts, d.device_id, 'heart_rate', 60, d.trial_id,"
            " d.site_id, d.unit_id, d.participant_id"
            + CONSENTED.replace(
                " WHERE",
                ", LATERAL"
                " generate_series(greatest(c.valid_from, t.baseline_from), least(coalesce("
                "c.valid_until, now()), now()), interval '1 hour') AS r(ts) WHERE",
            )
        )
        conn.execute(
            "INSERT INTO dead_letters (topic, device_id, reason, detail, excerpt) VALUES"
            " ('ldl/v1/bed-kb-01/readings', 'bed-kb-01', 'schema_violation',"
            " 'ts: an RFC 3339 timestamp needs an offset, e.g. Z or +01:00', '{\"ts\": 1')"
        )
        conn.commit()  # the people below are added on connections of their own
        ids = lambda query: [row[0] for row in conn.execute(query)]  # noqa: E731
        trials = ids("SELECT id FROM trials ORDER BY id")
        lab = DemoLab(
            coordinator=add_person(db_url, Person("koordinator@kolding.dk", Role.COORDINATOR)),
            evaluator=add_person(db_url, Person("forsker@sdu.dk", Role.EVALUATOR)),
            company=add_person(
                db_url,
                Person(
                    "kontakt@sengesense.dk",
                    Role.COMPANY,
                    company_id=ids("SELECT id FROM companies WHERE name = 'SengeSense ApS'")[0],
                ),
            ),
            trials=trials,
            sites=ids("SELECT id FROM sites ORDER BY id"),
            participants=ids(f"SELECT id FROM participants WHERE trial_id = {trials[0]}"),
            no_consent=ids(
                "SELECT p.id FROM participants p WHERE NOT EXISTS"
                " (SELECT 1 FROM consents c WHERE c.participant_id = p.id) ORDER BY p.id"
            )[0],
            company_id=ids("SELECT id FROM companies ORDER BY id")[0],
            device="bed-kb-01",
            activity=ids(f"SELECT id FROM activities WHERE trial_id = {trials[0]}")[0],
        )
    with psycopg.connect(db_url, autocommit=True) as conn:
        refresh(conn)
    return lab
