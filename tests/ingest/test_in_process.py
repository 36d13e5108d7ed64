"""The worker runs in-process too (as a benchmark uses it) and exports Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg

from infra.settings import Settings
from ingest.repository import forget_counted, note_counted
from ingest.worker import IngestWorker
from tests.conftest import free_port
from tests.ingest.conftest import Publisher, at, count, reading, seed_lab, wait_until


def _worker(db_url: str, broker: Any, topic_prefix: str, metrics_port: int = 0) -> IngestWorker:
    return IngestWorker(
        Settings(
            environment="test",
            database_url=db_url,
            mqtt_url=broker.url,
            mqtt_topic_prefix=topic_prefix,
            ingest_client_id=f"in-process-{topic_prefix.split('/')[0]}",
            ingest_metrics_port=metrics_port,
        )
    )


def test_in_process_worker_stores_and_exports_metrics(
    db_url: str, broker: Any, topic_prefix: str, publisher: Callable[..., Publisher]
) -> None:
    lab = seed_lab(db_url)
    port = free_port()
    worker = _worker(db_url, broker, topic_prefix, metrics_port=port)
    worker.start()
    try:
        pub = publisher()
        for index in range(20):
            pub.publish(f"{topic_prefix}/{lab.room_device}/readings", reading(at(index)))
        pub.publish(f"{topic_prefix}/{lab.room_device}/readings", b"{")
        pub.flush()
        wait_until(lambda: worker.committed_messages == 21, 10, "21 committed messages")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        worker.stop()
    assert count(db_url, "SELECT count(*) FROM telemetry_readings") == 20
    for name in (
        'ldl_ingest_readings_stored_total{kind="reading"}',
        'ldl_ingest_messages_dead_lettered_total{reason="malformed_json"}',
        "ldl_ingest_commit_seconds_bucket",
        "ldl_ingest_lag_seconds_count",
        "ldl_ingest_batch_messages_count",
    ):
        assert name in metrics


def test_a_message_committed_but_not_acknowledged_is_recorded_once_when_redelivered(
    db_url: str, broker: Any, topic_prefix: str, publisher: Callable[..., Publisher]
) -> None:
    """As if the worker died between its commit and its acks: the broker redelivers (DUP)."""
    lab = seed_lab(db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE consents SET valid_until = %s, ended_by = 'withdrawn', withdrawal_mode = 'keep'"
            " WHERE participant_id = %s",
            (at(0), lab.participant_id),
        )
    worker = _worker(db_url, broker, topic_prefix)
    acks = worker._client.ack
    worker._client.ack = lambda mid, qos: mqtt.MQTT_ERR_SUCCESS  # type: ignore[method-assign]
    worker.start()
    sent = [
        (f"{topic_prefix}/{lab.room_device}/readings", reading(at(1))),  # stored
        (f"{topic_prefix}/{lab.room_device}/readings", b"{"),  # a dead letter
        (f"{topic_prefix}/{lab.participant_device}/readings", reading(at(2))),  # a consent drop
    ]
    try:
        pub = publisher()
        for topic, payload in sent:
            pub.publish(topic, payload)
        pub.flush()
        wait_until(lambda: worker.committed_messages == 3, 10, "3 committed, none acked")
        worker._client.ack = acks  # type: ignore[method-assign]
        worker._client.reconnect()  # the broker sends the three again, flagged DUP
        wait_until(lambda: worker.committed_messages == 6, 10, "the 3 redelivered committed")
        pub.publish(*sent[1])  # the device sends the same bad bytes again: a new message
        pub.flush()
        wait_until(lambda: worker.committed_messages == 7, 10, "the repeat committed")
    finally:
        worker.stop()
    assert count(db_url, "SELECT count(*) FROM telemetry_readings") == 1
    assert count(db_url, "SELECT count(*) FROM dead_letters") == 2  # the first and the repeat
    drops = "SELECT coalesce(sum(count), 0) FROM consent_drops WHERE trial_id = %s"
    assert count(db_url, drops, lab.trial_id) == 1


def test_the_ledger_forgets_what_the_broker_would_no_longer_redeliver(
    conn: psycopg.Connection,
) -> None:
    old, recent = b"o" * 16, b"r" * 16
    assert note_counted(conn, [old, recent]) == {old, recent}
    assert note_counted(conn, [old, recent]) == set()
    conn.execute("RESET ROLE")  # backdating is the test's doing; the app may not update
    conn.execute(
        "UPDATE ingest_counted_messages SET counted_at = now() - interval '8 days'"
        " WHERE digest = %s",
        (old,),
    )
    forget_counted(conn, 7 * 24 * 3600)
    assert note_counted(conn, [old, recent]) == {old}
