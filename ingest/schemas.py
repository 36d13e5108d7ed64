"""What the ingest endpoints return: data completeness of a trial and the dead letters."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field


class DeviceGaps(BaseModel):
    device_id: str
    channel: str
    gaps: int = Field(description="sequence gaps detected")
    missing_messages: int = Field(description="messages numbered by the device but never received")
    last_detected_at: AwareDatetime


class ReasonCount(BaseModel):
    reason: str
    count: int


class DataCompleteness(BaseModel):
    """Missing data (gaps, refusals) as opposed to no activity."""

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "trial_id": 1,
                    "missing_messages": 3,
                    "gaps": [
                        {
                            "device_id": "bed-0042",
                            "channel": "readings",
                            "gaps": 2,
                            "missing_messages": 3,
                            "last_detected_at": "2026-03-01T07:15:00Z",
                        }
                    ],
                    "dead_letters": [{"reason": "schema_violation", "count": 4}],
                    "consent_drops": [{"reason": "no_telemetry_consent", "count": 120}],
                }
            ]
        }
    }

    trial_id: int
    missing_messages: int
    gaps: list[DeviceGaps]
    dead_letters: list[ReasonCount] = Field(description="refused messages of the trial's devices")
    consent_drops: list[ReasonCount] = Field(description="readings not kept for lack of consent")


class DeadLetterOut(BaseModel):
    id: int
    received_at: AwareDatetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    excerpt: str = Field(description="the payload's first 512 characters")
    payload_size: int
