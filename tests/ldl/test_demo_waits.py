"""`ldl demo` starts the simulator only once the ingest worker has subscribed, and says in one
line when it does not (the demo itself is tried end to end in test_demo.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldl.demo import _wait_for_ingest


@pytest.fixture
def running() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_waits_for_the_workers_ready_file(tmp_path: Path, running: subprocess.Popen[bytes]) -> None:
    ready = tmp_path / "ingest.ready"
    threading.Timer(0.5, ready.write_text, args=("1 ldl/v1/#\n",)).start()
    _wait_for_ingest(ready, [running], timeout=10)
    assert ready.exists()


def test_a_worker_that_never_subscribes_is_one_line_after_the_timeout(
    tmp_path: Path, running: subprocess.Popen[bytes]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        _wait_for_ingest(tmp_path / "ingest.ready", [running], timeout=1)
    assert str(stopped.value) == (
        "the ingest worker did not subscribe to the broker within 1 s; see its output above"
    )


def test_a_worker_that_exits_stops_the_wait_at_once(tmp_path: Path) -> None:
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(2)"])
    exited.wait()
    with pytest.raises(SystemExit, match="a demo process exited early"):
        _wait_for_ingest(tmp_path / "ingest.ready", [exited], timeout=30)
