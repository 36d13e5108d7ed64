"""The ingest worker: MQTT in, batches committed, acknowledgements only after the commit.

Threads: paho's network loop (the callback only wraps the message and queues it), a router
(decode ▶ route ▶ batch), a committer (write ▶ commit ▶ ack, batches in order) and the registry
listener. Router and committer overlap: while PostgreSQL commits one batch, Python decodes the
next; at most one finished batch waits between them. The buffer is bounded by MQTT itself: the
worker connects with Receive Maximum = RECEIVE_MAXIMUM_FACTOR × batch size and acks only
committed messages, so the broker never has more than that in flight to it; while the database
is away nothing is acked, the broker stops sending and keeps the rest (persistent session), and
the worker resumes on its own when the database returns.

In-process use (e.g. a benchmark): `worker = IngestWorker(settings); worker.start(); ...;
worker.stop()`. `ldl ingest` calls `run_worker(settings)`, which blocks until SIGTERM/SIGINT.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import queue
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from infra.errors import ConfigError
from infra.settings import Settings
from ingest import metrics
from ingest.batch import Batch
from ingest.decode import decode
from ingest.messages import Inbound
from ingest.mqtt_client import BufferedReadClient
from ingest.registry import RegistryCache
from ingest.writer import BatchWriter, Stopped, Written

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM_FACTOR = 3  # one batch committing, one waiting for it, one filling
ROWS_PER_MESSAGE_BATCH = 5  # a batch closes at batch size messages or 5 × batch size rows
MQTT_MAX_RECEIVE = 65_535
STOP_FLUSH_SECONDS = 10.0  # how long SIGTERM waits for the database to take the last batch
STARTUP_SECONDS = 10.0  # `ldl ingest` gives up when the broker gives it no session in this time


def receive_maximum(batch_size: int) -> int:
    return max(100, min(MQTT_MAX_RECEIVE, RECEIVE_MAXIMUM_FACTOR * batch_size))


class IngestWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = settings.mqtt_topic_prefix.rstrip("/")
        group = settings.ingest_share_group
        self.subscription = f"$share/{group}/{self.prefix}/#" if group else f"{self.prefix}/#"
        self._inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._generation = 0  # bumped on every broker connection; acks never cross connections
        self._connected = threading.Event()
        self._refused: ReasonCode | None = None  # the broker's answer to a refused login
        self._last_problem: str | None = None  # why the last connection ended
        self.registry = RegistryCache(settings.require_database_url())
        self._writer = BatchWriter(
            settings.require_database_url(), settings.ingest_session_expiry_seconds
        )
        self._ready: queue.Queue[Batch | None] = queue.Queue(maxsize=1)
        self._router_thread = threading.Thread(
            target=self._route_loop, name="ldl-ingest-router", daemon=True
        )
        self._committer_thread = threading.Thread(
            target=self._commit_loop, name="ldl-ingest-committer", daemon=True
        )
        self._client = self._build_client()
        self._metrics_server: Any = None
        self.committed_messages = 0

    # ---------------------------------------------------------------- lifecycle
    def start(
        self,
        connect_timeout: float = 30,
        interrupted: threading.Event | None = None,
        require_session: bool = False,
    ) -> None:
        """Connect (a broker that cannot be reached is a ConfigError at once), then run.

        Waits up to `connect_timeout` for the subscription, or until `interrupted` is set; a
        broker that refuses the login is a ConfigError naming LDL_MQTT_URL, and so, with
        `require_session`, is one that gives no session within the time.
        """
        url = urlsplit(self.settings.require_mqtt_url())
        host, port = (
            url.hostname or "127.0.0.1",
            url.port or (8883 if url.scheme == "mqtts" else 1883),
        )
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.settings.ingest_session_expiry_seconds
        properties.ReceiveMaximum = receive_maximum(self.settings.ingest_batch_size)
        try:
            # The first connection in the foreground, so a wrong address fails within the
            # socket's timeout; paho's loop reconnects by itself after that.
            self._client.connect(host, port, keepalive=30, clean_start=False, properties=properties)
        except OSError as exc:  # refused, unreachable, unknown host, TLS handshake
            raise ConfigError(f"LDL_MQTT_URL: cannot connect to {host}:{port}: {exc}") from None
        self._metrics_server = metrics.serve_metrics(self.settings.ingest_metrics_port)
        self.registry.start()
        self._committer_thread.start()
        self._router_thread.start()
        self._client.loop_start()
        deadline = time.monotonic() + connect_timeout
        while not self._connected.wait(0.1):  # short waits: a signal handler runs between them
            if self._refused is not None:
                self.stop()
                raise ConfigError(
                    f"LDL_MQTT_URL: the broker at {host}:{port} refused the connection:"
                    f" {self._refused}"
                )
            if interrupted is not None and interrupted.is_set():
                return
            if time.monotonic() > deadline:
                break
        if self._connected.is_set():
            return
        if require_session:
            self.stop()
            raise ConfigError(
                f"LDL_MQTT_URL: no MQTT session with {host}:{port} within {connect_timeout:.0f} s"
                f" (last: {self._last_problem or 'no answer'})"
            )
        log.warning("not subscribed yet; paho keeps trying in the background")

    @property
    def subscribed(self) -> bool:
        """The broker has acknowledged the subscription on the current connection."""
        return self._connected.is_set()

    def stop(self) -> None:
        """Flush the current batch, ack what is committed, disconnect (the session stays)."""
        self._writer.stop_deadline = time.monotonic() + STOP_FLUSH_SECONDS
        self._stopping.set()
        self._router_thread.join(timeout=STOP_FLUSH_SECONDS + 5)
        self._committer_thread.join(timeout=STOP_FLUSH_SECONDS + 5)
        self._client.disconnect()
        self._client.loop_stop()
        self._writer.close()
        self.registry.stop()
        metrics.stop_metrics(self._metrics_server)

    # --------------------------------------------------------------------- MQTT
    def _build_client(self) -> mqtt.Client:
        client = BufferedReadClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.ingest_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        url = urlsplit(self.settings.require_mqtt_url())
        if url.username:
            client.username_pw_set(unquote(url.username), unquote(url.password or ""))
        if url.scheme == "mqtts":
            ca_file = self.settings.mqtt_ca_file
            client.tls_set(ca_certs=str(ca_file) if ca_file else None)
        # Quick first retries: Mosquitto 2.0 routes nothing to a restored shared subscription
        # until its member is back (paho's int hint is narrower than what it accepts).
        client.reconnect_delay_set(min_delay=0.1, max_delay=5)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            self._refused = reason
            return
        self._generation += 1
        client.subscribe(self.subscription, qos=1)
        log.info("connected to the broker (session present: %s)", flags.session_present)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        # Ready only now: Mosquitto routes nothing to a shared subscription restored from its
        # store until its member has subscribed again (the plain one is routed all along).
        if any(reason.is_failure for reason in reasons):
            log.error("the broker refused the subscription %s: %s", self.subscription, reasons)
            return
        self._connected.set()
        log.info("subscribed to %s", self.subscription)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # Whatever was not acked is redelivered on the next connection; never ack it across.
        self._generation += 1
        self._connected.clear()
        self._last_problem = str(reason)
        if not self._stopping.is_set():
            log.warning("lost the broker: %s; reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "<not utf-8>"
        self._inbox.put(
            Inbound(
                topic,
                bytes(message.payload),
                message.mid,
                message.qos,
                datetime.now(UTC),
                self._generation,
                bool(message.dup),
            )
        )

    # ------------------------------------------------------------- router, committer
    def _route_loop(self) -> None:
        """Decode and route into batches; hand each full (or timed-out) one to the committer."""
        batch = Batch()
        opened = time.monotonic()
        size, window = self.settings.ingest_batch_size, self.settings.ingest_batch_seconds
        max_rows = ROWS_PER_MESSAGE_BATCH * size
        registry, prefix = self.registry, self.prefix
        received = 0
        while not self._stopping.is_set():
            wait = window - (time.monotonic() - opened) if batch.entries else 0.2
            try:
                inbound: Inbound | None = self._inbox.get(timeout=max(wait, 0.001))
            except queue.Empty:
                inbound = None
            if inbound is not None:
                received += 1
                if inbound.generation == self._generation:
                    if not batch.entries:
                        opened = time.monotonic()
                    batch.add(inbound, decode(inbound, prefix), registry.current)
            if batch.entries and (
                len(batch) >= size or batch.rows >= max_rows or time.monotonic() - opened >= window
            ):
                metrics.MESSAGES_RECEIVED.inc(received)  # counted per batch, not per message
                received = 0
                if not self._hand_over(batch):
                    return
                batch = Batch()
        metrics.MESSAGES_RECEIVED.inc(received)
        if batch.entries:
            self._hand_over(batch)
        self._hand_over(None)  # the committer's signal to finish

    def _hand_over(self, batch: Batch | None) -> bool:
        """Queue for the committer (waiting while it is busy); False once it has given up."""
        while self._committer_thread.is_alive():
            try:
                self._ready.put(batch, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _commit_loop(self) -> None:
        while True:
            try:
                batch = self._ready.get(timeout=0.2)
            except queue.Empty:
                if self._router_thread.is_alive():
                    continue
                return
            if batch is None or not self._flush(batch):
                return

    def _flush(self, batch: Batch) -> bool:
        """Commit and ack; False when the worker was stopped before the database came back."""
        batch = self._current_only(batch)
        if not batch.entries:
            return True
        started = time.monotonic()
        try:
            written = self._writer.write(batch, self.registry.current)
        except Stopped as exc:
            log.error(
                "stopping with %d messages uncommitted (redelivered later): %s", len(batch), exc
            )
            return False
        metrics.COMMIT_SECONDS.observe(time.monotonic() - started)
        generation = self._generation
        for inbound, _ in batch.entries:
            if inbound.generation == generation:
                self._client.ack(inbound.mid, inbound.qos)
        self._count(batch, written)
        return True

    def _current_only(self, batch: Batch) -> Batch:
        """Drop messages from an earlier broker connection: the broker sends them again."""
        generation = self._generation
        if all(inbound.generation == generation for inbound, _ in batch.entries):
            return batch
        current = Batch()
        for inbound, outcome in batch.entries:
            if inbound.generation == generation:
                current.add(inbound, outcome, self.registry.current)
        return current

    def _count(self, batch: Batch, written: Written) -> None:
        self.committed_messages += len(batch)
        metrics.MESSAGES_COMMITTED.inc(len(batch))
        metrics.BATCH_MESSAGES.observe(len(batch))
        metrics.READINGS_STORED.labels("reading").inc(written.readings)
        metrics.READINGS_STORED.labels("event").inc(written.events)
        metrics.READINGS_DEDUPLICATED.labels("reading").inc(written.deduplicated_readings)
        metrics.READINGS_DEDUPLICATED.labels("event").inc(written.deduplicated_events)
        metrics.READINGS_DROPPED_FOR_CONSENT.inc(written.consent_dropped)
        for dead in written.dead_letters:
            metrics.MESSAGES_DEAD_LETTERED.labels(dead.reason.value).inc()
        now = datetime.now(UTC)
        for device_time in batch.device_times:
            metrics.LAG_SECONDS.observe(max((now - device_time).total_seconds(), 0.0))


def run_worker(settings: Settings, ready_file: Path | None = None) -> None:
    """Run until SIGTERM or SIGINT; then flush, ack what is committed, and return (exit 0).

    `ready_file` is written once the broker has acknowledged the subscription (SUBACK), and
    removed on the way out: from then on nothing published is lost, also on a first start,
    when no session holds messages yet (what `ldl demo` waits for before its backfill).
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints every thread's stack
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = IngestWorker(settings)
    worker.start(connect_timeout=STARTUP_SECONDS, interrupted=stop, require_session=True)
    log.info("ingest worker %s on %s", settings.ingest_client_id, worker.subscription)
    try:
        if ready_file is not None and worker.subscribed:
            _write_atomically(ready_file, f"{os.getpid()} {worker.subscription}\n")
        stop.wait()
    finally:
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    worker.stop()
    log.info("stopped after %d committed messages", worker.committed_messages)


def _write_atomically(path: Path, text: str) -> None:
    """Whoever polls for the file sees it whole or not at all."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)
