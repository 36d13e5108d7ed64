"""`ldl demo`: the whole system on one machine, with a seeded lab and simulated devices.

Uses LDL_DATABASE_URL / LDL_MQTT_URL when set; otherwise starts an embedded PostgreSQL and a
broker (Mosquitto from the PATH, or amqtt) with their data under LDL_DATA_DIR. The API, the ingest
worker and the simulator run as `ldl` child processes, so the demo exercises the real commands.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import typer

from access.accounts import create_user, set_password
from access.schemas import OPERATOR, ApiKeyCreate, Role, UserCreate
from access.service import create_key
from infra.db import connection
from infra.errors import Conflict
from infra.migrate import apply_migrations
from infra.settings import Settings
from ldl.seed import seed_demo_lab

DEMO_KEY_PREFIX = "demo: "
DEMO_EMAIL_DOMAIN = "demo.ldl.dk"
BACKFILL_DAYS = 14


def _say(message: str = "") -> None:
    typer.echo(message)


@contextlib.contextmanager
def _services(settings: Settings) -> Iterator[tuple[str, str]]:
    """The database and broker URLs: configured ones, or embedded ones started here."""
    with ExitStack() as stack:
        database_url, mqtt_url = settings.database_url, settings.mqtt_url
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not database_url or not mqtt_url:
            from ldl.embedded import start_broker, start_postgres
        if not database_url:
            _say(f"starting embedded PostgreSQL (data in {settings.data_dir})")
            database_url = stack.enter_context(start_postgres(settings.data_dir)).url
        if not mqtt_url:
            broker = stack.enter_context(start_broker(settings.data_dir))
            _say(f"started embedded MQTT broker ({broker.name})")
            mqtt_url = broker.url
        yield database_url, mqtt_url


def _fresh_demo_keys(database_url: str) -> list[tuple[str, str]]:
    """Revoke the previous run's demo keys and print new ones (keys are stored only as hashes)."""
    with connection(database_url) as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE name LIKE %s AND revoked_at IS NULL",
            (DEMO_KEY_PREFIX + "%",),
        )
        keys = [
            (
                "coordinator",
                create_key(
                    conn,
                    OPERATOR,
                    ApiKeyCreate(name=DEMO_KEY_PREFIX + "coordinator", role=Role.COORDINATOR),
                ).key,
            )
        ]
        keys.append(
            (
                "evaluator",
                create_key(
                    conn,
                    OPERATOR,
                    ApiKeyCreate(name=DEMO_KEY_PREFIX + "evaluator", role=Role.EVALUATOR),
                ).key,
            )
        )
        for company_id, name in conn.execute("SELECT id, name FROM companies ORDER BY id"):
            created = create_key(
                conn,
                OPERATOR,
                ApiKeyCreate(name=DEMO_KEY_PREFIX + name, role=Role.COMPANY, company_id=company_id),
            )
            keys.append((f"company {company_id} ({name})", created.key))
    return keys


def _demo_logins(database_url: str) -> list[tuple[str, str, str]]:
    """An account per role (and per company) with a new password each run: (who, email, password)."""
    people = [("coordinator", Role.COORDINATOR, None), ("evaluator", Role.EVALUATOR, None)]
    logins = []
    with connection(database_url) as conn:
        companies = conn.execute("SELECT id, name FROM companies ORDER BY id").fetchall()
        people += [(f"company {cid} ({name})", Role.COMPANY, cid) for cid, name in companies]
        for who, role, company_id in people:
            email = f"{role.value}{company_id or ''}@{DEMO_EMAIL_DOMAIN}"
            password = secrets.token_urlsafe(9)
            try:
                with conn.transaction():
                    create_user(
                        conn,
                        UserCreate(
                            email=email, role=role, company_id=company_id, password=password
                        ),
                    )
            except Conflict:  # an earlier run made it: a new password, its sessions end
                set_password(conn, email, password)
            logins.append((who, email, password))
    return logins


def _has_telemetry(database_url: str) -> bool:
    with connection(database_url) as conn:
        row = conn.execute("SELECT EXISTS (SELECT 1 FROM telemetry_readings)").fetchone()
    return bool(row and row[0])


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ldl", *args], env=env)


