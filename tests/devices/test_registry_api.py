"""The registry over real HTTP: types, devices, gateways, secrets shown once and stored hashed."""

from __future__ import annotations

import httpx
import psycopg

from devices.broker import verify_secret
from tests.devices.conftest import Lab


def register(
    http: httpx.Client, headers: dict[str, str], lab: Lab, device_id: str, **extra: object
):
    body = {"id": device_id, "device_type": "sensor_bed", "company_id": lab.company, **extra}
    return http.post("/devices", json=body, headers=headers)


def test_registering_returns_the_secret_once_and_stores_a_mosquitto_hash(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, conn: psycopg.Connection
) -> None:
    response = register(http, coordinator, lab, "bed-1", serial="SB-1", firmware="2.4.1")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["mqtt_username"] == "bed-1" and len(created["secret"]) >= 40

    stored = conn.execute("SELECT secret_hash FROM devices WHERE id = 'bed-1'").fetchone()[0]
    assert stored.startswith("$7$101$") and created["secret"] not in stored
    assert verify_secret(created["secret"], stored)

    shown_again = http.get("/devices/bed-1", headers=coordinator).json()
    assert "secret" not in shown_again and shown_again["firmware"] == "2.4.1"


def test_unknown_device_type_is_refused_with_a_clear_message(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab
) -> None:
    response = register(http, coordinator, lab, "bed-1", device_type="teleporter")
    assert response.status_code == 422
    assert "unknown device type 'teleporter'" in response.json()["detail"]


def test_malformed_identifiers_are_refused(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab
) -> None:
    for bad in ["bed 1", "bed/1", "bed+", "#", "", "x" * 65, "seng-æ"]:
        response = register(http, coordinator, lab, bad)
        assert response.status_code == 422, bad
        assert response.json()["problems"][0]["field"] == "body.id"


def test_a_taken_identifier_is_a_conflict(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab
) -> None:
    assert register(http, coordinator, lab, "gw-1", kind="gateway").status_code == 201
    response = register(http, coordinator, lab, "gw-1")
    assert response.status_code == 409
    assert "already registered" in response.json()["detail"]


def test_devices_sit_behind_registered_gateways_only(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab
) -> None:
    assert register(http, coordinator, lab, "bed-1").status_code == 201
    assert "not registered" in register(http, coordinator, lab, "b2", gateway_id="gw-x").text
    assert "not a gateway" in register(http, coordinator, lab, "b3", gateway_id="bed-1").text
    nested = register(http, coordinator, lab, "gw-2", kind="gateway", gateway_id="bed-1")
    assert nested.status_code == 422
    assert register(http, coordinator, lab, "gw-1", kind="gateway").status_code == 201
    child = register(http, coordinator, lab, "bed-2", gateway_id="gw-1")
    assert child.status_code == 201 and child.json()["gateway_id"] == "gw-1"


def test_rotate_replaces_the_secret_and_revoke_ends_it(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, conn: psycopg.Connection
) -> None:
    first = register(http, coordinator, lab, "bed-1").json()["secret"]
    rotated = http.post("/devices/bed-1/secret", headers=coordinator)
    assert rotated.status_code == 200
    second = rotated.json()["secret"]
    stored = conn.execute("SELECT secret_hash FROM devices WHERE id = 'bed-1'").fetchone()[0]
    assert verify_secret(second, stored) and not verify_secret(first, stored)

    revoked = http.post("/devices/bed-1/revoke", headers=coordinator)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert http.post("/devices/bed-1/secret", headers=coordinator).status_code == 409
    assert http.post("/devices/nope/revoke", headers=coordinator).status_code == 404
    actions = [row[0] for row in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions[-3:] == ["device.register", "device.rotate_secret", "device.revoke"]


def test_coordinators_extend_the_catalogue_and_everyone_reads_it(
    http: httpx.Client, coordinator: dict[str, str], company_key: dict[str, str]
) -> None:
    body = {"code": "hip_protector", "name": "Hip protector", "expected_interval": "PT10M"}
    assert http.post("/device-types", json=body, headers=company_key).status_code == 403
    created = http.post("/device-types", json=body, headers=coordinator)
    assert created.status_code == 201 and created.json()["expected_interval"] == "PT10M"
    assert http.post("/device-types", json=body, headers=coordinator).status_code == 409
    codes = [t["code"] for t in http.get("/device-types", headers=company_key).json()]
    assert {"sensor_bed", "medicine_dispenser", "hip_protector"} <= set(codes)


def test_a_company_sees_only_the_devices_it_supplies(
    http: httpx.Client,
    coordinator: dict[str, str],
    company_key: dict[str, str],
    other_company_key: dict[str, str],
    lab: Lab,
) -> None:
    register(http, coordinator, lab, "bed-1")
    register(http, coordinator, lab, "pill-1", company_id=lab.other_company)
    mine = http.get("/devices", headers=company_key).json()
    assert [d["id"] for d in mine["items"]] == ["bed-1"] and mine["total"] == 1
    assert http.get("/devices/bed-1", headers=other_company_key).status_code == 404
    assert http.post("/devices/bed-1/revoke", headers=company_key).status_code == 403


def test_device_schemas_are_published_for_device_makers(http: httpx.Client) -> None:
    schemas = http.get("/device-schemas").json()
    assert {"reading", "event", "status"} <= set(schemas)
    assert "metric" in schemas["reading"]["properties"]
