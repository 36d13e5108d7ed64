"""`ldl ingest --ready-file`: the signal that nothing published from now on is lost, also on a
first start against a fresh broker (no session yet, a shared subscription), as `ldl demo` has."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.ingest.conftest import (
    Publisher,
    WorkerProcess,
    at,
    count,
    reading,
    seed_lab,
    wait_until,
)


def test_what_is_published_as_soon_as_the_ready_file_appears_is_all_stored(
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
    db_url: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    lab = seed_lab(db_url)
    ready = tmp_path / "ingest.ready"
    worker = start_worker(args=("--ready-file", str(ready)), ingest_share_group="ready-test")
    wait_until(ready.exists, 20, "the ready file")
    assert f"$share/ready-test/{topic_prefix}/#" in ready.read_text()
    pub = publisher()
    for index in range(50):
        pub.publish(f"{topic_prefix}/{lab.room_device}/readings", reading(at(index)))
    pub.flush()
    stored = "SELECT count(*) FROM telemetry_readings"
    wait_until(lambda: count(db_url, stored) == 50, 15, "all 50 readings stored")
    assert worker.terminate() == 0
    assert not ready.exists()  # gone with the worker: a stale file never says "ready"
