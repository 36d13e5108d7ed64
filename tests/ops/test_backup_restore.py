"""Point-in-time restore with pgBackRest, on real clusters, with the real broker and worker.

Seq-numbered readings stream through Mosquitto into `ldl ingest`'s worker; a full backup is taken
mid-stream; at a time T the stream goes on and a participant is erased. Restored to T into a new
data directory, the cluster holds exactly the readings committed by T (each row's commit time,
`track_commit_timestamp`), the erased participant's data is back, and `ldl migrate` withdraws it
again from the erasure journal (audited); then the API serves on it. Figures are printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from access.schemas import Principal, Role
from evidence.erase import withdraw_consent
from infra.db import connection
from tests.conftest import PrivateMosquitto, free_port, ldl_environment
from tests.ingest.conftest import Publisher, WorkerProcess, at, reading, seed_lab, wait_until
from tests.ops.conftest import (
    RESTORE_TO_TIME,
    TEST_ARCHIVE_TIMEOUT,
    Cluster,
    Clusters,
    timescale_installed,
)
from trials.schemas import WithdrawalMode, WithdrawalRequest

ROOT = Path(__file__).resolve().parents[2]
PER_SECOND = 100  # per device: two devices, 200 readings a second


def _ldl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ldl", *args],
        env={**ldl_environment(), "LDL_ENVIRONMENT": "test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


class _Stream:
    """Each device publishes reading seq 0, 1, 2 ... at a steady pace, until stopped."""

    def __init__(self, pub: Publisher, topics: list[str]) -> None:
        self.sent = 0
        self._stop = threading.Event()
        self._pub = pub
        self._topics = topics
        self._thread = threading.Thread(target=self._run, name="test-stream")
        self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            for topic in self._topics:
                self._pub.publish(topic, reading(at(self.sent), seq=self.sent))
            self.sent += 1
            ahead = self.sent / PER_SECOND - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        self._pub.flush()

    def finish(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.sent


def _seqs(cluster: Cluster, device: str, committed_by: datetime | None = None) -> list[int]:
    rows = cluster.execute(
        "SELECT seq FROM telemetry_readings WHERE device_id = %s"
        " AND (%s::timestamptz IS NULL OR pg_xact_commit_timestamp(xmin) <= %s) ORDER BY seq",
        device,
        committed_by,
        committed_by,
        dbname="ldl",
    )
    return [int(row[0]) for row in rows]


def _archive_lag(cluster: Cluster) -> float:
    """Seconds from a commit until the WAL segment holding it is in the repository, at worst:
    the commit is the first in a new segment, which waits for archive_timeout to be pushed."""
    cluster.execute("CREATE TABLE IF NOT EXISTS lag_probe (at timestamptz)")
    _wait_archived(cluster, cluster.execute("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    cluster.execute("INSERT INTO lag_probe VALUES (now())")
    started = time.monotonic()
    _wait_archived(cluster, cluster.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
    return time.monotonic() - started


def _wait_archived(cluster: Cluster, segment: str) -> None:
    def archived() -> bool:
        last = cluster.execute("SELECT last_archived_wal FROM pg_stat_archiver")[0][0]
        return (last or "") >= segment

    wait_until(archived, TEST_ARCHIVE_TIMEOUT * 3, f"segment {segment} archived")


@contextmanager
def _serving(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ldl", "api", "--port", str(port)],
            env={**ldl_environment(), "LDL_ENVIRONMENT": "test", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), 30, f"the API on {url}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_restore_to_T_holds_exactly_the_readings_committed_by_T_and_no_erasure_after_it(
    database_path: str,
    clusters: Clusters,
    broker: PrivateMosquitto,
    publisher: Callable[..., Publisher],
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    timescale = database_path == "timescale"
    if timescale and not timescale_installed(clusters.bindir):
        pytest.skip("TimescaleDB is not installed for the clusters' PostgreSQL")
    cluster = clusters.make(timescale=timescale)
    cluster.execute("CREATE DATABASE ldl")
    journal = cluster.directory / "erasures.jsonl"  # next to the repository, not in the cluster
    app_env = {
        "LDL_DATABASE_URL": cluster.url("ldl"),
        "LDL_TIMESCALE": "on" if timescale else "off",
        "LDL_ERASURE_JOURNAL": str(journal),
    }
    migrated = _ldl("migrate", env=app_env)
    assert migrated.returncode == 0, migrated.stderr
    lab = seed_lab(cluster.url("ldl"))
    worker = WorkerProcess(
        {
            **os.environ,
            "LDL_ENVIRONMENT": "test",
            "LDL_DATABASE_URL": cluster.url("ldl"),
            "LDL_MQTT_URL": broker.url,
            "LDL_MQTT_TOPIC_PREFIX": topic_prefix,
            "LDL_INGEST_CLIENT_ID": f"ingest-{topic_prefix.split('/')[0]}",
            "LDL_INGEST_METRICS_PORT": "0",
            "LDL_INGEST_BATCH_SIZE": "200",
        },
        tmp_path / "worker.log",
    ).start()
    room, bed = lab.room_device, lab.participant_device
    try:
        worker.wait_connected()
        stream = _Stream(
            publisher(), [f"{topic_prefix}/{room}/readings", f"{topic_prefix}/{bed}/readings"]
        )
        wait_until(lambda: len(_seqs(cluster, room)) >= 300, 30, "the stream to be stored")
        started = time.monotonic()
        cluster.pgbackrest("backup", "--type=full")  # mid-stream
        backup_seconds = time.monotonic() - started
        time.sleep(2)
        target = cluster.execute("SELECT clock_timestamp()")[0][0]
        time.sleep(2)
        # What a restore to T must hold: every row whose transaction committed by T.
        bed_by_target = _seqs(cluster, bed, committed_by=target)
        with connection(cluster.url("ldl")) as conn:  # the API's erase, journaled as there
            erased = withdraw_consent(
                conn,
                Principal(name="test", role=Role.COORDINATOR),
                lab.participant_id,
                WithdrawalRequest(at=at(0), mode=WithdrawalMode.ERASE),
                journal,
            )
        assert erased.erased_rows["telemetry_readings"] >= len(bed_by_target) > 0
        time.sleep(2)
        sent = stream.finish()
        wait_until(lambda: len(_seqs(cluster, room)) == sent, 60, f"all {sent} room readings")
        assert worker.terminate() == 0
    finally:
        worker.ensure_stopped()
    room_by_target = _seqs(cluster, room, committed_by=target)
    assert 0 < len(room_by_target) < sent
    assert _seqs(cluster, bed) == []
    lag = _archive_lag(cluster)  # also: the WAL past T, and past the erase, is in the repository

    restored_data = cluster.directory / "restored"
    started = time.monotonic()
    restore = cluster.run(str(RESTORE_TO_TIME), target.isoformat(sep=" "), str(restored_data))
    restored = clusters.restored(cluster, restored_data)
    # Beside the original, so it neither takes its port nor archives into its repository.
    restored.start("archive_mode=off")
    restored.wait_promoted()
    restore_seconds = time.monotonic() - started
    assert "restored into" in restore.stdout

    assert _seqs(restored, room) == room_by_target
    assert _seqs(restored, bed) == bed_by_target  # erased after T: back, until the journal runs
    restored_env = {**app_env, "LDL_DATABASE_URL": restored.url("ldl")}
    migrated = _ldl("migrate", env=restored_env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"re-applied withdrawal (erase) of participant {lab.participant_id}" in migrated.stdout
    assert _seqs(restored, bed) == []
    assert _seqs(restored, room) == room_by_target
    audit = restored.execute(
        "SELECT action, actor FROM audit_log WHERE entity = 'participant' AND entity_id = %s"
        " ORDER BY id",
        str(lab.participant_id),
        dbname="ldl",
    )
    assert audit[-3:] == [
        ("consent.withdraw", "erasure-journal"),
        ("participant.erase", "erasure-journal"),
        ("erasure.reapply", "erasure-journal"),
    ]

    key = _ldl("keys", "create", "--role", "coordinator", env=restored_env)
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip().rsplit(" ", 1)[-1]
    with _serving(restored_env, tmp_path / "api.log") as url:
        trial = httpx.get(
            f"{url}/trials/{lab.trial_id}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=10,
        )
        assert trial.status_code == 200, trial.text
        assert trial.json()["id"] == lab.trial_id

    figures: dict[str, Any] = {
        "path": database_path,
        "readings_streamed": 2 * sent,
        "room_readings_committed_by_T": len(room_by_target),
        "full_backup_seconds": round(backup_seconds, 1),
        "restore_seconds": round(restore_seconds, 1),
        "archive_lag_seconds": round(lag, 1),
        "archive_timeout_seconds": TEST_ARCHIVE_TIMEOUT,
        "database_size": cluster.execute("SELECT pg_size_pretty(pg_database_size('ldl'))")[0][0],
    }
    print(f"\nbackup/restore figures: {json.dumps(figures)}")


def test_a_restore_refuses_what_the_backups_cannot_reach_in_one_line_and_changes_nothing(
    clusters: Clusters,
) -> None:
    cluster = clusters.make()
    before_any_backup = cluster.execute("SELECT clock_timestamp()")[0][0]
    time.sleep(1.1)  # the backups' times are whole seconds
    cluster.pgbackrest("backup", "--type=full")
    fresh = cluster.directory / "restored"

    def restore(target: str, into: Path = fresh, *env: str) -> str:
        result = cluster.run("env", *env, str(RESTORE_TO_TIME), target, str(into), check=False)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not fresh.exists()
        return result.stderr.strip()

    assert "is before the oldest backup's end" in restore(before_any_backup.isoformat(sep=" "))
    assert "is in the future" in restore("2999-01-01 00:00:00+00")
    assert "cannot read the time" in restore("yesterday")
    assert "write it with its offset" in restore("2026-12-07 14:05:00")
    now = cluster.execute("SELECT clock_timestamp()")[0][0].isoformat(sep=" ")
    missing = cluster.directory / "no-repository"
    said = restore(now, fresh, f"PGBACKREST_REPO1_PATH={missing}")
    assert said == (
        f"restore-to-time: no backup repository for stanza 'ldl' at {missing}: missing stanza path"
    )
    assert "is not empty: restore into a new data directory" in restore(now, cluster.data)
    assert cluster.execute("SELECT 1") == [(1,)]  # the running cluster is untouched

    # Later than the last archived WAL: PostgreSQL itself refuses to open the restored cluster.
    cluster.execute("SELECT pg_switch_wal()")
    time.sleep(1)
    late = cluster.execute("SELECT clock_timestamp()")[0][0]
    cluster.stop()  # nothing after `late` is ever archived
    cluster.run(str(RESTORE_TO_TIME), late.isoformat(sep=" "), str(fresh))
    restored = clusters.restored(cluster, fresh)
    # pg_ctl may see it fail at once, or first open for reading (consistent) and fail later.
    with contextlib.suppress(AssertionError):
        restored.start("archive_mode=off")
    refusal = "FATAL:  recovery ended before configured recovery target was reached"
    wait_until(lambda: refusal in restored.log.read_text(), 60, "PostgreSQL's refusal")
    wait_until(lambda: not (fresh / "postmaster.pid").exists(), 30, "the restored one to stop")
