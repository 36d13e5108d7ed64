"""Ingest benchmark: our worker side by side with the ceilings and the naive baseline, in one run.

  raw pass-through   a do-nothing paho subscriber at QoS 1, same broker, same publisher
  raw db ceiling     binary COPY of the same rows into the same table (same unique key), batched
  naive ingest       one INSERT and one COMMIT per message, the baseline people write by hand
  worker single      `ldl ingest` with single-reading messages (routing and consent gate on)
  worker batched     `ldl ingest` with 100 readings per message

Each reading's `ts` is its publish time (µs, unique per device), so publish→stored latency is
`received_at - ts` (received_at is the storing transaction's start time).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import multiprocessing.context
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
import psycopg

from bench.common import lossless_broker, machine, peak_rss_mib, scratch_database, write_results

DEVICES = 200
PARTICIPANT_DEVICES = 50  # of them, worn by a consenting participant: the gate is exercised
WINDOW = 20_000  # unacknowledged QoS 1 publishes (paho's ids are 16-bit; FACTS.md)


# ------------------------------------------------------------------------- registry
def seed_registry(url: str) -> list[str]:
    since = datetime.now(UTC) - timedelta(days=1)
    with psycopg.connect(url) as conn:
        company = conn.execute(
            "INSERT INTO companies (name) VALUES ('Bench') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        site = conn.execute(
            "INSERT INTO sites (name, municipality) VALUES ('Bench home', 'Kolding') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        trial = conn.execute(
            "INSERT INTO trials (company_id, title, product, collaboration_form, status)"
            " VALUES (%s, 'Bench', 'Beds', 'opi', 'running') RETURNING id",
            (company,),
        ).fetchone()[0]  # type: ignore[index]
        devices = [f"bench-{i:04d}" for i in range(DEVICES)]
        conn.execute(
            "INSERT INTO devices (id, device_type, company_id, registered_at)"
            " SELECT unnest(%s::text[]), 'sensor_bed', %s, %s",
            (devices, company, since),
        )
        for i, device in enumerate(devices):
            participant = None
            if i < PARTICIPANT_DEVICES:
                participant = conn.execute(
                    "INSERT INTO participants (trial_id, pseudonym, site_id) VALUES (%s, %s, %s)"
                    " RETURNING id",
                    (trial, f"P-{i:04d}", site),
                ).fetchone()[0]  # type: ignore[index]
                conn.execute(
                    "INSERT INTO consents (participant_id, version, scopes, given_by,"
                    " evidence_ref, valid_from) VALUES (%s, 1, '{telemetry}', 'participant',"
                    " 'bench', %s)",
                    (participant, since),
                )
            conn.execute(
                "INSERT INTO deployments (device_id, trial_id, site_id, participant_id, valid_from)"
                " VALUES (%s, %s, %s, %s, %s)",
                (device, trial, site, participant, since),
            )
    return devices


# ------------------------------------------------------------------------ publisher
def _client(client_id: str) -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)


def _connect(client: mqtt.Client, broker: str) -> None:
    parts = urlsplit(broker)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)


def publish(broker: str, prefix: str, devices: list[str], messages: int, per_message: int) -> None:
    """Publish `messages` QoS 1 messages round-robin over the devices; runs in its own process."""
    window = threading.BoundedSemaphore(WINDOW)
    client = _client(f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_queued_messages_set(0)
    client.on_publish = lambda *_: window.release()
    _connect(client, broker)
    client.loop_start()
    last_us = dict.fromkeys(devices, 0)
    topics = {d: f"{prefix}/{d}/readings" for d in devices}
    for i in range(messages):
        device = devices[i % len(devices)]
        stamp = max(time.time_ns() // 1000, last_us[device] + 1)
        readings = []
        for j in range(per_message):
            ts = datetime.fromtimestamp((stamp + j) / 1e6, UTC).isoformat()
            readings.append({"ts": ts, "metric": "heart_rate", "value": 60.0 + (i + j) % 30})
        last_us[device] = stamp + per_message
        payload = readings[0] if per_message == 1 else {"readings": readings}
        window.acquire()
        client.publish(topics[device], orjson.dumps(payload), qos=1)
    for _ in range(WINDOW):  # every message acknowledged by the broker
        window.acquire()
    client.disconnect()
    client.loop_stop()


def start_publisher(
    broker: str, prefix: str, devices: list[str], messages: int, per_message: int
) -> multiprocessing.context.ForkProcess:
    process = mp.get_context("fork").Process(
        target=publish, args=(broker, prefix, devices, messages, per_message), daemon=True
    )
    process.start()
    return process


# ------------------------------------------------------------------ the measurements
def raw_passthrough(broker: str, devices: list[str], messages: int) -> dict[str, Any]:
    prefix = f"bench-{uuid.uuid4().hex[:6]}/ldl/v1"
    received = 0
    done = threading.Event()
    first: list[float] = []

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        if not first:
            first.append(time.perf_counter())
        received += 1
        if received >= messages:
            done.set()

    subscriber = _client(f"bench-sub-{uuid.uuid4().hex[:8]}")
    subscriber.on_message = on_message
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_: subscribed.set()
    _connect(subscriber, broker)
    subscriber.subscribe(f"{prefix}/#", qos=1)
    subscriber.loop_start()
    subscribed.wait(10)
    started = time.perf_counter()
    publisher = start_publisher(broker, prefix, devices, messages, 1)
    done.wait(600)
    elapsed = time.perf_counter() - started
    publisher.join(60)
    subscriber.disconnect()
    subscriber.loop_stop()
    return {
        "messages": messages,
        "received": received,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(received / elapsed),
    }


def raw_db_ceiling(url: str, devices: list[str], rows: int, batch: int = 5000) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        trial, site = conn.execute("SELECT id, (SELECT id FROM sites) FROM trials").fetchone()  # type: ignore[misc]
        base = datetime.now(UTC) - timedelta(hours=20)
        started = time.perf_counter()
        for start in range(0, rows, batch):
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY telemetry_readings (ts, device_id, metric, value, trial_id, site_id)"
                    " FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["timestamptz", "text", "text", "float8", "int8", "int8"])
                for i in range(start, min(start + batch, rows)):
                    copy.write_row(
                        (
                            base + timedelta(microseconds=i),
                            devices[i % len(devices)],
                            "ceiling",
                            60.0,
                            trial,
                            site,
                        )
                    )
            conn.commit()
        elapsed = time.perf_counter() - started
        stored = conn.execute(
            "SELECT count(*) FROM telemetry_readings WHERE metric = 'ceiling'"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("DELETE FROM telemetry_readings WHERE metric = 'ceiling'")
    return {
        "rows": rows,
        "stored": stored,
        "seconds": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
    }


def naive_ingest(broker: str, url: str, devices: list[str], messages: int) -> dict[str, Any]:
    """One INSERT and one COMMIT per message, acknowledged by paho's automatic QoS 1 ack."""
    prefix = f"bench-{uuid.uuid4().hex[:6]}/ldl/v1"
    conn = psycopg.connect(url)
    trial, site = conn.execute("SELECT id, (SELECT id FROM sites) FROM trials").fetchone()  # type: ignore[misc]
    stored = 0
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        nonlocal stored
        body = orjson.loads(message.payload)
        device = message.topic.split("/")[-2]
        conn.execute(
            "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (body["ts"], device, "naive", body["value"], trial, site),
        )
        conn.commit()
        stored += 1
        if stored >= messages:
            done.set()

    subscriber = _client(f"bench-naive-{uuid.uuid4().hex[:8]}")
    subscriber.on_message = on_message
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_: subscribed.set()
    _connect(subscriber, broker)
    subscriber.subscribe(f"{prefix}/#", qos=1)
    subscriber.loop_start()
    subscribed.wait(10)
    started = time.perf_counter()
    publisher = start_publisher(broker, prefix, devices, messages, 1)
    done.wait(900)
    elapsed = time.perf_counter() - started
    publisher.join(60)
    subscriber.disconnect()
    subscriber.loop_stop()
    conn.execute("DELETE FROM telemetry_readings WHERE metric = 'naive'")
    conn.commit()
    conn.close()
    return {
        "messages": messages,
        "stored": stored,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(stored / elapsed),
    }


