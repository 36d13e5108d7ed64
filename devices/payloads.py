"""The MQTT payloads devices send: the contract with device makers, as pydantic models.

Topic `{prefix}/{device_id}/{channel}` with channel `readings`, `events` or `status`. Timestamps are
the device's own: RFC 3339 with an offset, or integer epoch milliseconds. SenML (RFC 8428) packs are
accepted on `readings`; their times must be absolute (`bt` + `t` ≥ 2**28 s): "relative to now"
would make the stored time depend on when the message arrived, and a redelivery would then store
a second row. The JSON Schemas are published in devices/payload_schemas/ (`python -m devices.payloads`).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    WithJsonSchema,
    model_validator,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# RFC 8428 §4.5.3: a time below 2**28 s is relative to "now"; we refuse those (see module doc).
SENML_RELATIVE_LIMIT = 2**28
MAX_BATCH_ITEMS = 10_000
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9:./_-]{0,199}$"
_NUMERIC_STRING = re.compile(r"^[+-]?\d+(\.\d*)?$")
SCHEMAS_DIR = Path(__file__).parent / "payload_schemas"


def device_time(value: object) -> object:
    """RFC 3339 with an offset, or integer epoch milliseconds; always returned in UTC."""
    if type(value) is int:  # the common case first (type(True) is bool): one call per reading
        try:
            return EPOCH + timedelta(0, 0, 0, value)  # positional: milliseconds
        except OverflowError:
            raise ValueError("epoch milliseconds out of range") from None
    if isinstance(value, bool | float):
        raise ValueError("a timestamp is an RFC 3339 string with offset or integer epoch ms")
    if isinstance(value, int):
        try:
            return EPOCH + timedelta(milliseconds=value)
        except OverflowError:
            raise ValueError("epoch milliseconds out of range") from None
    if isinstance(value, str):
        if _NUMERIC_STRING.match(value):
            raise ValueError("epoch milliseconds must be a JSON integer, not a string")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None:
            raise ValueError("an RFC 3339 timestamp needs an offset, e.g. Z or +01:00")
        return parsed.astimezone(UTC)
    return value


DeviceTime = Annotated[
    datetime,
    BeforeValidator(device_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "description": "RFC 3339 with offset"},
                {"type": "integer", "description": "epoch milliseconds"},
            ],
            "description": "the device's own time of the measurement",
        }
    ),
]
FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Seq = Annotated[int, Strict(), Field(ge=0, lt=2**63, description="device sequence number")]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reading(_Payload):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ts": "2026-03-01T07:15:00+01:00", "metric": "heart_rate", "value": 64}]
        }
    )

    ts: DeviceTime
    metric: Name
    value: FiniteNumber
    seq: Seq | None = None


class Event(_Payload):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ts": 1772345700000,
                    "type": "bed_exit",
                    "duration_s": 42.5,
                    "attrs": {"side": "l"},
                }
            ]
        }
    )

    ts: DeviceTime
    type: Name
    duration_s: Annotated[FiniteNumber, Field(ge=0)] | None = None
    attrs: dict[str, Any] | None = None
    seq: Seq | None = None


class Status(_Payload):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ts": "2026-03-01T06:00:00Z", "battery": 87, "rssi": -71, "firmware": "2.4.1"}
            ]
        }
    )

    ts: DeviceTime
    battery: Annotated[FiniteNumber, Field(ge=0, le=100)] | None = None
    rssi: FiniteNumber | None = None
    firmware: (
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")] | None
    ) = None
    seq: Seq | None = None


class ReadingBatch(_Payload):
    readings: Annotated[list[Reading], Field(min_length=1, max_length=MAX_BATCH_ITEMS)]
    seq: Seq | None = Field(None, description="the batch's sequence number (one per message)")


class EventBatch(_Payload):
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_BATCH_ITEMS)]
    seq: Seq | None = Field(None, description="the batch's sequence number (one per message)")


class SenmlRecord(BaseModel):
    """One SenML record (RFC 8428 §4); base fields carry over to the records after them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    bn: str | None = None
    bt: FiniteNumber | None = None
    bu: str | None = None
    bv: FiniteNumber | None = None
    bver: int | None = None
    n: str | None = None
    u: str | None = None
    v: FiniteNumber | None = None
    vb: bool | None = None
    vs: str | None = None
    vd: str | None = None
    s: FiniteNumber | None = None
    t: FiniteNumber | None = None
    ut: FiniteNumber | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_must_understand_fields(cls, data: Any) -> Any:
        # RFC 8428 §4.4: a label ending in "_" must be understood, or the pack rejected.
        if isinstance(data, dict):
            unknown = [key for key in data if isinstance(key, str) and key.endswith("_")]
            if unknown:
                raise ValueError(f"unsupported must-understand fields: {', '.join(unknown)}")
        return data


SenmlPack = Annotated[list[SenmlRecord], Field(min_length=1, max_length=MAX_BATCH_ITEMS)]
senml_pack = TypeAdapter(SenmlPack)


def senml_readings(records: list[SenmlRecord]) -> Iterator[Reading]:
    """Resolve a pack into readings: metric = bn + n, time = bt + t, value = bv + v (or vb)."""
    base_name, base_time, base_value = "", 0.0, 0.0
    for index, record in enumerate(records):
        if record.bn is not None:
            base_name = record.bn
        if record.bt is not None:
            base_time = record.bt
        if record.bv is not None:
            base_value = record.bv
        if record.v is not None:
            value = base_value + record.v
        elif record.vb is not None:
            value = 1.0 if record.vb else 0.0
        else:
            raise ValueError(f"record {index}: only numeric (v) or boolean (vb) values are stored")
        seconds = base_time + (record.t or 0.0)
        if abs(seconds) < SENML_RELATIVE_LIMIT:
            raise ValueError(f"record {index}: time relative to now; send an absolute bt")
        if not math.isfinite(value):
            raise ValueError(f"record {index}: value is not finite")
        yield Reading(
            ts=EPOCH + timedelta(seconds=seconds), metric=base_name + (record.n or ""), value=value
        )


def payload_json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each payload kind, keyed by kind."""
    return {
        "reading": Reading.model_json_schema(),
        "reading_batch": ReadingBatch.model_json_schema(),
        "senml": senml_pack.json_schema(),
        "event": Event.model_json_schema(),
        "event_batch": EventBatch.model_json_schema(),
        "status": Status.model_json_schema(),
    }


def rendered_schema_files() -> dict[str, bytes]:
    """File name → content of devices/payload_schemas/, exactly as committed."""
    return {
        f"{kind}.json": orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        + b"\n"
        for kind, schema in payload_json_schemas().items()
    }


def write_schema_files(directory: Path = SCHEMAS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in rendered_schema_files().items():
        path = directory / name
        path.write_bytes(content)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schema_files(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMAS_DIR):
        print(path)
