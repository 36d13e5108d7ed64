"""The worker's Prometheus metrics (text format on settings.ingest_metrics_port; 0 disables)."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

MESSAGES_RECEIVED = Counter("ldl_ingest_messages_received", "MQTT messages taken off the broker")
MESSAGES_COMMITTED = Counter(
    "ldl_ingest_messages_committed", "messages whose outcome was committed and acknowledged"
)
MESSAGES_DEAD_LETTERED = Counter(
    "ldl_ingest_messages_dead_lettered", "messages (or parts) sent to dead letters", ["reason"]
)
READINGS_STORED = Counter("ldl_ingest_readings_stored", "new telemetry rows", ["kind"])
READINGS_DEDUPLICATED = Counter(
    "ldl_ingest_readings_deduplicated", "rows already stored (redeliveries)", ["kind"]
)
READINGS_DROPPED_FOR_CONSENT = Counter(
    "ldl_ingest_readings_dropped_for_consent", "rows refused by the consent gate"
)
BATCH_MESSAGES = Histogram(
    "ldl_ingest_batch_messages",
    "messages per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000),
)
COMMIT_SECONDS = Histogram(
    "ldl_ingest_commit_seconds",
    "time to write and commit one batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Fine below a second: the benchmark reads its latency percentiles from these.
LAG_BUCKETS = (
    *(ms / 1000 for ms in (5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750)),
    *(1, 1.5, 2, 3, 5, 10, 30, 60, 300, 3600),
)
LAG_SECONDS = Histogram(
    "ldl_ingest_lag_seconds",
    "commit time minus the device's own timestamp, per message",
    buckets=LAG_BUCKETS,
)
DATABASE_RETRIES = Counter("ldl_ingest_database_retries", "batch writes retried after an error")
DATABASE_SYNCHRONOUS_STANDBYS = Gauge(
    "ldl_ingest_database_synchronous_standbys",
    "standbys each commit waits for (synchronous_standby_names); 0: an acked reading is on one node",
)
DATABASE_PRIMARY_CHANGES = Counter(
    "ldl_ingest_database_primary_changes", "reconnections that reached another node (failovers)"
)


def serve_metrics(port: int) -> tuple[WSGIServer, threading.Thread] | None:
    """Start the exporter; returns what `stop_metrics` needs, or None when disabled."""
    if port == 0:
        return None
    server, thread = start_http_server(port)
    return server, thread


def stop_metrics(served: tuple[WSGIServer, threading.Thread] | None) -> None:
    if served:
        server, thread = served
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