def _count(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM telemetry_readings").fetchone()[0])  # type: ignore[index]


def _wait_until(check: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def our_worker(
    broker: str, url: str, devices: list[str], messages: int, per_message: int
) -> dict[str, Any]:
    """`ldl ingest` as a separate process, exactly as deployed."""
    prefix = f"bench-{uuid.uuid4().hex[:6]}/ldl/v1"
    env = {
        **os.environ,
        "LDL_DATABASE_URL": url,
        "LDL_MQTT_URL": broker,
        "LDL_MQTT_TOPIC_PREFIX": prefix,
        "LDL_INGEST_METRICS_PORT": "0",
        "LDL_INGEST_CLIENT_ID": f"bench-worker-{uuid.uuid4().hex[:8]}",
    }
    worker = subprocess.Popen([sys.executable, "-m", "ldl", "ingest"], env=env)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE telemetry_readings")
        # Warm-up: one message proves the worker is subscribed before the clock starts.
        warmup = start_publisher(broker, prefix, devices[:1], 1, 1)
        warmup.join(30)
        if not _wait_until(lambda: _count(conn) >= 1, 60):
            worker.kill()
            raise RuntimeError("the worker did not store the warm-up message")
        expected = 1 + messages * per_message
        started = time.perf_counter()
        publisher = start_publisher(broker, prefix, devices, messages, per_message)
        finished = _wait_until(lambda: _count(conn) >= expected, 900, every=0.5)
        elapsed = time.perf_counter() - started
        publisher.join(60)
        time.sleep(1)  # anything extra (a duplicate) would show now
        stored = _count(conn)
        rss = peak_rss_mib(worker.pid)
        latency = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP"
            " (ORDER BY extract(epoch FROM received_at - ts))"
            " FROM telemetry_readings"
        ).fetchone()[0]  # type: ignore[index]
        distinct = conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT device_id, metric, ts FROM telemetry_readings) d"
        ).fetchone()[0]  # type: ignore[index]
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]  # type: ignore[index]
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    return {
        "messages": messages,
        "readings_sent": expected - 1,
        "readings_stored": stored - 1,
        "finished": finished,
        "lost": expected - stored,
        "duplicated": stored - distinct,
        "dead_letters": dead,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(messages / elapsed),
        "readings_per_s": round((stored - 1) / elapsed),
        "latency_p50_ms": round(latency[0] * 1000, 1),
        "latency_p99_ms": round(latency[1] * 1000, 1),
        "peak_rss_mib": round(rss, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every message count")
    args = parser.parse_args(argv)
    n = lambda count: max(1000, int(count * args.scale))  # noqa: E731
    results: dict[str, Any] = {"machine": machine()}
    with lossless_broker() as broker, scratch_database("ldl_bench") as url:
        devices = seed_registry(url)
        print("raw pass-through …", flush=True)
        results["raw_passthrough"] = raw_passthrough(broker, devices, n(100_000))
        print("raw db ceiling …", flush=True)
        results["raw_db_ceiling"] = raw_db_ceiling(url, devices, n(500_000))
        print("naive ingest …", flush=True)
        results["naive_ingest"] = naive_ingest(broker, url, devices, n(10_000))
        print("worker, single-reading messages …", flush=True)
        results["worker_single"] = our_worker(broker, url, devices, n(100_000), 1)
        print("worker, batched messages (100 readings) …", flush=True)
        results["worker_batched"] = our_worker(broker, url, devices, n(5_000), 100)
    passthrough = results["raw_passthrough"]["messages_per_s"]
    ceiling = results["raw_db_ceiling"]["rows_per_s"]
    naive = results["naive_ingest"]["messages_per_s"]
    single, batched = results["worker_single"], results["worker_batched"]
    results["targets"] = {
        "single_vs_passthrough": round(single["messages_per_s"] / passthrough, 2),  # ≥ 0.75
        "batched_readings_per_s": batched["readings_per_s"],  # ≥ 100,000
        "batched_vs_db_ceiling": round(batched["readings_per_s"] / ceiling, 2),  # ≥ 0.5
        "single_vs_naive": round(single["messages_per_s"] / naive, 1),  # ≥ 5
        "zero_lost_zero_duplicated": all(
            r["lost"] == 0 and r["duplicated"] == 0 for r in (single, batched)
        ),
    }
    path = write_results("ingest", results)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print(f"written to {Path(path)}")
    return results


if __name__ == "__main__":
    main()
