"""Shared pieces of the benchmarks: a scratch database, the machine they ran on, the results file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from access.schemas import OPERATOR, ApiKeyCreate, Role
from access.service import create_key
from infra.migrate import TimescaleMode, apply_migrations

RESULTS_DIR = Path(__file__).parent / "results"
ADMIN_URL = os.environ.get(
    "LDL_BENCH_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def scratch_database(prefix: str, timescale: TimescaleMode = "auto") -> Iterator[str]:
    """A migrated database of the benchmark's own, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
    try:
        apply_migrations(url, timescale)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def lossless_broker() -> Iterator[str]:
    """LDL_BENCH_MQTT_URL, or a Mosquitto of the benchmark's own with no queue limits.

    Not the machine's shared broker: its default max_queued_messages (1000) silently drops
    QoS 1 messages for a subscriber that lags, which would make every loss figure meaningless.
    """
    if url := os.environ.get("LDL_BENCH_MQTT_URL"):
        yield url
        return
    from ldl.embedded import start_broker

    with (
        tempfile.TemporaryDirectory(prefix="ldl-bench-broker-") as directory,
        start_broker(Path(directory)) as broker,
    ):
        yield broker.url


def reader_keys(conn: psycopg.Connection, company_id: int, name: str) -> dict[str, str]:
    """API keys for the two readers a benchmark plays: a coordinator and the trial's company."""

    def key(role: Role, company: int | None = None) -> str:
        return create_key(
            conn, OPERATOR, ApiKeyCreate(name=name, role=role, company_id=company)
        ).key

    return {"coordinator": key(Role.COORDINATOR), "company": key(Role.COMPANY, company_id)}


def machine() -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mosquitto = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True).stdout
    with psycopg.connect(ADMIN_URL) as conn:
        pg = conn.execute("SHOW server_version").fetchone()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": pg[0] if pg else "?",
        "mosquitto": mosquitto.splitlines()[0] if mosquitto else "?",
    }


def write_results(name: str, results: dict[str, object]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
