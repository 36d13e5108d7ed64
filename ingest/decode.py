"""Topic and payload → a `DeviceMessage` or a `DeadLetter`. Decoding happens here and only here.

The payload is parsed once with orjson and validated once: by the fast path for the common
native readings shape (ingest/fastpath.py), else by the pydantic models, which also word every
refusal. Nothing in here raises on input, whatever the bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import orjson
from pydantic import ValidationError

from devices.payloads import (
    Event,
    EventBatch,
    Reading,
    ReadingBatch,
    Status,
    senml_pack,
    senml_readings,
)
from ingest.fastpath import fast_readings
from ingest.messages import (
    Channel,
    DeadLetter,
    DeadLetterReason,
    DeviceMessage,
    Inbound,
    ReadingRow,
)

MAX_PAYLOAD_BYTES = 256 * 1024  # a settings candidate: LDL_INGEST_MAX_PAYLOAD_BYTES
EXCERPT_CHARS = 512
DEVICE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
CHANNELS = {channel.value: channel for channel in Channel}
TOPIC_CACHE_SIZE = 100_000  # devices × channels seen; parsed topics are looked up, not re-parsed
_topics: dict[tuple[str, str], tuple[str, Channel] | None] = {}
_UNSEEN = object()


def parse_topic(topic: str, prefix: str) -> tuple[str, Channel] | None:
    """`{prefix}/{device_id}/{channel}` → (device_id, channel), or None when it is not that."""
    key = (topic, prefix)
    address = _topics.get(key, _UNSEEN)
    if address is _UNSEEN:
        address = _parse_topic(topic, prefix)
        if len(_topics) >= TOPIC_CACHE_SIZE:
            _topics.clear()  # bounded: a flood of made-up topics cannot grow it
        _topics[key] = address
    return address  # type: ignore[return-value]


def _parse_topic(topic: str, prefix: str) -> tuple[str, Channel] | None:
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 2 or not DEVICE_ID.match(parts[0]) or parts[1] not in CHANNELS:
        return None
    return parts[0], CHANNELS[parts[1]]


def excerpt(payload: bytes) -> str:
    # Bounded, printable, and storable as text (PostgreSQL refuses NUL characters).
    text = payload[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return text.replace("\x00", "\\x00")


def decode(inbound: Inbound, prefix: str) -> DeviceMessage | DeadLetter:
    def refuse(reason: DeadLetterReason, detail: str, device_id: str | None = None) -> DeadLetter:
        return DeadLetter(
            topic=inbound.topic.replace("\x00", "\\x00"),
            device_id=device_id,
            reason=reason,
            detail=detail[:1000].replace("\x00", "\\x00"),
            excerpt=excerpt(inbound.payload),
            payload_size=len(inbound.payload),
            received_at=inbound.received_at,
        )

    address = parse_topic(inbound.topic, prefix)
    if address is None:
        return refuse(DeadLetterReason.BAD_TOPIC, f"expected {prefix}/<device_id>/<channel>")
    device_id, channel = address
    if len(inbound.payload) > MAX_PAYLOAD_BYTES:
        return refuse(
            DeadLetterReason.OVERSIZED,
            f"{len(inbound.payload)} bytes > {MAX_PAYLOAD_BYTES}",
            device_id,
        )
    try:
        document = orjson.loads(inbound.payload)
    except orjson.JSONDecodeError as exc:
        reason = DeadLetterReason.NON_FINITE if _has_non_finite(inbound.payload) else None
        return refuse(reason or DeadLetterReason.MALFORMED_JSON, str(exc), device_id)
    try:
        return _validate(device_id, channel, document)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        non_finite = any(error["type"] == "finite_number" for error in errors)
        reason = DeadLetterReason.NON_FINITE if non_finite else DeadLetterReason.SCHEMA_VIOLATION
        return refuse(reason, _summarise(errors), device_id)
    except ValueError as exc:  # SenML resolution
        return refuse(DeadLetterReason.SCHEMA_VIOLATION, str(exc), device_id)


def _validate(device_id: str, channel: Channel, document: Any) -> DeviceMessage:
    if channel is Channel.READINGS:
        fast = fast_readings(document)
        if fast is not None:
            return DeviceMessage(device_id, channel, readings=fast[0], seqs=fast[1])
        if isinstance(document, list):
            readings = _rows(senml_readings(senml_pack.validate_python(document)))
            return DeviceMessage(device_id, channel, readings=readings)
        if isinstance(document, dict) and "readings" in document:
            batch = ReadingBatch.model_validate(document)
            seqs = _seqs(batch.seq, [r.seq for r in batch.readings])
            return DeviceMessage(device_id, channel, readings=_rows(batch.readings), seqs=seqs)
        reading = Reading.model_validate(document)
        return DeviceMessage(
            device_id, channel, readings=_rows([reading]), seqs=_seqs(reading.seq, [])
        )
    if channel is Channel.EVENTS:
        if isinstance(document, dict) and "events" in document:
            events = EventBatch.model_validate(document)
            seqs = _seqs(events.seq, [e.seq for e in events.events])
            return DeviceMessage(device_id, channel, events=tuple(events.events), seqs=seqs)
        event = Event.model_validate(document)
        return DeviceMessage(device_id, channel, events=(event,), seqs=_seqs(event.seq, []))
    status = Status.model_validate(document)
    return DeviceMessage(device_id, channel, status=status, seqs=_seqs(status.seq, []))


def _rows(readings: Iterable[Reading]) -> tuple[ReadingRow, ...]:
    return tuple((r.ts, r.metric, r.value, r.seq) for r in readings)


def _seqs(message_seq: int | None, item_seqs: list[int | None]) -> tuple[int, ...]:
    # A batch-level seq numbers the message; otherwise each item's own seq counts.
    if message_seq is not None:
        return (message_seq,)
    return tuple(seq for seq in item_seqs if seq is not None)


def _has_non_finite(payload: bytes) -> bool:
    """orjson refuses NaN/Infinity outright; the lenient parser tells them from garbage."""
    try:
        return _contains_non_finite(json.loads(payload))
    except (ValueError, RecursionError):
        return False


def _contains_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_contains_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_non_finite(item) for item in value)
    return False


def _summarise(errors: list[Any]) -> str:
    shown = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5]]
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(shown) + more
