"""Nothing lost, nothing doubled: worker crashes, database outages, broker restarts, two workers."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from tests.conftest import PrivateMosquitto
from tests.ingest.conftest import (
    Publisher,
    WorkerProcess,
    at,
    count,
    reading,
    seed_lab,
    wait_until,
)

READINGS = "SELECT count(*) FROM telemetry_readings"


def test_every_published_reading_is_stored_once(
    db_url: str,
    topic_prefix: str,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
) -> None:
    lab = seed_lab(db_url)
    worker = start_worker()
    worker.wait_connected()
    pub = publisher()
    for index in range(300):
        pub.publish(f"{topic_prefix}/{lab.room_device}/readings", reading(at(index)))
    pub.publish(f"{topic_prefix}/{lab.room_device}/readings", reading(at(0)))  # a duplicate
    pub.flush()
    wait_until(lambda: count(db_url, READINGS) == 300, 20, "300 rows")
    assert worker.terminate() == 0
    assert count(db_url, READINGS) == 300


@dataclass
class _Stream:
    """Readings published at a steady pace from a thread, until `total` or until stopped."""

    thread: threading.Thread
    stop: threading.Event
    sent: int = 0

    def finish(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.sent


def _publish_in_background(
    pub: Publisher, topic: str, per_second: float, total: int | None = None
) -> _Stream:
    stream = _Stream(threading.Thread(name="test-publisher"), threading.Event())

    def run() -> None:
        started = time.monotonic()
        while not stream.stop.is_set() and (total is None or stream.sent < total):
            pub.publish(topic, reading(at(stream.sent)))
            stream.sent += 1
            ahead = stream.sent / per_second - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        pub.flush()

    stream.thread = threading.Thread(target=run, name="test-publisher")
    stream.thread.start()
    return stream


def test_sigkill_at_random_points_loses_and_doubles_nothing(
    db_url: str,
    topic_prefix: str,
    broker: PrivateMosquitto,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
) -> None:
    lab = seed_lab(db_url)
    url = broker.url
    start_worker(broker_url=url).wait_connected()  # the session and its subscription exist
    # The stream runs until the last kill, however slowly workers start on a loaded machine, so
    # every kill lands mid-stream.
    sending = _publish_in_background(
        publisher(url), f"{topic_prefix}/{lab.room_device}/readings", per_second=500
    )
    rng = random.Random(5)
    for _ in range(4):  # killed mid-stream, with batches uncommitted or committed but not acked
        worker = start_worker(broker_url=url)
        worker.wait_connected()
        time.sleep(rng.uniform(0.05, 0.5))
        worker.kill()
    final = start_worker(broker_url=url)
    final.wait_connected()
    time.sleep(0.5)  # the last worker takes part of the live stream too
    total = sending.finish()
    assert total > 1000
    wait_until(lambda: count(db_url, READINGS) >= total, 30, f"{total} rows")
    assert final.terminate() == 0
    assert count(db_url, READINGS) == total
    assert count(db_url, "SELECT count(*) FROM dead_letters") == 0


def _terminate_backends(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return len(rows)


def test_database_outages_mid_stream_lose_and_double_nothing(
    db_url: str,
    topic_prefix: str,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
) -> None:
    lab = seed_lab(db_url)
    worker = start_worker()
    worker.wait_connected()
    total = 3000
    sending = _publish_in_background(
        publisher(), f"{topic_prefix}/{lab.room_device}/readings", per_second=1000, total=total
    )
    for _ in range(5):
        time.sleep(0.3)
        _terminate_backends(db_url)
    # A slow database: the table is locked, commits wait, the worker stops taking messages.
    with psycopg.connect(db_url) as locker:
        locker.execute("LOCK TABLE telemetry_readings IN ACCESS EXCLUSIVE MODE")
        time.sleep(1.5)
        locker.rollback()
    sending.thread.join()
    wait_until(lambda: count(db_url, READINGS) >= total, 30, f"{total} rows")
    assert worker.terminate() == 0
    assert count(db_url, READINGS) == total
    assert "retrying" in worker.log()


# The worker's subscription: plain (one worker, what the compose stack runs on Mosquitto) or
# shared (several workers).
PLAIN, SHARED = "", "ldl-ingest"
SHARED_RESTORED_UNROUTED = pytest.mark.xfail(
    strict=True,
    reason="Mosquitto 2.0.11 routes nothing to a shared subscription restored from its store"
    " until its member reconnects and subscribes again: what devices publish in between is"
    " acknowledged to them and dropped (measured; README 'Scaling out').",
)


@pytest.mark.parametrize("group", [PLAIN, SHARED], ids=["plain", "shared"])
def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    db_url: str,
    topic_prefix: str,
    broker: PrivateMosquitto,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
    group: str,
) -> None:
    lab = seed_lab(db_url)
    url = broker.url
    worker = start_worker(broker_url=url, ingest_share_group=group)
    worker.wait_connected()
    topic = f"{topic_prefix}/{lab.room_device}/readings"
    pub = publisher(url)
    for index in range(2000):
        pub.publish(topic, reading(at(index)))
    pub.flush()
    pub.close()
    broker.restart()  # with messages queued for the worker and in flight to it
    wait_until(lambda: "session present: True" in worker.log(), 10, "the session resumed")
    worker.wait_subscribed(2)
    pub = publisher(url)
    for index in range(2000, 3000):
        pub.publish(topic, reading(at(index)))
    pub.flush()
    wait_until(lambda: count(db_url, READINGS) >= 3000, 30, "3000 rows")
    assert worker.terminate() == 0
    assert count(db_url, READINGS) == 3000


@pytest.mark.parametrize(
    "group", [PLAIN, pytest.param(SHARED, marks=SHARED_RESTORED_UNROUTED)], ids=["plain", "shared"]
)
def test_what_devices_publish_before_the_worker_is_back_from_a_broker_restart_is_kept(
    db_url: str,
    topic_prefix: str,
    broker: PrivateMosquitto,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
    group: str,
) -> None:
    """Devices reconnect as fast as the worker: the broker holds their messages for its session."""
    lab = seed_lab(db_url)
    url, client_id = broker.url, f"ingest-{topic_prefix.split('/')[0]}"
    topic = f"{topic_prefix}/{lab.room_device}/readings"
    worker = start_worker(client_id=client_id, broker_url=url, ingest_share_group=group)
    worker.wait_connected()
    worker.kill()
    broker.restart()  # the worker's session (and subscription) comes back from the store
    pub = publisher(url)
    for index in range(500):
        pub.publish(topic, reading(at(index)))
    pub.flush()
    worker = start_worker(client_id=client_id, broker_url=url, ingest_share_group=group)
    wait_until(lambda: "session present: True" in worker.log(), 10, "the session resumed")
    worker.wait_subscribed(1)
    for index in range(500, 1000):
        pub.publish(topic, reading(at(index)))
    pub.flush()
    try:
        wait_until(lambda: count(db_url, READINGS) >= 1000, 10, "1000 rows")
    finally:
        assert worker.terminate() == 0
    assert count(db_url, READINGS) == 1000


def test_two_workers_on_a_shared_subscription_store_everything_once(
    db_url: str,
    topic_prefix: str,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
) -> None:
    lab = seed_lab(db_url)
    tag = topic_prefix.split("/")[0]
    workers = [start_worker(client_id=f"{tag}-a"), start_worker(client_id=f"{tag}-b")]
    for worker in workers:
        worker.wait_connected()
    pub = publisher()
    total = 2000
    for index in range(total):
        pub.publish(f"{topic_prefix}/{lab.room_device}/readings", reading(at(index)))
    pub.flush()
    wait_until(lambda: count(db_url, READINGS) >= total, 30, f"{total} rows")
    committed = []
    for worker in workers:
        assert worker.terminate() == 0
        committed.append(int(worker.log().rsplit("stopped after ", 1)[1].split()[0]))
    assert count(db_url, READINGS) == total
    assert sum(committed) == total and min(committed) > 0, committed
