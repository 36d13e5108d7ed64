"""Helpers for the ingest tests: a seeded registry, the worker as a process, a capped publisher."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[2]
DEPLOYED_SINCE = datetime(2026, 1, 1, tzinfo=UTC)
REGISTERED_AT = datetime(2025, 12, 1, tzinfo=UTC)

# A private broker that loses nothing: persistence on, no queue limit for offline sessions.
LOSSLESS_MOSQUITTO = """
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {store}/
autosave_interval 1
max_queued_messages 0
"""


@dataclass(frozen=True)
class Lab:
    """What `seed_lab` created: a room device, a participant's device and the participant."""

    trial_id: int
    company_id: int
    room_device: str
    participant_device: str
    participant_id: int


def seed_lab(db_url: str) -> Lab:
    tag = uuid.uuid4().hex[:6]
    with psycopg.connect(db_url, autocommit=True) as conn:
        company_id = _one(
            conn, "INSERT INTO companies (name) VALUES (%s) RETURNING id", f"Co {tag}"
        )
        site_id = _one(
            conn,
            "INSERT INTO sites (name, municipality) VALUES (%s, 'Kolding') RETURNING id",
            f"Site {tag}",
        )
        unit_id = _one(
            conn, "INSERT INTO units (site_id, name) VALUES (%s, 'A') RETURNING id", site_id
        )
        trial_id = _one(
            conn,
            "INSERT INTO trials (company_id, title, product, collaboration_form, status)"
            " VALUES (%s, 'Night checks', 'Bed sensor', 'opi', 'running') RETURNING id",
            company_id,
        )
        participant_id = _one(
            conn,
            "INSERT INTO participants (trial_id, pseudonym, site_id, unit_id)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            trial_id,
            f"P-{tag}",
            site_id,
            unit_id,
        )
        conn.execute(
            "INSERT INTO consents (participant_id, version, scopes, given_by, evidence_ref,"
            " valid_from) VALUES (%s, 1, '{telemetry}', 'participant', 'paper-1', %s)",
            (participant_id, DEPLOYED_SINCE),
        )
        room, worn = f"room-{tag}", f"bed-{tag}"
        for device in (room, worn):
            conn.execute(
                "INSERT INTO devices (id, device_type, company_id, registered_at)"
                " VALUES (%s, 'sensor_bed', %s, %s)",
                (device, company_id, REGISTERED_AT),
            )
        conn.cursor().executemany(
            "INSERT INTO deployments (device_id, trial_id, site_id, unit_id, participant_id,"
            " valid_from) VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (room, trial_id, site_id, unit_id, None, DEPLOYED_SINCE),
                (worn, trial_id, site_id, unit_id, participant_id, DEPLOYED_SINCE),
            ],
        )
    return Lab(trial_id, company_id, room, worn, participant_id)


def _one(conn: psycopg.Connection, query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def count(db_url: str, query: str, *params: Any) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- the worker
class WorkerProcess:
    """`python -m ingest` in a subprocess, so a test can SIGKILL it."""

    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log_path = log_path
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingest", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        return self

    def wait_connected(self, timeout: float = 20) -> None:
        wait_until(lambda: "subscribed to" in self.log(), timeout, "worker to subscribe")

    def wait_subscribed(self, times: int, timeout: float = 10) -> None:
        """Until the worker's subscription was acknowledged `times` times (once per connection)."""
        wait_until(lambda: self.log().count("subscribed to") >= times, timeout, "resubscribed")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self, timeout: float = 20) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def broker(private_mosquitto: Callable[..., Any]) -> Iterator[Any]:
    """This test's own lossless Mosquitto (the shared one drops beyond 1000 queued messages)."""
    # Mosquitto started as root drops to its own user, which must be able to write its store
    # (pytest's tmp_path is not reachable for that user).
    store = Path(tempfile.mkdtemp(prefix="ldl-mosq-store-"))
    store.chmod(0o777)
    yield private_mosquitto(LOSSLESS_MOSQUITTO.replace("{store}", str(store)))
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
def start_worker(
    db_url: str, broker: Any, topic_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    workers: list[WorkerProcess] = []

    def start(
        client_id: str | None = None,
        broker_url: str | None = None,
        args: tuple[str, ...] = (),
        **settings: str,
    ) -> WorkerProcess:
        env = {
            **os.environ,
            "LDL_ENVIRONMENT": "test",
            "LDL_DATABASE_URL": db_url,
            "LDL_MQTT_URL": broker_url or broker.url,
            "LDL_MQTT_TOPIC_PREFIX": topic_prefix,
            "LDL_INGEST_CLIENT_ID": client_id or f"ingest-{topic_prefix.split('/')[0]}",
            "LDL_INGEST_METRICS_PORT": "0",
            "LDL_INGEST_BATCH_SIZE": "200",
            "LDL_INGEST_BATCH_SECONDS": "0.05",
            **{f"LDL_{key.upper()}": value for key, value in settings.items()},
        }
        worker = WorkerProcess(env, tmp_path / f"worker-{len(workers)}.log", args)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.ensure_stopped()
        print(f"--- {worker.log_path.name}\n{worker.log()[-4000:]}")  # shown when a test fails


# ------------------------------------------------------------------------- the publisher
class Publisher:
    """A QoS 1 publisher that never has more than `window` messages unacknowledged."""

    def __init__(self, broker_url: str, client_id: str, window: int = 500) -> None:
        parts = urlsplit(broker_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self.client.max_inflight_messages_set(window)
        self.client.max_queued_messages_set(window)
        self._slots = threading.Semaphore(window)
        self.client.on_publish = lambda *_: self._slots.release()
        self.client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client.loop_start()
        self._pending: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes) -> None:
        self._slots.acquire()
        info = self.client.publish(topic, payload, qos=1)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        self._pending.append(info)

    def flush(self, timeout: float = 30) -> None:
        for info in self._pending:
            info.wait_for_publish(timeout)
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Any, topic_prefix: str) -> Iterator[Callable[..., Publisher]]:
    made: list[Publisher] = []

    def make(broker_url: str | None = None) -> Publisher:
        client_id = f"pub-{topic_prefix.split('/')[0]}-{len(made)}"
        made.append(Publisher(broker_url or broker.url, client_id))
        return made[-1]

    yield make
    for pub in made:
        pub.client.disconnect()
        pub.client.loop_stop()


def reading(ts: datetime, value: float = 1.0, metric: str = "heart_rate", **extra: Any) -> bytes:
    import orjson

    return orjson.dumps({"ts": ts.isoformat(), "metric": metric, "value": value, **extra})


def at(index: int) -> datetime:
    """A distinct device time per message index (the natural key needs distinct times)."""
    return DEPLOYED_SINCE + timedelta(days=30, milliseconds=index)
