"""Device health: batched upserts that never go backwards, offline after three silent intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from devices.health import HealthUpdate, record_health
from tests.devices.conftest import Lab
from tests.devices.test_registry_api import register

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def health_row(conn: psycopg.Connection, device_id: str) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT last_seen_at, last_status_at, battery, rssi, firmware FROM device_health"
        " WHERE device_id = %s",
        (device_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def devices(http: httpx.Client, coordinator: dict[str, str], lab: Lab) -> list[str]:
    ids = ["bed-1", "bed-2", "door-1"]
    for device_id in ids:
        device_type = "door_sensor" if device_id.startswith("door") else "sensor_bed"
        assert register(http, coordinator, lab, device_id, device_type=device_type).is_success
    return ids


def test_a_batch_folds_per_device_and_never_moves_backwards(
    conn: psycopg.Connection, devices: list[str]
) -> None:
    touched = record_health(
        conn,
        [
            HealthUpdate("bed-1", T0, battery=80, rssi=-60, firmware="1.0"),
            HealthUpdate("bed-1", T0 + timedelta(minutes=2)),  # a reading: seen, no status
            HealthUpdate("bed-1", T0 + timedelta(minutes=1), battery=79),
            HealthUpdate("ghost", T0),  # not registered: skipped, the batch survives
        ],
    )
    assert touched == 1
    assert health_row(conn, "bed-1") == (
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=1),
        79,
        -60,
        "1.0",
    )

    # A late, older batch (redelivery) changes nothing.
    record_health(
        conn, [HealthUpdate("bed-1", T0 - timedelta(hours=1), battery=10, firmware="0.9")]
    )
    assert health_row(conn, "bed-1")[0] == T0 + timedelta(minutes=2)
    assert health_row(conn, "bed-1")[2:] == (79, -60, "1.0")

    # A newer status updates what it carries and keeps the rest; a bad battery is ignored.
    record_health(conn, [HealthUpdate("bed-1", T0 + timedelta(minutes=5), battery=150, rssi=-70)])
    assert health_row(conn, "bed-1") == (
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=5),
        79,
        -70,
        "1.0",
    )
    assert record_health(conn, []) == 0


def online_by_device(conn: psycopg.Connection) -> dict[str, bool]:
    rows = conn.execute("SELECT device_id, online FROM device_health_status").fetchall()
    return {device_id: online for device_id, online in rows}


def test_offline_after_three_expected_intervals_of_silence(
    conn: psycopg.Connection, devices: list[str]
) -> None:
    now = conn.execute("SELECT now()").fetchone()[0]
    # sensor_bed reports every minute, door_sensor every 15 minutes.
    record_health(
        conn,
        [
            HealthUpdate("bed-1", now - timedelta(minutes=2, seconds=50)),
            HealthUpdate("bed-2", now - timedelta(minutes=3, seconds=10)),
            HealthUpdate("door-1", now - timedelta(minutes=40)),
        ],
    )
    assert online_by_device(conn) == {"bed-1": True, "bed-2": False, "door-1": True}

    record_health(conn, [HealthUpdate("door-1", now - timedelta(minutes=46))])  # older: ignored
    assert online_by_device(conn)["door-1"] is True


def test_a_device_never_heard_from_is_offline(conn: psycopg.Connection, devices: list[str]) -> None:
    assert online_by_device(conn) == {"bed-1": False, "bed-2": False, "door-1": False}


def test_health_lists_a_trials_devices_offline_first_for_its_company_only(
    http: httpx.Client,
    conn: psycopg.Connection,
    coordinator: dict[str, str],
    company_key: dict[str, str],
    other_company_key: dict[str, str],
    lab: Lab,
    devices: list[str],
) -> None:
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for device_id, trial in [
        ("bed-1", lab.trial),
        ("bed-2", lab.trial),
        ("door-1", lab.other_trial),
    ]:
        response = http.post(
            f"/devices/{device_id}/deployments",
            json={"trial_id": trial, "site_id": lab.site, "valid_from": since},
            headers=coordinator,
        )
        assert response.status_code == 201, response.text
    record_health(conn, [HealthUpdate("bed-1", datetime.now(UTC), battery=55, firmware="2.0")])
    conn.commit()

    trial_health = http.get(f"/trials/{lab.trial}/devices/health", headers=company_key).json()
    assert [(d["device_id"], d["online"]) for d in trial_health["items"]] == [
        ("bed-2", False),
        ("bed-1", True),
    ]
    assert trial_health["items"][1]["battery"] == 55
    assert trial_health["items"][1]["expected_interval"] == "PT1M"

    not_theirs = http.get(f"/trials/{lab.trial}/devices/health", headers=other_company_key)
    assert not_theirs.status_code == 404
    assert http.get("/trials/999999/devices/health", headers=coordinator).status_code == 404

    site_for_company = http.get(f"/sites/{lab.site}/devices/health", headers=company_key).json()
    assert {d["device_id"] for d in site_for_company["items"]} == {"bed-1", "bed-2"}
    site_for_coordinator = http.get(f"/sites/{lab.site}/devices/health", headers=coordinator)
    assert site_for_coordinator.json()["total"] == 3
    assert http.get("/sites/999999/devices/health", headers=coordinator).status_code == 404
