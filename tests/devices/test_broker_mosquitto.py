"""A real Mosquitto, started with deploy/mosquitto/mosquitto.conf and the files the registry writes,
enforces who may connect and where they may publish; revocation works without a restart."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from devices.broker import sync_broker, verify_secret
from infra.settings import Settings
from tests.conftest import PrivateMosquitto
from tests.devices.conftest import INGEST_PASSWORD, INGEST_USER, Lab, reloaded
from tests.devices.mqtt_clients import Session, session
from tests.devices.test_registry_api import register

QUIET = 0.7  # seconds a forbidden message gets to show up after its sentinel arrived
READING = json.dumps({"ts": "2026-11-24T10:00:00+01:00", "metric": "heart_rate", "value": 62})


def secret_of(
    broker: PrivateMosquitto,
    http: httpx.Client,
    headers: dict[str, str],
    lab: Lab,
    device_id: str,
    **extra: object,
) -> str:
    response = reloaded(broker, lambda: register(http, headers, lab, device_id, **extra))
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


def test_a_device_publishes_to_its_own_topic_only(
    broker: PrivateMosquitto,
    ingest: Session,
    http: httpx.Client,
    coordinator: dict[str, str],
    lab: Lab,
) -> None:
    secret = secret_of(broker, http, coordinator, lab, "bed-1")
    secret_of(broker, http, coordinator, lab, "bed-2")
    with session(broker.port, "bed-1", secret) as device:
        assert not device.connect().is_failure, broker.log()
        device.publish("ldl/v1/bed-1/readings", READING)
        assert ingest.wait_for("ldl/v1/bed-1/readings", READING)

        device.publish("ldl/v1/bed-2/readings", "forged")
        device.publish("ldl/v1/bed-1/status", "sentinel")
        before_sentinel = ingest.wait_for("ldl/v1/bed-1/status", "sentinel")
        arrived = before_sentinel + ingest.received(QUIET)
        assert all(topic.split("/")[2] == "bed-1" for topic, _ in arrived), arrived
        assert device.client.is_connected()  # refused quietly, not knocked offline
        # Devices read nothing: Mosquitto grants the SUBSCRIBE but never delivers to them.
        device.subscribe("ldl/v1/#")
        device.publish("ldl/v1/bed-1/status", "after-subscribe")
        assert ingest.wait_for("ldl/v1/bed-1/status", "after-subscribe")
        assert device.received(QUIET) == []


def test_a_wrong_secret_or_unknown_user_is_refused_at_connect(
    broker: PrivateMosquitto, http: httpx.Client, coordinator: dict[str, str], lab: Lab
) -> None:
    secret_of(broker, http, coordinator, lab, "bed-1")
    for username, password in [("bed-1", "not-the-secret"), ("nobody", "x"), ("bed-1", "")]:
        with session(broker.port, username, password) as device:
            assert device.connect().is_failure, (username, password)


def test_revoking_takes_effect_without_a_broker_restart(
    broker: PrivateMosquitto,
    ingest: Session,
    http: httpx.Client,
    coordinator: dict[str, str],
    lab: Lab,
) -> None:
    secret = secret_of(broker, http, coordinator, lab, "bed-1")
    pid = broker.process.pid
    with session(broker.port, "bed-1", secret) as device:
        assert not device.connect().is_failure
        revoked = reloaded(broker, lambda: http.post("/devices/bed-1/revoke", headers=coordinator))
        assert revoked.status_code == 200
        # Mosquitto re-checks connected clients on reload and drops the revoked one.
        assert device.disconnected.wait(5), broker.log()
    with session(broker.port, "bed-1", secret) as again:
        assert again.connect().is_failure
    assert broker.process.pid == pid and broker.process.poll() is None
    assert "Reloading config" in broker.log()
    assert "bed-1" not in broker.extra["passwd"].read_text()


def test_rotating_a_secret_retires_the_old_one(
    broker: PrivateMosquitto, http: httpx.Client, coordinator: dict[str, str], lab: Lab
) -> None:
    old = secret_of(broker, http, coordinator, lab, "bed-1")
    rotated = reloaded(broker, lambda: http.post("/devices/bed-1/secret", headers=coordinator))
    new = rotated.json()["secret"]
    with session(broker.port, "bed-1", old) as device:
        assert device.connect().is_failure
    with session(broker.port, "bed-1", new) as device:
        assert not device.connect().is_failure


def test_a_gateway_publishes_for_its_children_and_no_one_else(
    broker: PrivateMosquitto,
    ingest: Session,
    http: httpx.Client,
    coordinator: dict[str, str],
    lab: Lab,
) -> None:
    gateway_secret = secret_of(
        broker, http, coordinator, lab, "gw-1", kind="gateway", device_type="gateway"
    )
    secret_of(broker, http, coordinator, lab, "bed-1", gateway_id="gw-1")
    secret_of(broker, http, coordinator, lab, "door-1", device_type="door_sensor")
    with session(broker.port, "gw-1", gateway_secret) as gateway:
        assert not gateway.connect().is_failure
        gateway.publish("ldl/v1/bed-1/readings", READING)
        gateway.publish("ldl/v1/door-1/events", "forged")
        gateway.publish("ldl/v1/gw-1/status", "sentinel")
        arrived = ingest.wait_for("ldl/v1/gw-1/status", "sentinel") + ingest.received(QUIET)
        assert gateway.client.is_connected()  # its other children keep flowing
    topics = [topic for topic, _ in arrived]
    assert topics == ["ldl/v1/bed-1/readings", "ldl/v1/gw-1/status"]


def test_the_ingest_account_reads_through_its_shared_subscription(
    broker: PrivateMosquitto,
    settings: Settings,
    http: httpx.Client,
    coordinator: dict[str, str],
    lab: Lab,
) -> None:
    reloaded(broker, lambda: sync_broker(settings))
    secret = secret_of(broker, http, coordinator, lab, "bed-1")
    with session(broker.port, INGEST_USER, INGEST_PASSWORD) as worker:
        assert not worker.connect().is_failure
        assert not worker.subscribe("$share/ldl-ingest/ldl/v1/#").is_failure
        with session(broker.port, "bed-1", secret) as device:
            assert not device.connect().is_failure
            device.publish("ldl/v1/bed-1/readings", READING)
            assert worker.wait_for("ldl/v1/bed-1/readings", READING)


@pytest.mark.xfail(
    strict=True,
    reason="Mosquitto 2.0's acl_file never checks SUBSCRIBE (security_default.c: 'FIXME -"
    " implement ACL subscription strings'), so a device can join the worker's share group and"
    " the messages the broker hands to it are dropped. Fix: an unguessable share-group name or"
    " the dynamic-security plugin.",
)
def test_a_device_cannot_join_the_ingest_share_group(
    broker: PrivateMosquitto,
    settings: Settings,
    http: httpx.Client,
    coordinator: dict[str, str],
    lab: Lab,
) -> None:
    reloaded(broker, lambda: sync_broker(settings))
    secret = secret_of(broker, http, coordinator, lab, "bed-1")
    group = "$share/ldl-ingest/ldl/v1/#"
    with (
        session(broker.port, INGEST_USER, INGEST_PASSWORD) as worker,
        session(broker.port, "bed-1", secret) as rogue,
    ):
        assert not worker.connect().is_failure and not rogue.connect().is_failure
        worker.subscribe(group)
        rogue.subscribe(group)
        for number in range(6):
            rogue.publish("ldl/v1/bed-1/readings", f"m{number}")
        assert len(worker.received(QUIET)) == 6


def test_our_hashes_and_mosquitto_passwd_agree(tmp_path: Path) -> None:
    binary = shutil.which("mosquitto_passwd")
    if binary is None:
        pytest.skip("mosquitto_passwd is not installed")
    password_file = tmp_path / "passwd"
    subprocess.run([binary, "-b", "-c", str(password_file), "bed-1", "s3cret"], check=True)
    username, hashed = password_file.read_text().strip().split(":", 1)
    assert username == "bed-1" and hashed.startswith("$7$101$")
    assert verify_secret("s3cret", hashed) and not verify_secret("S3cret", hashed)
