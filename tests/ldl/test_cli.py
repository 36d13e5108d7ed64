from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from infra.errors import ConfigError
from infra.settings import load_settings
from tests.conftest import ldl_environment, run_ldl

COMMANDS = (
    "migrate",
    "api",
    "ingest",
    "simulate",
    "seed",
    "demo",
    "keys",
    "broker",
    "users",
    "grafana",
    "erasures",
)


def test_help_explains_every_command_in_one_line() -> None:
    result = run_ldl("--help")
    assert result.returncode == 0
    lines = [line.strip("│ ") for line in result.stdout.splitlines()]
    for command in COMMANDS:
        described = [line for line in lines if line.startswith(command + " ")]
        assert described, command
        # one line each: the next line starts another command or closes the box
        following = lines[lines.index(described[0]) + 1]
        assert following.split(" ")[0] in COMMANDS or following.startswith("╰"), (
            f"{command}'s help wraps onto a second line"
        )


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"LDL_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}, "LDL_DATABASE_URL"),
        ({"LDL_DATABASE_URL": "mysql://root@localhost/x"}, "LDL_DATABASE_URL"),
        ({"LDL_DATABASE_URL": "postgresql://u@h:notaport/x"}, "LDL_DATABASE_URL"),
        ({"LDL_API_PORT": "eighty"}, "LDL_API_PORT"),
        ({"LDL_MQTT_URL": "http://broker"}, "LDL_MQTT_URL"),
        ({"LDL_TIMESCALE": "maybe"}, "LDL_TIMESCALE"),
        ({}, "LDL_DATABASE_URL"),  # not set at all
    ],
)
def test_bad_configuration_is_one_line_naming_the_setting(
    env: dict[str, str], setting: str
) -> None:
    result = run_ldl("migrate", **env)
    assert result.returncode == 2
    assert setting in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_settings_refuse_placeholder_grafana_password_in_production() -> None:
    with pytest.raises(ConfigError, match="LDL_GRAFANA_ADMIN_PASSWORD"):
        load_settings(
            environment="production", grafana_url="http://g:3000", grafana_admin_password="admin"
        )


def test_migrate_is_idempotent_from_the_command_line(db_url: str) -> None:
    first = run_ldl("migrate", LDL_DATABASE_URL=db_url)
    assert first.returncode == 0, first.stderr
    assert "up to date" in first.stdout


def test_keys_create_prints_a_key_that_is_stored_only_as_a_hash(db_url: str) -> None:
    result = run_ldl(
        "keys", "create", "--role", "coordinator", "--name", "lab", LDL_DATABASE_URL=db_url
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().split()[-1]
    assert key.startswith("ldl_")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT key_hash, role FROM api_keys").fetchall()
        audit = conn.execute("SELECT action FROM audit_log").fetchall()
    assert len(rows) == 1 and rows[0][1] == "coordinator"
    assert key not in rows[0][0]
    assert ("api_key.create",) in audit


def test_company_key_needs_a_company(db_url: str) -> None:
    result = run_ldl("keys", "create", "--role", "company", LDL_DATABASE_URL=db_url)
    assert result.returncode == 2
    assert "company_id is required" in result.stderr


def test_users_create_reads_the_password_from_stdin_and_stores_only_an_argon2_hash(
    db_url: str,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        company = conn.execute("INSERT INTO companies (name) VALUES ('A') RETURNING id").fetchone()
    args = ("users", "create", "--role", "company", "--company", str(company[0]))
    created = subprocess.run(
        [sys.executable, "-m", "ldl", *args, "--email", "Lab@Sengeteknik.dk"],
        input="a long enough secret\n",
        env={**os.environ, "LDL_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert "lab@sengeteknik.dk" in created.stdout
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT role, company_id, password_hash FROM user_accounts"
        ).fetchone()
    assert stored[:2] == ("company", company[0]) and stored[2].startswith("$argon2id$")
    short = subprocess.run(
        [sys.executable, "-m", "ldl", *args, "--email", "b@sengeteknik.dk"],
        input="short\n",
        env={**os.environ, "LDL_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert short.returncode == 2 and "10 characters" in short.stderr


def test_api_with_several_workers_serves_from_several_processes(db_url: str) -> None:
    """`ldl api --workers 2`: two processes on one port, each with its own pool and gate."""
    import time

    import httpx

    from tests.conftest import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ldl", "api", "--port", str(port), "--workers", "2"],
        env={**ldl_environment(), "LDL_DATABASE_URL": db_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        workers: list[str] = []
        while time.monotonic() < deadline:
            children = subprocess.run(
                ["pgrep", "-P", str(server.pid)], capture_output=True, text=True
            )
            workers = children.stdout.split()
            try:
                if len(workers) >= 2 and httpx.get(f"http://127.0.0.1:{port}/health").is_success:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert len(workers) >= 2, f"worker processes: {workers}"
        for _ in range(4):  # new connections, spread by the kernel over the workers
            assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)
    assert server.returncode == 0, stderr
