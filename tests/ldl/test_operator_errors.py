"""What an operator sees when `ldl ingest` or `ldl broker sync` cannot do its job: one line that
names the setting and the address, soon, and Ctrl-C that works at once (through the real CLI)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PrivateMosquitto, free_port, ldl_environment


def _ldl(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ldl", *args],
        env={**ldl_environment(), "LDL_INGEST_METRICS_PORT": "0", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str, float]:
    started = time.monotonic()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()  # never leave a worker behind
        process.communicate()
        raise
    return process.returncode, out, err, time.monotonic() - started


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_ingest_names_the_setting_and_address_of_a_broker_it_cannot_reach(db_url: str) -> None:
    port = free_port()  # nothing listens here
    worker = _ldl("ingest", LDL_DATABASE_URL=db_url, LDL_MQTT_URL=f"mqtt://127.0.0.1:{port}")
    code, _, err, took = _finish(worker, timeout=30)
    assert code == 2
    line = _one_line(err)
    assert line.startswith(f"ldl: LDL_MQTT_URL: cannot connect to 127.0.0.1:{port}: "), line
    assert "refused" in line.lower()
    assert took < 10


def test_ingest_names_the_setting_when_the_broker_refuses_the_login(
    db_url: str, private_mosquitto: Callable[..., PrivateMosquitto]
) -> None:
    broker = private_mosquitto("listener {port} 127.0.0.1\nallow_anonymous false\n")
    url = f"mqtt://ldl-ingest:wrong@127.0.0.1:{broker.port}"
    code, _, err, took = _finish(_ldl("ingest", LDL_DATABASE_URL=db_url, LDL_MQTT_URL=url), 30)
    assert code == 2
    assert "LDL_MQTT_URL" in err and f"127.0.0.1:{broker.port} refused" in err, err
    assert "Traceback" not in err and took < 10


def test_ingest_gives_up_in_one_line_on_an_address_that_never_speaks_mqtt(db_url: str) -> None:
    with socket.create_server(
        ("127.0.0.1", 0)
    ) as silent:  # takes the TCP connection, never answers
        port = silent.getsockname()[1]
        worker = _ldl("ingest", LDL_DATABASE_URL=db_url, LDL_MQTT_URL=f"mqtt://127.0.0.1:{port}")
        code, _, err, took = _finish(worker, timeout=40)
    assert code == 2
    assert f"LDL_MQTT_URL: no MQTT session with 127.0.0.1:{port} within 10 s" in err, err
    assert "Traceback" not in err and took < 20


def test_ingest_without_a_database_url_is_one_line() -> None:
    worker = _ldl("ingest", LDL_MQTT_URL="mqtt://127.0.0.1:1883")
    code, _, err, _ = _finish(worker, timeout=30)
    assert code == 2
    assert "LDL_DATABASE_URL" in _one_line(err)


def test_ctrl_c_stops_ingest_at_once_while_it_waits_for_the_broker(db_url: str) -> None:
    with socket.create_server(
        ("127.0.0.1", 0)
    ) as silent:  # takes the TCP connection, never answers
        port = silent.getsockname()[1]
        worker = _ldl("ingest", LDL_DATABASE_URL=db_url, LDL_MQTT_URL=f"mqtt://127.0.0.1:{port}")
        silent.settimeout(20)
        connection, _ = silent.accept()
        with connection:
            connection.recv(1024)  # its CONNECT: the worker now waits for an answer
            time.sleep(0.5)
            worker.send_signal(signal.SIGINT)
            code, _, err, took = _finish(worker, timeout=10)
    assert took < 3, err
    assert code == 0, err
    assert "Traceback" not in err


def test_broker_sync_says_the_pid_file_is_missing_not_that_the_setting_is(
    db_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "mosquitto.pid"
    sync = _ldl(
        "broker",
        "sync",
        LDL_DATABASE_URL=db_url,
        LDL_MOSQUITTO_PASSWORD_FILE=str(tmp_path / "passwd"),
        LDL_MOSQUITTO_ACL_FILE=str(tmp_path / "acl"),
        LDL_MOSQUITTO_PID_FILE=str(missing),
    )
    code, out, _, _ = _finish(sync, timeout=30)
    assert code == 0
    assert f"{missing} does not exist" in out, out
    assert "no LDL_MOSQUITTO_PID_FILE" not in out
