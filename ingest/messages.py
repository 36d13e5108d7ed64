"""The frozen types that travel through the worker, and the reasons a message is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from devices.payloads import Event, Status


class Channel(StrEnum):
    READINGS = "readings"
    EVENTS = "events"
    STATUS = "status"


class DeadLetterReason(StrEnum):
    BAD_TOPIC = "bad_topic"
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    NON_FINITE = "non_finite"
    SCHEMA_VIOLATION = "schema_violation"
    UNKNOWN_DEVICE = "unknown_device"
    NO_DEPLOYMENT = "no_deployment"
    FUTURE_TIMESTAMP = "future_timestamp"
    BEFORE_REGISTRATION = "before_registration"
    STORAGE_ERROR = "storage_error"


NO_TELEMETRY_CONSENT = "no_telemetry_consent"  # the consent_drops reason


class Inbound(NamedTuple):
    """A message as it came off the broker; `generation` counts broker connections, `dup` is
    the broker's flag for a message it sent before without an acknowledgement.

    NamedTuples, this and `DeviceMessage`: immutable like a frozen dataclass, but built several
    times faster, and one of each is built per message.
    """

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    generation: int
    dup: bool = False


# One validated reading: (ts, metric, value, seq). A plain tuple, not a model or a NamedTuple:
# one is built per reading, and a tuple display costs a fifth of a NamedTuple call.
ReadingRow = tuple[datetime, str, float, int | None]


class DeviceMessage(NamedTuple):
    """A well-formed message: what the device said, not yet routed."""

    device_id: str
    channel: Channel
    readings: tuple[ReadingRow, ...] = ()
    events: tuple[Event, ...] = ()
    status: Status | None = None
    seqs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    device_id: str | None
    reason: DeadLetterReason
    detail: str
    excerpt: str
    payload_size: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Mark:
    """The last seq of a device's channel, and the device time it came with (None if unknown)."""

    seq: int
    ts: datetime | None
