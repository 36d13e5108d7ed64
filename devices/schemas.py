"""What comes in and goes out of the device registry, deployments and health.

The catalogue (table `device_types`) says, per kind of product, which metrics and event types it
emits and how often it reports (`expected_interval`); a device is offline after three intervals of
silence. Devices and gateways share one id namespace: the id is also the MQTT username, so it is
restricted to `[A-Za-z0-9_.-]{1,64}` (never a topic wildcard, space or slash).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from infra.types import Id, Rule, Text

POSITIVE_INTERVAL = Rule("positive_interval", "expected_interval must be positive")
GATEWAY_BEHIND_GATEWAY = Rule(
    "gateway_behind_gateway", "a gateway cannot sit behind another gateway (gateway_id)"
)
DEPLOYMENT_ORDER = Rule(
    "deployment_order", "valid_until must be after valid_from (a deployment is [from, until))"
)
PLACE_NEEDED = Rule("place_needed", "give a site_id (with an optional unit_id) or a participant_id")

DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

DeviceId = Annotated[
    str,
    StringConstraints(pattern=DEVICE_ID_PATTERN),
    Field(description="letters, digits, '_', '.', '-'; 1-64 characters; also the MQTT username"),
]


class DeviceKind(StrEnum):
    DEVICE = "device"
    GATEWAY = "gateway"


# ------------------------------------------------------------------ device types
class DeviceTypeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "hip_protector",
                    "name": "Smart hip protector",
                    "metrics": ["movement"],
                    "event_types": ["impact_detected"],
                    "expected_interval": "PT10M",
                    "description": "Airbag belt that reports impacts",
                }
            ]
        },
    )

    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")]
    name: Annotated[Text, StringConstraints(min_length=1, max_length=100)]
    metrics: Annotated[
        list[Annotated[Text, StringConstraints(min_length=1, max_length=64)]], Field(max_length=100)
    ] = []
    event_types: Annotated[
        list[Annotated[Text, StringConstraints(min_length=1, max_length=64)]], Field(max_length=100)
    ] = []
    expected_interval: timedelta = Field(
        timedelta(minutes=5), description="how often it reports (ISO 8601 duration or seconds)"
    )
    description: Text = ""

    @model_validator(mode="after")
    def _positive_interval(self) -> DeviceTypeCreate:
        if self.expected_interval <= timedelta(0):
            raise POSITIVE_INTERVAL.error(field="expected_interval")
        return self


class DeviceType(BaseModel):
    """A catalogue entry. Seeded (0001_schema.sql): gateway, sensor_bed (heart/respiration rate,
    movement; bed_exit, bed_entry, night_check_avoided; every minute), medicine_dispenser
    (dose_dispensed/taken/missed), fall_sensor, door_sensor, smart_toilet, cleaning_robot and
    stocking_aid. `event_types` are what trial activities count as occurrences (activities.event_type);
    coordinators add types with POST /device-types.
    """

    code: str
    name: str
    metrics: list[str]
    event_types: list[str]
    expected_interval: timedelta
    description: str


# ----------------------------------------------------------------------- devices
class DeviceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "bed-kolding-014",
                    "kind": "device",
                    "device_type": "sensor_bed",
                    "company_id": 1,
                    "serial": "SB-2026-00014",
                    "firmware": "2.4.1",
                    "gateway_id": "gw-kolding-1",
                }
            ]
        },
    )

    id: DeviceId
    kind: DeviceKind = DeviceKind.DEVICE
    device_type: Annotated[Text, StringConstraints(max_length=40)] = Field(
        description="a code from GET /device-types"
    )
    company_id: Id = Field(description="the company that supplies the device")
    gateway_id: DeviceId | None = Field(None, description="the gateway it sits behind, if any")
    serial: Annotated[Text, StringConstraints(max_length=100)] | None = None
    firmware: Annotated[Text, StringConstraints(max_length=100)] | None = None

    @model_validator(mode="after")
    def _only_devices_sit_behind_gateways(self) -> DeviceCreate:
        if self.kind == DeviceKind.GATEWAY and self.gateway_id is not None:
            raise GATEWAY_BEHIND_GATEWAY.error(field="gateway_id")
        return self


class Device(BaseModel):
    id: str
    kind: DeviceKind
    device_type: str
    company_id: int
    gateway_id: str | None
    serial: str | None
    firmware: str | None
    registered_at: datetime
    revoked_at: datetime | None


class DeviceCredentials(Device):
    mqtt_username: str = Field(description="the device id")
    secret: str = Field(description="the MQTT password; shown only once, stored only as a hash")


# ------------------------------------------------------------------- deployments
class DeploymentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "trial_id": 1,
                    "site_id": 1,
                    "unit_id": 2,
                    "valid_from": "2026-11-24T08:00:00+01:00",
                    "note": "room 14",
                },
                {
                    "trial_id": 1,
                    "participant_id": 7,
                    "valid_from": "2026-11-24T08:00:00+01:00",
                    "valid_until": "2027-02-24T08:00:00+01:00",
                },
            ]
        },
    )

    trial_id: Id
    site_id: Id | None = Field(
        None, description="required unless participant_id is given (then the participant's site)"
    )
    unit_id: Id | None = None
    participant_id: Id | None = None
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = Field(None, description="exclusive; null = open-ended")
    note: Text = ""

    @model_validator(mode="after")
    def _until_after_from(self) -> DeploymentCreate:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise DEPLOYMENT_ORDER.error(field="valid_until")
        if self.site_id is None and self.participant_id is None:
            raise PLACE_NEEDED.error(field="site_id")
        return self


class DeploymentEnd(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"at": "2027-01-31T12:00:00+01:00"}]}
    )

    at: AwareDatetime = Field(description="the deployment's end (exclusive)")


class Deployment(BaseModel):
    id: int
    device_id: str
    trial_id: int
    site_id: int
    unit_id: int | None
    participant_id: int | None
    valid_from: datetime
    valid_until: datetime | None
    note: str
    created_at: datetime


class DeviceMoved(BaseModel):
    ended: Deployment | None = Field(description="the deployment the move closed, if one was open")
    started: Deployment


# ------------------------------------------------------------------------ health
class DeviceHealth(BaseModel):
    device_id: str
    kind: DeviceKind
    device_type: str
    trial_id: int | None
    site_id: int | None
    unit_id: int | None
    last_seen_at: datetime | None
    battery: float | None
    rssi: float | None
    firmware: str | None
    expected_interval: timedelta
    online: bool = Field(description="false when nothing arrived for three expected intervals")


# Written by devices/health.py, stored by devices/repository.py (its shape, not its rules).
@dataclass(frozen=True, slots=True)
class FoldedHealth:
    """One device's updates in a batch, folded: the newest of each value."""

    device_id: str
    last_seen_at: datetime
    last_status_at: datetime | None
    battery: float | None
    rssi: float | None
    firmware: str | None
