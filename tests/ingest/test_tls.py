"""`mqtts://` in LDL_MQTT_URL really is TLS: the worker verifies the broker's certificate against
LDL_MQTT_CA_FILE, and refuses, in one line, a broker it cannot verify."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PrivateMosquitto, ldl_environment

TLS_DOC = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "TLS.md"


def _documented_listener() -> str:
    """deploy/mosquitto/TLS.md's listener block, moved to this test's port and directory."""
    block = re.search(r"```conf\n(.*?)```", TLS_DOC.read_text(), re.S)
    assert block, "TLS.md lost its listener block"
    config = block.group(1).replace("/mosquitto/certs", "{dir}")
    return "allow_anonymous true\n" + config.replace("listener 8883", "listener {port} 127.0.0.1")


def _certificates(directory: Path) -> dict[str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=ldl test CA",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return {name: (directory / name).read_text() for name in ("ca.crt", "server.crt", "server.key")}


@pytest.fixture
def tls_broker(
    private_mosquitto: Callable[..., PrivateMosquitto], tmp_path: Path
) -> PrivateMosquitto:
    return private_mosquitto(_documented_listener(), **_certificates(tmp_path))


def _ingest(db_url: str, broker: PrivateMosquitto, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ldl", "ingest"],
        env={
            **ldl_environment(),
            "LDL_DATABASE_URL": db_url,
            "LDL_MQTT_URL": f"mqtts://127.0.0.1:{broker.port}",
            "LDL_INGEST_METRICS_PORT": "0",
            "LDL_INGEST_SHARE_GROUP": "",
            **env,
        },
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_worker_subscribes_over_tls_with_the_configured_ca(
    db_url: str, tls_broker: PrivateMosquitto
) -> None:
    worker = _ingest(db_url, tls_broker, LDL_MQTT_CA_FILE=str(tls_broker.extra["ca.crt"]))
    assert worker.stderr is not None
    deadline, seen = time.monotonic() + 20, []
    try:
        while time.monotonic() < deadline:
            line = worker.stderr.readline()
            seen.append(line)
            if "subscribed to ldl/v1/#" in line or not line:
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()
    assert any("subscribed to ldl/v1/#" in line for line in seen), "".join(seen)


def test_a_device_publishes_over_tls_as_the_doc_says(tls_broker: PrivateMosquitto) -> None:
    ca_file = str(tls_broker.extra["ca.crt"])
    publish = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tls_broker.port), "-q", "1",
               "-t", "ldl/v1/bed-1/readings", "-m", "{}"]  # fmt: skip
    verified = subprocess.run([*publish, "--cafile", ca_file], capture_output=True, timeout=20)
    assert verified.returncode == 0, verified.stderr
    plain = subprocess.run(publish, capture_output=True, timeout=20)  # no TLS: not accepted
    assert plain.returncode != 0


def test_a_broker_whose_certificate_cannot_be_verified_is_one_line(
    db_url: str, tls_broker: PrivateMosquitto
) -> None:
    worker = _ingest(db_url, tls_broker)  # the system's CAs do not know the test CA
    try:
        _, err = worker.communicate(timeout=30)
    finally:
        worker.kill()  # a no-op once it has exited
    assert worker.returncode == 2
    assert err.startswith(f"ldl: LDL_MQTT_URL: cannot connect to 127.0.0.1:{tls_broker.port}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in err and "Traceback" not in err
