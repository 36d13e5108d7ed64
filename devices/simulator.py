"""A device simulator: publishes what the care homes' sensors would, for the deployed devices.

Used by `ldl simulate` and `ldl demo`. It can first backfill history (batched messages with the
devices' own past timestamps), then publishes live readings, events and status at a given rate.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
import psycopg

from infra.db import connection
from infra.settings import Settings

# Unacknowledged QoS 1 publishes are capped: paho numbers them with 16 bits (FACTS.md).
MAX_IN_FLIGHT = 1000
BACKFILL_STEP = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SimulatedDevice:
    device_id: str
    device_type: str
    metrics: tuple[str, ...]
    event_types: tuple[str, ...]
    since: datetime


def load_deployed_devices(conn: psycopg.Connection) -> list[SimulatedDevice]:
    rows = conn.execute(
        "SELECT d.id, d.device_type, t.metrics, t.event_types, dep.valid_from"
        " FROM deployments dep JOIN devices d ON d.id = dep.device_id"
        " JOIN device_types t ON t.code = d.device_type"
        " WHERE dep.valid_during @> now() AND d.revoked_at IS NULL ORDER BY d.id"
    ).fetchall()
    return [SimulatedDevice(r[0], r[1], tuple(r[2]), tuple(r[3]), r[4]) for r in rows]


# ------------------------------------------------------------------ what devices say
METRIC_LEVELS = {
    "heart_rate": (68.0, 6.0),
    "respiration_rate": (15.0, 2.0),
    "movement": (0.3, 0.2),
    "doses_remaining": (20.0, 5.0),
    "water_used_l": (4.0, 1.0),
    "area_m2": (30.0, 8.0),
    "battery_level": (70.0, 15.0),
}


def _event_rate_per_hour(event_type: str, hour: int) -> float:
    """How often an event happens at a local hour: night checks at night, doses at meals."""
    if event_type == "night_check_avoided":
        return 0.5 if hour >= 22 or hour < 6 else 0.0
    if event_type in {"dose_dispensed", "dose_taken"}:
        return 1.0 if hour in (8, 12, 18, 21) else 0.0
    if event_type == "stocking_on":
        return 1.0 if hour == 8 else 0.0
    if event_type == "stocking_off":
        return 1.0 if hour == 20 else 0.0
    if event_type == "bed_exit":
        return 0.15
    return 0.05


def reading(
    device: SimulatedDevice, metric: str, ts: datetime, rng: random.Random
) -> dict[str, Any]:
    mean, spread = METRIC_LEVELS.get(metric, (1.0, 0.5))
    value = max(0.0, rng.gauss(mean, spread))
    return {"ts": ts.isoformat(), "metric": metric, "value": round(value, 2)}


def events_between(
    device: SimulatedDevice, start: datetime, end: datetime, rng: random.Random
) -> Iterator[dict[str, Any]]:
    hours = (end - start).total_seconds() / 3600
    local_hour = (start + timedelta(hours=1)).hour  # Danish time, near enough for a demo
    for event_type in device.event_types:
        expected = _event_rate_per_hour(event_type, local_hour) * hours
        count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
        for _ in range(count):
            offset = rng.random() * (end - start).total_seconds()
            ts = (start + timedelta(seconds=offset)).replace(microsecond=0)
            yield {
                "ts": ts.isoformat(),
                "type": event_type,
                "duration_s": round(rng.uniform(20, 120), 1),
            }


def status(ts: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "ts": ts.isoformat(),
        "battery": round(rng.uniform(55, 100)),
        "rssi": round(rng.gauss(-67, 6)),
        "firmware": "2.1.0",
    }


# ---------------------------------------------------------------------- publishing
class Publisher:
    """A QoS 1 publisher that never has more than MAX_IN_FLIGHT messages unacknowledged."""

    def __init__(
        self, mqtt_url: str, prefix: str, client_id: str, login: tuple[str, str] | None = None
    ) -> None:
        parts = urlsplit(mqtt_url)
        self.prefix = prefix
        self._window = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if login or parts.username:
            self._client.username_pw_set(*(login or (parts.username, parts.password)))
        self._client.max_inflight_messages_set(100)
        self._client.on_publish = lambda *_: self._window.release()
        self._client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self._client.loop_start()

    def publish(self, device_id: str, channel: str, payload: object) -> None:
        self._window.acquire()
        info = self._client.publish(
            f"{self.prefix}/{device_id}/{channel}", orjson.dumps(payload), qos=1
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            self._window.release()
            raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")

    def close(self, timeout: float = 30) -> None:
        """Wait for every message to be acknowledged, then disconnect."""
        deadline = time.monotonic() + timeout
        acquired = 0
        while acquired < MAX_IN_FLIGHT and time.monotonic() < deadline:
            if self._window.acquire(timeout=0.1):
                acquired += 1
        self._client.disconnect()
        self._client.loop_stop()


class Fleet:
    """Publishes for many devices: over one connection, or as each device with its own secret."""

    def __init__(self, settings: Settings, secrets: dict[str, str] | None = None) -> None:
        url, prefix = settings.require_mqtt_url(), settings.mqtt_topic_prefix
        tag = random.randrange(1 << 30)
        self._shared = None if secrets else Publisher(url, prefix, f"ldl-simulator-{tag}")
        self._own = {
            device_id: Publisher(url, prefix, f"ldl-sim-{device_id}-{tag}", (device_id, secret))
            for device_id, secret in (secrets or {}).items()
        }

    def publish(self, device_id: str, channel: str, payload: object) -> None:
        (self._shared or self._own[device_id]).publish(device_id, channel, payload)

    def close(self) -> None:
        for publisher in [self._shared, *self._own.values()]:
            if publisher is not None:
                publisher.close()


def issue_secrets(settings: Settings, devices: list[SimulatedDevice]) -> dict[str, str]:
    """Give each simulated device a new secret and reload the broker (demo labs only)."""
    from access.schemas import OPERATOR
    from devices.broker import configured_paths, sync_broker
    from devices.service import rotate_secret

    with connection(settings.require_database_url()) as conn:
        secrets = {d.device_id: rotate_secret(conn, OPERATOR, d.device_id).secret for d in devices}
    if configured_paths(settings):
        sync_broker(settings)
    if secrets:
        device_id, secret = next(iter(secrets.items()))
        _wait_until_accepted(settings.require_mqtt_url(), device_id, secret)
    return secrets


def _wait_until_accepted(mqtt_url: str, username: str, password: str, timeout: float = 30) -> None:
    """Wait until the broker has reread its files and accepts the new secret.

    The broker rereads them on SIGHUP (or within 2 s in the compose stack); a client that logs in
    before that is refused, so every simulated device would start with a reconnect backoff.
    """
    parts = urlsplit(mqtt_url)
    deadline = time.monotonic() + timeout
    accepted = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            accepted.set()

    while True:
        probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ldl-sim-probe-{username}")
        probe.username_pw_set(username, password)
        probe.on_connect = on_connect
        try:
            probe.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
            probe.loop_start()
            if accepted.wait(1):
                return
        except OSError:
            pass
        finally:
            probe.disconnect()
            probe.loop_stop()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the broker does not accept {username}'s new secret")
        time.sleep(0.5)


def backfill(
    publisher: Fleet,
    devices: list[SimulatedDevice],
    since: datetime,
    until: datetime,
    rng: random.Random,
) -> int:
    """Publish history in batches (one message per device per day and channel)."""
    messages = 0
    for device in devices:
        day_start = max(since, device.since)
        while day_start < until:
            day_end = min(day_start + timedelta(days=1), until)
            readings, events = [], []
            ts = day_start
            while ts < day_end:
                readings += [reading(device, m, ts, rng) for m in device.metrics]
                events += list(events_between(device, ts, ts + BACKFILL_STEP, rng))
                ts += BACKFILL_STEP
            if readings:
                publisher.publish(device.device_id, "readings", {"readings": readings})
                messages += 1
            if events:
                publisher.publish(device.device_id, "events", {"events": events})
                messages += 1
            day_start = day_end
    return messages


def run_simulator(
    settings: Settings,
    *,
    rate: float = 0.2,
    duration: float | None = None,
    backfill_days: float = 0,
    stop: threading.Event | None = None,
    as_devices: bool = False,
) -> int:
    """Publish until `duration` passes or `stop` is set; returns the number of messages sent.

    `as_devices`: log in as each device with a newly issued secret, for a broker that enforces
    the registry's credentials and ACLs (the compose stack). It replaces the devices' secrets,
    so it is for demo labs only.
    """
    stop = stop or threading.Event()
    with connection(settings.require_database_url()) as conn:
        devices = load_deployed_devices(conn)
    publisher = Fleet(settings, issue_secrets(settings, devices) if as_devices else None)
    rng = random.Random()
    sent = 0
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        if backfill_days:
            sent += backfill(publisher, devices, now - timedelta(days=backfill_days), now, rng)
        deadline = None if duration is None else time.monotonic() + duration
        seq = 0
        interval = 1 / rate if rate > 0 else None  # rate 0: backfill only
        last = datetime.now(UTC)
        while interval is not None and not stop.wait(interval):
            if deadline is not None and time.monotonic() >= deadline:
                break
            now = datetime.now(UTC)
            seq += 1
            for device in devices:
                if device.metrics:
                    batch = [reading(device, m, now, rng) for m in device.metrics]
                    publisher.publish(device.device_id, "readings", {"readings": batch, "seq": seq})
                    sent += 1
                events = list(events_between(device, last, now, rng))
                if events:
                    publisher.publish(device.device_id, "events", {"events": events})
                    sent += 1
                if seq % 10 == 1:
                    publisher.publish(device.device_id, "status", status(now, rng))
                    sent += 1
            last = now
    finally:
        publisher.close()
    return sent
