"""A small lab to deploy devices into: two companies' trials, two sites with units, participants."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from access.schemas import OPERATOR, ApiKeyCreate, Role
from access.service import create_key
from devices.broker import sync_broker
from infra.settings import Settings
from tests.conftest import PrivateMosquitto
from tests.devices.mqtt_clients import Session, session


@dataclass(frozen=True)
class Lab:
    company: int
    other_company: int
    site: int
    other_site: int
    unit: int
    other_site_unit: int
    trial: int
    other_trial: int
    participant: int
    other_trial_participant: int


def _insert(conn: psycopg.Connection, query: str, params: dict[str, object]) -> int:
    row = conn.execute(query + " RETURNING id", params).fetchone()
    assert row is not None
    return int(row[0])


def _trial(conn: psycopg.Connection, company: int, title: str) -> int:
    return _insert(
        conn,
        "INSERT INTO trials (company_id, title, product, collaboration_form)"
        " VALUES (%(c)s, %(t)s, 'sensor bed', 'living_design_lab')",
        {"c": company, "t": title},
    )


@pytest.fixture
def lab(conn: psycopg.Connection) -> Lab:
    company = _insert(conn, "INSERT INTO companies (name) VALUES (%(n)s)", {"n": "Sengeteknik"})
    other_company = _insert(conn, "INSERT INTO companies (name) VALUES (%(n)s)", {"n": "Dosis"})
    site = _insert(
        conn, "INSERT INTO sites (name, municipality) VALUES (%(n)s, 'Kolding')", {"n": "Munkebo"}
    )
    other_site = _insert(
        conn, "INSERT INTO sites (name, municipality) VALUES (%(n)s, 'Kolding')", {"n": "Bo"}
    )
    unit_sql = "INSERT INTO units (site_id, name) VALUES (%(s)s, %(n)s)"
    unit = _insert(conn, unit_sql, {"s": site, "n": "A"})
    other_site_unit = _insert(conn, unit_sql, {"s": other_site, "n": "B"})
    trial = _trial(conn, company, "Night checks")
    other_trial = _trial(conn, other_company, "Pills")
    participant_sql = (
        "INSERT INTO participants (trial_id, pseudonym, site_id, unit_id)"
        " VALUES (%(t)s, %(p)s, %(s)s, %(u)s)"
    )
    participant = _insert(conn, participant_sql, {"t": trial, "p": "P-01", "s": site, "u": unit})
    other_participant = _insert(
        conn, participant_sql, {"t": other_trial, "p": "P-02", "s": site, "u": unit}
    )
    conn.commit()
    return Lab(
        company,
        other_company,
        site,
        other_site,
        unit,
        other_site_unit,
        trial,
        other_trial,
        participant,
        other_participant,
    )


def _key(conn: psycopg.Connection, role: Role, company_id: int | None = None) -> dict[str, str]:
    created = create_key(
        conn, OPERATOR, ApiKeyCreate(name=f"test {role}", role=role, company_id=company_id)
    )
    conn.commit()
    return {"Authorization": f"Bearer {created.key}"}


@pytest.fixture
def coordinator(conn: psycopg.Connection) -> dict[str, str]:
    return _key(conn, Role.COORDINATOR)


@pytest.fixture
def company_key(conn: psycopg.Connection, lab: Lab) -> dict[str, str]:
    return _key(conn, Role.COMPANY, lab.company)


@pytest.fixture
def other_company_key(conn: psycopg.Connection, lab: Lab) -> dict[str, str]:
    return _key(conn, Role.COMPANY, lab.other_company)


# ------------------------------------------- a broker with the production configuration
PRODUCTION_CONFIG = Path(__file__).parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
INGEST_USER, INGEST_PASSWORD = "ldl-ingest", "ingest-secret-for-tests"
T = TypeVar("T")
RELOAD_LINE = "Reloading config."


@pytest.fixture
def broker(private_mosquitto: Callable[..., PrivateMosquitto]) -> Iterator[PrivateMosquitto]:
    """The production config, its paths moved into temp dirs the `mosquitto` user can read."""
    data_dir = Path(tempfile.mkdtemp(prefix="ldl-mosq-data-"))
    data_dir.chmod(0o777)  # mosquitto drops from root to its own user, then saves here
    config = (
        PRODUCTION_CONFIG.read_text()
        .replace("/mosquitto/data/mosquitto.pid", f"{data_dir}/mosquitto.pid")
        .replace("/broker-auth/", "{dir}/")
        .replace("/mosquitto/data/", f"{data_dir}/")
        .replace("listener 1883", "listener {port} 127.0.0.1")
    )
    started = private_mosquitto(config, passwd="", acl="")
    started.extra["data_dir"] = data_dir
    yield started
    print(started.log())  # shown for a failing test
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def settings(db_url: str, broker: PrivateMosquitto, tmp_path: Path) -> Settings:
    """The API under test regenerates the broker's files and SIGHUPs it via Mosquitto's pid file."""
    pid_file = Path(broker.extra["data_dir"]) / "mosquitto.pid"
    assert pid_file.read_text().strip() == str(broker.process.pid)
    return Settings(
        environment="test",
        database_url=db_url,
        mqtt_url=f"mqtt://{INGEST_USER}:{INGEST_PASSWORD}@127.0.0.1:{broker.port}",
        data_dir=tmp_path,
        mosquitto_password_file=broker.extra["passwd"],
        mosquitto_acl_file=broker.extra["acl"],
        mosquitto_pid_file=pid_file,
    )


@pytest.fixture
def ingest(broker: PrivateMosquitto, settings: Settings) -> Iterator[Session]:
    """The ingest worker's account, subscribed to everything devices publish."""
    synced = reloaded(broker, lambda: sync_broker(settings))  # `ldl broker sync` at start-up
    assert synced.reloaded and synced.accounts == 1
    with session(broker.port, INGEST_USER, INGEST_PASSWORD) as subscriber:
        assert not subscriber.connect().is_failure, broker.log()
        assert not subscriber.subscribe("ldl/v1/#").is_failure
        yield subscriber


def reloaded(broker: PrivateMosquitto, change: Callable[[], T]) -> T:
    """Run a change that SIGHUPs the broker and wait until the broker has reloaded.

    A client still in the middle of CONNECT while Mosquitto reloads is dropped (it has no
    username yet), so tests connect only after the reload; real devices simply reconnect.
    """
    before = broker.log().count(RELOAD_LINE)
    result = change()
    deadline = time.monotonic() + 5
    while broker.log().count(RELOAD_LINE) <= before:
        assert time.monotonic() < deadline, f"the broker did not reload:\n{broker.log()}"
        time.sleep(0.02)
    return result
