"""The simulator, as the compose stack's demo profile runs it: logged in as each device, through
a Mosquitto that enforces the registry's credentials and ACLs."""

from __future__ import annotations

import psycopg

from devices.simulator import run_simulator
from infra.db import connect
from infra.settings import Settings
from ldl.seed import seed_demo_lab
from tests.conftest import PrivateMosquitto
from tests.devices.mqtt_clients import Session


def test_simulator_publishes_as_each_device_through_the_enforcing_broker(
    broker: PrivateMosquitto,
    settings: Settings,
    ingest: Session,
) -> None:
    with connect(settings.require_database_url()) as conn:
        seed_demo_lab(conn)
        conn.commit()
        devices = conn.execute(
            "SELECT count(*) FROM deployments WHERE valid_during @> now()"
        ).fetchone()[0]

    sent = run_simulator(settings, rate=0, backfill_days=0.25, as_devices=True)

    received = ingest.received(timeout=5)
    assert sent > 0
    assert len(received) == sent, broker.log()[-2000:]
    # Every message arrived (none denied), each on the topic of a device deployed now; the
    # devices that report readings all spoke (stocking aids send only a few events a day).
    publishers = {topic.split("/")[2] for topic, _ in received}
    assert publishers <= _deployed(settings)
    assert len(publishers) >= devices - 2
    assert "denied" not in broker.log().lower()


def _deployed(settings: Settings) -> set[str]:
    with psycopg.connect(settings.require_database_url()) as conn:
        rows = conn.execute("SELECT device_id FROM deployments WHERE valid_during @> now()")
        return {device for (device,) in rows}
