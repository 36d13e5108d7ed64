"""Ingest benchmark: our worker side by side with the ceilings and the naive baseline, in one run.

  raw pass-through   a do-nothing paho subscriber at QoS 1, same broker, same publisher
  raw db ceiling     binary COPY of the same rows into the same table (same unique key), batched
  naive ingest       one INSERT and one COMMIT per message, the baseline people write by hand
  worker single      `ldl ingest` with single-reading messages (routing and consent gate on)
  worker batched     `ldl ingest` with 100 readings per message

Every run uses the same publisher process (`publish`): QoS 1, a capped window of unacknowledged
publishes, integer epoch-millisecond `ts` = the publish time (bumped per device so that
(device, metric, ts) stays unique; a batch holds ten metrics per millisecond, its newest readings
carry the publish time).

Latency publish→committed comes from the worker's own `ldl_ingest_lag_seconds` histogram (commit
time minus the device time, per message; percentiles interpolated within its buckets), scraped
before and after each run; publish→received is exact, from `received_at - ts` in the table.
The clock stops when the worker's `ldl_ingest_readings_stored_total` reaches what was sent
(polled on its metrics port: no `count(*)` on a growing table during the run); the stored rows
are then counted in the database, and lost/duplicated come from there.
"""

from __future__ import annotations

import argparse
import bisect
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
from urllib.request import urlopen

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client.parser import text_string_to_metric_families

from bench.common import lossless_broker, machine, peak_rss_mib, scratch_database, write_results
from infra.settings import Settings
from ingest.repository import READING_COLUMNS, READING_TYPES
from ingest.worker import ROWS_PER_MESSAGE_BATCH, receive_maximum
from ldl.embedded import free_port

DEVICES = 200
PARTICIPANT_DEVICES = 50  # of them, worn by a consenting participant: the gate is exercised
METRICS = tuple(f"metric_{m}" for m in range(10))  # ten sensors on each device
WINDOW = 20_000  # unacknowledged QoS 1 publishes (paho's ids are 16-bit; FACTS.md)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STORED_SAMPLE = 'ldl_ingest_readings_stored_total{kind="reading"}'
STORED_QUERY = "name[]=ldl_ingest_readings_stored_total"
POLL_SECONDS = 0.05  # the clock's resolution; one scrape of the worker's metrics each
PACED_SHARE = 0.8  # the latency runs publish at this share of the measured peak rate
PACED_SECONDS = 10


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
def _client(client_id: str, protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311) -> mqtt.Client:
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)


def _connect(client: mqtt.Client, broker: str, properties: Properties | None = None) -> None:
    parts = urlsplit(broker)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, properties=properties)


