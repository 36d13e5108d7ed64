"""The worker runs in-process too (as a benchmark uses it) and exports Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from infra.settings import Settings
from ingest.worker import IngestWorker
from tests.conftest import free_port
from tests.ingest.conftest import Publisher, at, count, reading, seed_lab, wait_until


def test_in_process_worker_stores_and_exports_metrics(
    db_url: str, broker: Any, topic_prefix: str, publisher: Callable[..., Publisher]
) -> None:
    lab = seed_lab(db_url)
    port = free_port()
    settings = Settings(
        environment="test",
        database_url=db_url,
        mqtt_url=broker.url,
        mqtt_topic_prefix=topic_prefix,
        ingest_client_id=f"in-process-{topic_prefix.split('/')[0]}",
        ingest_metrics_port=port,
    )
    worker = IngestWorker(settings)
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
