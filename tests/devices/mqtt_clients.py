"""Real paho-mqtt 2 clients for the broker tests: connect, publish, collect, always clean up."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

TIMEOUT = 5.0


class Session:
    """One MQTT 3.1.1 client with its network loop in a thread; use through `session()`."""

    def __init__(self, port: int, username: str, password: str) -> None:
        self.port = port
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{username}-{uuid.uuid4().hex[:8]}"
        )
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnected = threading.Event()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: ReasonCode, props: Any):
        self._connack.put(reason)
        if reason.is_failure:
            client.disconnect()  # no automatic retries with bad credentials

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any, props: Any):
        self._subacks.put(list(reasons))

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put((message.topic, bytes(message.payload)))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any):
        self.disconnected.set()

    def connect(self) -> ReasonCode:
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        return self._connack.get(timeout=TIMEOUT)

    def subscribe(self, topic: str) -> ReasonCode:
        self.client.subscribe(topic, qos=1)
        return self._subacks.get(timeout=TIMEOUT)[0]

    def publish(self, topic: str, payload: str) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=TIMEOUT)

    def received(self, timeout: float) -> list[tuple[str, bytes]]:
        """Everything that arrives within `timeout` seconds of quiet."""
        found = []
        while True:
            try:
                found.append(self.messages.get(timeout=timeout))
            except queue.Empty:
                return found

    def wait_for(self, topic: str, payload: str) -> list[tuple[str, bytes]]:
        """Messages up to and including (topic, payload); fails after TIMEOUT."""
        seen = []
        while True:
            message = self.messages.get(timeout=TIMEOUT)
            seen.append(message)
            if message == (topic, payload.encode()):
                return seen

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def session(port: int, username: str, password: str) -> Iterator[Session]:
    opened = Session(port, username, password)
    try:
        yield opened
    finally:
        opened.close()