def _wait_for_api(url: str, processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise SystemExit("a demo process exited early; see its output above")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the API did not answer at {url} within {timeout:.0f} s")


def _wait_for_ingest(
    ready_file: Path, processes: list[subprocess.Popen[bytes]], timeout: float = 30
) -> None:
    """Until the worker's subscription is acknowledged (`ldl ingest --ready-file`): before it, a
    first start's broker has no session to keep messages in, and the backfill would be lost."""
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if any(p.poll() is not None for p in processes):
            raise SystemExit("a demo process exited early; see its output above")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the ingest worker did not subscribe to the broker within {timeout:.0f} s;"
                " see its output above"
            )
        time.sleep(0.1)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the demo as cleanly as Ctrl-C


def run_demo(settings: Settings) -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    with _services(settings) as (database_url, mqtt_url):
        applied = apply_migrations(database_url, settings.timescale)
        _say(f"migrations applied: {', '.join(applied)}" if applied else "database is up to date")
        with connection(database_url) as conn:
            seeded = seed_demo_lab(conn)
        _say("seeded the demo lab" if seeded else "reusing the demo lab from an earlier run")
        keys = _fresh_demo_keys(database_url)
        logins = _demo_logins(database_url)

        env = {
            **os.environ,
            "LDL_DATABASE_URL": database_url,
            "LDL_MQTT_URL": mqtt_url,
            "LDL_ROLLUP_REFRESH_SECONDS": os.environ.get("LDL_ROLLUP_REFRESH_SECONDS", "10"),
        }
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        ingest_ready = settings.data_dir / "ingest.ready"
        ingest_ready.unlink(missing_ok=True)  # a worker killed before it could remove its own
        processes = [
            _spawn(["api", "--host", settings.api_host, "--port", str(settings.api_port)], env),
            _spawn(["ingest", "--ready-file", str(ingest_ready)], env),
        ]
        try:
            _wait_for_api(api_url, processes)
            _wait_for_ingest(ingest_ready, processes)
            _say("the ingest worker is subscribed; starting the device simulator")
            backfill = (
                [] if _has_telemetry(database_url) else ["--backfill-days", str(BACKFILL_DAYS)]
            )
            processes.append(_spawn(["simulate", "--rate", "0.2", *backfill], env))
            _print_welcome(
                api_url, database_url, mqtt_url, keys, logins, time.monotonic() - started
            )
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            _say("a demo process stopped; shutting down")
        except KeyboardInterrupt:
            _say("\nstopping the demo…")
        finally:
            _stop(processes)
    _say("demo stopped; run `make demo` again to continue with the same data")


def _print_welcome(
    api_url: str,
    database_url: str,
    mqtt_url: str,
    keys: list[tuple[str, str]],
    logins: list[tuple[str, str, str]],
    elapsed: float,
) -> None:
    coordinator = keys[0][1]
    _say("")
    _say(f"Living Design Lab demo is up ({elapsed:.1f} s)")
    _say(f"  Web app        {api_url}/app/   (Danish; English from the link at the top)")
    _say("  sign in as (passwords new each run):")
    for who, email, password in logins:
        _say(f"    {who:32} {email:28} {password}")
    _say(f"  API            {api_url}   (OpenAPI docs: {api_url}/docs)")
    _say(f"  database       {database_url}")
    _say(f"  MQTT broker    {mqtt_url}   (devices publish on ldl/v1/<device>/<channel>)")
    _say("  API keys (new each run; earlier demo keys are revoked):")
    for who, key in keys:
        _say(f"    {who:32} {key}")
    _say("  try:")
    _say(f"    curl -s -H 'Authorization: Bearer {coordinator}' {api_url}/trials")
    _say(f"    curl -s -H 'Authorization: Bearer {coordinator}' {api_url}/trials/1/time-saved")
    _say(
        f"    curl -s -H 'Authorization: Bearer {coordinator}' {api_url}/trials/1/report"
        " -o report.html   # then open report.html"
    )
    _say("  Ctrl-C stops everything.")
