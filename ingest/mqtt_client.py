"""A paho client that reads the broker's stream in large chunks instead of three syscalls a packet.

paho 2.x reads each packet with `recv(1)` for its type, `recv(1)` per length byte and one more
`recv` for the body, behind a `select()` per packet: at ten thousand small messages a second
that is most of the worker's network thread. `BufferedReadClient` wraps its socket in
`_ReadBuffer`, which fills from one `recv(64 KiB)` and serves paho's small reads from memory.
paho already knows such sockets: it asks `pending()` (as for TLS and its websocket wrapper) and
then reads without waiting in `select()`; `loop_read` here goes on reading packets while the
buffer holds some, so a full buffer costs one `select()` rather than one per packet.

Everything else (writes, TLS, reconnects, keepalive) is paho's own. This is the one place the
project goes past paho's public API (STYLE.md asks not to): paho has no public way to give it a
socket, and this one is worth it (single-reading messages went from ~11,800 to ~16,000 a second
in the benchmark, past the issue's target). `_create_socket` is the same in paho 2.1 and 2.2
(pyproject pins paho-mqtt < 3); tests/ingest/test_mqtt_client.py fails if a release changes it.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt

READ_SIZE = 65_536
DRAIN_PACKETS = 1_000  # per loop turn, so keepalive and outgoing acks are never starved


class _ReadBuffer:
    """A socket whose small reads are served from one large read; all else passes through."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._data = b""
        self._at = 0

    def recv(self, size: int) -> bytes:
        if self._at >= len(self._data):
            data = self._sock.recv(max(size, READ_SIZE))  # raises BlockingIOError when dry
            if len(data) <= size:  # b"" (the broker closed) included
                return bytes(data)
            self._data, self._at = data, 0
        start, self._at = self._at, min(self._at + size, len(self._data))
        return self._data[start : self._at]

    def buffered(self) -> int:
        return len(self._data) - self._at

    def pending(self) -> int:
        inner = getattr(self._sock, "pending", None)  # a TLS socket's decrypted bytes
        return self.buffered() + (inner() if inner is not None else 0)

    def __getattr__(self, name: str) -> Any:  # send, fileno, close, setblocking, …
        return getattr(self._sock, name)


class BufferedReadClient(mqtt.Client):
    def _create_socket(self) -> Any:
        return _ReadBuffer(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        sock = self.socket()  # the same until a read fails
        if not isinstance(sock, _ReadBuffer):
            return rc
        for _ in range(DRAIN_PACKETS):
            if rc != mqtt.MQTT_ERR_SUCCESS or not sock.buffered():
                break
            rc = super().loop_read(max_packets)
        return rc