def publish(
    broker: str,
    prefix: str,
    devices: list[str],
    messages: int,
    per_message: int,
    rate: float | None = None,
) -> None:
    """Publish `messages` QoS 1 messages round-robin over the devices; runs in its own process.

    Kept cheap so that it is not what limits the runs: integer epoch-ms timestamps, topics built
    once, and the window of unacknowledged publishes checked with a plain counter. With `rate`
    (messages/s) it paces itself, for latency at a sustainable load.
    """
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1  # only paho's thread writes it

    client = _client(f"bench-pub-{uuid.uuid4().hex[:8]}")
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    _connect(client, broker)
    client.loop_start()
    topics = [f"{prefix}/{device}/readings" for device in devices]
    last_ms = [0] * len(devices)
    # A batch holds up to 10 metrics per millisecond, so that even 10 messages/s per device stay
    # at real time (at 1 ms per reading, 100 readings would span 100 ms of device time).
    span_ms = -(-per_message // len(METRICS))
    dumps, clock, publish_one = orjson.dumps, time.time_ns, client.publish
    started = time.perf_counter()
    for i in range(messages):
        k = i % len(devices)
        stamp = max(clock() // 1_000_000, last_ms[k] + span_ms)  # the newest ts in it
        last_ms[k] = stamp
        if per_message == 1:
            payload = dumps({"ts": stamp, "metric": METRICS[0], "value": 60.0 + i % 30})
        else:
            first = stamp - span_ms + 1
            readings = [
                {"ts": first + j // len(METRICS), "metric": METRICS[j % len(METRICS)],
                 "value": 60.0 + (i + j) % 30}
                for j in range(per_message)
            ]  # fmt: skip
            payload = dumps({"readings": readings})
        while i - acked >= WINDOW:
            time.sleep(0.0005)
        if rate and i % 20 == 0 and (ahead := i / rate - (time.perf_counter() - started)) > 0:
            time.sleep(ahead)
        publish_one(topics[k], payload, qos=1)
    while acked < messages:  # every message acknowledged by the broker
        time.sleep(0.001)
    client.disconnect()
    client.loop_stop()


def start_publisher(
    broker: str,
    prefix: str,
    devices: list[str],
    messages: int,
    per_message: int,
    rate: float | None = None,
) -> multiprocessing.context.ForkProcess:
    process = mp.get_context("fork").Process(
        target=publish,
        args=(broker, prefix, devices, messages, per_message, rate),
        daemon=True,
    )
    process.start()
    return process


# ------------------------------------------------------------------ the measurements
def raw_passthrough(
    broker: str, devices: list[str], messages: int, mqtt5: bool = False
) -> dict[str, Any]:
    """A do-nothing subscriber; with `mqtt5`, connected as the worker is (MQTT 5, Receive Maximum).

    MQTT 5 is the fair ceiling for the worker: acking after commit needs its Receive Maximum,
    and paho decodes MQTT 5 properties on every PUBLISH (measurably dearer than 3.1.1).
    """
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

    properties = None
    if mqtt5:
        properties = Properties(PacketTypes.CONNECT)
        properties.ReceiveMaximum = receive_maximum(Settings().ingest_batch_size)
    subscriber = _client(
        f"bench-sub-{uuid.uuid4().hex[:8]}", mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
    )
    subscriber.on_message = on_message
    subscribed = threading.Event()
    subscriber.on_subscribe = lambda *_: subscribed.set()
    _connect(subscriber, broker, properties)
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
        "protocol": "MQTT 5" if mqtt5 else "MQTT 3.1.1",
        "messages": messages,
        "received": received,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(received / elapsed),
    }


def raw_db_ceiling(url: str, devices: list[str], rows: int, batch: int) -> dict[str, Any]:
    """Binary COPY of worker-shaped rows (same routing keys), `batch` rows per transaction.

    The rows are built before the clock starts: this is the database's ceiling, not Python's.
    """
    with psycopg.connect(url) as conn:
        conn.execute("TRUNCATE telemetry_readings")
        keys = {
            device: (trial, site, unit, participant)
            for device, trial, site, unit, participant in conn.execute(
                "SELECT device_id, trial_id, site_id, unit_id, participant_id FROM deployments"
            )
        }
        conn.commit()
        base = datetime.now(UTC) - timedelta(hours=20)
        data = [
            (
                base + timedelta(milliseconds=i // len(devices)),
                devices[i % len(devices)],
                "heart_rate",
                60.0,
                *keys[devices[i % len(devices)]],
                None,
                base,
            )
            for i in range(rows)
        ]
        started = time.perf_counter()
        for start in range(0, rows, batch):
            with (
                conn.cursor() as cur,
                cur.copy(
                    f"COPY telemetry_readings ({READING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(READING_TYPES)
                for row in data[start : start + batch]:
                    copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - started
        stored = _count(conn)
        conn.execute("TRUNCATE telemetry_readings")
    return {
        "rows": rows,
        "batch_rows": batch,
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
            (
                EPOCH + timedelta(milliseconds=body["ts"]),
                device,
                "naive",
                body["value"],
                trial,
                site,
            ),
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
    conn.execute("TRUNCATE telemetry_readings")
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


def _stored_so_far(port: int) -> float:
    """The worker's committed readings, from one line of its metrics (0 before it serves them)."""
    try:
        # Only that metric (`name[]`): a full scrape every 50 ms would cost the measured worker
        # ~10 % of its Python time (the process collector reads /proc on each).
        with urlopen(f"http://127.0.0.1:{port}/metrics?{STORED_QUERY}", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(STORED_SAMPLE):
                    return float(line.rsplit(" ", 1)[1])
    except OSError:
        pass
    return 0.0


def _lag_buckets(ports: list[int]) -> dict[float, float]:
    """The cumulative `ldl_ingest_lag_seconds` buckets (upper bound → messages at or below),
    summed over the workers."""
    buckets: dict[float, float] = {}
    for port in ports:
        with urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name == "ldl_ingest_lag_seconds":
                for sample in family.samples:
                    if sample.name.endswith("_bucket"):
                        bound = float(sample.labels["le"])
                        buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return buckets


def _quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The q-quantile of what was observed between two scrapes (as PromQL histogram_quantile)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] == 0:
        return float("nan")
    rank = q * counts[-1]
    i = bisect.bisect_left(counts, rank)
    lower, below = (bounds[i - 1], counts[i - 1]) if i else (0.0, 0.0)
    if bounds[i] == float("inf"):
        return lower
    return lower + (bounds[i] - lower) * (rank - below) / (counts[i] - below)


def _wait_until(check: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def our_worker(
    broker: str,
    url: str,
    devices: list[str],
    messages: int,
    per_message: int,
    rate: float | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """`ldl ingest` as separate processes, exactly as deployed (default settings).

    With `workers` > 1 they share the subscription (`$share/ldl-ingest/...`), as one scales out.
    """
    prefix = f"bench-{uuid.uuid4().hex[:6]}/ldl/v1"
    ports = [free_port() for _ in range(workers)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE telemetry_readings, dead_letters")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "ldl", "ingest"],
            env={
                **os.environ,
                "LDL_DATABASE_URL": url,
                "LDL_MQTT_URL": broker,
                "LDL_MQTT_TOPIC_PREFIX": prefix,
                "LDL_INGEST_METRICS_PORT": str(port),
                "LDL_INGEST_CLIENT_ID": f"bench-worker-{uuid.uuid4().hex[:8]}",
            },
        )
        for port in ports
    ]
    stored_so_far = lambda: sum(_stored_so_far(port) for port in ports)  # noqa: E731
    try:
        # Warm-up: a stored message per worker proves each is subscribed before the clock starts
        # (published before its first subscription, a message has no session to wait in).
        for _attempt in range(60):
            before = stored_so_far()
            start_publisher(broker, prefix, devices[:1], 1, 1).join(30)
            _wait_until(lambda: stored_so_far() > before, 2)  # noqa: B023
            if all(_stored_so_far(port) >= 1 for port in ports):
                break
        else:
            raise RuntimeError("the workers did not store their warm-up messages")
        time.sleep(0.5)
        warmup, lag_before = stored_so_far(), _lag_buckets(ports)
        expected = messages * per_message
        started = time.perf_counter()
        publisher = start_publisher(broker, prefix, devices, messages, per_message, rate)
        finished = _wait_until(
            lambda: stored_so_far() - warmup >= expected, 900, every=POLL_SECONDS
        )
        elapsed = time.perf_counter() - started
        publisher.join(60)
        time.sleep(1)  # anything extra (a duplicate) would show now
        lag_after = _lag_buckets(ports)
        rss = sum(peak_rss_mib(process.pid) for process in processes)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)
    with psycopg.connect(url, autocommit=True) as conn:
        stored = _count(conn) - int(warmup)
        received = conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP"
            " (ORDER BY extract(epoch FROM received_at - ts)) FROM telemetry_readings"
        ).fetchone()[0]  # type: ignore[index]
        distinct = conn.execute(
            "SELECT count(*) FROM (SELECT DISTINCT device_id, metric, ts FROM telemetry_readings) d"
        ).fetchone()[0] - int(warmup)  # type: ignore[index]
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]  # type: ignore[index]
    result: dict[str, Any] = {"workers": workers, "messages": messages}
    if rate:
        result["paced_messages_per_s"] = round(rate)
    return result | {
        "readings_sent": expected,
        "readings_stored": stored,
        "finished": finished,
        "lost": expected - distinct,
        "duplicated": stored - distinct,
        "dead_letters": dead,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(messages / elapsed),
        "readings_per_s": round(stored / elapsed),
        "latency_p50_ms": round(_quantile(lag_before, lag_after, 0.5) * 1000, 1),
        "latency_p99_ms": round(_quantile(lag_before, lag_after, 0.99) * 1000, 1),
        "received_latency_p50_ms": round(received[0] * 1000, 1),
        "received_latency_p99_ms": round(received[1] * 1000, 1),
        "peak_rss_mib": round(rss, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every message count")
    parser.add_argument(
        "--no-paced", action="store_true", help="skip the latency runs at 80 %% of the peak rate"
    )
    args = parser.parse_args(argv)
    n = lambda count: max(1000, int(count * args.scale))  # noqa: E731
    rows_per_batch = ROWS_PER_MESSAGE_BATCH * Settings().ingest_batch_size
    results: dict[str, Any] = {"machine": machine(), "load_average_before": os.getloadavg()}
    with lossless_broker() as broker, scratch_database("ldl_bench") as url:
        devices = seed_registry(url)
        print("raw pass-through (MQTT 5, as the worker connects) …", flush=True)
        results["raw_passthrough"] = raw_passthrough(broker, devices, n(100_000), mqtt5=True)
        print("raw pass-through (MQTT 3.1.1) …", flush=True)
        results["raw_passthrough_mqtt311"] = raw_passthrough(broker, devices, n(100_000))
        print(f"raw db ceiling ({rows_per_batch}-row batches) …", flush=True)
        results["raw_db_ceiling"] = raw_db_ceiling(url, devices, n(500_000), rows_per_batch)
        print("naive ingest …", flush=True)
        results["naive_ingest"] = naive_ingest(broker, url, devices, n(10_000))
        print("worker, single-reading messages …", flush=True)
        results["worker_single"] = our_worker(broker, url, devices, n(100_000), 1)
        print("worker, batched messages (100 readings) …", flush=True)
        results["worker_batched"] = our_worker(broker, url, devices, n(5_000), 100)
        if not args.no_paced:
            for name, per_message in (("worker_single", 1), ("worker_batched", 100)):
                rate = PACED_SHARE * results[name]["messages_per_s"]
                print(f"{name}, paced at {rate:.0f} messages/s (latency) …", flush=True)
                results[f"{name}_paced"] = our_worker(
                    broker, url, devices, max(500, int(rate * PACED_SECONDS)), per_message, rate
                )
    results["load_average_after"] = os.getloadavg()
    passthrough = results["raw_passthrough"]["messages_per_s"]
    ceiling = results["raw_db_ceiling"]["rows_per_s"]
    naive = results["naive_ingest"]["messages_per_s"]
    single, batched = results["worker_single"], results["worker_batched"]
    runs = [run for name, run in results.items() if name.startswith("worker_")]
    results["targets"] = {
        "single_vs_passthrough": round(single["messages_per_s"] / passthrough, 2),  # ≥ 0.75
        "single_vs_passthrough_mqtt311": round(
            single["messages_per_s"] / results["raw_passthrough_mqtt311"]["messages_per_s"], 2
        ),
        "batched_readings_per_s": batched["readings_per_s"],  # ≥ 100,000
        "batched_vs_db_ceiling": round(batched["readings_per_s"] / ceiling, 2),  # ≥ 0.5
        "single_vs_naive": round(single["messages_per_s"] / naive, 1),  # ≥ 5
        "zero_lost_zero_duplicated": all(r["lost"] == 0 and r["duplicated"] == 0 for r in runs),
    }
    path = write_results("ingest", results)
    (path.parent / "ingest.md").write_text(summary(results))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print(f"written to {Path(path)}")
    return results


def summary(results: dict[str, Any]) -> str:
    """The results as a short Markdown table, with each target met or not."""
    m, t = results["machine"], results["targets"]
    single, batched = results["worker_single"], results["worker_batched"]

    def run(name: str, label: str) -> str:
        r = results.get(name)
        if r is None:
            return ""
        return (
            f"| {label} | {r['messages_per_s']:,} | {r['readings_per_s']:,} |"
            f" {r['latency_p50_ms']:,.0f} / {r['latency_p99_ms']:,.0f} |"
            f" {r['readings_stored']:,} of {r['readings_sent']:,} | {r['peak_rss_mib']:.0f} MiB |\n"
        )

    def met(ok: bool) -> str:
        return "met" if ok else "**not met**"

    passthrough, ceiling = results["raw_passthrough"], results["raw_db_ceiling"]
    return (
        f"Ingest benchmark, {m['when']}: {m['cores']} cores ({m['cpu']}), Python {m['python']},"
        f" PostgreSQL {m['postgresql']}, {m['mosquitto']}; broker, publisher, worker and"
        " PostgreSQL all on this machine.\n\n"
        "| run | messages/s | readings/s | latency p50 / p99 ms (publish→committed) |"
        " stored of sent | peak RSS |\n|---|---|---|---|---|---|\n"
        f"| raw pass-through, MQTT 5 (do-nothing subscriber) | {passthrough['messages_per_s']:,}"
        " | | | | |\n"
        f"| raw pass-through, MQTT 3.1.1 |"
        f" {results['raw_passthrough_mqtt311']['messages_per_s']:,} | | | | |\n"
        f"| raw database ceiling (binary COPY, {ceiling['batch_rows']:,}-row batches) | |"
        f" {ceiling['rows_per_s']:,} | | | |\n"
        f"| naive ingest (INSERT + COMMIT per message) |"
        f" {results['naive_ingest']['messages_per_s']:,} | | | | |\n"
        + run("worker_single", "**worker**, 1 reading/message, peak")
        + run("worker_single_paced", "worker, 1 reading/message, paced at 80 %")
        + run("worker_batched", "**worker**, 100 readings/message, peak")
        + run("worker_batched_paced", "worker, 100 readings/message, paced at 80 %")
        + "\n| target | result | |\n|---|---|---|\n"
        f"| single ≥ 0.75 × pass-through (MQTT 5) | {t['single_vs_passthrough']} ×"
        f" (MQTT 3.1.1: {t['single_vs_passthrough_mqtt311']} ×) |"
        f" {met(t['single_vs_passthrough'] >= 0.75)} |\n"
        f"| batched ≥ 100,000 readings/s | {t['batched_readings_per_s']:,} |"
        f" {met(t['batched_readings_per_s'] >= 100_000)} |\n"
        f"| batched ≥ 0.5 × database ceiling | {t['batched_vs_db_ceiling']} × |"
        f" {met(t['batched_vs_db_ceiling'] >= 0.5)} |\n"
        f"| single ≥ 5 × naive | {t['single_vs_naive']} × | {met(t['single_vs_naive'] >= 5)} |\n"
        f"| zero lost, zero duplicated (every run) | {t['zero_lost_zero_duplicated']} |"
        f" {met(t['zero_lost_zero_duplicated'])} |\n"
        f"\nPeak runs: the publisher outruns the worker, so their latency is queueing in the"
        f" broker; the paced runs show latency at a sustainable rate. Single: {single['seconds']} s,"
        f" batched: {batched['seconds']} s. Full figures: bench/results/ingest.json.\n"
        + caveat(results)
    )


def caveat(results: dict[str, Any]) -> str:
    """The paragraph to read before quoting: how loaded the machine was, and what limits what."""
    t = results["targets"]
    before, after = results["load_average_before"], results["load_average_after"]
    missed = [
        name
        for name, ok in (
            ("single ≥ 0.75 × pass-through", t["single_vs_passthrough"] >= 0.75),
            ("batched ≥ 100,000 readings/s", t["batched_readings_per_s"] >= 100_000),
            ("batched ≥ 0.5 × database ceiling", t["batched_vs_db_ceiling"] >= 0.5),
            ("single ≥ 5 × naive", t["single_vs_naive"] >= 5),
        )
        if not ok
    ]
    verdict = (
        f"Not met in this run: {'; '.join(missed)}." if missed else "Every target met in this run."
    )
    return (
        f"\nCaveat (read before quoting): one run on a shared 2-core machine (1-minute load"
        f" average {before[0]:.1f} at the start, {after[0]:.1f} at the end; other test suites may"
        " have run alongside); broker, publisher, worker and PostgreSQL compete for the same two"
        " cores, and repeated runs of the same code vary by ±15 % or more (the pass-through"
        f" itself varies most). {verdict} Single-reading messages are bound by paho's Python"
        " work per packet (MQTT 5 decoding, callbacks, one PUBACK each) in the publisher and the"
        " worker alike; the worker reads its socket in 64 KiB chunks (ingest/mqtt_client.py)"
        " where plain paho, as in the pass-through run, spends a select() and three recv() on"
        " every packet. Batched messages are bound by PostgreSQL's COPY and index maintenance"
        " (3 indexes)"
        " plus the worker's one Python process (JSON parsing, the readings fast path, routing,"
        " COPY rows) sharing the CPU with it.\n"
    )


if __name__ == "__main__":
    main()
