"""Failover with nothing acknowledged lost: PostgreSQL under Patroni (synchronous mode, not
strict) with etcd, on one machine, fed by the real broker and the real `ldl ingest`.

The application reaches the cluster through one multi-host URL
(`postgresql://n1,n2/ldl?target_session_attrs=read-write`). The tests measure and print the
failover gap (`pytest -s tests/ops/test_failover.py` shows the figures the README quotes).
The cluster runs on whichever path this machine has: TimescaleDB where it is installed (both
nodes preload it), plain PostgreSQL elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import PrivateMosquitto, free_port
from tests.ingest.conftest import (
    LOSSLESS_MOSQUITTO,
    ROOT,
    Lab,
    Publisher,
    WorkerProcess,
    at,
    reading,
    seed_lab,
)
from tests.ops.patroni_cluster import PatroniCluster, PatroniNode, missing_tools, wait_for

if (missing := missing_tools()) is not None:
    pytest.skip(missing, allow_module_level=True)  # one line for the whole module

DATABASE = "ldl"


def _clean_env(**settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LDL_")}
    return {**env, "LDL_ENVIRONMENT": "test", **settings}


def _ldl(*args: str, timeout: float = 60, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ldl", *args],
        env=_clean_env(**settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[PatroniCluster]:
    ha = PatroniCluster()
    try:
        ha.start()
        yield ha
    finally:
        ha.stop()
        ha.remove()


@pytest.fixture(scope="module")
def ha_url(cluster: PatroniCluster) -> str:
    """The application's database on the cluster, migrated through the multi-host URL."""
    leader = cluster.wait_healthy()
    with psycopg.connect(leader.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {DATABASE}")
    url = cluster.multi_host_url(DATABASE)
    migrated = _ldl("migrate", LDL_DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("applied: "), migrated.stdout
    return url


@pytest.fixture
def broker(private_mosquitto: Callable[..., PrivateMosquitto]) -> Iterator[PrivateMosquitto]:
    # Mosquitto started as root drops to its own user, which must be able to write its store.
    store = Path(tempfile.mkdtemp(prefix="ldl-mosq-store-"))
    store.chmod(0o777)
    yield private_mosquitto(LOSSLESS_MOSQUITTO.replace("{store}", str(store)))
    shutil.rmtree(store, ignore_errors=True)


@dataclass
class Worker:
    process: WorkerProcess
    metrics_port: int

    def metric(self, name: str) -> float | None:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
        ) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(f"{name} "):
                    return float(line.split()[1])
        return None


@pytest.fixture
def worker(
    ha_url: str, broker: PrivateMosquitto, tmp_path: Path, cluster: PatroniCluster
) -> Iterator[Callable[[str], Worker]]:
    started: list[WorkerProcess] = []

    def start(topic_prefix: str) -> Worker:
        metrics_port = free_port()
        env = _clean_env(
            LDL_DATABASE_URL=ha_url,
            LDL_MQTT_URL=broker.url,
            LDL_MQTT_TOPIC_PREFIX=topic_prefix,
            LDL_INGEST_CLIENT_ID=f"ingest-{topic_prefix.split('/')[0]}",
            LDL_INGEST_METRICS_PORT=str(metrics_port),
            LDL_INGEST_BATCH_SIZE="200",
        )
        process = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(process)
        process.wait_connected(timeout=30)
        return Worker(process, metrics_port)

    yield start
    for process in started:
        process.ensure_stopped()
        print(f"--- {process.log_path.name}\n{process.log()[-5000:]}")  # shown on failure
    print(cluster.logs())


# ----------------------------------------------------------------------- measuring
def _count(url: str, device_id: str) -> tuple[int, int]:
    """Rows of the device's readings, and distinct readings (by the value, its seq number)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT value) FROM telemetry_readings WHERE device_id = %s",
            (device_id,),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


@dataclass
class Stream:
    """`total` seq-numbered readings published at QoS 1 at a steady pace from a thread."""

    publisher: Publisher
    topic: str
    total: int
    per_second: float
    sent: int = 0
    thread: threading.Thread = field(init=False)

    def start(self) -> Stream:
        self.thread = threading.Thread(target=self._run, name="test-stream")
        self.thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        for seq in range(self.total):
            self.publisher.publish(self.topic, reading(at(seq), value=float(seq)))
            self.sent += 1
            ahead = self.sent / self.per_second - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        self.publisher.flush()

    def join(self) -> None:
        self.thread.join(timeout=120)
        self.publisher.close()


@dataclass
class Probe:
    """Polls a check every `every` s from a thread and keeps (time, ok) — outage gaps."""

    check: Callable[[], bool]
    every: float = 0.1
    samples: list[tuple[float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Probe:
        self._thread = threading.Thread(target=self._run, name="test-probe")
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ok = self.check()
            except Exception:
                ok = False
            self.samples.append((time.monotonic(), ok))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def back_after(self, since: float) -> float:
        """Seconds from `since` to the first success after the first failure that followed."""
        failed = [t for t, ok in self.samples if t >= since and not ok]
        assert failed, "no failure was observed after the event"
        back = [t for t, ok in self.samples if t > failed[0] and ok]
        assert back, "never answered again"
        return back[0] - since

    def longest_gap(self) -> float:
        """The longest time between two successes."""
        times = [t for t, ok in self.samples if ok]
        return max((b - a for a, b in pairwise(times)), default=0.0)


def _growing(url: str, device_id: str) -> Callable[[], bool]:
    """A check that succeeds when more rows are stored than at its last call: ingest storing."""
    last = -1

    def check() -> bool:
        nonlocal last
        rows = _count(url, device_id)[0]
        grew, last = rows > last, rows
        return grew

    return check


def _lab_and_topic(url: str, tag: str) -> tuple[Lab, str]:
    lab = seed_lab(url)
    prefix = f"test-{tag}-{lab.room_device}/ldl/v1"
    return lab, prefix


# --------------------------------------------------------------------------- tests
def test_killing_the_primary_mid_stream_loses_and_doubles_no_acknowledged_reading(
    cluster: PatroniCluster,
    ha_url: str,
    broker: PrivateMosquitto,
    worker: Callable[[str], Worker],
    tmp_path: Path,
) -> None:
    old_primary = cluster.wait_healthy()
    lab, prefix = _lab_and_topic(ha_url, "failover")
    ingest = worker(prefix)
    api_port = free_port()
    api_log = (tmp_path / "api.log").open("ab")
    api = subprocess.Popen(
        [sys.executable, "-m", "ldl", "api", "--port", str(api_port)],
        env=_clean_env(LDL_DATABASE_URL=ha_url),
        cwd=ROOT,
        stdout=api_log,
        stderr=subprocess.STDOUT,
    )
    http = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=2)
    health = Probe(lambda: http.get("/health").status_code == 200)
    stored = Probe(_growing(ha_url, lab.room_device), every=0.2)
    try:
        wait_for(lambda: _answers(http), 30, "the API to answer")
        health.start()
        total = 4000
        stream = Stream(
            Publisher(broker.url, f"pub-{prefix.split('/')[0]}"),
            f"{prefix}/{lab.room_device}/readings",
            total,
            per_second=400,
        ).start()
        wait_for(lambda: _count(ha_url, lab.room_device)[0] >= 800, 30, "800 rows stored")
        stored.start()
        killed_at = time.monotonic()
        old_primary.kill_postmaster()
        new_primary = wait_for(lambda: _new_leader(cluster, old_primary), 60, "a new primary")
        promoted_after = time.monotonic() - killed_at
        stream.join()
        assert stream.sent == total
        wait_for(lambda: _count(ha_url, lab.room_device)[0] >= total, 60, f"{total} rows")
        rows, distinct = _count(ha_url, lab.room_device)
        assert (rows, distinct) == (total, total)  # N of N, each exactly once
        api_back = health.back_after(killed_at)
        ingest_back = stored.back_after(killed_at)
        cluster.wait_healthy(120)  # the old primary rejoins as the synchronous standby
        rejoined_after = time.monotonic() - killed_at
        assert old_primary.role() == "replica"
        assert cluster.sync_standby() is old_primary
        # It holds what was committed after it died (rewound and streaming from the new one).
        assert _count(old_primary.url(DATABASE), lab.room_device) == (total, total)
    finally:
        health.stop()
        stored.stop()
        http.close()
        api.terminate()
        api.wait(timeout=20)
        api_log.close()
    with psycopg.connect(ha_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
    assert ingest.process.terminate() == 0
    assert "now writing to " + new_primary.address in ingest.process.log()
    print(
        f"\nFAILOVER: {total} of {total} readings stored once; primary SIGKILLed,"
        f" {new_primary.name} promoted after {promoted_after:.1f} s; ingest storing again"
        f" {ingest_back:.1f} s and the API answering {api_back:.1f} s after the kill (longest"
        f" /health gap {health.longest_gap():.1f} s); old primary back as synchronous standby"
        f" after {rejoined_after:.1f} s"
    )


def test_when_the_primary_machine_dies_the_standby_takes_over_once_its_lease_runs_out(
    cluster: PatroniCluster, ha_url: str, broker: PrivateMosquitto, worker: Callable[[str], Worker]
) -> None:
    """Patroni dies with PostgreSQL (power, kernel): no one releases the leader key, so the
    standby takes over when it expires (ttl), not at once. Still N of N, each once."""
    old_primary = cluster.wait_healthy(120)
    lab, prefix = _lab_and_topic(ha_url, "machine")
    ingest = worker(prefix)
    total = 6000
    stream = Stream(
        Publisher(broker.url, f"pub-{prefix.split('/')[0]}"),
        f"{prefix}/{lab.room_device}/readings",
        total,
        per_second=150,
    ).start()
    wait_for(lambda: _count(ha_url, lab.room_device)[0] >= 300, 30, "300 rows stored")
    stored = Probe(_growing(ha_url, lab.room_device), every=0.2).start()
    died_at = time.monotonic()
    old_primary.kill()
    try:
        new_primary = wait_for(lambda: _new_leader(cluster, old_primary), 90, "a new primary")
        promoted_after = time.monotonic() - died_at
        stream.join()
        wait_for(lambda: _count(ha_url, lab.room_device)[0] >= total, 60, f"{total} rows")
    finally:
        stored.stop()
    assert _count(ha_url, lab.room_device) == (total, total)
    ingest_back = stored.back_after(died_at)
    old_primary.start()  # the machine is back
    cluster.wait_healthy(120)
    assert cluster.sync_standby() is old_primary
    assert ingest.process.terminate() == 0
    print(
        f"\nMACHINE DEAD: {new_primary.name} promoted {promoted_after:.1f} s after the primary's"
        f" Patroni and PostgreSQL were SIGKILLed; ingest storing again after {ingest_back:.1f} s;"
        f" {total} of {total} stored once; the old primary rejoined as synchronous standby"
    )


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _new_leader(cluster: PatroniCluster, old: PatroniNode) -> PatroniNode | None:
    leader = cluster.leader()
    return leader if leader is not None and leader is not old else None


def test_losing_the_standby_does_not_stop_ingest_and_shows_in_metrics_and_log(
    cluster: PatroniCluster, ha_url: str, broker: PrivateMosquitto, worker: Callable[[str], Worker]
) -> None:
    cluster.wait_healthy(120)
    standby = cluster.sync_standby()
    assert standby is not None
    lab, prefix = _lab_and_topic(ha_url, "standby")
    ingest = worker(prefix)
    topic = f"{prefix}/{lab.room_device}/readings"
    total = 3000
    stream = Stream(Publisher(broker.url, f"pub-{prefix.split('/')[0]}"), topic, total, 400)
    stream.start()
    wait_for(lambda: _count(ha_url, lab.room_device)[0] >= 400, 30, "400 rows stored")
    assert ingest.metric("ldl_ingest_database_synchronous_standbys") == 1
    stored = Probe(_growing(ha_url, lab.room_device), every=0.2).start()
    lost_at = time.monotonic()
    standby.kill()  # the machine dies: its Patroni and its PostgreSQL
    try:
        stream.join()
        wait_for(lambda: _count(ha_url, lab.room_device)[0] >= total, 60, f"{total} rows")
        stored_all_after = time.monotonic() - lost_at
    finally:
        stored.stop()
    assert _count(ha_url, lab.room_device) == (total, total)
    wait_for(
        lambda: ingest.metric("ldl_ingest_database_synchronous_standbys") == 0,
        10,
        "the gauge to show no synchronous standby",
    )
    assert "no synchronous standby any more" in ingest.process.log()

    standby.start()  # back: Patroni makes it the synchronous standby again
    cluster.wait_healthy(120)
    more = Publisher(broker.url, f"pub2-{prefix.split('/')[0]}")
    for seq in range(total, total + 50):  # commits are what the worker observes the setting on
        more.publish(topic, reading(at(seq), value=float(seq)))
        time.sleep(0.1)
    more.close()
    wait_for(
        lambda: ingest.metric("ldl_ingest_database_synchronous_standbys") == 1,
        20,
        "the gauge to show the synchronous standby again",
    )
    assert ingest.process.terminate() == 0
    assert _count(ha_url, lab.room_device) == (total + 50, total + 50)
    print(
        f"\nSTANDBY LOST: ingest went on ({total} of {total} stored {stored_all_after:.1f} s after"
        f" the standby died; the longest pause in storing {stored.longest_gap():.1f} s);"
        " gauge 1 -> 0 -> 1 and a warning in the log"
    )


def test_a_url_with_no_writable_node_is_one_line_and_changes_nothing(
    cluster: PatroniCluster, ha_url: str
) -> None:
    cluster.wait_healthy(120)
    standbys = cluster.replicas()
    url = cluster.multi_host_url(DATABASE, standbys + standbys)  # the standby, named twice
    with psycopg.connect(ha_url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM _yoyo_log").fetchone()
    for command in (["migrate"], ["ingest"]):
        done = _ldl(*command, timeout=30, LDL_DATABASE_URL=url, LDL_MQTT_URL="mqtt://127.0.0.1:1")
        assert done.returncode == 2, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(
            f"ldl: LDL_DATABASE_URL: no writable node among {url.split('@')[1].split('/')[0]}/ldl: "
        ), lines[0]
        assert "read-only (a standby)" in lines[0]
    with psycopg.connect(ha_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM _yoyo_log").fetchone() == before


def test_while_etcd_is_unreachable_nothing_is_written_and_nothing_acknowledged_is_lost(
    cluster: PatroniCluster, ha_url: str, broker: PrivateMosquitto, worker: Callable[[str], Worker]
) -> None:
    cluster.wait_healthy(120)
    lab, prefix = _lab_and_topic(ha_url, "etcd")
    ingest = worker(prefix)
    topic = f"{prefix}/{lab.room_device}/readings"
    total = 3000
    stream = Stream(Publisher(broker.url, f"pub-{prefix.split('/')[0]}"), topic, total, 200)
    stream.start()
    wait_for(lambda: _count(ha_url, lab.room_device)[0] >= 200, 30, "200 rows stored")
    cluster.etcd.stop()
    lost_at = time.monotonic()
    # Patroni without etcd cannot know it is still the leader: the primary steps down.
    wait_for(lambda: cluster.leader() is None, 60, "the primary to step down")
    stepped_down_after = time.monotonic() - lost_at
    done = _ldl("migrate", timeout=30, LDL_DATABASE_URL=ha_url)
    assert done.returncode == 2, done
    line = done.stderr.strip()
    assert line.startswith("ldl: LDL_DATABASE_URL: no writable node among "), line
    assert "etcd unreachable" in line and "\n" not in line
    cluster.etcd.start()
    etcd_back = time.monotonic()
    leader = wait_for(cluster.leader, 120, "a leader after etcd is back", step=0.25)
    back_after = time.monotonic() - etcd_back
    stream.join()
    wait_for(lambda: _count(ha_url, lab.room_device)[0] >= total, 90, f"{total} rows")
    assert _count(ha_url, lab.room_device) == (total, total)
    assert ingest.process.terminate() == 0
    print(
        f"\nETCD LOST: the primary stepped down after {stepped_down_after:.1f} s; `ldl migrate`"
        f" refused in one line; {leader.name} primary again {back_after:.1f} s after etcd was back;"
        f" {total} of {total} stored once"
    )
