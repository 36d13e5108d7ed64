"""The worker's buffered-read paho client: every packet intact, in order, and a closed socket seen."""

from __future__ import annotations

import socket
import threading
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.mqtt_client import READ_SIZE, BufferedReadClient, _ReadBuffer


def test_small_reads_come_from_one_large_read_and_a_closed_peer_reads_empty() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        buffered = _ReadBuffer(ours)
        theirs.sendall(b"\x30\x03abc\x40\x02\x00\x01")
        assert buffered.recv(1) == b"\x30"
        assert buffered.pending() == 8  # the rest already read, nothing more in the kernel
        assert buffered.recv(1) == b"\x03"
        assert buffered.recv(3) == b"abc"
        assert buffered.recv(10) == b"\x40\x02\x00\x01"  # never more than is buffered
        assert buffered.pending() == 0
        ours.setblocking(False)
        with pytest.raises(BlockingIOError):
            buffered.recv(1)
        theirs.close()
        assert buffered.recv(1) == b""  # what paho takes for a lost connection


def test_a_subscriber_gets_every_message_whole_and_in_order(mqtt_url: str) -> None:
    """Payloads from a few bytes to past the read size, so packets straddle the reads."""
    topic = f"test-{uuid.uuid4().hex[:10]}/buffered"
    sizes = [1, 120, READ_SIZE - 3, 7, READ_SIZE * 2 + 11, *([90] * 3000)]
    payloads = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    received: list[bytes] = []
    done, subscribed = threading.Event(), threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        received.append(bytes(message.payload))
        if len(received) == len(payloads):
            done.set()

    url = urlsplit(mqtt_url)
    subscriber = BufferedReadClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.connect(url.hostname or "127.0.0.1", url.port or 1883)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2)
    publisher.connect(url.hostname or "127.0.0.1", url.port or 1883)
    publisher.loop_start()
    try:
        assert subscribed.wait(10)
        assert isinstance(subscriber.socket(), _ReadBuffer)  # paho still takes our socket
        for payload in payloads:
            publisher.publish(topic, payload, qos=1)
        assert done.wait(60), f"{len(received)} of {len(payloads)} received"
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        subscriber.disconnect()
        subscriber.loop_stop()
    assert received == payloads
