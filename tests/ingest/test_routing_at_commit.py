"""A device registered and deployed a moment ago is stored, not dead-lettered, even when its
first readings reach the worker before the registry's NOTIFY does: the cache's refusal for want
of a device or deployment is checked against the committed registry at commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from infra.db import connect
from ingest.batch import Batch
from ingest.decode import decode
from ingest.messages import Inbound
from ingest.registry import Registry, load_registry
from ingest.writer import BatchWriter
from tests.ingest.conftest import DEPLOYED_SINCE, REGISTERED_AT, Lab, at, count, reading, seed_lab

DEAD = "SELECT count(*) FROM dead_letters WHERE topic LIKE %s"
STORED = "SELECT count(*) FROM telemetry_readings WHERE device_id = %s"


def _batch(device: str, registry: Registry, readings: int) -> Batch:
    batch = Batch()
    for index in range(readings):
        inbound = Inbound(
            f"ldl/v1/{device}/readings", reading(at(index)), index + 1, 1, at(index), 0, False
        )
        batch.add(inbound, decode(inbound, "ldl/v1"), registry)
    return batch


def _register_and_deploy(db_url: str, lab: Lab, device: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (id, device_type, company_id, registered_at)"
            " VALUES (%s, 'sensor_bed', %s, %s)",
            (device, lab.company_id, REGISTERED_AT),
        )
        conn.execute(
            "INSERT INTO deployments (device_id, trial_id, site_id, valid_from)"
            " SELECT %s, trial_id, site_id, %s FROM deployments WHERE device_id = %s",
            (device, DEPLOYED_SINCE, lab.room_device),
        )


def test_a_device_deployed_after_the_cache_was_loaded_is_stored_not_dead_lettered(
    db_url: str,
) -> None:
    lab = seed_lab(db_url)
    with connect(db_url) as conn:
        stale = load_registry(conn)  # the worker's cache, before the device existed
    _register_and_deploy(db_url, lab, "bed-new-1")
    batch = _batch("bed-new-1", stale, 5)
    assert len(batch.dead_letters) == 5  # the cache alone would refuse all five

    writer = BatchWriter(db_url, ledger_seconds=3600)
    try:
        written = writer.write(batch, stale)
        unknown = writer.write(_batch("never-registered", stale, 2), stale)
    finally:
        writer.close()

    assert (written.readings, written.dead_letters) == (5, ())
    assert count(db_url, STORED, "bed-new-1") == 5
    assert count(db_url, DEAD, "%bed-new-1%") == 0
    # A device the registry really does not know is still refused, with its reason.
    assert {d.reason.value for d in unknown.dead_letters} == {"unknown_device"}
    assert count(db_url, DEAD, "%never-registered%") == 2


def test_a_first_reading_stamped_in_the_second_of_registration_is_not_before_it(
    db_url: str,
) -> None:
    # Registered at 10:00:00.6, deployed from 10:00 (a form's minute), and the device's first
    # reading says 10:00:00 (`date -Iseconds`): stored, not "before registration".
    registered = datetime.now(UTC).replace(microsecond=600_000) - timedelta(minutes=1)
    lab = seed_lab(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO devices (id, device_type, company_id, registered_at)"
            " VALUES ('bed-fresh', 'sensor_bed', %s, %s)",
            (lab.company_id, registered),
        )
        conn.execute(
            "INSERT INTO deployments (device_id, trial_id, site_id, valid_from)"
            " SELECT 'bed-fresh', trial_id, site_id, date_trunc('minute', %s::timestamptz)"
            " FROM deployments WHERE device_id = %s",
            (registered, lab.room_device),
        )
    with connect(db_url) as conn:
        registry = load_registry(conn)
    stamps = [registered.replace(microsecond=0), registered - timedelta(minutes=10)]
    batch = Batch()
    for index, stamp in enumerate(stamps):
        inbound = Inbound(
            "ldl/v1/bed-fresh/readings", reading(stamp), index + 1, 1, registered, 0, False
        )
        batch.add(inbound, decode(inbound, "ldl/v1"), registry)
    writer = BatchWriter(db_url, ledger_seconds=3600)
    try:
        written = writer.write(batch, registry)
    finally:
        writer.close()
    assert written.readings == 1
    # Ten minutes before it is more than a device clock's skew: still refused.
    assert [d.reason.value for d in written.dead_letters] == ["before_registration"]
